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
