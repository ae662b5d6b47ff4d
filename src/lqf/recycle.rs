//! Krylov recycling for forgetting. Training's CG explores directions p_i and computes H·p_i;
//! kept, they deflate the correction solve of `influence::forget` (Saad, Yeung, Erhel &
//! Guyomarc'h, "A deflated version of the conjugate gradient algorithm", SIAM J. Sci. Comput.
//! 21, 2000): a Galerkin start on their span, then CG directions kept H'-orthogonal to it, so
//! the part of the spectrum training already resolved no longer slows the correction.
//!
//! Removing image j changes the Hessian by known terms, H' = a·H + c·I − J_jᵀJ_j/(N−1) with
//! a = N/(N−1), c = −λ/(N−1), so H'·P follows from H·P with one JVP and one VJP of the one
//! image per direction: the basis stays exact for the smaller problem, and for the next
//! removal after it.
use super::params::ParamSet;
use super::solver::{cg_loss, require_quadratic, Problem, Step};
use crate::cpu::linalg::symmetric_eigen;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Eigenvalues of the Galerkin matrix below this fraction of its largest belong to directions
/// f32 arithmetic has made (nearly) dependent; the pseudo-inverse drops them.
pub const GALERKIN_CUTOFF: f64 = 1e-6;
/// The deflated solver corrects in span(P) once, then hands over to plain CG, when its energy
/// ½xᵀHx − bᵀx (which CG lowers at every step in exact arithmetic; its residual norm need
/// not fall) has not reached a new minimum for this many products: f32 has worn the
/// deflation out.
pub const STALL_ITERATIONS: usize = 3;

/// Directions P and H·P for the problem they were built on.
#[derive(Clone, Default)]
pub struct KrylovBasis {
    p: Vec<ParamSet>,
    hp: Vec<ParamSet>,
    cap: usize,
}

impl KrylovBasis {
    /// An empty basis that keeps at most `cap` directions (the first ones: CG resolves the
    /// extreme eigenvalues first, and later directions add little but memory).
    pub fn with_capacity(cap: usize) -> KrylovBasis {
        KrylovBasis { p: Vec::new(), hp: Vec::new(), cap }
    }

    pub fn len(&self) -> usize {
        self.p.len()
    }

    pub fn is_empty(&self) -> bool {
        self.p.is_empty()
    }

    /// The first `k` directions only.
    pub fn first(&self, k: usize) -> KrylovBasis {
        let k = k.min(self.len());
        KrylovBasis { p: self.p[..k].to_vec(), hp: self.hp[..k].to_vec(), cap: k }
    }

    /// The kept directions P and their products H·P.
    pub fn directions(&self) -> (&[ParamSet], &[ParamSet]) {
        (&self.p, &self.hp)
    }

    /// Bytes of GPU memory the basis holds.
    pub fn bytes(&self) -> u64 {
        self.p.iter().chain(&self.hp).map(|s| 4 * s.len() as u64).sum()
    }

    /// Keep direction `p` with its product `hp` = H·p, while there is room. The sets are
    /// shared, not copied: the solvers never write into a vector after creating it.
    pub(crate) fn push(&mut self, p: &ParamSet, hp: &ParamSet) {
        if self.p.len() < self.cap {
            self.p.push(p.clone());
            self.hp.push(hp.clone());
        }
    }

    /// The same directions for `prob` without training image `index`: H'·P from H·P.
    pub async fn without(&self, gpu: &Gpu, prob: &Problem<'_>, index: usize) -> Result<KrylovBasis> {
        let n = prob.len() as f64;
        if n < 2.0 {
            return Err(Error::InvalidArgument("cannot remove the only training image".into()));
        }
        let (a, c) = (n / (n - 1.0), -(prob.lambda as f64) / (n - 1.0));
        let one = prob.only(gpu, index)?;
        let b = &one.batches[0];
        let mut hp = Vec::with_capacity(self.len());
        for (p, h) in self.p.iter().zip(&self.hp) {
            // J_jᵀJ_j p on the one image, scaled into the update.
            let jtj = ParamSet::zeros(gpu, &p.lens())?;
            gpu.run(|rec| {
                let z = b.z(rec.gpu())?;
                let (_, jp) = prob.net.jvp(rec, prob.theta0, &z, 1, p)?;
                prob.net.vjp(rec, prob.theta0, &z, 1, &jp, &jtj, (-1.0 / (n - 1.0)) as f32, 0.0)
            })?;
            hp.push(ParamSet::combination(gpu, &[(a, h), (c, p), (1.0, &jtj)])?);
        }
        Ok(KrylovBasis { p: self.p.clone(), hp, cap: self.cap })
    }
}

