//! The page's fallback where the browser has no WebGPU: the pretrained network and the ridge
//! probe on the CPU in wasm (`cpu::backbone`, `probe::ridge_cpu`, both tested against the GPU
//! path). Slower, probe only, and the same JavaScript API as [`super::Trainer`], so the page
//! runs unchanged; its model files are the same format, and load on a GPU too.
use super::cache::{photo_api, to_f32, FeatureCache, TrainingSet};
use super::{js_err, model_info_json, prediction_json, report, TrainRequest};
use crate::error::{Error, Result};
use crate::lqf::model_file::ModelFile;
use crate::lqf::probe;
use crate::lqf::progress::{Phase, Progress};
use crate::lqf::train::{self, Depth, Method, Settings};
use crate::model::weights::{self, Folded};
use crate::model::{preprocess, Arch};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

const ONLY_PROBE: &str = "without WebGPU this page trains the linear probe only (LQF needs WebGPU: Chrome or Edge 113+, Safari 26+)";

struct CpuModel {
    classes: Vec<String>,
    w: Vec<f32>,
    b: Vec<f32>,
    settings: Settings,
    set: TrainingSet,
}

struct CpuState {
    cache: FeatureCache,
    model: Option<Rc<CpuModel>>,
}

/// The pretrained network's weights on the host, and the page's photos and probe.
#[wasm_bindgen]
pub struct CpuTrainer {
    net: Folded,
    sha256: String,
    state: RefCell<CpuState>,
    cancelled: Cell<bool>,
}

