//! The training problem and its two solvers.
//!
//! L(Δ) = 1/(2N) Σ_i ‖f0(x_i) + J_i Δ − κ e_{y_i}‖² + (λ/2)‖Δ‖²  is a convex quadratic with
//! Hessian H = (1/N) Σ J_iᵀJ_i + λI, constant in Δ. Its unique minimiser solves H Δ = b with
//! b = (1/N) Σ J_iᵀ(κ e_{y_i} − f0(x_i)) = −∇L(0).
//!
//! - `solve_cg`: preconditioned conjugate gradient, full batch (streamed over mini-batches); each
//!   iteration one product H·v = one JVP pass with tangent v and one VJP pass. No learning rate.
//! - `solve_sgd`: the paper's K-FAC-preconditioned SGD with momentum on mini-batches. With
//!   `variance_reduced` (the default) each epoch starts with a full gradient at a snapshot Δ̃ and
//!   every mini-batch step uses g_B(Δ) − g_B(Δ̃) + ∇L(Δ̃) = H_B(Δ − Δ̃) + ∇L(Δ̃) (SVRG): the same
//!   cost per step, and since the noise vanishes at the optimum, a constant learning rate reaches
//!   Δ* exactly whatever the rate, seed or batch order. Without it, plain mini-batch SGD ends in a
//!   neighbourhood of Δ* whose size grows with the learning rate. Under `LrScale::Curvature`
//!   the rate is a fraction of 1/ρ, ρ the stiffest preconditioned batch curvature measured by
//!   power iteration first (`curvature_scale`), because H is constant: one rate fits every
//!   data set.
//!
//! `Loss::CrossEntropy` (the paper's ablation) replaces the squared error by the softmax
//! cross-entropy of f_lin: L is still convex (the model is linear in Δ) but no longer quadratic,
//! so only SGD solves it (its control variate uses the true mini-batch gradients at Δ and Δ̃),
//! and CG, H·v, influence and forgetting refuse it.
//!
//! Both report ‖∇L(Δ)‖/‖∇L(0)‖ (for CG, its relative residual ‖b − HΔ‖/‖b‖) and the loss, and
//! both stop with `Error::Diverged` on NaN/Inf, non-positive curvature or a growing loss.
use super::kfac::Kfac;
use super::linearized::LinearizedNet;
use super::params::{dot_sum, ParamSet};
use super::recycle::KrylovBasis;
use crate::error::{Error, Result};
use crate::gpu::kernels::{elementwise, reduce};
use crate::gpu::{Gpu, Tensor};
use crate::rng::Rng;

/// A loss above this multiple of the starting loss is divergence (a convex quadratic's loss
/// only grows under a learning rate that is too large).
pub const DIVERGENCE_FACTOR: f64 = 10.0;

/// Trunk features kept on the GPU up to this many bytes; the batches beyond it stay in host
/// memory and are uploaded on every pass (slower, but 10 000 images fit a small GPU).
pub const GPU_FEATURE_BUDGET: u64 = 1 << 30;

/// Where a batch's trunk features live.
#[derive(Clone)]
enum Resident {
    Gpu(Tensor),
    Host(Vec<f32>),
}

/// Training-set features in mini-batches, with labels and the primal outputs at θ0.
#[derive(Clone)]
pub struct Batch {
    z: Resident,
    pub n: usize,
    pub labels: Tensor,
    /// f0 = f_lin(z; 0), `[n, classes]`, computed once.
    pub f0: Tensor,
}

impl Batch {
    /// The batch's trunk features on the GPU (uploaded now if they live on the host).
    pub fn z(&self, gpu: &Gpu) -> Result<Tensor> {
        match &self.z {
            Resident::Gpu(t) => Ok(t.clone()),
            Resident::Host(v) => gpu.upload(v),
        }
    }

    pub fn on_gpu(&self) -> bool {
        matches!(self.z, Resident::Gpu(_))
    }
}

pub struct Problem<'a> {
    pub net: &'a LinearizedNet,
    pub theta0: &'a ParamSet,
    pub batches: Vec<Batch>,
    /// Target scale κ (MSE only).
    pub kappa: f32,
    /// Weight decay λ toward θ0.
    pub lambda: f32,
    pub loss: Loss,
}

/// The data term ℓ(f, y) of the training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// ½‖f − κ e_y‖²: a quadratic problem (the project's method).
    #[default]
    Mse,
    /// −log softmax(f)_y: convex, not quadratic (SGD only; the paper's ablation).
    CrossEntropy,
}