/// The Galerkin matrix E = PᵀHP of a basis, as a pseudo-inverse: directions scaled to unit
/// norm, eigenvalues below `GALERKIN_CUTOFF` of the largest dropped.
struct Galerkin {
    k: usize,
    scale: Vec<f64>,
    values: Vec<f64>,
    vectors: Vec<f64>,
}

impl Galerkin {
    async fn new(gpu: &Gpu, basis: &KrylovBasis) -> Result<Galerkin> {
        let k = basis.len();
        let ps: Vec<&ParamSet> = basis.p.iter().collect();
        let mut e = vec![0.0; k * k];
        for (i, hp) in basis.hp.iter().enumerate() {
            e[i * k..(i + 1) * k].copy_from_slice(&ParamSet::dots(gpu, &ps, hp).await?);
        }
        let mut scale = Vec::with_capacity(k);
        for p in &basis.p {
            let nn = ParamSet::dot(gpu, p, p).await?;
            scale.push(if nn > 0.0 { 1.0 / nn.sqrt() } else { 0.0 });
        }
        // Symmetrise (f32 products) and scale to unit directions.
        for i in 0..k {
            for j in 0..=i {
                let v = 0.5 * (e[i * k + j] + e[j * k + i]) * scale[i] * scale[j];
                e[i * k + j] = v;
                e[j * k + i] = v;
            }
        }
        if e.iter().any(|v| !v.is_finite()) {
            return Err(Error::Diverged("the kept Krylov basis has non-finite products".into()));
        }
        let (values, vectors) = symmetric_eigen(&e, k);
        Ok(Galerkin { k, scale, values, vectors })
    }

    /// Coefficients y of P·y with y = E⁺·w (w = Pᵀ·something).
    fn solve(&self, w: &[f64]) -> Vec<f64> {
        let k = self.k;
        let max = self.values.iter().cloned().fold(0.0, f64::max);
        let ws: Vec<f64> = w.iter().zip(&self.scale).map(|(a, s)| a * s).collect();
        let mut y = vec![0.0; k];
        for e in 0..k {
            if self.values[e] <= GALERKIN_CUTOFF * max {
                continue;
            }
            let t = (0..k).map(|i| self.vectors[i * k + e] * ws[i]).sum::<f64>() / self.values[e];
            for (i, yi) in y.iter_mut().enumerate() {
                *yi += self.vectors[i * k + e] * t;
            }
        }
        y.iter().zip(&self.scale).map(|(a, s)| a * s).collect()
    }
}

