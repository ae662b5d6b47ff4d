//! The wasm-bindgen API the page (`index.html`, `web/app.js`) calls. Everything is async:
//! GPU work never blocks the browser's main thread.
use crate::gpu::{BackendChoice, Gpu};
use wasm_bindgen::prelude::*;

/// A WebGPU device opened from the page.
#[wasm_bindgen]
pub struct WebGpu {
    gpu: Gpu,
}

#[wasm_bindgen]
impl WebGpu {
    /// Open the browser's WebGPU adapter; rejects with a readable message when there is none.
    pub async fn open() -> Result<WebGpu, JsError> {
        let gpu = Gpu::new(BackendChoice::BrowserWebGpu).await.map_err(|e| JsError::new(&e.to_string()))?;
        Ok(WebGpu { gpu })
    }

    /// "name (backend, device type)".
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.gpu.adapter.to_string()
    }

    /// Run the kernel checks against the CPU reference on this GPU; resolves to a summary.
    #[wasm_bindgen(js_name = selfTest)]
    pub async fn self_test(&self) -> Result<String, JsError> {
        crate::selftest::run_all(&self.gpu).await.map_err(|e| JsError::new(&e))
    }

    /// Kernel throughput as a JSON array of {name, gflop, ms, gflops}.
    pub async fn bench(&self, reps: usize) -> Result<String, JsError> {
        let figs = crate::bench::run_all(&self.gpu, reps.max(1), |_| {}).await.map_err(|e| JsError::new(&e.to_string()))?;
        Ok(format!("[{}]", figs.iter().map(|f| f.to_json()).collect::<Vec<_>>().join(",")))
    }
}
