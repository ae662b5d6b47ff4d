//! The `lqf` binary end to end: JSON on stdout only, clear errors, exit codes, no partial files.
use std::path::{Path, PathBuf};
use std::process::Command;

fn lqf(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lqf")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lqf-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn imagenet_json_top5() {
    let (code, out, err) = lqf(&["imagenet", "--json", "tests/data/golden/chelsea_224.png", "tests/data/golden/coffee_224.png"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("adapter:"), "the adapter is reported on stderr: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is only JSON");
    let recs = v.as_array().unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["image"], "tests/data/golden/chelsea_224.png");
    let top5 = recs[0]["top5"].as_array().unwrap();
    assert_eq!(top5.len(), 5);
    assert_eq!((top5[0]["index"].as_u64(), top5[0]["label"].as_str()), (Some(285), Some("Egyptian cat")));
    assert_eq!(recs[1]["top5"][0]["label"], "espresso");
    let scores: Vec<f64> = top5.iter().map(|t| t["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores[0] <= 1.0);
}

#[test]
fn imagenet_reports_bad_images_and_goes_on() {
    let (code, out, err) = lqf(&["imagenet", "--json", "tests/data/images/rgb.jpg", "tests/data/images/bad/truncated.png", "no/such/file.jpg"]);
    assert_ne!(code, 0);
    assert!(err.contains("truncated.png") && err.contains("no/such/file.jpg") && err.contains("2 of 3 images"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "the good image is still classified");
    let (code, _, err) = lqf(&["imagenet", "--backbone", "resnet50", "x.jpg"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown backbone"), "{err}");
}

#[test]
fn import_weights_round_trip_and_refusal() {
    let out = tmp("mnv2.safetensors");
    let (code, _, err) = lqf(&["import-weights", "--arch", "mobilenet_v2", "weights/mobilenet_v2.safetensors", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.exists());
    let bad = tmp("bad.safetensors");
    let (code, _, err) = lqf(&["import-weights", "--arch", "efficientnet_lite0", "tests/data/checkpoints/tiny_zip.pth", bad.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("missing: _conv_stem.weight"), "{err}");
    assert!(!bad.exists(), "no output file after a failed conversion");
    let dir = bad.parent().unwrap();
    assert!(std::fs::read_dir(dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp-")), "no temporary left behind");
    let (code, _, err) = lqf(&["import-weights", "--arch", "mobilenet_v2", "tests/data/images/rgb.png", bad.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("not a PyTorch checkpoint"), "{err}");
    // Only this test's files: the directory is shared with the tests running beside it.
    let _ = std::fs::remove_file(&out);
}

#[test]
fn help_lists_commands() {
    let (code, out, _) = lqf(&["--help"]);
    assert_eq!(code, 0);
    for cmd in ["info", "selftest", "bench", "import-weights", "imagenet"] {
        assert!(out.contains(cmd), "{cmd} in --help");
    }
    assert!(Path::new(env!("CARGO_BIN_EXE_lqf")).exists());
}

/// A small ImageFolder in a temporary directory: `per` images of each of `classes` classes of
/// the bundled EuroSAT sample's `split`.
fn folder(name: &str, split: &str, classes: &[&str], per: usize) -> PathBuf {
    let root = tmp(name);
    let _ = std::fs::remove_dir_all(&root);
    for c in classes {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/samples/eurosat").join(split).join(c);
        let dst = root.join(c);
        std::fs::create_dir_all(&dst).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.iter().take(per) {
            std::fs::copy(f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
    root
}

const CLASSES: [&str; 3] = ["Forest", "Highway", "SeaLake"];

#[test]
fn train_eval_predict_round_trip_with_a_corrupt_file_skipped() {
    let data = folder("rt-train", "train", &CLASSES, 4);
    std::fs::copy("tests/data/images/bad/truncated.jpg", data.join("Forest/zz_truncated.jpg")).unwrap();
    let model = tmp("rt.lqf");
    let (code, out, err) =
        lqf(&["train", "--data", data.to_str().unwrap(), "--out", model.to_str().unwrap(), "--depth", "1", "--iterations", "3", "--batch", "8"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "train prints nothing on stdout: {out}");
    assert!(err.contains("adapter:") && err.contains("zz_truncated.jpg") && err.contains("1 file(s) skipped, 12 image(s) used"), "{err}");
    assert!(err.contains("K-FAC curvature") && err.contains("solving") && err.contains("loss"), "progress with the loss: {err}");
    assert!(model.exists());

    let test = folder("rt-test", "test", &CLASSES, 5);
    let (code, out, err) = lqf(&["eval", "--model", model.to_str().unwrap(), "--data", test.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is only JSON");
    assert_eq!(v["n"], 15);
    let acc = v["accuracy"].as_f64().unwrap();
    assert!(acc > 0.6, "three distinct land-use classes are told apart: {acc}");
    assert_eq!(v["per_class"].as_object().unwrap().len(), 3);
    let conf = v["confusion"].as_array().unwrap();
    let total: u64 = conf.iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap())).sum();
    let diag: u64 = (0..3).map(|i| conf[i][i].as_u64().unwrap()).sum();
    assert_eq!(total, 15);
    assert!((diag as f64 / 15.0 - acc).abs() < 1e-5, "accuracy is the confusion matrix's diagonal");

    let img = test.join("SeaLake").read_dir().unwrap().next().unwrap().unwrap().path();
    let (code, out, err) = lqf(&["predict", "--model", model.to_str().unwrap(), "--json", "--top", "2", img.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let top = v[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 2);
    assert!(top[0]["score"].as_f64() >= top[1]["score"].as_f64());
    assert!(CLASSES.contains(&top[0]["class"].as_str().unwrap()));
}

#[test]
fn bad_training_data_is_refused_without_output() {
    let model = tmp("never.lqf");
    let check = |args: &[&str], want: &str| {
        let (code, _, err) = lqf(args);
        assert_ne!(code, 0, "{args:?} must fail");
        assert!(err.contains(want), "{args:?}: expected {want:?} in {err}");
        assert!(!model.exists(), "{args:?} left a model file");
    };
    let m = model.to_str().unwrap();
    check(&["train", "--data", "no/such/dir", "--out", m, "--method", "probe"], "no/such/dir");
    let empty = tmp("empty");
    std::fs::create_dir_all(&empty).unwrap();
    check(&["train", "--data", empty.to_str().unwrap(), "--out", m, "--method", "probe"], "no class folders");
    let single = folder("single", "train", &["Forest"], 3);
    check(&["train", "--data", single.to_str().unwrap(), "--out", m, "--method", "probe"], "at least 2 classes");
    let unreadable = folder("unreadable", "train", &["Forest", "Highway"], 3);
    for f in std::fs::read_dir(unreadable.join("Highway")).unwrap() {
        std::fs::write(f.unwrap().path(), b"not an image").unwrap();
    }
    check(&["train", "--data", unreadable.to_str().unwrap(), "--out", m, "--method", "probe"], "no readable image in class folder(s) Highway");
    let small = folder("small", "train", &CLASSES, 3);
    check(&["train", "--data", small.to_str().unwrap(), "--out", m, "--shots", "5"], "fewer than the 5 shots");
    check(&["train", "--data", small.to_str().unwrap(), "--out", m, "--weight-decay=-1"], "non-negative");
    check(&["train", "--data", small.to_str().unwrap(), "--out", m, "--kfac-positions", "sideways"], "reduce or expand");
    check(&["train", "--data", small.to_str().unwrap(), "--out", m, "--lr-scale", "sideways"], "curvature or absolute");
    check(&["train", "--data", small.to_str().unwrap(), "--out", m, "--loss", "hinge"], "mse or cross-entropy");
    check(&["train", "--data", small.to_str().unwrap(), "--out", m, "--loss", "cross-entropy"], "--solver sgd");
    let diverging = [
        "train",
        "--data",
        small.to_str().unwrap(),
        "--out",
        m,
        "--depth",
        "1",
        "--solver",
        "sgd",
        "--lr",
        "1000",
        "--momentum",
        "0.9",
        "--epochs",
        "5",
        "--kfac",
        "false",
    ];
    check(&diverging, "diverged");
}

#[test]
fn non_utf8_file_names_are_read() {
    use std::os::unix::ffi::OsStrExt;
    let data = folder("utf8", "train", &["Forest", "SeaLake"], 2);
    let src = data.join("Forest").read_dir().unwrap().next().unwrap().unwrap().path();
    std::fs::rename(&src, data.join("Forest").join(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"))).unwrap();
    let model = tmp("utf8.lqf");
    let (code, _, err) = lqf(&["train", "--data", data.to_str().unwrap(), "--out", model.to_str().unwrap(), "--method", "probe"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("skipped"), "{err}");
}

#[test]
fn auto_lambda_without_three_images_a_class_says_the_default_was_used() {
    let data = folder("auto-small", "train", &["Forest", "SeaLake"], 2);
    let model = tmp("auto-small.lqf");
    let train = |method: &str| {
        lqf(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--method",
            method,
            "--depth",
            "1",
            "--iterations",
            "3",
            "--weight-decay",
            "auto",
        ])
    };
    let (code, _, err) = train("lqf");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("λ 1e-3 (not cross-validated: no class has 3 images; the default λ was used)"), "{err}");
    // The probes never search λ: nothing to explain there.
    let (code, _, err) = train("probe");
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("cross-validated"), "{err}");
}

#[test]
fn bad_model_files_are_refused() {
    use lqf::lqf::model_file::ModelFile;
    let data = folder("mf-train", "train", &["Forest", "SeaLake"], 2);
    let model = tmp("mf.lqf");
    let (code, _, err) = lqf(&["train", "--data", data.to_str().unwrap(), "--out", model.to_str().unwrap(), "--method", "probe"]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&model).unwrap();
    let eval = |bytes: &[u8], want: &str| {
        let p = tmp("mf-bad.lqf");
        std::fs::write(&p, bytes).unwrap();
        let (code, out, err) = lqf(&["eval", "--model", p.to_str().unwrap(), "--data", data.to_str().unwrap(), "--json"]);
        assert_ne!(code, 0);
        assert!(out.is_empty() && err.contains(want), "expected {want:?}: {err}");
    };
    eval(&bytes[..bytes.len() / 2], "not a readable model file");
    let mut other = ModelFile::from_bytes(&bytes, None).unwrap();
    other.backbone = lqf::model::Arch::EfficientNetLite0;
    eval(&other.to_bytes(), "trained on efficientnet_lite0 weights");
    let mut st = lqf::model::safetensors::read(&bytes).unwrap();
    st.metadata.insert("version".into(), "99".into());
    eval(&lqf::model::safetensors::write(&st, lqf::model::safetensors::Dtype::F32), "newer than this build reads");
}

#[test]
fn no_gpu_adapter_is_a_clear_error() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_lqf")).args(["info"]).env("WGPU_BACKEND", "vulkan").env("VK_ICD_FILENAMES", "/nonexistent.json").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("no GPU adapter") && err.contains("mesa-vulkan-drivers"), "{err}");
}

#[test]
fn fewshot_table_as_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/samples/eurosat");
    let (code, out, err) =
        lqf(&["fewshot", "--data", root.to_str().unwrap(), "--shots", "2,4", "--seeds", "0,1", "--methods", "probe,logistic", "--depth", "probe", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is only JSON");
    assert_eq!(v["runs"].as_array().unwrap().len(), 8);
    assert_eq!(v["test_images"], 100);
    let summary = v["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 4);
    for s in summary {
        let m = s["mean"].as_f64().unwrap();
        assert!(m > 0.3 && m <= 1.0, "well above the 10% of chance: {s}");
    }
}

#[test]
fn fewshot_refuses_bad_learning_rates_before_any_work() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/samples/eurosat");
    for lrs in ["--lrs=0.01,0", "--lrs=-1", "--lrs=NaN"] {
        let (code, out, err) = lqf(&["fewshot", "--data", root.to_str().unwrap(), "--methods", "finetune", lrs]);
        assert_ne!(code, 0, "{lrs} accepted");
        assert!(out.is_empty() && err.contains("--lrs") && !err.contains("features of"), "{lrs}: {err}");
    }
}

/// The cross-entropy ablation trains with SGD, is recorded in the model file, predicts, and
/// refuses to be explained or forgotten (its problem is not quadratic).
#[test]
fn cross_entropy_model_predicts_and_refuses_explain_and_forget() {
    let data = folder("ce-train", "train", &CLASSES, 3);
    let model = tmp("ce.lqf");
    let m = model.to_str().unwrap();
    let (code, _, err) = lqf(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        m,
        "--depth",
        "1",
        "--loss",
        "cross-entropy",
        "--solver",
        "sgd",
        "--lr",
        "0.001",
        "--epochs",
        "4",
    ]);
    assert_eq!(code, 0, "{err}");
    let f = lqf::lqf::model_file::ModelFile::from_bytes(&std::fs::read(&model).unwrap(), None).unwrap();
    assert_eq!(f.settings.loss, lqf::lqf::Loss::CrossEntropy);
    let img = data.join(CLASSES[0]).read_dir().unwrap().next().unwrap().unwrap().path();
    let (code, out, err) = lqf(&["predict", "--model", m, "--json", img.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(CLASSES[0]) || out.contains(CLASSES[1]), "{out}");
    let (code, _, err) = lqf(&["predict", "--model", m, "--explain", "3", "--data", data.to_str().unwrap(), img.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("cross-entropy") && !err.contains("features of"), "{err}");
    let (code, _, err) =
        lqf(&["forget", "--model", m, "--data", data.to_str().unwrap(), "--image", img.to_str().unwrap(), "--out", tmp("ce2.lqf").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("cross-entropy"), "{err}");
}

#[test]
fn explain_and_forget_a_training_image() {
    let data = folder("ex-train", "train", &CLASSES, 4);
    let model = tmp("ex.lqf");
    let m = model.to_str().unwrap();
    let (code, _, err) = lqf(&["train", "--data", data.to_str().unwrap(), "--out", m, "--depth", "1", "--iterations", "15", "--batch", "12"]);
    assert_eq!(code, 0, "{err}");
    let test = folder("ex-test", "test", &["SeaLake"], 1);
    let img = test.join("SeaLake").read_dir().unwrap().next().unwrap().unwrap().path();
    let (code, out, err) = lqf(&["predict", "--model", m, "--json", "--explain", "3", "--data", data.to_str().unwrap(), img.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is only JSON");
    let why = &v[0]["explain"];
    assert_eq!(why["class"], v[0]["top"][0]["class"], "the explanation is of the predicted class");
    let (pro, opp) = (why["proponents"].as_array().unwrap(), why["opponents"].as_array().unwrap());
    assert!(!pro.is_empty() && pro.len() <= 3 && opp.len() <= 3);
    assert!(pro.iter().all(|p| p["influence"].as_f64().unwrap() < 0.0) && opp.iter().all(|p| p["influence"].as_f64().unwrap() > 0.0));
    // The strongest proponent of "SeaLake" is a SeaLake training image.
    assert_eq!(pro[0]["class"], "SeaLake", "{why}");

    let victim = pro[0]["image"].as_str().unwrap().to_string();
    let out2 = tmp("ex-forgot.lqf");
    let (code, _, err) = lqf(&[
        "forget",
        "--model",
        m,
        "--data",
        data.to_str().unwrap(),
        "--image",
        &data.join(&victim).to_string_lossy(),
        "--out",
        out2.to_str().unwrap(),
        "--compare",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("forgot") && err.contains("faster"), "{err}");
    let diff: f64 = err.split("‖Δ_forget − Δ_scratch‖/‖Δ_scratch‖ = ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    // Exactness is tested on the tiny network (tests/influence.rs); here both runs stop at the
    // model's CG tolerance, so only a finite, reported difference is asserted.
    assert!(diff.is_finite(), "{err}");
    let f = lqf::lqf::model_file::ModelFile::from_bytes(&std::fs::read(&out2).unwrap(), None).unwrap();
    assert_eq!(f.train_files.len(), 11);
    assert!(f.train_files.iter().all(|(n, _)| *n != victim));
    let (code, _, err) = lqf(&["forget", "--model", m, "--data", data.to_str().unwrap(), "--image", "no/such.jpg", "--out", tmp("x.lqf").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("not one of the model's 12 training images"), "{err}");
}
