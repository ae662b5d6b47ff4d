//! The wasm-bindgen API the page (`index.html`, `web/app.js`) calls. Everything is async:
//! GPU work never blocks the browser's main thread.
use crate::error::Error;
use crate::gpu::{BackendChoice, Gpu};
use crate::lqf::train::{Depth, Method, Settings, SolverKind, AUTO_LAMBDA_PATH, DEFAULT_LAMBDA};
use crate::model::{self, preprocess, Arch, Backbone};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

mod cache;
mod cpu;
mod trainer;
pub use cpu::CpuTrainer;
pub use trainer::Trainer;

pub(crate) fn js_err(e: impl std::fmt::Display) -> JsError {
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
        self.gpu.clear_cancel();
        crate::selftest::run_all(&self.gpu).await.map_err(|e| JsError::new(&e))
    }

    /// Kernel throughput as a JSON array of {name, gflop, ms, gflops}.
    pub async fn bench(&self, reps: usize) -> Result<String, JsError> {
        self.gpu.clear_cancel();
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
        self.gpu.clear_cancel();
        let logits = net.logits(&self.gpu, &x, 1).await.map_err(js_err)?;
        let labels = model::imagenet_labels();
        let top: Vec<serde_json::Value> =
            model::top_k(&logits, 5).into_iter().map(|(i, s)| serde_json::json!({ "index": i, "label": labels[i], "score": s })).collect();
        Ok(serde_json::Value::Array(top).to_string())
    }

    /// A fine-tuning session on the loaded backbone, caching features for `depth`.
    pub fn trainer(&self, depth: &str) -> std::result::Result<Trainer, JsError> {
        let net = self.backbone.borrow().clone().ok_or_else(|| JsError::new("no backbone loaded"))?;
        Trainer::new(self.gpu.clone(), net, depth).map_err(js_err)
    }
}

/// The page's training form (JSON); anything left out takes the engine's default.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct PageSettings {
    /// "lqf" or "probe" (the ridge probe).
    pub method: String,
    pub depth: String,
    pub alpha: f32,
    pub kappa: f32,
    /// "auto" (chosen by 5-fold cross-validation on the training photos) or a number.
    pub weight_decay: String,
    /// "cg" or "sgd".
    pub solver: String,
    /// CG iterations.
    pub iterations: usize,
    pub tol: f64,
    pub lr: f32,
    pub momentum: f32,
    pub epochs: usize,
    pub batch: usize,
}

impl Default for PageSettings {
    fn default() -> PageSettings {
        let s = Settings::default();
        PageSettings {
            method: "lqf".into(),
            depth: s.depth.to_string(),
            alpha: s.alpha,
            kappa: s.kappa,
            weight_decay: "auto".into(),
            solver: "cg".into(),
            iterations: s.max_iter,
            tol: s.cg_tol,
            lr: s.sgd.lr,
            momentum: s.sgd.momentum,
            epochs: s.sgd.epochs,
            batch: s.batch,
        }
    }
}