impl Loss {
    pub fn parse(s: &str) -> Result<Loss> {
        match s.trim() {
            "mse" => Ok(Loss::Mse),
            "ce" | "cross-entropy" | "cross_entropy" => Ok(Loss::CrossEntropy),
            other => Err(Error::InvalidArgument(format!("loss {other:?}: mse or cross-entropy"))),
        }
    }
}

/// A batch's ∂ℓ/∂f and, under cross-entropy, its per-image losses (MSE's loss is ½‖r‖²).
struct Residual {
    r: Tensor,
    ce: Option<Tensor>,
}

/// Σ_i ℓ_i over the residuals of every batch, in one readback: ½Σ‖r‖² under MSE, the sum of
/// the kernel's per-image losses (⟨ℓ, 1⟩) under cross-entropy.
async fn data_loss(gpu: &Gpu, loss: Loss, parts: &[Residual]) -> Result<f64> {
    match loss {
        Loss::Mse => Ok(0.5 * dot_sum(gpu, &parts.iter().map(|p| (&p.r, &p.r)).collect::<Vec<_>>()).await?),
        Loss::CrossEntropy => {
            let rows: Vec<&Tensor> = parts.iter().filter_map(|p| p.ce.as_ref()).collect();
            let ones: Vec<Tensor> = rows.iter().map(|l| gpu.upload(&vec![1.0; l.len])).collect::<Result<_>>()?;
            dot_sum(gpu, &rows.into_iter().zip(&ones).collect::<Vec<_>>()).await
        }
    }
}

/// CG and everything built on H·v need the quadratic (MSE) problem.
pub fn require_quadratic(loss: Loss, what: &str) -> Result<()> {
    match loss {
        Loss::Mse => Ok(()),
        Loss::CrossEntropy => Err(Error::InvalidArgument(format!(
            "{what} needs the quadratic (MSE) problem; a cross-entropy model is trained with the SGD solver and cannot be explained or forgotten"
        ))),
    }
}

/// One solver iteration's record (a CG iteration or an SGD epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub iteration: usize,
    /// ‖∇L(Δ)‖ / ‖∇L(0)‖ = ‖b − HΔ‖ / ‖b‖
    pub relative_residual: f64,
    /// L(Δ)
    pub loss: f64,
}

/// How `Sgd::lr` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrScale {
    /// The step on the preconditioned gradient as given (1 would be the Newton step if K-FAC
    /// were exact). Model files written before the curvature scale existed were trained so.
    #[default]
    Absolute,
    /// A fraction of the stiffest direction's step: the step taken is lr/ρ with ρ the largest
    /// eigenvalue of M⁻¹H_B over the mini-batches (`Problem::curvature_scale`). Heavy-ball
    /// momentum μ is stable on a quadratic for lr < 2(1 + μ), so one rate works on every data set
    /// and backbone. Why it is needed: on MobileNetV2 K-FAC misjudges a few directions by 10³
    /// (docs/RESULTS.md), so absolute rates that work on one set diverge on the next.
    Curvature,
}

/// Power-iteration steps per mini-batch behind `LrScale::Curvature` (one batch H·v and one
/// preconditioner application each: the whole estimate costs about five SVRG epochs' passes).
pub const CURVATURE_ITERATIONS: usize = 10;

/// The paper's solver: K-FAC-preconditioned SGD with momentum.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sgd {
    /// Step size on the preconditioned gradient, read as `lr_scale` says.
    pub lr: f32,
    pub momentum: f32,
    /// Passes over the training set.
    pub epochs: usize,
    /// Seeds the order of the mini-batches in every epoch.
    pub seed: u64,
    /// SVRG control variate (see the module documentation).
    pub variance_reduced: bool,
    /// Absent from files written before it: those rates were absolute.
    #[serde(default)]
    pub lr_scale: LrScale,
}

impl Default for Sgd {
    fn default() -> Sgd {
        Sgd { lr: 1.0, momentum: 0.5, epochs: 30, seed: 0, variance_reduced: true, lr_scale: LrScale::Curvature }
    }
}

/// L(x) = L(0) − ½ xᵀ(b + r) for a CG iterate x with residual r = b − Hx, in one readback.
pub(crate) async fn cg_loss(gpu: &Gpu, loss0: f64, x: &ParamSet, b: &ParamSet, r: &ParamSet) -> Result<f64> {
    let pairs: Vec<(&Tensor, &Tensor)> = x.tensors.iter().zip(&b.tensors).chain(x.tensors.iter().zip(&r.tensors)).collect();
    Ok(loss0 - 0.5 * dot_sum(gpu, &pairs).await?)
}

