//! From a pretrained backbone to a trained linearized model: split the network, cache the trunk's
//! features, initialise the classifier, solve, predict.
use super::linearized::{LinBlock, LinearizedNet};
use super::params::ParamSet;
use super::probe;
use super::solver::{Problem, Step};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::backbone::{Backbone, Hwc};
use crate::rng::Rng;

/// How much of the backbone is linearized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Depth {
    /// The classifier only: a linear probe on the frozen features.
    Probe,
    /// The last `n` blocks before the head convolution, the head convolution and the classifier.
    Blocks(usize),
    /// Every block, stem included.
    All,
}

/// How the new classifier is set at θ0 (it must not be zero, or every backbone Jacobian is).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Init {
    /// Kaiming-uniform as PyTorch's `nn.Linear`: W, b ~ U(±1/√features), seeded.
    Random { seed: u64 },
    /// The closed-form ridge probe on the trunk's pooled features.
    Ridge,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub depth: Depth,
    /// Leaky-ReLU6 slope in the linearized part (the frozen trunk keeps the pretrained ReLU6).
    pub alpha: f32,
    /// Target scale κ.
    pub kappa: f32,
    /// Weight decay λ toward θ0.
    pub lambda: f32,
    pub init: Init,
    /// Images per GPU pass.
    pub batch: usize,
    /// Precondition the solver with K-FAC (damped with λ).
    pub kfac: bool,
    /// Conjugate gradient stops at this relative residual…
    pub cg_tol: f64,
    /// …or after this many iterations.
    pub max_iter: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { depth: Depth::Blocks(3), alpha: 0.05, kappa: 5.0, lambda: 1e-3, init: Init::Ridge, batch: 32, kfac: true, cg_tol: 1e-3, max_iter: 100 }
    }
}

/// A backbone split into a frozen trunk (blocks `..trunk_end`) and a linearized part.
pub struct Split {
    pub trunk_end: usize,
    pub net: LinearizedNet,
    /// θ0 of the linearized convolutions (shared with the backbone's own tensors).
    pub conv_params: Vec<Tensor>,
}

pub fn split(backbone: &Backbone, depth: Depth, classes: usize, alpha: f32) -> Result<Split> {
    let nblocks = backbone.blocks.len();
    // The last block is the head convolution; the ones before it are the network's blocks.
    let trunk_end = match depth {
        Depth::Probe => nblocks,
        Depth::All => 0,
        Depth::Blocks(n) if n + 1 < nblocks => nblocks - 1 - n,
        Depth::Blocks(n) => return Err(Error::InvalidArgument(format!("depth {n}: {} has {} blocks before its head", backbone.arch().id(), nblocks - 1))),
    };
    if classes < 2 {
        return Err(Error::InvalidArgument(format!("training needs at least 2 classes, got {classes}")));
    }
    let shapes = backbone.def.block_shapes();
    let input = if trunk_end == 0 {
        backbone.input_hwc()
    } else {
        let (h, w, c) = shapes[trunk_end - 1];
        Hwc { h, w, c }
    };
    let mut convs = Vec::new();
    let mut blocks = Vec::new();
    let mut conv_params = Vec::new();
    for b in &backbone.blocks[trunk_end..] {
        let mut idx = Vec::new();
        for c in &b.convs {
            idx.push(convs.len());
            convs.push(c.def.clone());
            conv_params.push(c.w.clone());
            conv_params.push(c.b.clone());
        }
        blocks.push(LinBlock { residual: b.residual, convs: idx });
    }
    let features = shapes.last().map(|s| s.2).unwrap_or(0);
    Ok(Split { trunk_end, net: LinearizedNet { convs, blocks, input, features, classes, alpha }, conv_params })
}

/// The trunk's output for `n` preprocessed images, in host memory (`[n, h, w, c]`).
pub async fn trunk_features(gpu: &Gpu, backbone: &Backbone, trunk_end: usize, images: &[f32], n: usize) -> Result<Vec<f32>> {
    let per = backbone.input_hwc().len();
    let chunk = backbone.max_batch(gpu);
    let mut out = Vec::new();
    for (start, b) in crate::batches(n, chunk) {
        let x = gpu.upload(&images[start * per..(start + b) * per])?;
        let (z, _) = gpu.run(|rec| backbone.run_blocks(rec, &x, b, backbone.input_hwc(), 0..trunk_end, 0.0))?;
        out.extend(gpu.read(&z).await?);
    }
    Ok(out)
}

/// Pooled features at θ0 (the input of the classifier) for the given trunk features.
pub async fn pooled_features(gpu: &Gpu, split: &Split, z: &[f32], n: usize, batch: usize) -> Result<Vec<f32>> {
    // θ0 with a zero classifier: we only need the pooled activations, which do not depend on it.
    let theta = theta0(gpu, split, &vec![0.0; split.net.features * split.net.classes], &vec![0.0; split.net.classes])?;
    let per = split.net.input.len();
    let mut out = Vec::new();
    for (start, b) in crate::batches(n, batch) {
        let zt = gpu.upload(&z[start * per..(start + b) * per])?;
        let pooled = gpu.run(|rec| split.net.pooled(rec, &theta, &zt, b))?;
        out.extend(gpu.read(&pooled).await?);
    }
    Ok(out)
}