impl Problem<'_> {
    /// H x = b by deflated CG on `basis` (whose H·P must be this problem's): x₀ = P E⁺ Pᵀb,
    /// then CG with every direction made H-orthogonal to span(P). Unpreconditioned. Steps
    /// count H products (the start's residual is the first), relative residuals are
    /// ‖b − Hx‖/‖b‖, losses ½xᵀHx − bᵀx.
    pub async fn solve_linear_deflated(&self, gpu: &Gpu, b: &ParamSet, basis: &KrylovBasis, tol: f64, max_iter: usize) -> Result<(ParamSet, Vec<Step>)> {
        self.solve_linear_deflated_traced(gpu, b, basis, tol, max_iter, |_, _| {}).await
    }

    /// `solve_linear_deflated`, with `on_iterate` seeing every iterate and its step.
    pub async fn solve_linear_deflated_traced(
        &self,
        gpu: &Gpu,
        b: &ParamSet,
        basis: &KrylovBasis,
        tol: f64,
        max_iter: usize,
        mut on_iterate: impl FnMut(Step, &ParamSet),
    ) -> Result<(ParamSet, Vec<Step>)> {
        require_quadratic(self.loss, "the deflated conjugate-gradient solver")?;
        let bnorm = ParamSet::dot(gpu, b, b).await?.sqrt();
        let mut steps = Vec::new();
        if bnorm == 0.0 || basis.is_empty() || max_iter == 0 {
            let x = ParamSet::zeros(gpu, &b.lens())?;
            return if bnorm == 0.0 || max_iter == 0 { Ok((x, steps)) } else { self.solve_linear_traced(gpu, b, None, tol, max_iter, on_iterate).await };
        }
        let e = Galerkin::new(gpu, basis).await?;
        let ps: Vec<&ParamSet> = basis.p.iter().collect();
        let hps: Vec<&ParamSet> = basis.hp.iter().collect();
        // Σ y_i·set_i for set = P or H·P.
        let span = |set: &[&ParamSet], y: &[f64]| ParamSet::combination(gpu, &set.iter().zip(y).map(|(v, &c)| (c, *v)).collect::<Vec<_>>());
        let in_span = |y: &[f64]| span(&ps, y);
        // Galerkin start and its residual.
        let mut x = in_span(&e.solve(&ParamSet::dots(gpu, &ps, b).await?))?;
        let hx = self.hvp(gpu, &x)?;
        let mut r = ParamSet::combination(gpu, &[(1.0, b), (-1.0, &hx)])?;
        let mut rr = ParamSet::dot(gpu, &r, &r).await?;
        steps.push(Step { iteration: 1, relative_residual: rr.sqrt() / bnorm, loss: cg_loss(gpu, 0.0, &x, b, &r).await? });
        on_iterate(steps[0], &x);
        // Direction r − P·E⁺(HP)ᵀr: H-orthogonal to the basis.
        let deflate = |r: &ParamSet, beta: f64, p: Option<&ParamSet>| {
            let r = r.clone();
            let p = p.cloned();
            let (e, hps, in_span) = (&e, &hps, &in_span);
            async move {
                let mu = e.solve(&ParamSet::dots(gpu, hps, &r).await?);
                let s = in_span(&mu)?;
                match p {
                    Some(p) => ParamSet::combination(gpu, &[(1.0, &r), (beta, &p), (-1.0, &s)]),
                    None => ParamSet::combination(gpu, &[(1.0, &r), (-1.0, &s)]),
                }
            }
        };
        let mut p = deflate(&r, 0.0, None).await?;
        let (mut best, mut stalled, mut corrected) = (steps[0].loss, 0, false);
        let mut it = 1;
        while it < max_iter && rr.sqrt() / bnorm > tol {
            if stalled >= STALL_ITERATIONS {
                if corrected {
                    // Plain CG's steps continue the count: offset once, for the record and the observer.
                    let (x, _) = self
                        .cg(gpu, b, 0.0, Some(&x), None, tol, max_iter - it, None, |s, x| {
                            let s = Step { iteration: s.iteration + it, ..s };
                            on_iterate(s, x);
                            steps.push(s);
                        })
                        .await?;
                    return Ok((x, steps));
                }
                // The residual has drifted into span(P), which the deflated directions cannot
                // reach: a Galerkin correction there (no H product: H·P is kept), then a fresh
                // direction.
                let y = e.solve(&ParamSet::dots(gpu, &ps, &r).await?);
                x = ParamSet::combination(gpu, &[(1.0, &x), (1.0, &in_span(&y)?)])?;
                let hy = span(&hps, &y)?;
                r = ParamSet::combination(gpu, &[(1.0, &r), (-1.0, &hy)])?;
                rr = ParamSet::dot(gpu, &r, &r).await?;
                p = deflate(&r, 0.0, None).await?;
                (stalled, corrected) = (0, true);
                continue;
            }
            it += 1;
            let hp = self.hvp(gpu, &p)?;
            let php = ParamSet::dot(gpu, &p, &hp).await?;
            if !php.is_finite() || php <= 0.0 {
                // No curvature left along the deflated direction (f32): plain CG takes over.
                (stalled, corrected) = (STALL_ITERATIONS, true);
                continue;
            }
            // The exact line minimum along p (rᵀp = rᵀr only while Pᵀr = 0 holds exactly).
            let alpha = ParamSet::dot(gpu, &r, &p).await? / php;
            x = ParamSet::combination(gpu, &[(1.0, &x), (alpha, &p)])?;
            r = ParamSet::combination(gpu, &[(1.0, &r), (-alpha, &hp)])?;
            let rr2 = ParamSet::dot(gpu, &r, &r).await?;
            if !rr2.is_finite() {
                return Err(Error::Diverged(format!("deflated conjugate gradient: residual is {rr2} at iteration {it}")));
            }
            steps.push(Step { iteration: it, relative_residual: rr2.sqrt() / bnorm, loss: cg_loss(gpu, 0.0, &x, b, &r).await? });
            on_iterate(steps[steps.len() - 1], &x);
            p = deflate(&r, rr2 / rr, Some(&p)).await?;
            rr = rr2;
            let now = steps[steps.len() - 1].loss;
            if now < best {
                (best, stalled, corrected) = (now, 0, false);
            } else {
                stalled += 1;
            }
        }
        Ok((x, steps))
    }
}
