//! Both pretrained backbones reproduce the reference ImageNet logits of the golden photos
//! (tests/data/golden: CC0 / public domain, computed by an independent float32 port).
use lqf::gpu::{BackendChoice, Gpu};
use lqf::model::{preprocess, top_k, Arch, Backbone};
use std::path::Path;

/// Max abs difference allowed on the 1000 logits (issue 3); f32 weights land near 6e-5.
const GOLDEN_MAX_ABS: f64 = 2e-3;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn golden_logits_both_backbones() {
    let gpu = pollster::block_on(Gpu::new(BackendChoice::Auto)).unwrap();
    let refs: serde_json::Value = serde_json::from_slice(&std::fs::read(root().join("tests/data/golden/reference_logits.json")).unwrap()).unwrap();
    let names: Vec<String> = refs.as_object().unwrap().keys().cloned().collect();
    assert_eq!(names.len(), 4);
    for arch in Arch::ALL {
        let w = std::fs::read(root().join(format!("weights/{}.safetensors", arch.id()))).unwrap();
        let net = Backbone::from_weight_file(&gpu, &w, Some(arch)).unwrap();
        let mut x = Vec::new();
        for n in &names {
            // The 224×224 PNG exactly as it is: no resize.
            let img = preprocess::decode(&std::fs::read(root().join("tests/data/golden").join(n)).unwrap(), n).unwrap();
            assert_eq!(img.dimensions(), (224, 224));
            x.extend(preprocess::normalise(&img, arch));
        }
        let logits = pollster::block_on(net.logits(&gpu, &x, names.len())).unwrap();
        for (i, n) in names.iter().enumerate() {
            let r = &refs[n][arch.id()];
            let want: Vec<f64> = r["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let got = &logits[i * 1000..(i + 1) * 1000];
            let max = got.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(max < GOLDEN_MAX_ABS, "{} {n}: max abs diff {max:.2e}", arch.id());
            let top: Vec<u64> = top_k(got, 5).iter().map(|x| x.0 as u64).collect();
            let want_top: Vec<u64> = r["top5"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            assert_eq!(top, want_top, "{} {n}: top-5", arch.id());
        }
    }
}

#[test]
fn wrong_weight_files_are_refused() {
    let gpu = pollster::block_on(Gpu::new(BackendChoice::Auto)).unwrap();
    let w = std::fs::read(root().join("weights/mobilenet_v2.safetensors")).unwrap();
    let err = |bytes: &[u8], want| Backbone::from_weight_file(&gpu, bytes, want).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err(&w, Some(Arch::EfficientNetLite0)).contains("is for mobilenet_v2"));
    assert!(err(&w[..w.len() / 2], None).contains("truncated"), "{}", err(&w[..w.len() / 2], None));
    assert!(!err(&w[..5], None).is_empty());
    assert!(!err(b"garbage that is not a weight file", None).is_empty());
}