impl PageSettings {
    pub fn settings(&self) -> crate::Result<Settings> {
        let bad = |what: &str| Error::InvalidArgument(what.to_string());
        let method = match self.method.as_str() {
            "lqf" => Method::Lqf,
            "probe" | "ridge" => Method::Ridge,
            m => return Err(bad(&format!("method {m:?}: lqf or probe"))),
        };
        let solver = match self.solver.as_str() {
            "cg" => SolverKind::Cg,
            "sgd" => SolverKind::Sgd,
            v => return Err(bad(&format!("solver {v:?}: cg or sgd"))),
        };
        let (lambda, lambda_path) = match self.weight_decay.trim() {
            "auto" => (DEFAULT_LAMBDA, AUTO_LAMBDA_PATH.to_vec()),
            v => match v.parse::<f32>() {
                Ok(l) if l.is_finite() && l >= 0.0 => (l, Vec::new()),
                _ => return Err(bad(&format!("weight decay {v:?}: auto or a non-negative number"))),
            },
        };
        if !(self.alpha.is_finite() && (0.0..1.0).contains(&self.alpha)) {
            return Err(bad(&format!("α = {}: a slope in [0, 1)", self.alpha)));
        }
        if !(self.kappa.is_finite() && self.kappa > 0.0) {
            return Err(bad(&format!("κ = {}: a positive target scale", self.kappa)));
        }
        if !self.lr.is_finite() || self.lr <= 0.0 || !(0.0..1.0).contains(&self.momentum) {
            return Err(bad("the SGD learning rate must be positive and the momentum in [0, 1)"));
        }
        let mut s = Settings {
            method,
            depth: Depth::parse(&self.depth)?,
            alpha: self.alpha,
            kappa: self.kappa,
            lambda,
            lambda_path,
            solver,
            max_iter: self.iterations.max(1),
            cg_tol: self.tol,
            batch: self.batch.clamp(1, 256),
            basis_budget: PAGE_BASIS_BUDGET,
            ..Settings::default()
        };
        s.sgd.lr = self.lr;
        s.sgd.momentum = self.momentum;
        s.sgd.epochs = self.epochs.max(1);
        Ok(s)
    }
}

/// GPU memory the page lets CG keep its directions in, so that "forget this image" recycles
/// them (`lqf::recycle`): about 20 directions at depth 1 (0.9 M parameters).
pub const PAGE_BASIS_BUDGET: u64 = 160 << 20;

/// Calls the page's progress callback (if any) with a JSON report; a throwing callback is ignored.
pub(crate) fn report(cb: &Option<js_sys::Function>, p: &crate::lqf::progress::Progress) {
    if let Some(f) = cb {
        let json = serde_json::json!({ "phase": p.phase, "step": p.step, "total": p.total, "loss": p.loss, "residual": p.residual });
        let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&json.to_string()));
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> crate::Result<T> {
    serde_json::from_str(s).map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))
}

/// What the page sends with "train": class names, one "class/file" name per image, settings.
pub(crate) struct TrainRequest {
    pub classes: Vec<String>,
    pub names: Vec<String>,
    pub settings: Settings,
}

impl TrainRequest {
    pub fn parse(ids: &[u32], labels: &[u32], classes: &str, names: &str, settings: &str) -> crate::Result<TrainRequest> {
        let classes: Vec<String> = parse_json("classes", classes)?;
        let names: Vec<String> = parse_json("names", names)?;
        let settings = parse_json::<PageSettings>("settings", settings)?.settings()?;
        if ids.len() != labels.len() || ids.len() != names.len() {
            return Err(Error::InvalidArgument(format!("{} images, {} labels, {} names", ids.len(), labels.len(), names.len())));
        }
        if let Some(&l) = labels.iter().find(|&&l| l as usize >= classes.len()) {
            return Err(Error::InvalidArgument(format!("label {l} is not below the {} classes", classes.len())));
        }
        Ok(TrainRequest { classes, names, settings })
    }
}

/// One image's logits as the page's prediction JSON ({class, index, scores: [{class, score}]},
/// score = f/κ, 1 being a confident member), and the predicted class index.
pub(crate) fn prediction_json(classes: &[String], logits: &[f32], kappa: f32) -> (usize, String) {
    let class = crate::cpu::elementwise::argmax_rows(logits, classes.len())[0] as usize;
    let kappa = kappa.max(f32::MIN_POSITIVE);
    let scores: Vec<serde_json::Value> = classes.iter().zip(logits).map(|(c, &v)| serde_json::json!({ "class": c, "score": v / kappa })).collect();
    (class, serde_json::json!({ "class": classes[class], "index": class, "scores": scores }).to_string())
}

/// What the page shows about an imported model file.
pub(crate) fn model_info_json(file: &crate::lqf::model_file::ModelFile) -> String {
    serde_json::json!({
        "classes": file.classes,
        "method": file.settings.method,
        "depth": file.settings.effective_depth().to_string(),
        "lambda": file.settings.lambda,
        "train_files": file.train_files.len(),
    })
    .to_string()
}
