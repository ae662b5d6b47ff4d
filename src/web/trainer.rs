//! The page's training session: images by id with their trunk features cached compactly (f16),
//! the trained model, and what the page asks of it: train, predict, explain, forget, export,
//! import. Every method takes `&self` (state behind a `RefCell`, never borrowed across an
//! `await`), so the page can call `cancel` or add images while a training run is in flight.
use super::cache::{photo_api, to_f32, FeatureCache, TrainingSet};
use super::{js_err, model_info_json, prediction_json, report, TrainRequest};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::lqf::influence::{self, Correction, ForgetTol, InverseHessian};
use crate::lqf::model_file::ModelFile;
use crate::lqf::progress::{Phase, Progress};
use crate::lqf::train::{self, Depth, Method, Trained};
use crate::lqf::Problem;
use crate::model::{preprocess, Backbone};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// A trained model and the training set it was solved on (empty after an import: explaining
/// and forgetting need the images).
struct Model {
    trained: Trained,
    classes: Vec<String>,
    set: TrainingSet,
}

/// The last image predicted: its features (at the model's split) and the predicted class.
struct Last {
    z: Vec<f32>,
    class: usize,
}

struct State {
    depth: Depth,
    trunk_end: usize,
    cache: FeatureCache,
    model: Option<Rc<Model>>,
    last: Option<Rc<Last>>,
}

/// One fine-tuning project on the page's GPU and backbone.
#[wasm_bindgen]
pub struct Trainer {
    gpu: Rc<Gpu>,
    net: Rc<Backbone>,
    state: RefCell<State>,
}

impl Trainer {
    pub(super) fn new(gpu: Rc<Gpu>, net: Rc<Backbone>, depth: &str) -> Result<Trainer> {
        let depth = Depth::parse(depth)?;
        let (trunk_end, hwc) = train::trunk_shape(&net.def, depth)?;
        let state = State { depth, trunk_end, cache: FeatureCache::new(hwc.len()), model: None, last: None };
        Ok(Trainer { gpu, net, state: RefCell::new(state) })
    }

    /// Run the trunk over every queued image, a GPU-sized chunk at a time.
    async fn flush(&self, cb: &Option<js_sys::Function>) -> Result<()> {
        let chunk = self.net.max_batch(&self.gpu).min(16);
        let total = self.state.borrow().cache.pending();
        let mut done = 0;
        loop {
            let (trunk_end, (epoch, batch)) = {
                let mut st = self.state.borrow_mut();
                (st.trunk_end, st.cache.take(chunk))
            };
            if batch.is_empty() {
                break;
            }
            let x: Vec<f32> = batch.iter().flat_map(|(_, x)| x.iter().copied()).collect();
            let z = train::trunk_features(&self.gpu, &self.net, trunk_end, &x, batch.len()).await?;
            let ids: Vec<u32> = batch.iter().map(|b| b.0).collect();
            self.state.borrow_mut().cache.store(epoch, &ids, &z);
            done += batch.len();
            report(cb, &Progress::new(Phase::Features, done, total.max(done)));
        }
        Ok(())
    }

    async fn train_impl(&self, ids: Vec<u32>, labels: Vec<u32>, classes: &str, names: &str, settings: &str, cb: Option<js_sys::Function>) -> Result<String> {
        self.gpu.clear_cancel();
        let TrainRequest { classes, names, settings: s } = TrainRequest::parse(&ids, &labels, classes, names, settings)?;
        if s.effective_depth() != self.state.borrow().depth {
            return Err(Error::InvalidArgument(format!(
                "the cached features are for depth {}, the settings ask for {}",
                self.state.borrow().depth,
                s.effective_depth()
            )));
        }
        self.flush(&cb).await?;
        let (z16, per) = {
            let st = self.state.borrow();
            (st.cache.gather(&ids)?, st.cache.per)
        };
        let z = to_f32(&z16);
        let split = train::split(&self.net, s.effective_depth(), classes.len(), s.effective_alpha())?;
        let trained = train::train(&self.gpu, split, &z, &labels, &s, &mut |p| report(&cb, &p)).await?;
        let logits = train::predict(&self.gpu, &trained, &z, labels.len(), s.batch).await?;
        let summary = serde_json::json!({
            "method": trained.settings.method,
            "depth": trained.settings.effective_depth().to_string(),
            "images": labels.len(),
            "lambda": trained.settings.lambda,
            "lambda_origin": trained.lambda_origin(),
            "lambda_scores": trained.lambda_scores,
            "iterations": trained.steps.len(),
            "residual": trained.steps.last().map(|st| st.relative_residual),
            "loss": trained.steps.last().map(|st| st.loss),
            "train_accuracy": train::accuracy(&logits, &labels, classes.len()),
            "feature_bytes": z16.len() * 2,
            "per_image": per,
        });
        let mut st = self.state.borrow_mut();
        st.model = Some(Rc::new(Model { trained, classes, set: TrainingSet::new(ids, labels, names, z16, per) }));
        st.last = None;
        Ok(summary.to_string())
    }

