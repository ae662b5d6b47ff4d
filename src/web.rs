//! The wasm-bindgen API the page (`index.html`, `web/app.js`) calls. Everything is async:
//! GPU work never blocks the browser's main thread.
use crate::gpu::{BackendChoice, Gpu};
use crate::model::{self, preprocess, Arch, Backbone};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A WebGPU device opened from the page, and the backbone loaded on it (if any).
#[wasm_bindgen]
pub struct WebGpu {
    gpu: Rc<Gpu>,
    backbone: RefCell<Option<Rc<Backbone>>>,
}

#[wasm_bindgen]
impl WebGpu {
    /// Open the browser's WebGPU adapter; rejects with a readable message when there is none.
    pub async fn open() -> Result<WebGpu, JsError> {
        let gpu = Gpu::new(BackendChoice::BrowserWebGpu).await.map_err(js_err)?;
        Ok(WebGpu { gpu: Rc::new(gpu), backbone: RefCell::new(None) })
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
        let figs = crate::bench::run_all(&self.gpu, reps.max(1), |_| {}).await.map_err(js_err)?;
        Ok(format!("[{}]", figs.iter().map(|f| f.to_json()).collect::<Vec<_>>().join(",")))
    }

    /// Load a weight file (the bytes of `weights/<arch>.safetensors`) for `arch`.
    #[wasm_bindgen(js_name = loadBackbone)]
    pub fn load_backbone(&self, arch: &str, weights: &[u8]) -> Result<(), JsError> {
        let arch = Arch::from_id(arch).map_err(js_err)?;
        let net = Backbone::from_weight_file(&self.gpu, weights, Some(arch)).map_err(js_err)?;
        *self.backbone.borrow_mut() = Some(Rc::new(net));
        Ok(())
    }

    /// Top-5 ImageNet classes of an image file's bytes: JSON `[{index, label, score}]`.
    pub async fn imagenet(&self, image: Vec<u8>, name: String) -> Result<String, JsError> {
        let net = self.backbone.borrow().clone().ok_or_else(|| JsError::new("no backbone loaded"))?;
        let x = preprocess::preprocess(&image, &name, net.arch()).map_err(js_err)?;
        let logits = net.logits(&self.gpu, &x, 1).await.map_err(js_err)?;
        let labels = model::imagenet_labels();
        let top: Vec<serde_json::Value> = model::top_k(&logits, 5)
            .into_iter()
            .map(|(i, s)| serde_json::json!({ "index": i, "label": labels[i], "score": s }))
            .collect();
        Ok(serde_json::Value::Array(top).to_string())
    }
}
