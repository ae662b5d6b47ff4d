//! The training problem and its full-batch solver.
//!
//! L(Δ) = 1/(2N) Σ_i ‖f0(x_i) + J_i Δ − κ e_{y_i}‖² + (λ/2)‖Δ‖²  is a convex quadratic with
//! Hessian H = (1/N) Σ J_iᵀJ_i + λI, constant in Δ. Its unique minimiser solves H Δ = b with
//! b = (1/N) Σ J_iᵀ(κ e_{y_i} − f0(x_i)). Conjugate gradient needs only products H·v: one JVP
//! pass with tangent v and one VJP pass per mini-batch, no learning rate.
use super::kfac::Kfac;
use super::linearized::LinearizedNet;
use super::params::ParamSet;
use crate::error::{Error, Result};
use crate::gpu::kernels::elementwise;
use crate::gpu::{Gpu, Tensor};

/// Training-set features in mini-batches, with labels and the primal outputs at θ0.
pub struct Batch {
    pub z: Tensor,
    pub n: usize,
    pub labels: Tensor,
    /// f0 = f_lin(z; 0), `[n, classes]`, computed once.
    pub f0: Tensor,
}

pub struct Problem<'a> {
    pub net: &'a LinearizedNet,
    pub theta0: &'a ParamSet,
    pub batches: Vec<Batch>,
    /// Target scale κ.
    pub kappa: f32,
    /// Weight decay λ toward θ0.
    pub lambda: f32,
}

/// One CG iteration's record, for progress reports and convergence checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub iteration: usize,
    /// ‖b − HΔ‖ / ‖b‖
    pub relative_residual: f64,
}