    fn arch(&self) -> crate::model::Arch {
        self.net.arch()
    }

    fn model(&self) -> Result<Rc<Model>> {
        self.state.borrow().model.clone().ok_or_else(|| Error::InvalidArgument("no trained model: train one or import a model file".into()))
    }

    async fn predict_input(&self, x: Vec<f32>) -> Result<String> {
        self.gpu.clear_cancel();
        let m = self.model()?;
        let z = train::trunk_features(&self.gpu, &self.net, m.trained.split.trunk_end, &x, 1).await?;
        let logits = train::predict(&self.gpu, &m.trained, &z, 1, 1).await?;
        let (class, json) = prediction_json(&m.classes, &logits, m.trained.settings.kappa);
        self.state.borrow_mut().last = Some(Rc::new(Last { z, class }));
        Ok(json)
    }

    /// The model's problem over its training set (explain and forget solve on it).
    async fn problem<'a>(&self, m: &'a Model, z: &[f32]) -> Result<Problem<'a>> {
        if m.set.is_empty() {
            return Err(Error::InvalidArgument(
                "this model was imported without its training images; explaining and forgetting need them (train it here)".into(),
            ));
        }
        if m.trained.settings.method == Method::Finetune {
            return Err(Error::InvalidArgument("explaining needs a linear model (LQF or a probe)".into()));
        }
        let s = &m.trained.settings;
        Problem::new(&self.gpu, &m.trained.split.net, &m.trained.theta0, z, &m.set.labels, s.batch, s.kappa, s.lambda).await
    }

    async fn explain_impl(&self, k: usize) -> Result<String> {
        self.gpu.clear_cancel();
        let m = self.model()?;
        let last = self.state.borrow().last.clone().ok_or_else(|| Error::InvalidArgument("predict an image first".into()))?;
        let z = m.set.features();
        let prob = self.problem(&m, &z).await?;
        let x = self.gpu.upload(&last.z)?;
        let inf = influence::influence(
            &self.gpu,
            &prob,
            &m.trained.delta,
            m.trained.kfac.as_ref(),
            &x,
            &[last.class],
            InverseHessian::Cg { tol: 1e-2, max_iter: 20 },
        )
        .await?;
        let list = |v: Vec<(usize, f64)>| -> Vec<serde_json::Value> {
            v.into_iter()
                .map(|(j, s)| serde_json::json!({ "id": m.set.ids[j], "name": m.set.names[j], "class": m.classes[m.set.labels[j] as usize], "influence": s }))
                .collect()
        };
        Ok(serde_json::json!({ "class": m.classes[last.class], "proponents": list(inf[0].proponents(k)), "opponents": list(inf[0].opponents(k)) }).to_string())
    }

    async fn forget_impl(&self, id: u32) -> Result<String> {
        self.gpu.clear_cancel();
        let m = self.model()?;
        let index = m.set.index_of(id)?;
        let set = m.set.without(index)?;
        let s = m.trained.settings.clone();
        // Training keeps a basis only for LQF by CG (probes and SGD have none).
        let recycled = m.trained.basis.as_ref().map_or(0, |b| b.len());
        let (delta, iterations, trained, basis) = match s.method {
            Method::Lqf => {
                let z = m.set.features();
                let prob = self.problem(&m, &z).await?;
                // Deflated CG with training's kept directions when there are any, else plain CG
                // on the share (see `influence::forget`); the basis comes back updated for the
                // smaller problem, for the next removal.
                let correction = m.trained.basis.as_ref().map_or(Correction::Cg(None), Correction::Recycled);
                let f = influence::forget(&self.gpu, &prob, &m.trained.delta, correction, index, ForgetTol::Model { cg_tol: s.cg_tol }, s.max_iter).await?;
                (Some(f.delta), f.steps.len(), None, f.basis)
            }
            // The probes are closed-form or cheap: retrain them without it.
            _ => {
                let split = train::split(&self.net, s.effective_depth(), m.classes.len(), s.effective_alpha())?;
                (None, 0, Some(train::train(&self.gpu, split, &set.features(), &set.labels, &s, &mut |_| {}).await?), None)
            }
        };
        // Take the model out of the state so this is its only owner, or put it back.
        let mut st = self.state.borrow_mut();
        drop(st.model.take());
        let old = match Rc::try_unwrap(m) {
            Ok(old) => old,
            Err(m) => {
                st.model = Some(m);
                return Err(Error::InvalidArgument("the model is in use by another operation; try again".into()));
            }
        };
        let mut trained = trained.unwrap_or(old.trained);
        if let Some(d) = delta {
            trained.delta = d;
            trained.basis = basis;
        }
        let removed = old.set.names[index].clone();
        let model = Model { trained, classes: old.classes, set };
        st.model = Some(Rc::new(model));
        st.last = None;
        Ok(serde_json::json!({ "forgot": removed, "iterations": iterations, "recycled": recycled }).to_string())
    }

    async fn export_impl(&self) -> Result<Vec<u8>> {
        self.gpu.clear_cancel();
        let m = self.model()?;
        let mut file = m.trained.to_model_file(&self.gpu, &self.net, &m.classes).await?;
        file.train_files = m.set.files();
        Ok(file.to_bytes())
    }

    fn import_impl(&self, bytes: &[u8]) -> Result<String> {
        let file = ModelFile::from_bytes(bytes, Some(&self.net.weights_sha256))?;
        let trained = Trained::from_model_file(&self.gpu, &self.net, &file)?;
        let info = model_info_json(&file);
        let mut st = self.state.borrow_mut();
        st.model = Some(Rc::new(Model { trained, classes: file.classes, set: TrainingSet::default() }));
        st.last = None;
        Ok(info)
    }
}