/// θ0 = the backbone's linearized convolutions and the given classifier.
pub fn theta0(gpu: &Gpu, split: &Split, w: &[f32], b: &[f32]) -> Result<ParamSet> {
    let mut tensors = split.conv_params.clone();
    tensors.push(gpu.upload(w)?);
    tensors.push(gpu.upload(b)?);
    Ok(ParamSet { tensors })
}

/// A trained linearized model: θ0 and the solution Δ.
pub struct Trained {
    pub split: Split,
    pub theta0: ParamSet,
    pub delta: ParamSet,
    pub steps: Vec<Step>,
}

/// Train LQF on trunk features `z` with `labels`.
pub async fn train(gpu: &Gpu, split: Split, z: &[f32], labels: &[u32], s: &Settings, on_step: impl FnMut(Step)) -> Result<Trained> {
    let n = labels.len();
    let (c, f) = (split.net.classes, split.net.features);
    let (w, b) = match s.init {
        Init::Random { seed } => {
            let mut rng = Rng::new(seed);
            let bound = 1.0 / (f as f64).sqrt();
            ((0..f * c).map(|_| rng.range(-bound, bound) as f32).collect(), (0..c).map(|_| rng.range(-bound, bound) as f32).collect())
        }
        Init::Ridge => {
            let pooled = pooled_features(gpu, &split, z, n, s.batch).await?;
            probe::ridge(gpu, &pooled, labels, c, s.kappa, s.lambda).await?
        }
    };
    let theta0 = theta0(gpu, &split, &w, &b)?;
    let (delta, steps) = {
        let prob = Problem::new(gpu, &split.net, &theta0, z, labels, s.batch, s.kappa, s.lambda).await?;
        let kfac = if s.kfac && s.max_iter > 0 { Some(super::kfac::Kfac::new(gpu, &prob, s.lambda).await?) } else { None };
        prob.solve_cg(gpu, None, kfac.as_ref(), s.cg_tol, s.max_iter, on_step).await?
    };
    Ok(Trained { split, theta0, delta, steps })
}

/// f_lin(z; Δ) for `n` trunk feature maps: `[n, classes]`.
pub async fn predict(gpu: &Gpu, m: &Trained, z: &[f32], n: usize, batch: usize) -> Result<Vec<f32>> {
    let per = m.split.net.input.len();
    let mut out = Vec::new();
    for (start, b) in crate::batches(n, batch) {
        let zt = gpu.upload(&z[start * per..(start + b) * per])?;
        let f = gpu.run(|rec| {
            let (f0, fd) = m.split.net.jvp(rec, &m.theta0, &zt, b, &m.delta)?;
            let f = rec.gpu().zeros(f0.len)?;
            crate::gpu::kernels::elementwise::axpby(rec, 1.0, &f0, 1.0, &fd, &f)?;
            Ok(f)
        })?;
        out.extend(gpu.read(&f).await?);
    }
    Ok(out)
}

/// Fraction of rows of `logits` whose argmax is the label.
pub fn accuracy(logits: &[f32], labels: &[u32], classes: usize) -> f64 {
    let pred = crate::cpu::elementwise::argmax_rows(logits, classes);
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len().max(1) as f64
}

impl Trained {
    /// The model file of this training run.
    pub async fn to_model_file(&self, gpu: &Gpu, backbone: &Backbone, classes: &[String], settings: &Settings) -> Result<super::model_file::ModelFile> {
        let nconv = self.split.net.convs.len();
        Ok(super::model_file::ModelFile {
            backbone: backbone.arch(),
            weights_sha256: backbone.weights_sha256.clone(),
            classes: classes.to_vec(),
            settings: settings.clone(),
            classifier_weight0: gpu.read(&self.theta0.tensors[2 * nconv]).await?,
            classifier_bias0: gpu.read(&self.theta0.tensors[2 * nconv + 1]).await?,
            delta: self.delta.read(gpu).await?,
        })
    }

    /// Rebuild a trained model from its file on `backbone` (which must be the one it was trained on).
    pub fn from_model_file(gpu: &Gpu, backbone: &Backbone, m: &super::model_file::ModelFile) -> Result<Trained> {
        if m.backbone != backbone.arch() || m.weights_sha256 != backbone.weights_sha256 {
            return Err(Error::ModelFile(format!("trained on {} weights {}, not on the loaded {} weights {}", m.backbone.id(), m.weights_sha256, backbone.arch().id(), backbone.weights_sha256)));
        }
        let split = split(backbone, m.settings.depth, m.classes.len(), m.settings.alpha)?;
        if m.delta.iter().map(Vec::len).ne(split.net.param_lens()) || m.classifier_weight0.len() != split.net.features * split.net.classes {
            return Err(Error::ModelFile("parameter shapes do not match the backbone split".into()));
        }
        let theta0 = theta0(gpu, &split, &m.classifier_weight0, &m.classifier_bias0)?;
        let delta = ParamSet::upload(gpu, &m.delta)?;
        Ok(Trained { split, theta0, delta, steps: Vec::new() })
    }
}
