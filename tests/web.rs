//! The browser suite: the same check bodies as the native suite, on the browser's WebGPU
//! (headless Chromium, SwiftShader in CI). Run by `scripts/test.sh` through wasm-bindgen-test.
#![cfg(target_arch = "wasm32")]
use lqf::gpu::{BackendChoice, Gpu};
use lqf::selftest as checks;
use wasm_bindgen_test::*;

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