photo_api!(Trainer);

#[wasm_bindgen]
impl Trainer {
    /// The depth the cached features are for ("probe", "all" or a number of blocks).
    #[wasm_bindgen(getter)]
    pub fn depth(&self) -> String {
        self.state.borrow().depth.to_string()
    }

    /// Cache features for another depth; true when the cache was cleared (add the images again).
    #[wasm_bindgen(js_name = setDepth)]
    pub fn set_depth(&self, depth: &str) -> std::result::Result<bool, JsError> {
        let depth = Depth::parse(depth).map_err(js_err)?;
        let (trunk_end, hwc) = train::trunk_shape(&self.net.def, depth).map_err(js_err)?;
        let mut st = self.state.borrow_mut();
        if st.depth == depth {
            return Ok(false);
        }
        st.depth = depth;
        st.trunk_end = trunk_end;
        st.cache.reset(hwc.len());
        Ok(true)
    }

    /// Compute the features of every queued image; `onProgress` receives JSON reports.
    #[wasm_bindgen(js_name = computeFeatures)]
    pub async fn compute_features(&self, on_progress: Option<js_sys::Function>) -> std::result::Result<(), JsError> {
        self.gpu.clear_cancel();
        self.flush(&on_progress).await.map_err(js_err)
    }

    /// Train on images `ids` with class indices `labels` (into the JSON list `classes`); `names`
    /// (JSON list, "class/file.jpg") go into the model file. `settings` is the page's JSON.
    /// Resolves to a JSON summary; rejects with "cancelled" after `cancel`.
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

    /// Stop the running computation at its next GPU readback.
    pub fn cancel(&self) {
        self.gpu.cancel();
    }

    /// Class scores (f/κ: 1 is a confident member) of an image given as RGBA pixels, JSON.
    pub async fn predict(&self, rgba: Vec<u8>, width: u32, height: u32) -> std::result::Result<String, JsError> {
        let x = preprocess::preprocess_rgba(&rgba, width, height, "image", self.net.arch()).map_err(js_err)?;
        self.predict_input(x).await.map_err(js_err)
    }

    /// As `predict`, for an image file's bytes.
    #[wasm_bindgen(js_name = predictFile)]
    pub async fn predict_file(&self, bytes: Vec<u8>, name: String) -> std::result::Result<String, JsError> {
        let x = preprocess::preprocess(&bytes, &name, self.net.arch()).map_err(js_err)?;
        self.predict_input(x).await.map_err(js_err)
    }

    /// The `k` training images that pushed the last prediction toward its class most
    /// (proponents) and away from it (opponents), JSON with their ids and influence.
    pub async fn explain(&self, k: usize) -> std::result::Result<String, JsError> {
        self.explain_impl(k).await.map_err(js_err)
    }

    /// Remove training image `id` from the model: LQF re-solves warm-started at its optimum
    /// (the same Δ as training without it), the probes refit.
    pub async fn forget(&self, id: u32) -> std::result::Result<String, JsError> {
        self.forget_impl(id).await.map_err(js_err)
    }

    /// The trained model as a model file (the CLI's format).
    #[wasm_bindgen(js_name = exportModel)]
    pub async fn export_model(&self) -> std::result::Result<Vec<u8>, JsError> {
        self.export_impl().await.map_err(js_err)
    }

    /// Load a model file (from the CLI or this page); resolves to JSON {classes, method, depth, …}.
    #[wasm_bindgen(js_name = importModel)]
    pub fn import_model(&self, bytes: &[u8]) -> std::result::Result<String, JsError> {
        self.import_impl(bytes).map_err(js_err)
    }
}
