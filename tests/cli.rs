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
    let _ = std::fs::remove_dir_all(dir);
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
