//! The trained-model file: what `lqf train` writes, `lqf predict` and the web page read, and
//! the page exports and imports. A safetensors container (so any tool can inspect it):
//!
//! - `__metadata__`: `format` = "lqf-model", `version`, `backbone` (architecture id),
//!   `weights_sha256` (the exact backbone weight file it was trained on), `classes` (JSON list of
//!   names), `settings` (JSON of the training settings), `param_lens` (JSON, a consistency check),
//!   `train_files` (JSON list of [path relative to the training folder, class], for explain/forget);
//! - tensors `classifier.weight0`, `classifier.bias0` (the classifier at θ0, which depends on the
//!   initialisation) and `delta.0` … `delta.{k}` (Δ, in `ParamSet` order).
//!
//! Loading checks everything and fails with a clear error on a newer version, another backbone
//! or weight file, inconsistent shapes, truncation or corruption.
use super::train::Settings;
use crate::error::{Error, Result};
use crate::model::checkpoint::NamedTensor;
use crate::model::safetensors::{self, Dtype, SafeTensors};
use crate::model::Arch;

pub const FORMAT: &str = "lqf-model";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub backbone: Arch,
    pub weights_sha256: String,
    pub classes: Vec<String>,
    pub settings: Settings,
    pub classifier_weight0: Vec<f32>,
    pub classifier_bias0: Vec<f32>,
    pub delta: Vec<Vec<f32>>,
    /// The training images (path relative to the training folder, class index), so that
    /// `explain` and `forget` can find them again; empty when unknown.
    pub train_files: Vec<(String, u32)>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::ModelFile(msg.into())
}

impl ModelFile {
    pub fn to_bytes(&self) -> Vec<u8> {
        let json = |v: serde_json::Result<String>| v.unwrap_or_default();
        let lens: Vec<usize> = self.delta.iter().map(|d| d.len()).collect();
        let metadata = [
            ("format", FORMAT.to_string()),
            ("version", VERSION.to_string()),
            ("backbone", self.backbone.id().to_string()),
            ("weights_sha256", self.weights_sha256.clone()),
            ("classes", json(serde_json::to_string(&self.classes))),
            ("settings", json(serde_json::to_string(&self.settings))),
            ("param_lens", json(serde_json::to_string(&lens))),
            ("train_files", json(serde_json::to_string(&self.train_files))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut tensors = vec![
            NamedTensor { name: "classifier.weight0".into(), shape: vec![self.classifier_weight0.len()], data: self.classifier_weight0.clone() },
            NamedTensor { name: "classifier.bias0".into(), shape: vec![self.classifier_bias0.len()], data: self.classifier_bias0.clone() },
        ];
        tensors.extend(self.delta.iter().enumerate().map(|(i, d)| NamedTensor { name: format!("delta.{i}"), shape: vec![d.len()], data: d.clone() }));
        safetensors::write(&SafeTensors { tensors, metadata }, Dtype::F32)
    }

    /// Parse and check a model file. With `weights_sha256`, the file must have been trained on
    /// exactly that backbone weight file.
    pub fn from_bytes(bytes: &[u8], weights_sha256: Option<&str>) -> Result<ModelFile> {
        let st = safetensors::read(bytes).map_err(|e| bad(format!("not a readable model file ({e})")))?;
        let meta = |k: &str| st.metadata.get(k).map(String::as_str).ok_or_else(|| bad(format!("missing metadata field {k:?}")));
        if meta("format")? != FORMAT {
            return Err(bad(format!("not an LQF model file (format {:?})", meta("format")?)));
        }
        let version: u32 = meta("version")?.parse().map_err(|_| bad("unreadable version"))?;
        if version > VERSION {
            return Err(bad(format!("model file version {version} is newer than this build reads ({VERSION}); update lqf")));
        }
        let backbone = Arch::from_id(meta("backbone")?)?;
        let sha = meta("weights_sha256")?.to_string();
        if let Some(want) = weights_sha256 {
            if want != sha {
                return Err(bad(format!("trained on a different {} weight file (sha256 {sha}, loaded {want})", backbone.id())));
            }
        }
        let classes: Vec<String> = serde_json::from_str(meta("classes")?).map_err(|e| bad(format!("classes: {e}")))?;
        let settings: Settings = serde_json::from_str(meta("settings")?).map_err(|e| bad(format!("settings: {e}")))?;
        let lens: Vec<usize> = serde_json::from_str(meta("param_lens")?).map_err(|e| bad(format!("param_lens: {e}")))?;
        let train_files: Vec<(String, u32)> = match st.metadata.get("train_files") {
            Some(v) => serde_json::from_str(v).map_err(|e| bad(format!("train_files: {e}")))?,
            None => Vec::new(),
        };
        if let Some((f, l)) = train_files.iter().find(|(_, l)| *l as usize >= classes.len()) {
            return Err(bad(format!("training image {f} has class {l}, not below the {} classes", classes.len())));
        }
        let take = |name: &str| st.tensors.iter().find(|t| t.name == name).map(|t| t.data.clone()).ok_or_else(|| bad(format!("missing tensor {name}")));
        let (w0, b0) = (take("classifier.weight0")?, take("classifier.bias0")?);
        let delta: Vec<Vec<f32>> = (0..lens.len()).map(|i| take(&format!("delta.{i}"))).collect::<Result<_>>()?;
        let c = classes.len();
        if c < 2 || b0.len() != c || w0.len() % c != 0 || delta.iter().map(Vec::len).ne(lens.iter().cloned()) {
            return Err(bad(format!(
                "inconsistent shapes: {c} classes, classifier {} + {}, delta {:?} vs {lens:?}",
                w0.len(),
                b0.len(),
                delta.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
        if delta.iter().chain([&w0, &b0]).any(|t| t.iter().any(|v| !v.is_finite())) {
            return Err(bad("the model holds NaN or infinite values"));
        }
        Ok(ModelFile { backbone, weights_sha256: sha, classes, settings, classifier_weight0: w0, classifier_bias0: b0, delta, train_files })
    }
}
