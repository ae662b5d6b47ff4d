//! The baseline LQF is measured against: standard non-linear fine-tuning of the same trainable
//! blocks with cross-entropy and SGD with momentum. Forward and backward run at the current
//! weights θ (the same kernels as LQF's passes, which take the point to evaluate at), and the
//! weights are updated on the GPU: v ← μv + ∇CE + wd·θ, θ ← θ − ηv.
use super::linearized::LinearizedNet;
use super::params::ParamSet;
use super::progress::{OnProgress, Phase, Progress};
use super::solver::DIVERGENCE_FACTOR;
use crate::error::{Error, Result};
use crate::gpu::kernels::{elementwise, reduce};
use crate::gpu::Gpu;
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Finetune {
    pub lr: f32,
    pub momentum: f32,
    pub epochs: usize,
    /// Weight decay (toward zero, as in PyTorch's SGD).
    pub weight_decay: f32,
    /// Seeds the shuffling of images into mini-batches.
    pub seed: u64,
}

impl Default for Finetune {
    fn default() -> Finetune {
        Finetune { lr: 0.01, momentum: 0.9, epochs: 30, weight_decay: 1e-4, seed: 0 }
    }
}

/// θ = θ0 + Δ as fresh tensors (θ0's convolution weights are the backbone's own buffers).
pub fn add(gpu: &Gpu, theta0: &ParamSet, delta: &ParamSet) -> Result<ParamSet> {
    let out = ParamSet::zeros(gpu, &theta0.lens())?;
    gpu.run(|rec| ParamSet::axpby(rec, 1.0, theta0, 1.0, delta, &out))?;
    Ok(out)
}

/// One SGD step on images `z` (`batch` of them) with `labels` at θ: returns (θ', v', mean CE).
/// The mini-batch's mean gradient is accumulated over as many passes as the adapter needs
/// (`LinearizedNet::fit_batch`), so the batch size stays the optimiser's setting.
#[allow(clippy::too_many_arguments)]
pub async fn step(
    gpu: &Gpu,
    net: &LinearizedNet,
    theta: &ParamSet,
    v: &ParamSet,
    z: &[f32],
    labels: &[u32],
    ft: &Finetune,
) -> Result<(ParamSet, ParamSet, f64)> {
    let b = labels.len();
    let (per, lens) = (net.input.len(), net.param_lens());
    let (grad, v2, theta2) = (ParamSet::zeros(gpu, &lens)?, ParamSet::zeros(gpu, &lens)?, ParamSet::zeros(gpu, &lens)?);
    let mut logits = Vec::with_capacity(b * net.classes);
    for (start, n) in crate::batches(b, net.fit_batch(gpu, b)) {
        let (zt, lt) = (gpu.upload(&z[start * per..(start + n) * per])?, gpu.upload_u32(&labels[start..start + n])?);
        let f = gpu.run(|rec| {
            let f = net.forward(rec, theta, &zt, n)?;
            let (p, g) = (rec.gpu().zeros(f.len)?, rec.gpu().zeros(f.len)?);
            // ∂CE/∂f = softmax(f) − onehot(y), averaged over the whole mini-batch.
            reduce::softmax_rows(rec, &f, n, net.classes, &p)?;
            elementwise::mse_residual(rec, &p, &lt, net.classes, 1.0, &g)?;
            net.vjp(rec, theta, &zt, n, &g, &grad, 1.0 / b as f32, if start == 0 { 0.0 } else { 1.0 })?;
            Ok(f)
        })?;
        logits.extend(gpu.read(&f).await?);
    }
    gpu.run(|rec| {
        let t = ParamSet::zeros(rec.gpu(), &lens)?;
        ParamSet::axpby(rec, 1.0, &grad, ft.weight_decay, theta, &t)?;
        ParamSet::axpby(rec, ft.momentum, v, 1.0, &t, &v2)?;
        ParamSet::axpby(rec, 1.0, theta, -ft.lr, &v2, &theta2)
    })?;
    let ce = super::probe::cross_entropy(&logits, labels, net.classes);
    Ok((theta2, v2, ce))
}

/// Fine-tune from θ0 on trunk features `z` (`[n, …]`, host) and returns Δ = θ − θ0.
#[allow(clippy::too_many_arguments)]
pub async fn finetune(
    gpu: &Gpu,
    net: &LinearizedNet,
    theta0: &ParamSet,
    z: &[f32],
    labels: &[u32],
    batch: usize,
    ft: &Finetune,
    progress: OnProgress<'_>,
) -> Result<ParamSet> {
    let n = labels.len();
    let per = net.input.len();
    if n == 0 || z.len() != n * per {
        return Err(Error::InvalidArgument(format!("{} feature values for {n} images of {per}", z.len())));
    }
    if !(ft.lr > 0.0 && ft.lr.is_finite() && (0.0..1.0).contains(&ft.momentum)) {
        return Err(Error::InvalidArgument(format!("fine-tuning needs a positive learning rate and momentum in [0, 1), got {} and {}", ft.lr, ft.momentum)));
    }
    let mut theta = add(gpu, theta0, &ParamSet::zeros(gpu, &theta0.lens())?)?;
    let mut v = ParamSet::zeros(gpu, &theta0.lens())?;
    let mut rng = Rng::new(ft.seed);
    let mut first = None;
    for epoch in 1..=ft.epochs {
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let mut total = 0.0;
        for (start, b) in crate::batches(n, batch) {
            let idx = &order[start..start + b];
            let (zb, lb) = super::train::gather(z, labels, idx, per);
            let (t2, v2, ce) = step(gpu, net, &theta, &v, &zb, &lb, ft).await?;
            if !ce.is_finite() {
                return Err(Error::Diverged(format!("fine-tuning: cross-entropy is {ce} in epoch {epoch}; lower the learning rate")));
            }
            (theta, v) = (t2, v2);
            total += ce * b as f64;
        }
        let loss = total / n as f64;
        let first = *first.get_or_insert(loss);
        if !loss.is_finite() || loss > DIVERGENCE_FACTOR * first {
            return Err(Error::Diverged(format!("fine-tuning: cross-entropy {loss:.4e} in epoch {epoch} (first epoch {first:.4e}); lower the learning rate")));
        }
        progress(Progress { loss: Some(loss), ..Progress::new(Phase::Solve, epoch, ft.epochs) });
    }
    let delta = ParamSet::zeros(gpu, &theta0.lens())?;
    gpu.run(|rec| ParamSet::axpby(rec, 1.0, &theta, -1.0, theta0, &delta))?;
    Ok(delta)
}