fn check_loss(loss: f64, first: f64, what: &str, it: usize) -> Result<()> {
    if !loss.is_finite() || loss > DIVERGENCE_FACTOR * first.max(f64::MIN_POSITIVE) {
        return Err(Error::Diverged(format!("{what}: loss {loss:.4e} at iteration {it} (started at {first:.4e}); lower the learning rate")));
    }
    Ok(())
}

impl<'a> Problem<'a> {
    /// Build mini-batches from features `z` (`[n, h, w, c]` per image, host memory) and labels.
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        gpu: &Gpu,
        net: &'a LinearizedNet,
        theta0: &'a ParamSet,
        z: &[f32],
        labels: &[u32],
        batch: usize,
        kappa: f32,
        lambda: f32,
    ) -> Result<Problem<'a>> {
        Self::with_feature_budget(gpu, net, theta0, z, labels, batch, kappa, lambda, GPU_FEATURE_BUDGET).await
    }

    /// As `new`, keeping at most `budget` bytes of trunk features on the GPU.
    #[allow(clippy::too_many_arguments)]
    pub async fn with_feature_budget(
        gpu: &Gpu,
        net: &'a LinearizedNet,
        theta0: &'a ParamSet,
        z: &[f32],
        labels: &[u32],
        batch: usize,
        kappa: f32,
        lambda: f32,
        budget: u64,
    ) -> Result<Problem<'a>> {
        let per = net.input.len();
        let n = labels.len();
        if z.len() != n * per || n == 0 {
            return Err(crate::error::shape_err("Problem::new", format!("{} feature values for {n} images of {per}", z.len())));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= net.classes) {
            return Err(Error::InvalidArgument(format!("label {bad} is not below the {} classes", net.classes)));
        }
        let mut batches = Vec::new();
        let mut resident = 0u64;
        for (start, b) in crate::batches(n, net.fit_batch(gpu, batch)) {
            let host = &z[start * per..(start + b) * per];
            let zt = gpu.upload(host)?;
            let f0 = gpu.run(|rec| net.forward(rec, theta0, &zt, b))?;
            resident += zt.bytes();
            let z = if resident <= budget { Resident::Gpu(zt) } else { Resident::Host(host.to_vec()) };
            batches.push(Batch { z, n: b, labels: gpu.upload_u32(&labels[start..start + b])?, f0 });
        }
        Ok(Problem { net, theta0, batches, kappa, lambda, loss: Loss::Mse })
    }

    /// The same problem with data term `loss`.
    pub fn with_loss(mut self, loss: Loss) -> Problem<'a> {
        self.loss = loss;
        self
    }

    pub fn len(&self) -> usize {
        self.batches.iter().map(|b| b.n).sum()
    }

    /// The same problem without training image `index` (in batch order): the batch that holds
    /// it is rebuilt from GPU copies of its other rows, every other batch is shared as it is.
    pub fn without(&self, gpu: &Gpu, index: usize) -> Result<Problem<'a>> {
        if self.len() == 1 && index == 0 {
            return Err(Error::InvalidArgument("cannot remove the only training image".into()));
        }
        self.carve(gpu, index, false)
    }

    /// The one-image problem of training image `index` (its loss ℓ_j, with the same λ).
    pub fn only(&self, gpu: &Gpu, index: usize) -> Result<Problem<'a>> {
        self.carve(gpu, index, true)
    }

    /// Image `index` alone (`single`), or every image but it: GPU copies of rows of the batch
    /// that holds it; the other batches are shared (or dropped for `single`).
    fn carve(&self, gpu: &Gpu, index: usize, single: bool) -> Result<Problem<'a>> {
        if index >= self.len() {
            return Err(Error::InvalidArgument(format!("image {index} is not among the {} training images", self.len())));
        }
        let (per, c) = (self.net.input.len(), self.net.classes);
        let mut batches = Vec::with_capacity(self.batches.len());
        let mut first = 0;
        for b in &self.batches {
            if !(first..first + b.n).contains(&index) {
                if !single {
                    batches.push(b.clone());
                }
            } else if single || b.n > 1 {
                let k = index - first;
                // Rows kept: [k, k+1) alone, or [0, k) and [k+1, n).
                let ranges = if single { vec![(k, k + 1)] } else { vec![(0, k), (k + 1, b.n)] };
                let n: usize = ranges.iter().map(|(a, e)| e - a).sum();
                let keep = |rec: &mut crate::gpu::Recorder<'_>, src: &Tensor, width: usize| -> Result<Tensor> {
                    let dst = rec.gpu().zeros(n * width)?;
                    let mut at = 0;
                    for &(a, e) in &ranges {
                        rec.copy(src, a * width, &dst, at * width, (e - a) * width);
                        at += e - a;
                    }
                    Ok(dst)
                };
                let (z, f0, labels) = gpu.run(|rec| {
                    let z = match &b.z {
                        Resident::Gpu(t) => Resident::Gpu(keep(rec, t, per)?),
                        Resident::Host(v) => Resident::Host(ranges.iter().flat_map(|&(a, e)| v[a * per..e * per].iter().copied()).collect()),
                    };
                    Ok((z, keep(rec, &b.f0, c)?, keep(rec, &b.labels, 1)?))
                })?;
                batches.push(Batch { z, n, labels, f0 });
            }
            first += b.n;
        }
        Ok(Problem { net: self.net, theta0: self.theta0, batches, kappa: self.kappa, lambda: self.lambda, loss: self.loss })
    }

    /// Labels of every image, in order.
    pub async fn labels(&self, gpu: &Gpu) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(self.len());
        for b in &self.batches {
            out.extend(gpu.read_u32(&b.labels).await?);
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn zeros(&self, gpu: &Gpu) -> Result<ParamSet> {
        ParamSet::zeros(gpu, &self.net.param_lens())
    }

    /// The residual ∂ℓ/∂f of batch `b` with features `z` at Δ = x (x = 0 when None: the cached
    /// f0, no pass): f_lin − κY under MSE, softmax(f_lin) − Y under cross-entropy.
    fn residual(&self, rec: &mut crate::gpu::Recorder<'_>, b: &Batch, z: &Tensor, x: Option<&ParamSet>) -> Result<Residual> {
        let f = match x {
            Some(x) => self.net.f_lin(rec, self.theta0, z, b.n, x)?,
            None => b.f0.clone(),
        };
        let r = rec.gpu().zeros(b.f0.len)?;
        match self.loss {
            Loss::Mse => {
                elementwise::mse_residual(rec, &f, &b.labels, self.net.classes, self.kappa, &r)?;
                Ok(Residual { r, ce: None })
            }
            Loss::CrossEntropy => {
                let ce = rec.gpu().zeros(b.n)?;
                reduce::softmax_cross_entropy(rec, &f, &b.labels, b.n, self.net.classes, &r, &ce)?;
                Ok(Residual { r, ce: Some(ce) })
            }
        }
    }

    /// `scale · Σ_B J_Bᵀ r_B` with residuals at Δ = x (x = 0 when None), Σ_i ℓ_i, and the
    /// residuals themselves (per batch).
    async fn residual_vjp(&self, gpu: &Gpu, x: Option<&ParamSet>, scale: f32) -> Result<(ParamSet, f64, Vec<Tensor>)> {
        let out = self.zeros(gpu)?;
        let mut residuals = Vec::with_capacity(self.batches.len());
        gpu.run(|rec| {
            for (i, b) in self.batches.iter().enumerate() {
                let z = b.z(rec.gpu())?;
                let r = self.residual(rec, b, &z, x)?;
                self.net.vjp(rec, self.theta0, &z, b.n, &r.r, &out, scale, if i == 0 { 0.0 } else { 1.0 })?;
                residuals.push(r);
            }
            Ok(())
        })?;
        let sum = data_loss(gpu, self.loss, &residuals).await?;
        Ok((out, sum, residuals.into_iter().map(|r| r.r).collect()))
    }

    /// b = (1/N) Σ Jᵀ(κY − f0) = −∇L(0), and L(0).
    pub async fn rhs(&self, gpu: &Gpu) -> Result<(ParamSet, f64)> {
        let (b, sum, _) = self.residual_vjp(gpu, None, -1.0 / self.len() as f32).await?;
        Ok((b, sum / self.len() as f64))
    }

    /// ∇L(x) and L(x) in one pass over the data.
    pub async fn gradient(&self, gpu: &Gpu, x: &ParamSet) -> Result<(ParamSet, f64)> {
        let (g, loss, _) = self.gradient_and_residuals(gpu, x).await?;
        Ok((g, loss))
    }

    /// ∇L(x), L(x), and every batch's residual at x (SGD's control variate under cross-entropy).
    async fn gradient_and_residuals(&self, gpu: &Gpu, x: &ParamSet) -> Result<(ParamSet, f64, Vec<Tensor>)> {
        let n = self.len() as f64;
        let (jtr, sum, residuals) = self.residual_vjp(gpu, Some(x), 1.0 / n as f32).await?;
        let g = self.zeros(gpu)?;
        gpu.run(|rec| ParamSet::axpby(rec, 1.0, &jtr, self.lambda, x, &g))?;
        let reg = ParamSet::dot(gpu, x, x).await?;
        Ok((g, sum / n + 0.5 * self.lambda as f64 * reg, residuals))
    }

    /// (‖∇L(x)‖, ‖∇L(0)‖): their ratio is the relative residual the solvers report (two passes).
    pub async fn gradient_norms(&self, gpu: &Gpu, x: &ParamSet) -> Result<(f64, f64)> {
        let (g, _) = self.gradient(gpu, x).await?;
        let (b, _) = self.rhs(gpu).await?;
        Ok((ParamSet::dot(gpu, &g, &g).await?.sqrt(), ParamSet::dot(gpu, &b, &b).await?.sqrt()))
    }

    /// H·v = (1/N) Σ Jᵀ(J v) + λ v (the MSE problem's Hessian).
    pub fn hvp(&self, gpu: &Gpu, v: &ParamSet) -> Result<ParamSet> {
        require_quadratic(self.loss, "H·v")?;
        self.gauss_newton(gpu, &self.batches, self.len(), v)
    }

    /// (1/n) Σ_{batches} Jᵀ(J v) + λ v: the MSE Gauss-Newton matrix of `batches` (n images).
    fn gauss_newton(&self, gpu: &Gpu, batches: &[Batch], n: usize, v: &ParamSet) -> Result<ParamSet> {
        let jtj = self.zeros(gpu)?;
        let out = self.zeros(gpu)?;
        let scale = 1.0 / n as f32;
        gpu.run(|rec| {
            for (i, b) in batches.iter().enumerate() {
                let z = b.z(rec.gpu())?;
                let (_, jv) = self.net.jvp(rec, self.theta0, &z, b.n, v)?;
                self.net.vjp(rec, self.theta0, &z, b.n, &jv, &jtj, scale, if i == 0 { 0.0 } else { 1.0 })?;
            }
            ParamSet::axpby(rec, 1.0, &jtj, self.lambda, v, &out)
        })?;
        Ok(out)
    }

    /// ρ = max over the mini-batches B of the largest eigenvalue of M⁻¹H_B (M the
    /// preconditioner, I without one; H_B = (1/|B|) J_BᵀJ_B + λI), by `iterations` steps of
    /// power iteration per batch from a random start drawn with `seed`. Each step's estimate is
    /// the Rayleigh quotient of the pencil (H_B, M) at w = M⁻¹H_B v, wᵀH_Bw / wᵀH_Bv (since
    /// Mw = H_Bv), so the estimate never exceeds the eigenvalue and rises towards it. Under
    /// cross-entropy the same MSE matrix is used: its output Hessian I bounds diag(p) − ppᵀ, so
    /// ρ bounds the cross-entropy curvature at every Δ.
    pub async fn curvature_scale(&self, gpu: &Gpu, precond: Option<&Kfac>, iterations: usize, seed: u64) -> Result<f64> {
        let mut rng = Rng::new(seed);
        let lens = self.net.param_lens();
        let mut rho = 0.0f64;
        for b in &self.batches {
            let one = std::slice::from_ref(b);
            let v = ParamSet::upload(gpu, &lens.iter().map(|&n| rng.vec_f32(n)).collect::<Vec<_>>())?;
            let mut hv = self.gauss_newton(gpu, one, b.n, &v)?;
            for _ in 0..iterations.max(1) {
                let w = self.precondition(gpu, precond, &hv)?;
                let hw = self.gauss_newton(gpu, one, b.n, &w)?;
                // wᵀH_Bw, wᵀH_Bv and wᵀw in one readback.
                let d = ParamSet::dots(gpu, &[&hw, &hv, &w], &w).await?;
                let (whw, whv, ww) = (d[0], d[1], d[2]);
                if !(whw.is_finite() && whv.is_finite()) {
                    return Err(Error::Diverged(format!("curvature estimate: wᵀHw = {whw}, wᵀHv = {whv}")));
                }
                if whv <= 0.0 {
                    // No curvature along anything this batch reaches (λ = 0 and zero features).
                    break;
                }
                rho = rho.max(whw / whv);
                // Next v = w/‖w‖, and H_B v by linearity.
                let s = (1.0 / ww.sqrt()) as f32;
                let hv2 = self.zeros(gpu)?;
                gpu.run(|rec| ParamSet::axpby(rec, s, &hw, 0.0, &hw, &hv2))?;
                hv = hv2;
            }
        }
        Ok(rho)
    }

    /// L(Δ), accumulated in f64: one JVP pass, no backward pass.
    pub async fn loss(&self, gpu: &Gpu, delta: &ParamSet) -> Result<f64> {
        let mut residuals = Vec::with_capacity(self.batches.len());
        gpu.run(|rec| {
            for b in &self.batches {
                residuals.push(self.residual(rec, b, &b.z(rec.gpu())?, Some(delta))?);
            }
            Ok(())
        })?;
        let sum = data_loss(gpu, self.loss, &residuals).await?;
        Ok(sum / self.len() as f64 + 0.5 * self.lambda as f64 * ParamSet::dot(gpu, delta, delta).await?)
    }

    /// f_lin(z; Δ) for every image, in order: `[N, classes]`.
    pub async fn predict(&self, gpu: &Gpu, delta: &ParamSet) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.len() * self.net.classes);
        for b in &self.batches {
            let f = gpu.run(|rec| self.net.f_lin(rec, self.theta0, &b.z(rec.gpu())?, b.n, delta))?;
            out.extend(gpu.read(&f).await?);
        }
        Ok(out)
    }

    /// The solvers' first iterate: `start`, or Δ = 0.
    fn start(&self, gpu: &Gpu, start: Option<&ParamSet>) -> Result<ParamSet> {
        match start {
            Some(s) => Ok(s.clone()),
            None => self.zeros(gpu),
        }
    }

    fn precondition(&self, gpu: &Gpu, precond: Option<&Kfac>, r: &ParamSet) -> Result<ParamSet> {
        match precond {
            Some(k) => {
                let z = self.zeros(gpu)?;
                gpu.run(|rec| k.apply(rec, r, &z))?;
                Ok(z)
            }
            None => Ok(r.clone()),
        }
    }

    /// Conjugate gradient from Δ = `start` (zeros if None), preconditioned by K-FAC when given,
    /// until ‖b − HΔ‖/‖b‖ ≤ `tol` or `max_iter` products; `on_step` sees every iteration.
    /// The loss costs nothing extra: L(x) = L(0) − ½ xᵀ(b + r) with r = b − Hx.
    #[allow(clippy::too_many_arguments)]
    pub async fn solve_cg(
        &self,
        gpu: &Gpu,
        start: Option<&ParamSet>,
        precond: Option<&Kfac>,
        tol: f64,
        max_iter: usize,
        on_step: impl FnMut(Step),
    ) -> Result<(ParamSet, Vec<Step>)> {
        let (x, steps, _) = self.solve_cg_keeping(gpu, start, precond, tol, max_iter, 0, on_step).await?;
        Ok((x, steps))
    }

    /// `solve_cg`, keeping the first `keep` directions with their H products for forgetting
    /// (`recycle`: the basis costs 2·keep parameter vectors of GPU memory).
    #[allow(clippy::too_many_arguments)]
    pub async fn solve_cg_keeping(
        &self,
        gpu: &Gpu,
        start: Option<&ParamSet>,
        precond: Option<&Kfac>,
        tol: f64,
        max_iter: usize,
        keep: usize,
        mut on_step: impl FnMut(Step),
    ) -> Result<(ParamSet, Vec<Step>, KrylovBasis)> {
        require_quadratic(self.loss, "the conjugate-gradient solver")?;
        let (b, loss0) = self.rhs(gpu).await?;
        let mut basis = KrylovBasis::with_capacity(keep);
        let (x, steps) = self.cg(gpu, &b, loss0, start, precond, tol, max_iter, Some(&mut basis), |s, _| on_step(s)).await?;
        Ok((x, steps, basis))
    }

    /// x = H⁻¹·b for any right-hand side b (influence needs H⁻¹∇f(x)), by the same CG.
    pub async fn solve_linear(&self, gpu: &Gpu, b: &ParamSet, precond: Option<&Kfac>, tol: f64, max_iter: usize) -> Result<(ParamSet, Vec<Step>)> {
        self.solve_linear_traced(gpu, b, precond, tol, max_iter, |_, _| {}).await
    }

    /// `solve_linear`, with `on_iterate` seeing every iterate (diagnostics measure each one's
    /// distance to a reference; the sets are never written after they are handed out).
    pub async fn solve_linear_traced(
        &self,
        gpu: &Gpu,
        b: &ParamSet,
        precond: Option<&Kfac>,
        tol: f64,
        max_iter: usize,
        on_iterate: impl FnMut(Step, &ParamSet),
    ) -> Result<(ParamSet, Vec<Step>)> {
        self.cg(gpu, b, 0.0, None, precond, tol, max_iter, None, on_iterate).await
    }

    /// CG on H x = b; `loss0` offsets the reported quadratic ½xᵀHx − bᵀx (L(0) for training).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn cg(
        &self,
        gpu: &Gpu,
        b: &ParamSet,
        loss0: f64,
        start: Option<&ParamSet>,
        precond: Option<&Kfac>,
        tol: f64,
        max_iter: usize,
        mut keep: Option<&mut KrylovBasis>,
        mut on_step: impl FnMut(Step, &ParamSet),
    ) -> Result<(ParamSet, Vec<Step>)> {
        require_quadratic(self.loss, "the conjugate-gradient solver")?;
        let bnorm = ParamSet::dot(gpu, b, b).await?.sqrt();
        let mut x = self.start(gpu, start)?;
        let mut steps = Vec::new();
        if bnorm == 0.0 {
            return Ok((x, steps));
        }
        let mut r = match start {
            Some(s) => {
                let hx = self.hvp(gpu, s)?;
                let r = self.zeros(gpu)?;
                gpu.run(|rec| ParamSet::axpby(rec, 1.0, b, -1.0, &hx, &r))?;
                r
            }
            None => b.clone(),
        };
        let first = cg_loss(gpu, loss0, &x, b, &r).await?;
        let mut z = self.precondition(gpu, precond, &r)?;
        let mut p = z.clone();
        let mut rz = ParamSet::dot(gpu, &r, &z).await?;
        let mut rnorm = ParamSet::dot(gpu, &r, &r).await?.sqrt();
        for it in 1..=max_iter {
            if rnorm / bnorm <= tol {
                break;
            }
            let ap = self.hvp(gpu, &p)?;
            let pap = ParamSet::dot(gpu, &p, &ap).await?;
            if !pap.is_finite() || pap <= 0.0 {
                return Err(Error::Diverged(format!("conjugate gradient: curvature pᵀHp = {pap} at iteration {it}")));
            }
            if let Some(k) = keep.as_deref_mut() {
                k.push(&p, &ap);
            }
            let step = rz / pap;
            let (x2, r2) = (self.zeros(gpu)?, self.zeros(gpu)?);
            gpu.run(|rec| {
                ParamSet::axpby(rec, 1.0, &x, step as f32, &p, &x2)?;
                ParamSet::axpby(rec, 1.0, &r, -step as f32, &ap, &r2)
            })?;
            (x, r) = (x2, r2);
            rnorm = ParamSet::dot(gpu, &r, &r).await?.sqrt();
            let loss = cg_loss(gpu, loss0, &x, b, &r).await?;
            if !rnorm.is_finite() {
                return Err(Error::Diverged(format!("conjugate gradient: residual is {rnorm} at iteration {it}")));
            }
            check_loss(loss, first, "conjugate gradient", it)?;
            let s = Step { iteration: it, relative_residual: rnorm / bnorm, loss };
            on_step(s, &x);
            steps.push(s);
            z = self.precondition(gpu, precond, &r)?;
            let rz_new = ParamSet::dot(gpu, &r, &z).await?;
            let p2 = self.zeros(gpu)?;
            gpu.run(|rec| ParamSet::axpby(rec, 1.0, &z, (rz_new / rz) as f32, &p, &p2))?;
            p = p2;
            rz = rz_new;
        }
        Ok((x, steps))
    }

    /// K-FAC-preconditioned SGD with momentum over the mini-batches, in a seeded order each
    /// epoch: v ← μv + M⁻¹g_B, Δ ← Δ − ηv. Stops when ‖∇L‖/‖∇L(0)‖ ≤ `tol` (checked with the
    /// full gradient at the start of every epoch) or after `sgd.epochs` epochs.
    pub async fn solve_sgd(
        &self,
        gpu: &Gpu,
        start: Option<&ParamSet>,
        precond: Option<&Kfac>,
        sgd: &Sgd,
        tol: f64,
        mut on_step: impl FnMut(Step),
    ) -> Result<(ParamSet, Vec<Step>)> {
        if !(sgd.lr > 0.0 && sgd.lr.is_finite() && (0.0..1.0).contains(&sgd.momentum)) {
            return Err(Error::InvalidArgument(format!("SGD needs a positive learning rate and momentum in [0, 1), got {} and {}", sgd.lr, sgd.momentum)));
        }
        // ‖b‖ = ‖∇L(0)‖: from Δ = 0 the first full gradient below is −b itself, so only a
        // warm start needs its own pass.
        let given_bnorm = match start {
            Some(_) => {
                let (b, _) = self.rhs(gpu).await?;
                Some(ParamSet::dot(gpu, &b, &b).await?.sqrt())
            }
            None => None,
        };
        let lr = match sgd.lr_scale {
            LrScale::Absolute => sgd.lr,
            LrScale::Curvature => {
                let rho = self.curvature_scale(gpu, precond, CURVATURE_ITERATIONS, sgd.seed).await?;
                // No curvature anywhere (nothing to learn): the rate as given.
                if rho > 0.0 {
                    (sgd.lr as f64 / rho) as f32
                } else {
                    sgd.lr
                }
            }
        };
        let mut x = self.start(gpu, start)?;
        let mut steps = Vec::new();
        let mut v = self.zeros(gpu)?;
        let mut rng = Rng::new(sgd.seed);
        let (mut bnorm, mut first) = (0.0, 0.0);
        for epoch in 0..=sgd.epochs {
            // The full gradient at the snapshot: the stopping test, the loss, and SVRG's anchor.
            let (full, loss, anchor) = self.gradient_and_residuals(gpu, &x).await?;
            let gnorm = ParamSet::dot(gpu, &full, &full).await?.sqrt();
            if epoch == 0 {
                bnorm = given_bnorm.unwrap_or(gnorm);
                if bnorm == 0.0 {
                    return Ok((x, steps));
                }
                first = loss;
            }
            let rel = gnorm / bnorm;
            if epoch > 0 {
                let s = Step { iteration: epoch, relative_residual: rel, loss };
                on_step(s);
                steps.push(s);
            }
            check_loss(loss, first, "SGD", epoch)?;
            if !rel.is_finite() {
                return Err(Error::Diverged(format!("SGD: gradient norm is {rel} at epoch {epoch}")));
            }
            if rel <= tol || epoch == sgd.epochs {
                break;
            }
            let snapshot = x.clone();
            let mut order: Vec<usize> = (0..self.batches.len()).collect();
            rng.shuffle(&mut order);
            for &bi in &order {
                let bt = &self.batches[bi];
                let g = self.zeros(gpu)?;
                let scale = 1.0 / bt.n as f32;
                gpu.run(|rec| {
                    let gpu = rec.gpu();
                    let z = bt.z(gpu)?;
                    if sgd.variance_reduced {
                        // g = (1/|B|) J_Bᵀ(r_B(x) − r_B(x̃)) + λ(x − x̃) + ∇L(x̃). Under MSE the
                        // residuals' difference is J_B(x − x̃) (one JVP pass, so g = H_B(x − x̃)
                        // + ∇L(x̃)); under cross-entropy it is taken from the residual at x and
                        // the one the full pass kept at the snapshot x̃.
                        let d = self.zeros(gpu)?;
                        ParamSet::axpby(rec, 1.0, &x, -1.0, &snapshot, &d)?;
                        let dr = match self.loss {
                            Loss::Mse => self.net.jvp(rec, self.theta0, &z, bt.n, &d)?.1,
                            Loss::CrossEntropy => {
                                let r = self.residual(rec, bt, &z, Some(&x))?;
                                let dr = gpu.zeros(r.r.len)?;
                                elementwise::axpby(rec, 1.0, &r.r, -1.0, &anchor[bi], &dr)?;
                                dr
                            }
                        };
                        let jtr = self.zeros(gpu)?;
                        self.net.vjp(rec, self.theta0, &z, bt.n, &dr, &jtr, scale, 0.0)?;
                        let t = self.zeros(gpu)?;
                        ParamSet::axpby(rec, 1.0, &jtr, self.lambda, &d, &t)?;
                        ParamSet::axpby(rec, 1.0, &t, 1.0, &full, &g)
                    } else {
                        // g = (1/|B|) J_Bᵀ r_B(x) + λx
                        let r = self.residual(rec, bt, &z, Some(&x))?;
                        let jtr = self.zeros(gpu)?;
                        self.net.vjp(rec, self.theta0, &z, bt.n, &r.r, &jtr, scale, 0.0)?;
                        ParamSet::axpby(rec, 1.0, &jtr, self.lambda, &x, &g)
                    }
                })?;
                let d = self.precondition(gpu, precond, &g)?;
                let (v2, x2) = (self.zeros(gpu)?, self.zeros(gpu)?);
                gpu.run(|rec| {
                    ParamSet::axpby(rec, sgd.momentum, &v, 1.0, &d, &v2)?;
                    ParamSet::axpby(rec, 1.0, &x, -lr, &v2, &x2)
                })?;
                (v, x) = (v2, x2);
            }
        }
        Ok((x, steps))
    }
}