/// Let the browser run its event loop (paint, input) between images.
async fn yield_to_browser() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        match js_sys::Reflect::get(&global, &"setTimeout".into()).and_then(|f| f.dyn_into::<js_sys::Function>()) {
            Ok(set_timeout) => drop(set_timeout.call2(&global, &resolve, &0.into())),
            Err(_) => drop(resolve.call0(&JsValue::NULL)),
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

impl CpuTrainer {
    fn arch(&self) -> Arch {
        self.net.def.arch
    }

    async fn flush(&self, cb: &Option<js_sys::Function>) -> Result<()> {
        let total = self.state.borrow().cache.pending();
        for done in 1.. {
            if self.cancelled.get() {
                return Err(Error::Cancelled);
            }
            let (epoch, batch) = self.state.borrow_mut().cache.take(1);
            let Some((id, x)) = batch.into_iter().next() else { break };
            let z = crate::cpu::backbone::pooled_features(&self.net, &x, 1);
            self.state.borrow_mut().cache.store(epoch, &[id], &z);
            report(cb, &Progress::new(Phase::Features, done, total.max(done)));
            yield_to_browser().await;
        }
        Ok(())
    }

    fn fit(&self, z: &[f32], labels: &[u32], classes: usize, s: &Settings) -> Result<(Vec<f32>, Vec<f32>)> {
        train::require_two_classes(labels)?;
        probe::ridge_cpu(z, labels, classes, s.kappa, s.lambda)
    }

    async fn train_impl(&self, ids: Vec<u32>, labels: Vec<u32>, classes: &str, names: &str, settings: &str, cb: Option<js_sys::Function>) -> Result<String> {
        self.cancelled.set(false);
        let TrainRequest { classes, names, settings: s } = TrainRequest::parse(&ids, &labels, classes, names, settings)?;
        if s.method != Method::Ridge {
            return Err(Error::InvalidArgument(ONLY_PROBE.into()));
        }
        if ids.is_empty() {
            return Err(Error::InvalidArgument("no training images".into()));
        }
        self.flush(&cb).await?;
        let z16 = self.state.borrow().cache.gather(&ids)?;
        let z = to_f32(&z16);
        report(&cb, &Progress::new(Phase::Init, 0, 1));
        yield_to_browser().await;
        let (w, b) = self.fit(&z, &labels, classes.len(), &s)?;
        report(&cb, &Progress::new(Phase::Init, 1, 1));
        let m = CpuModel { classes, w, b, settings: s, set: TrainingSet::new(ids, labels, names, z16, self.net.def.features) };
        let logits = m.logits(&z);
        let summary = serde_json::json!({
            "method": m.settings.method,
            "depth": Depth::Probe.to_string(),
            "images": m.set.labels.len(),
            "lambda": m.settings.lambda,
            "lambda_origin": train::LambdaOrigin::Given,
            "lambda_scores": [],
            "iterations": 0,
            "train_accuracy": train::accuracy(&logits, &m.set.labels, m.classes.len()),
            "feature_bytes": m.set.z.len() * 2,
        });
        self.state.borrow_mut().model = Some(Rc::new(m));
        Ok(summary.to_string())
    }

    fn model(&self) -> Result<Rc<CpuModel>> {
        self.state.borrow().model.clone().ok_or_else(|| Error::InvalidArgument("no trained model: train one or import a model file".into()))
    }

    fn predict_input(&self, x: &[f32]) -> Result<String> {
        let m = self.model()?;
        let z = crate::cpu::backbone::pooled_features(&self.net, x, 1);
        let logits = m.logits(&z);
        Ok(prediction_json(&m.classes, &logits, m.settings.kappa).1)
    }

    fn forget_impl(&self, id: u32) -> Result<String> {
        let m = self.model()?;
        let index = m.set.index_of(id)?;
        let set = m.set.without(index)?;
        let (w, b) = self.fit(&set.features(), &set.labels, m.classes.len(), &m.settings)?;
        let model = CpuModel { classes: m.classes.clone(), w, b, settings: m.settings.clone(), set };
        self.state.borrow_mut().model = Some(Rc::new(model));
        Ok(serde_json::json!({ "forgot": m.set.names[index], "iterations": 0 }).to_string())
    }

    fn export_impl(&self) -> Result<Vec<u8>> {
        let m = self.model()?;
        let file = ModelFile {
            backbone: self.arch(),
            weights_sha256: self.sha256.clone(),
            classes: m.classes.clone(),
            settings: m.settings.clone(),
            classifier_weight0: m.w.clone(),
            classifier_bias0: m.b.clone(),
            // A probe is its classifier at θ0; Δ is zero (the probe split's parameters: W, b).
            delta: vec![vec![0.0; m.w.len()], vec![0.0; m.b.len()]],
            train_files: m.set.files(),
        };
        Ok(file.to_bytes())
    }

    fn import_impl(&self, bytes: &[u8]) -> Result<String> {
        let file = ModelFile::from_bytes(bytes, Some(&self.sha256))?;
        if file.settings.effective_depth() != Depth::Probe {
            return Err(Error::InvalidArgument(format!("this model fine-tunes {} blocks; {ONLY_PROBE}", file.settings.effective_depth())));
        }
        let (f, c) = (self.net.def.features, file.classes.len());
        let lens_ok = file.classifier_weight0.len() == f * c
            && file.classifier_bias0.len() == c
            && file.delta.len() == 2
            && file.delta[0].len() == f * c
            && file.delta[1].len() == c;
        if !lens_ok {
            return Err(Error::ModelFile("parameter shapes do not match the backbone's probe".into()));
        }
        let add = |a: &[f32], d: &[f32]| a.iter().zip(d).map(|(x, y)| x + y).collect::<Vec<f32>>();
        let info = model_info_json(&file);
        let m = CpuModel {
            w: add(&file.classifier_weight0, &file.delta[0]),
            b: add(&file.classifier_bias0, &file.delta[1]),
            classes: file.classes,
            settings: file.settings,
            set: TrainingSet::default(),
        };
        self.state.borrow_mut().model = Some(Rc::new(m));
        Ok(info)
    }
}

impl CpuModel {
    /// f = p·W + b for pooled features `z` (`[n, features]`): `[n, classes]`.
    fn logits(&self, z: &[f32]) -> Vec<f32> {
        let c = self.classes.len();
        let f = self.w.len() / c.max(1);
        z.chunks_exact(f.max(1)).flat_map(|p| (0..c).map(move |k| self.b[k] + p.iter().enumerate().map(|(i, v)| v * self.w[i * c + k]).sum::<f32>())).collect()
    }
}

photo_api!(CpuTrainer);

#[wasm_bindgen]
impl CpuTrainer {
    /// Load a weight file (`weights/<arch>.safetensors`) onto the host.
    pub fn load(arch: &str, weights_file: &[u8]) -> std::result::Result<CpuTrainer, JsError> {
        let arch = Arch::from_id(arch).map_err(js_err)?;
        let wf = weights::load(weights_file, Some(arch)).map_err(js_err)?;
        let net = weights::fold_all(wf.arch, &wf.tensors).map_err(js_err)?;
        let per = net.def.features;
        Ok(CpuTrainer { net, sha256: wf.sha256, state: RefCell::new(CpuState { cache: FeatureCache::new(per), model: None }), cancelled: Cell::new(false) })
    }

    /// What the page shows as its adapter.
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        "CPU (WebAssembly; no WebGPU in this browser)".into()
    }

    #[wasm_bindgen(getter)]
    pub fn depth(&self) -> String {
        Depth::Probe.to_string()
    }

    /// Only "probe" is possible here; false (nothing to recompute) for it.
    #[wasm_bindgen(js_name = setDepth)]
    pub fn set_depth(&self, depth: &str) -> std::result::Result<bool, JsError> {
        match Depth::parse(depth).map_err(js_err)? {
            Depth::Probe => Ok(false),
            _ => Err(JsError::new(ONLY_PROBE)),
        }
    }

    /// The network over every queued photo, one at a time, yielding to the browser between them.
    #[wasm_bindgen(js_name = computeFeatures)]
    pub async fn compute_features(&self, on_progress: Option<js_sys::Function>) -> std::result::Result<(), JsError> {
        self.cancelled.set(false);
        self.flush(&on_progress).await.map_err(js_err)
    }

    /// As `Trainer.train`, for the probe method.
    pub async fn train(
        &self,
        ids: Vec<u32>,
        labels: Vec<u32>,
        classes: String,
        names: String,
        settings: String,
        on_progress: Option<js_sys::Function>,
    ) -> std::result::Result<String, JsError> {
        self.train_impl(ids, labels, &classes, &names, &settings, on_progress).await.map_err(js_err)
    }

    pub fn cancel(&self) {
        self.cancelled.set(true);
    }

    pub async fn predict(&self, rgba: Vec<u8>, width: u32, height: u32) -> std::result::Result<String, JsError> {
        let x = preprocess::preprocess_rgba(&rgba, width, height, "image", self.arch()).map_err(js_err)?;
        self.predict_input(&x).map_err(js_err)
    }

    #[wasm_bindgen(js_name = predictFile)]
    pub async fn predict_file(&self, bytes: Vec<u8>, name: String) -> std::result::Result<String, JsError> {
        let x = preprocess::preprocess(&bytes, &name, self.arch()).map_err(js_err)?;
        self.predict_input(&x).map_err(js_err)
    }

    pub async fn explain(&self, _k: usize) -> std::result::Result<String, JsError> {
        Err(JsError::new("explaining a prediction runs on WebGPU; this browser has none"))
    }

    /// Refit the probe without image `id` (closed form, exact).
    pub async fn forget(&self, id: u32) -> std::result::Result<String, JsError> {
        self.forget_impl(id).map_err(js_err)
    }

    #[wasm_bindgen(js_name = exportModel)]
    pub async fn export_model(&self) -> std::result::Result<Vec<u8>, JsError> {
        self.export_impl().map_err(js_err)
    }

    #[wasm_bindgen(js_name = importModel)]
    pub fn import_model(&self, bytes: &[u8]) -> std::result::Result<String, JsError> {
        self.import_impl(bytes).map_err(js_err)
    }
}
