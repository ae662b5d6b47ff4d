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
//! Forgetting image j solves for its share of the smaller problem's gradient at Δ* (a Newton
//! step): for a convex quadratic that equals training from scratch without j, in a few CG
//! iterations (see `forget`).
use super::kfac::Kfac;
use super::params::ParamSet;
use super::recycle::KrylovBasis;
use super::solver::{require_quadratic, Problem, Step};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};

/// How precisely forgetting removes the image's share of the gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ForgetTol {
    /// To this relative residual of the share (tests and exact comparisons).
    Share(f64),
    /// As the CLI and the page forget: until what is left of the share is at most a tenth of
    /// what training left unsolved (its relative residual at Δ*, or its tolerance if smaller),
    /// and at most a tenth of the share in any case. The forgotten model is then as close to
    /// its optimum as retraining to the model's tolerance would be, at a fraction of the cost.
    Model { cg_tol: f64 },
}

/// `ForgetTol::Model`: what is left of the share, relative to training's remainder…
pub const FORGET_SHARE_OF_REMAINDER: f64 = 0.1;
/// …and relative to the share itself, at most.
pub const FORGET_SHARE_MAX: f64 = 0.1;

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
pub async fn influence(
    gpu: &Gpu,
    prob: &Problem<'_>,
    delta: &ParamSet,
    kfac: Option<&Kfac>,
    x: &Tensor,
    classes: &[usize],
    inverse: InverseHessian,
) -> Result<Vec<Influence>> {
    require_quadratic(prob.loss, "explaining a prediction")?;
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

/// What forgetting did: the smaller problem, its solution, the CG steps of the correction and
/// the tolerance they were solved to (relative to the image's share); with a recycled basis,
/// the basis updated for the smaller problem (for the next removal).
pub struct Forgotten<'a> {
    pub problem: Problem<'a>,
    pub delta: ParamSet,
    pub steps: Vec<Step>,
    pub tol: f64,
    pub basis: Option<KrylovBasis>,
}

/// How forgetting's correction is solved.
#[derive(Clone, Copy)]
pub enum Correction<'b> {
    /// CG on the share, preconditioned by K-FAC when given.
    Cg(Option<&'b Kfac>),
    /// Deflated CG on the share with training's kept Krylov basis (`recycle`), unpreconditioned.
    Recycled(&'b KrylovBasis),
}

/// Remove training image `index` (j) from a model solved at `delta` (Δ*): one Newton step on
/// the smaller problem, solved by CG (K-FAC-preconditioned when given). The CLI (and the page without a kept basis)
/// pass no K-FAC: on the share, plain CG has never been slower where measured (26 against 66
/// iterations on 50 photos at λ = 0.5, 32 against 38 on 250, both at the cap at λ = 1e-3;
/// docs/RESULTS.md), and the CLI is spared recomputing the factors.
///
/// With L = (1/N)Σ ℓ_i, ℓ_i = ½‖f_lin(x_i) − κy_i‖² + ½λ‖Δ‖², the smaller problem's gradient at
/// Δ* is (N∇L(Δ*) − ∇ℓ_j(Δ*))/(N−1). Its first part is whatever training left unsolved; the
/// second is the image's share. Solving H'δ = ∇ℓ_j(Δ*)/(N−1) (one backward pass for the right
/// side, CG on H' from zero) removes exactly that share: Δ* + δ keeps the residual training
/// left (scaled by N/(N−1)), and when Δ* is the exact optimum, Δ* + δ is the exact optimum
/// without j. A warm start on the whole gradient would have to finish training's work too.
///
/// `Correction::Recycled` (the page, when training kept a basis) deflates that solve with the
/// directions training's CG explored, their H products updated exactly for the smaller
/// problem: on 50 photos at λ = 0.5, with 20 directions, 9 / 13 / 21 H products cut the image's
/// effect to 0.3 / 0.1 / 0.03, against 17 / 23 / 37 for plain CG on the share and 35 / 44 / 55
/// for retraining (docs/RESULTS.md).
pub async fn forget<'a>(
    gpu: &Gpu,
    prob: &Problem<'a>,
    delta: &ParamSet,
    correction: Correction<'_>,
    index: usize,
    tol: ForgetTol,
    max_iter: usize,
) -> Result<Forgotten<'a>> {
    forget_traced(gpu, prob, delta, correction, index, tol, max_iter, |_, _| {}).await
}

/// `forget`, with `on_iterate` seeing every iterate δ_k of the correction (the forgotten
/// model after k products is Δ* + δ_k).
#[allow(clippy::too_many_arguments)]
pub async fn forget_traced<'a>(
    gpu: &Gpu,
    prob: &Problem<'a>,
    delta: &ParamSet,
    correction: Correction<'_>,
    index: usize,
    tol: ForgetTol,
    max_iter: usize,
    on_iterate: impl FnMut(Step, &ParamSet),
) -> Result<Forgotten<'a>> {
    require_quadratic(prob.loss, "forgetting an image")?;
    let problem = prob.without(gpu, index)?;
    let (grad_j, _) = prob.only(gpu, index)?.gradient(gpu, delta).await?;
    let g = ParamSet::zeros(gpu, &prob.net.param_lens())?;
    gpu.run(|rec| ParamSet::axpby(rec, 1.0 / problem.len() as f32, &grad_j, 0.0, &grad_j, &g))?;
    let tol = match tol {
        ForgetTol::Share(t) => t,
        ForgetTol::Model { cg_tol } => {
            // Training's remainder ‖∇L(Δ*)‖ against the share ‖g‖, both relative to ‖∇L(0)‖.
            let (rest, b) = prob.gradient_norms(gpu, delta).await?;
            let remainder = (rest / b).max(cg_tol);
            let share = ParamSet::dot(gpu, &g, &g).await?.sqrt() / b;
            if share > 0.0 {
                (FORGET_SHARE_OF_REMAINDER * remainder / share).min(FORGET_SHARE_MAX)
            } else {
                FORGET_SHARE_MAX
            }
        }
    };
    let (step, steps, basis) = match correction {
        Correction::Cg(kfac) => {
            let (step, steps) = problem.solve_linear_traced(gpu, &g, kfac, tol, max_iter, on_iterate).await?;
            (step, steps, None)
        }
        Correction::Recycled(basis) => {
            let basis = basis.without(gpu, prob, index).await?;
            let (step, steps) = problem.solve_linear_deflated_traced(gpu, &g, &basis, tol, max_iter, on_iterate).await?;
            (step, steps, Some(basis))
        }
    };
    let out = ParamSet::zeros(gpu, &prob.net.param_lens())?;
    gpu.run(|rec| ParamSet::axpby(rec, 1.0, delta, 1.0, &step, &out))?;
    Ok(Forgotten { problem, delta: out, steps, tol, basis })
}
