//! The browser suite: the same check bodies as the native suite, on the browser's WebGPU
//! (headless Chromium, SwiftShader in CI). Run by `scripts/test.sh` through wasm-bindgen-test.
#![cfg(target_arch = "wasm32")]
use lqf::gpu::{BackendChoice, Gpu};
use lqf::selftest as checks;
use wasm_bindgen_test::*;

/// How far SGD's scores (f/κ, 1 = a confident member) may sit from CG's on the same 9 images:
/// both stop at a relative residual of 1e-3 (SGD after 23 epochs, CG after 9 iterations), and
/// they differ by 0.002 on SwiftShader, 5× inside this.
const SGD_CG_SCORE_TOL: f64 = 0.01;

wasm_bindgen_test_configure!(run_in_browser);

async fn webgpu() -> Gpu {
    Gpu::new(BackendChoice::BrowserWebGpu).await.expect("WebGPU adapter (Chromium needs --enable-unsafe-webgpu)")
}

#[wasm_bindgen_test]
async fn adapter_is_browser_webgpu() {
    let g = webgpu().await;
    web_sys::console::log_1(&format!("WebGPU adapter: {}", g.adapter).into());
    assert_eq!(g.adapter.backend, "BrowserWebGpu", "{}", g.adapter);
}

#[wasm_bindgen_test]
async fn gemm_on_webgpu() {
    let g = webgpu().await;
    checks::gemm_matches_reference(&g).await.unwrap();
}

#[wasm_bindgen_test]
async fn conv_on_webgpu() {
    let g = webgpu().await;
    checks::conv_matches_reference(&g).await.unwrap();
}

