//! Explaining and forgetting, which the convex quadratic makes exact or cheap.
//!
//! Influence of training image j on the prediction for x (method.md, "Interpretability"):
//!
//!   I_j(x) = (1/N) J(x) H⁻¹ J_jᵀ r_j      (C numbers),  r_j = f_lin(x_j; Δ*) − κ e_{y_j}
//!
//! is the first-order change of f_lin(x) when j is REMOVED (Δ₋ⱼ ≈ Δ* + (1/N) H⁻¹ J_jᵀ r_j).
//! Per class c: u_c = H⁻¹ ∇_Δ f_c(x) (one backward pass from x, then CG on H, preconditioned by
//! K-FAC, or K-FAC alone), and I_{j,c} = (1/N) (J_j u_c)·r_j for every j from ONE batched JVP pass
//! over the training set with tangent u_c. A proponent of class c is an image whose removal
//! would lower f_c(x) (I_{j,c} < 0); an opponent, one whose removal would raise it.
//!
//! Forgetting image j re-solves the quadratic without it, warm-started at Δ*: for a convex
//! quadratic that equals training from scratch without j, in a few CG iterations.
use super::kfac::Kfac;
use super::params::ParamSet;
use super::solver::{Problem, Step};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};

/// Forgetting solves to this fraction of the training tolerance: CG's residual is relative to
/// the whole right-hand side, and one image's share of it is small, so at the training
/// tolerance a warm start could stop before it moved.
pub const FORGET_TOL_FACTOR: f64 = 0.1;

/// How H⁻¹ is applied to ∇f(x).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InverseHessian {
    /// The K-FAC inverse alone: one application, approximate.
    Kfac,
    /// Conjugate gradient (K-FAC-preconditioned when K-FAC is given) to this relative residual
    /// or iteration count.
    Cg { tol: f64, max_iter: usize },
}

/// Influence of every training image on one class score of one test image.
#[derive(Debug, Clone, PartialEq)]
pub struct Influence {
    pub class: usize,
    /// I_{j,class} for every training image j, in the problem's order.
    pub scores: Vec<f64>,
}

impl Influence {
    /// Training images whose removal would lower the class score most (most negative first).
    pub fn proponents(&self, k: usize) -> Vec<(usize, f64)> {
        self.ranked(k, false)
    }

    /// Training images whose removal would raise the class score most (most positive first).
    pub fn opponents(&self, k: usize) -> Vec<(usize, f64)> {
        self.ranked(k, true)
    }

    fn ranked(&self, k: usize, positive: bool) -> Vec<(usize, f64)> {
        let mut v: Vec<(usize, f64)> = self.scores.iter().copied().enumerate().filter(|(_, s)| if positive { *s > 0.0 } else { *s < 0.0 }).collect();
        v.sort_by(|a, b| if positive { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) });
        v.truncate(k);
        v
    }
}

/// Influences of the training set of `prob` (solved at `delta`) on classes `classes` of the
/// test image with trunk features `x` (one image).
pub async fn influence(gpu: &Gpu, prob: &Problem<'_>, delta: &ParamSet, kfac: Option<&Kfac>, x: &Tensor, classes: &[usize], inverse: InverseHessian) -> Result<Vec<Influence>> {
    let (net, c) = (prob.net, prob.net.classes);
    if x.len != net.input.len() {
        return Err(Error::InvalidArgument(format!("influence needs one image's features ({} values), got {}", net.input.len(), x.len)));
    }
    if let Some(&bad) = classes.iter().find(|&&k| k >= c) {
        return Err(Error::InvalidArgument(format!("class {bad} is not below the {c} classes")));
    }
    // Residuals r_j at Δ*, on the host (N×C numbers).
    let f = prob.predict(gpu, delta).await?;
    let labels = prob.labels(gpu).await?;
    let r: Vec<f64> = f.iter().enumerate().map(|(i, &v)| v as f64 - if labels[i / c] as usize == i % c { prob.kappa as f64 } else { 0.0 }).collect();
    let n = prob.len() as f64;
    let mut out = Vec::with_capacity(classes.len());
    for &class in classes {
        let mut e = vec![0.0f32; c];
        e[class] = 1.0;
        let e = gpu.upload(&e)?;
        let grad = ParamSet::zeros(gpu, &net.param_lens())?;
        gpu.run(|rec| net.vjp(rec, prob.theta0, x, 1, &e, &grad, 1.0, 0.0))?;
        let u = match (inverse, kfac) {
            (InverseHessian::Kfac, Some(k)) => {
                let u = ParamSet::zeros(gpu, &net.param_lens())?;
                gpu.run(|rec| k.apply(rec, &grad, &u))?;
                u
            }
            (InverseHessian::Kfac, None) => return Err(Error::InvalidArgument("influence with the K-FAC inverse needs the K-FAC factors".into())),
            (InverseHessian::Cg { tol, max_iter }, k) => prob.solve_linear(gpu, &grad, k, tol, max_iter).await?.0,
        };
        let mut scores = Vec::with_capacity(prob.len());
        let mut row = 0;
        for b in &prob.batches {
            let ju = gpu.run(|rec| Ok(net.jvp(rec, prob.theta0, &b.z(rec.gpu())?, b.n, &u)?.1))?;
            let ju = gpu.read(&ju).await?;
            for j in 0..b.n {
                let dot: f64 = (0..c).map(|k| ju[j * c + k] as f64 * r[(row + j) * c + k]).sum();
                scores.push(dot / n);
            }
            row += b.n;
        }
        out.push(Influence { class, scores });
    }
    Ok(out)
}

/// Remove training image `index` and re-solve warm-started at `delta`: returns the smaller
/// problem, its optimum and the CG steps it took.
pub async fn forget<'a>(gpu: &Gpu, prob: &Problem<'a>, delta: &ParamSet, kfac: Option<&Kfac>, index: usize, tol: f64, max_iter: usize) -> Result<(Problem<'a>, ParamSet, Vec<Step>)> {
    let smaller = prob.without(gpu, index)?;
    let (d, steps) = smaller.solve_cg(gpu, Some(delta), kfac, tol, max_iter, |_| {}).await?;
    Ok((smaller, d, steps))
}