impl<'a> Problem<'a> {
    /// Build mini-batches from features `z` (`[n, h, w, c]` per image, host memory) and labels.
    pub async fn new(gpu: &Gpu, net: &'a LinearizedNet, theta0: &'a ParamSet, z: &[f32], labels: &[u32], batch: usize, kappa: f32, lambda: f32) -> Result<Problem<'a>> {
        let per = net.input.len();
        let n = labels.len();
        if z.len() != n * per || n == 0 {
            return Err(crate::error::shape_err("Problem::new", format!("{} feature values for {n} images of {per}", z.len())));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= net.classes) {
            return Err(Error::InvalidArgument(format!("label {bad} is not below the {} classes", net.classes)));
        }
        let mut batches = Vec::new();
        for (start, b) in crate::batches(n, batch) {
            let zt = gpu.upload(&z[start * per..(start + b) * per])?;
            let f0 = gpu.run(|rec| net.forward(rec, theta0, &zt, b))?;
            batches.push(Batch { z: zt, n: b, labels: gpu.upload_u32(&labels[start..start + b])?, f0 });
        }
        Ok(Problem { net, theta0, batches, kappa, lambda })
    }

    pub fn len(&self) -> usize {
        self.batches.iter().map(|b| b.n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// b = (1/N) Σ Jᵀ(κY − f0).
    pub fn rhs(&self, gpu: &Gpu) -> Result<ParamSet> {
        let out = ParamSet::zeros(gpu, &self.net.param_lens())?;
        let scale = -1.0 / self.len() as f32;
        gpu.run(|rec| {
            for (i, b) in self.batches.iter().enumerate() {
                let r = gpu.zeros(b.f0.len)?;
                elementwise::mse_residual(rec, &b.f0, &b.labels, self.net.classes, self.kappa, &r)?;
                self.net.vjp(rec, self.theta0, &b.z, b.n, &r, &out, scale, if i == 0 { 0.0 } else { 1.0 })?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// H·v = (1/N) Σ Jᵀ(J v) + λ v.
    pub fn hvp(&self, gpu: &Gpu, v: &ParamSet) -> Result<ParamSet> {
        let jtj = ParamSet::zeros(gpu, &self.net.param_lens())?;
        let out = ParamSet::zeros(gpu, &self.net.param_lens())?;
        let scale = 1.0 / self.len() as f32;
        gpu.run(|rec| {
            for (i, b) in self.batches.iter().enumerate() {
                let (_, jv) = self.net.jvp(rec, self.theta0, &b.z, b.n, v)?;
                self.net.vjp(rec, self.theta0, &b.z, b.n, &jv, &jtj, scale, if i == 0 { 0.0 } else { 1.0 })?;
            }
            ParamSet::axpby(rec, 1.0, &jtj, self.lambda, v, &out)
        })?;
        Ok(out)
    }

    /// L(Δ), accumulated in f64.
    pub async fn loss(&self, gpu: &Gpu, delta: &ParamSet) -> Result<f64> {
        let mut sq = 0.0;
        for b in &self.batches {
            let r = gpu.zeros(b.f0.len)?;
            gpu.run(|rec| {
                let (f0, jd) = self.net.jvp(rec, self.theta0, &b.z, b.n, delta)?;
                let f = gpu.zeros(f0.len)?;
                elementwise::axpby(rec, 1.0, &f0, 1.0, &jd, &f)?;
                elementwise::mse_residual(rec, &f, &b.labels, self.net.classes, self.kappa, &r)
            })?;
            sq += super::params::dot_sum(gpu, &[(&r, &r)]).await?;
        }
        let reg = ParamSet::dot(gpu, delta, delta).await?;
        Ok(sq / (2.0 * self.len() as f64) + 0.5 * self.lambda as f64 * reg)
    }

    /// Conjugate gradient from Δ = `start` (zeros if None), preconditioned by K-FAC when given,
    /// until ‖b − HΔ‖/‖b‖ ≤ `tol` or `max_iter` products; `on_step` sees every iteration.
    /// Stops with an error on NaN/Inf or non-positive curvature.
    #[allow(clippy::too_many_arguments)]
    pub async fn solve_cg(
        &self,
        gpu: &Gpu,
        start: Option<&ParamSet>,
        precond: Option<&Kfac>,
        tol: f64,
        max_iter: usize,
        mut on_step: impl FnMut(Step),
    ) -> Result<(ParamSet, Vec<Step>)> {
        let b = self.rhs(gpu)?;
        let bnorm = ParamSet::dot(gpu, &b, &b).await?.sqrt();
        let lens = self.net.param_lens();
        let mut x = match start {
            Some(s) => s.clone(),
            None => ParamSet::zeros(gpu, &lens)?,
        };
        let mut steps = Vec::new();
        if bnorm == 0.0 {
            return Ok((x, steps));
        }
        let mut r = match start {
            Some(s) => {
                let hx = self.hvp(gpu, s)?;
                let r = ParamSet::zeros(gpu, &lens)?;
                gpu.run(|rec| ParamSet::axpby(rec, 1.0, &b, -1.0, &hx, &r))?;
                r
            }
            None => b.clone(),
        };
        let precondition = |r: &ParamSet| -> Result<ParamSet> {
            match precond {
                Some(k) => {
                    let z = ParamSet::zeros(gpu, &lens)?;
                    gpu.run(|rec| k.apply(rec, r, &z))?;
                    Ok(z)
                }
                None => Ok(r.clone()),
            }
        };
        let mut z = precondition(&r)?;
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
            let step = rz / pap;
            let (x2, r2) = (ParamSet::zeros(gpu, &lens)?, ParamSet::zeros(gpu, &lens)?);
            gpu.run(|rec| {
                ParamSet::axpby(rec, 1.0, &x, step as f32, &p, &x2)?;
                ParamSet::axpby(rec, 1.0, &r, -step as f32, &ap, &r2)
            })?;
            (x, r) = (x2, r2);
            rnorm = ParamSet::dot(gpu, &r, &r).await?.sqrt();
            if !rnorm.is_finite() {
                return Err(Error::Diverged(format!("conjugate gradient: residual is {rnorm} at iteration {it}")));
            }
            let s = Step { iteration: it, relative_residual: rnorm / bnorm };
            on_step(s);
            steps.push(s);
            z = precondition(&r)?;
            let rz_new = ParamSet::dot(gpu, &r, &z).await?;
            let p2 = ParamSet::zeros(gpu, &lens)?;
            gpu.run(|rec| ParamSet::axpby(rec, 1.0, &z, (rz_new / rz) as f32, &p, &p2))?;
            p = p2;
            rz = rz_new;
        }
        Ok((x, steps))
    }
}