/// The golden ImageNet logits on the browser's WebGPU, for both backbones (see tests/golden.rs).
#[wasm_bindgen_test]
async fn golden_logits_on_webgpu() {
    use lqf::model::{preprocess, top_k, Arch, Backbone};
    let g = webgpu().await;
    let refs: serde_json::Value = serde_json::from_slice(include_bytes!("data/golden/reference_logits.json")).unwrap();
    let images: [(&str, &[u8]); 4] = [
        ("chelsea_224.png", include_bytes!("data/golden/chelsea_224.png")),
        ("coffee_224.png", include_bytes!("data/golden/coffee_224.png")),
        ("astronaut_224.png", include_bytes!("data/golden/astronaut_224.png")),
        ("rocket_224.png", include_bytes!("data/golden/rocket_224.png")),
    ];
    let weights: [(Arch, &[u8]); 2] = [
        (Arch::MobileNetV2, include_bytes!("../weights/mobilenet_v2.safetensors")),
        (Arch::EfficientNetLite0, include_bytes!("../weights/efficientnet_lite0.safetensors")),
    ];
    for (arch, w) in weights {
        let net = Backbone::from_weight_file(&g, w, Some(arch)).unwrap();
        let mut x = Vec::new();
        for (name, bytes) in images {
            x.extend(preprocess::normalise(&preprocess::decode(bytes, name).unwrap(), arch));
        }
        let logits = net.logits(&g, &x, images.len()).await.unwrap();
        for (i, (name, _)) in images.iter().enumerate() {
            let r = &refs[*name][arch.id()];
            let got = &logits[i * 1000..(i + 1) * 1000];
            let max = r["logits"].as_array().unwrap().iter().zip(got).map(|(w, g)| (w.as_f64().unwrap() - *g as f64).abs()).fold(0.0, f64::max);
            assert!(max < 2e-3, "{} {name}: max abs diff {max:.2e}", arch.id());
            let top: Vec<u64> = top_k(got, 5).iter().map(|x| x.0 as u64).collect();
            let want: Vec<u64> = r["top5"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            assert_eq!(top, want, "{} {name}", arch.id());
        }
        web_sys::console::log_1(&format!("{}: golden logits match on WebGPU", arch.id()).into());
    }
}

/// A model file written by the native CLI (tests/data/models/probe3.lqf, `lqf train --method
/// probe` on 3 classes of the bundled sample) loads in the browser and predicts the scores the
/// native `lqf predict` wrote; a model trained in the browser survives its own file round trip.
#[wasm_bindgen_test]
async fn model_files_cross_between_native_and_browser() {
    use lqf::lqf::model_file::ModelFile;
    use lqf::lqf::train::{self, Trained};
    use lqf::model::{preprocess, Arch, Backbone};
    let g = webgpu().await;
    let net = Backbone::from_weight_file(&g, include_bytes!("../weights/mobilenet_v2.safetensors"), Some(Arch::MobileNetV2)).unwrap();
    let file = ModelFile::from_bytes(include_bytes!("data/models/probe3.lqf"), Some(&net.weights_sha256)).unwrap();
    let m = Trained::from_model_file(&g, &net, &file).unwrap();
    let images: [(&str, &[u8]); 3] = [
        ("Forest_1154.jpg", include_bytes!("../web/samples/eurosat/test/Forest/Forest_1154.jpg")),
        ("Highway_1081.jpg", include_bytes!("../web/samples/eurosat/test/Highway/Highway_1081.jpg")),
        ("SeaLake_1146.jpg", include_bytes!("../web/samples/eurosat/test/SeaLake/SeaLake_1146.jpg")),
    ];
    let mut x = Vec::new();
    for (name, bytes) in images {
        x.extend(preprocess::preprocess(bytes, name, Arch::MobileNetV2).unwrap());
    }
    let z = train::trunk_features(&g, &net, m.split.trunk_end, &x, 3).await.unwrap();
    let logits = train::predict(&g, &m, &z, 3, 3).await.unwrap();
    let want: serde_json::Value = serde_json::from_slice(include_bytes!("data/models/probe3_predictions.json")).unwrap();
    for (i, rec) in want.as_array().unwrap().iter().enumerate() {
        for t in rec["top"].as_array().unwrap() {
            let c = file.classes.iter().position(|k| k == t["class"].as_str().unwrap()).unwrap();
            let (got, exp) = (logits[i * 3 + c] as f64, t["score"].as_f64().unwrap());
            assert!((got - exp).abs() < 1e-3, "image {i} class {c}: browser {got} vs native {exp}");
        }
    }
    // Train in the browser (the same probe on these three photos), save, load, same predictions.
    let split = train::split(&net, train::Depth::Probe, 3, 0.0).unwrap();
    let s = train::Settings { method: train::Method::Ridge, ..Default::default() };
    let trained = train::train(&g, split, &z, &[0, 1, 2], &s, &mut |_| {}).await.unwrap();
    let before = train::predict(&g, &trained, &z, 3, 3).await.unwrap();
    let bytes = trained.to_model_file(&g, &net, &file.classes).await.unwrap().to_bytes();
    let back = Trained::from_model_file(&g, &net, &ModelFile::from_bytes(&bytes, Some(&net.weights_sha256)).unwrap()).unwrap();
    let after = train::predict(&g, &back, &z, 3, 3).await.unwrap();
    assert_eq!(before, after, "the browser's own model file round trip");
    web_sys::console::log_1(&"model files cross between native and browser".into());
}

/// The page's API (`lqf::web`, what web/app.js calls) end to end on the browser's WebGPU: add
/// images, train LQF, predict, explain, export, forget, import the exported file, predict again.
#[wasm_bindgen_test]
async fn page_api_trains_predicts_explains_forgets_and_round_trips() {
    use lqf::web::WebGpu;
    let gpu = WebGpu::open().await.unwrap();
    gpu.load_backbone("mobilenet_v2", include_bytes!("../weights/mobilenet_v2.safetensors")).unwrap();
    let t = gpu.trainer("1").unwrap();
    let train = sample_training_images();
    for (id, (name, _, bytes)) in train.iter().enumerate() {
        t.add_image_file(id as u32 + 100, bytes, name).unwrap();
    }
    // A corrupt file is refused with its name, and nothing is queued for it.
    assert!(t.add_image_file(999, b"not an image", "broken.jpg").is_err(), "a corrupt file is refused");
    assert_eq!(t.pending_count(), 9);
    t.compute_features(None).await.unwrap();
    assert_eq!((t.feature_count(), t.pending_count()), (9, 0));
    assert_eq!(t.feature_bytes(), 9 * 7 * 7 * 160 * 2, "depth-1 features cached as f16");

    let ids: Vec<u32> = (100..109).collect();
    let labels: Vec<u32> = train.iter().map(|x| x.1).collect();
    let names = serde_json::to_string(&train.iter().map(|x| x.0).collect::<Vec<_>>()).unwrap();
    let classes = r#"["Forest","Highway","SeaLake"]"#;

    // SGD at the page's default rate (1, in units of the stiffest direction's stable step,
    // measured before its first step) fits the same images and lands where CG does (compared
    // below); a rate past the bound of 3 is reported as divergence, and the trainer stays usable.
    let sgd = r#"{"method":"lqf","depth":"1","weight_decay":"1e-3","solver":"sgd"}"#;
    let start = js_sys::Date::now();
    let fitted: serde_json::Value =
        serde_json::from_str(&t.train(ids.clone(), labels.clone(), classes.into(), names.clone(), sgd.into(), None).await.unwrap()).unwrap();
    web_sys::console::log_1(&format!("SGD in the browser, {:.1} s: {fitted}", (js_sys::Date::now() - start) / 1e3).into());
    assert_eq!(fitted["train_accuracy"].as_f64(), Some(1.0), "SGD fits its 9 training images: {fitted}");
    let (sgd_class, sgd_scores) = scores(&t.predict_file(train[6].2.to_vec(), train[6].0.into()).await.unwrap());
    let too_fast = r#"{"method":"lqf","depth":"1","weight_decay":"1e-3","solver":"sgd","lr":8}"#;
    let start = js_sys::Date::now();
    let err = t
        .train(ids.clone(), labels.clone(), classes.into(), names.clone(), too_fast.into(), None)
        .await
        .expect_err("SGD at rate 8, past its stability bound of 3");
    let msg = String::from(js_sys::Error::from(wasm_bindgen::JsValue::from(err)).message());
    web_sys::console::log_1(&format!("SGD at rate 8, {:.1} s: {msg}", (js_sys::Date::now() - start) / 1e3).into());
    assert!(msg.contains("diverged") && msg.contains("lower the learning rate"), "{msg}");

    let settings = r#"{"method":"lqf","depth":"1","iterations":15,"weight_decay":"1e-3"}"#;
    let start = js_sys::Date::now();
    let summary = t.train(ids.clone(), labels.clone(), classes.into(), names, settings.into(), None).await.unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    web_sys::console::log_1(&format!("trained in the browser, {:.1} s: {summary}", (js_sys::Date::now() - start) / 1e3).into());
    assert_eq!(summary["train_accuracy"].as_f64(), Some(1.0), "LQF fits its 9 training images: {summary}");
    assert!(summary["iterations"].as_u64().unwrap() >= 1);
    assert_eq!(summary["lambda_origin"], "given", "a fixed λ is reported as given: {summary}");

    let predict = scores;
    // A training image is predicted as its class, and it is its own strongest proponent.
    let (class, before) = predict(&t.predict_file(train[6].2.to_vec(), train[6].0.into()).await.unwrap());
    assert_eq!(class, "SeaLake");
    web_sys::console::log_1(&format!("SeaLake scores: SGD {sgd_scores:?}, CG {before:?}").into());
    assert_eq!(sgd_class, class);
    let gap = sgd_scores.iter().zip(&before).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(gap <= SGD_CG_SCORE_TOL, "SGD and CG disagree by {gap} (f/κ): {sgd_scores:?} against {before:?}");
    let why: serde_json::Value = serde_json::from_str(&t.explain(3).await.unwrap()).unwrap();
    web_sys::console::log_1(&format!("explained: {why}").into());
    assert_eq!(why["class"], "SeaLake");
    let top = why["proponents"].as_array().unwrap();
    assert!(!top.is_empty(), "{why}");
    assert!(top.iter().any(|p| p["id"] == 106), "the image itself is among its top proponents: {why}");
    for p in top.iter().chain(why["opponents"].as_array().unwrap()) {
        assert!(ids.contains(&(p["id"].as_u64().unwrap() as u32)), "{p}");
    }

    // Export, forget one image (the scores move), import the export: the scores come back.
    let file = t.export_model().await.unwrap();
    let forgot: serde_json::Value = serde_json::from_str(&t.forget(106).await.unwrap()).unwrap();
    assert_eq!(forgot["forgot"], "SeaLake/SeaLake_2096.jpg");
    assert!(forgot["recycled"].as_u64().unwrap_or(0) > 0, "the page forgets with training's kept directions: {forgot}");
    let (_, after_forget) = predict(&t.predict_file(train[6].2.to_vec(), train[6].0.into()).await.unwrap());
    // The model interpolates its 9 images (residual ≈ 0), so removing one moves it little; its
    // own SeaLake score must not rise, and the model must now list 8 images.
    assert!(after_forget[2] <= before[2] + 1e-5, "forgetting a SeaLake photo raised its SeaLake score: {before:?} → {after_forget:?}");
    let smaller = lqf::lqf::model_file::ModelFile::from_bytes(&t.export_model().await.unwrap(), None).unwrap();
    assert_eq!(smaller.train_files.len(), 8);
    assert!(!smaller.train_files.iter().any(|f| f.0 == "SeaLake/SeaLake_2096.jpg"));
    let info: serde_json::Value = serde_json::from_str(&t.import_model(&file).unwrap()).unwrap();
    assert_eq!(info["classes"], serde_json::json!(["Forest", "Highway", "SeaLake"]));
    assert_eq!(info["train_files"], 9);
    let (_, again) = predict(&t.predict_file(train[6].2.to_vec(), train[6].0.into()).await.unwrap());
    assert_eq!(before, again, "the exported model predicts as before");
    assert!(t.import_model(&file[..file.len() / 2]).is_err(), "a truncated model file is refused");
    assert!(t.explain(3).await.is_err(), "an imported model has no training images to explain with");
}

/// Three photos of each of three classes from the bundled sample: (name, class, bytes).
fn sample_training_images() -> [(&'static str, u32, &'static [u8]); 9] {
    [
        ("Forest/Forest_2253.jpg", 0, include_bytes!("../web/samples/eurosat/train/Forest/Forest_2253.jpg")),
        ("Forest/Forest_2295.jpg", 0, include_bytes!("../web/samples/eurosat/train/Forest/Forest_2295.jpg")),
        ("Forest/Forest_2411.jpg", 0, include_bytes!("../web/samples/eurosat/train/Forest/Forest_2411.jpg")),
        ("Highway/Highway_2016.jpg", 1, include_bytes!("../web/samples/eurosat/train/Highway/Highway_2016.jpg")),
        ("Highway/Highway_2024.jpg", 1, include_bytes!("../web/samples/eurosat/train/Highway/Highway_2024.jpg")),
        ("Highway/Highway_2076.jpg", 1, include_bytes!("../web/samples/eurosat/train/Highway/Highway_2076.jpg")),
        ("SeaLake/SeaLake_2096.jpg", 2, include_bytes!("../web/samples/eurosat/train/SeaLake/SeaLake_2096.jpg")),
        ("SeaLake/SeaLake_2187.jpg", 2, include_bytes!("../web/samples/eurosat/train/SeaLake/SeaLake_2187.jpg")),
        ("SeaLake/SeaLake_225.jpg", 2, include_bytes!("../web/samples/eurosat/train/SeaLake/SeaLake_225.jpg")),
    ]
}

/// A score list from the page API's prediction JSON: (class, scores).
fn scores(v: &str) -> (String, Vec<f64>) {
    let v: serde_json::Value = serde_json::from_str(v).unwrap();
    (v["class"].as_str().unwrap().to_string(), v["scores"].as_array().unwrap().iter().map(|s| s["score"].as_f64().unwrap()).collect())
}

/// Without WebGPU the page trains the probe on the CPU in wasm: same predictions as the GPU
/// probe, and model files that move between the two.
#[wasm_bindgen_test]
async fn cpu_fallback_trains_the_probe_like_the_gpu() {
    use lqf::web::{CpuTrainer, WebGpu};
    let weights = include_bytes!("../weights/mobilenet_v2.safetensors");
    let cpu = CpuTrainer::load("mobilenet_v2", weights).unwrap();
    let gpu = WebGpu::open().await.unwrap();
    gpu.load_backbone("mobilenet_v2", weights).unwrap();
    let t = gpu.trainer("probe").unwrap();
    let picked: Vec<_> = sample_training_images().into_iter().enumerate().filter(|(i, _)| i % 3 != 2).map(|x| x.1).collect();
    for (id, (name, _, bytes)) in picked.iter().enumerate() {
        cpu.add_image_file(id as u32, bytes, name).unwrap();
        t.add_image_file(id as u32, bytes, name).unwrap();
    }
    let ids: Vec<u32> = (0..picked.len() as u32).collect();
    let labels: Vec<u32> = picked.iter().map(|x| x.1).collect();
    let names = serde_json::to_string(&picked.iter().map(|x| x.0).collect::<Vec<_>>()).unwrap();
    let classes = r#"["Forest","Highway","SeaLake"]"#.to_string();
    assert!(cpu.set_depth("3").is_err(), "the CPU path is probe-only");
    assert!(cpu.train(ids.clone(), labels.clone(), classes.clone(), names.clone(), r#"{"method":"lqf"}"#.into(), None).await.is_err(), "LQF asks for WebGPU");
    let probe = r#"{"method":"probe","depth":"probe","weight_decay":"1e-3"}"#.to_string();
    let sc: serde_json::Value =
        serde_json::from_str(&cpu.train(ids.clone(), labels.clone(), classes.clone(), names.clone(), probe.clone(), None).await.unwrap()).unwrap();
    let sg: serde_json::Value = serde_json::from_str(&t.train(ids, labels, classes, names, probe, None).await.unwrap()).unwrap();
    assert_eq!(sc["train_accuracy"], sg["train_accuracy"]);
    let test: &[u8] = include_bytes!("../web/samples/eurosat/test/Highway/Highway_1081.jpg");
    let (c1, s1) = scores(&cpu.predict_file(test.to_vec(), "Highway_1081.jpg".into()).await.unwrap());
    let (c2, s2) = scores(&t.predict_file(test.to_vec(), "Highway_1081.jpg".into()).await.unwrap());
    web_sys::console::log_1(&format!("CPU probe {c1} {s1:?}, GPU probe {c2} {s2:?}").into());
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 5e-3);
    assert_eq!(c1, c2);
    assert!(close(&s1, &s2), "CPU {s1:?} vs GPU {s2:?}");
    // The CPU model file on the GPU, and the other way round.
    t.import_model(&cpu.export_model().await.unwrap()).unwrap();
    let (_, s3) = scores(&t.predict_file(test.to_vec(), "x.jpg".into()).await.unwrap());
    assert!(close(&s1, &s3), "CPU model on the GPU: {s1:?} vs {s3:?}");
    let gpu_file = t.export_model().await.unwrap();
    cpu.import_model(&gpu_file).unwrap();
    let (_, s4) = scores(&cpu.predict_file(test.to_vec(), "x.jpg".into()).await.unwrap());
    assert!(close(&s3, &s4), "GPU model on the CPU: {s3:?} vs {s4:?}");
    // A model that fine-tunes blocks is refused by the CPU path (before any shape is read).
    let mut deeper = lqf::lqf::model_file::ModelFile::from_bytes(&gpu_file, None).unwrap();
    deeper.settings.method = lqf::lqf::train::Method::Lqf;
    deeper.settings.depth = lqf::lqf::train::Depth::Blocks(1);
    assert!(cpu.import_model(&deeper.to_bytes()).is_err());
    assert!(cpu.explain(3).await.is_err(), "explaining needs WebGPU");
}
