//! K-FAC curvature for the linearized network, used to precondition the solver.
//!
//! The Hessian H = (1/N) Σ J_iᵀJ_i + λI does not depend on Δ, so the factors are computed once
//! per training set and are exact (type-2): for a layer with input patches ā (a 1 appended for
//! the bias) and output gradients g_c (backprop of the unit vector e_c from the output, C
//! backward passes per image, all at θ0):
//!
//!   A = mean over images and output positions of ā āᵀ
//!   G = (1/N) Σ_i Σ_c Σ_positions g_c g_cᵀ
//!
//! so that for a single linear layer A ⊗ G equals H − λI exactly, and for a network of linear
//! layers it equals the block-diagonal Gauss-Newton matrix (tests/kfac.rs checks both). Under
//! cross-entropy (`Loss::CrossEntropy`) the output Hessian is Λ = diag(p) − ppᵀ at θ0 instead of
//! I, and the backward passes carry its columns √p_c (e_c − p) (Monte-Carlo: e_y − p with y drawn
//! from p). Λ differs between images, so even for linear layers A ⊗ G (a product of means) is
//! the Gauss-Newton block only for one image, and the curvature moves with Δ: under
//! cross-entropy K-FAC is the paper's preconditioner for SGD, not an exact Hessian.
//!
//! Convolution positions share weights. The factors above treat them as independent samples
//! ("K-FAC-expand", Grosse & Martens 2016); `Positions::Reduce` sums them per image first
//! ("K-FAC-reduce", Eschenhagen et al. 2023: A = (1/N) Σ_i m_i m_iᵀ with m_i image i's mean ā,
//! G from the per-image sums of g), which is exact when the positions are pooled linearly
//! downstream, as they are here (tests/kfac.rs). Expand stays the default because it makes CG
//! converge faster on real photos: with 50 EuroSAT photos at depth 1 (λ 1e-3), K-FAC CG reaches
//! a relative residual of 1e-3 in 25 iterations with expand, 51 with reduce, 39 with reduce on
//! the depthwise layers only, and 78 with expand's A and both G's summed — although expand
//! underestimates a depthwise bias's curvature 5.9× and reduce removes that
//! (examples/kfac_scale.rs, docs/RESULTS.md). Reduce's A has rank ≤ N, so most directions of
//! a wide layer get only the damping.
//!
//! Parameters are laid out [W; b] = `[cin + 1, cout]` row-major, which is the `ParamSet` order
//! of a 1×1 convolution's HWIO weight followed by its bias, so (A ⊗ G)·vec(V) = A·V·G.
//!
//! Depthwise convolutions get one block per channel: A_c over that channel's k×k patch plus a 1,
//! G_c a scalar (the kernels are in shaders/kfac.wgsl).
//!
//! Damping is factored Tikhonov, (A + π√λ I) ⊗ (G + (√λ/π) I) with π = √((tr A/dim A)/(tr G/dim G)),
//! per layer (per channel for depthwise). Exact damping where G is a scalar multiple of I was
//! tried: on the depthwise blocks (G_c is a number) it doubled CG's iterations (56 against 25
//! above; π√λ also makes up for the curvature expand misses there); on the classifier (G = I
//! under MSE) it left them at 25 and made the f32 inverse of A + λI fail as not positive
//! definite with 4 photos at λ = 1e-3 (A has rank 4 in 1281 dimensions).
//!
//! Covered: 1×1 convolutions, depthwise convolutions and the classifier. Other layers (dense
//! k×k, only in a fully linearized network) are preconditioned by a scalar, 1/(λ + the mean
//! curvature scale of the covered layers).
use super::linearized::LinearizedNet;
use super::params::ParamSet;
use super::solver::{Loss, Problem};
use crate::error::Result;
use crate::gpu::kernels::gemm::{gemm, Gemm};
pub use crate::gpu::kernels::kfac::Positions;
use crate::gpu::kernels::{elementwise, kfac as kernels, reduce, spd};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::ops::ConvSpec;

/// (din, dout) of the Kronecker factors of ParamSet pair `index`, if it is a dense layer K-FAC covers.
pub fn factor_dims(net: &LinearizedNet, index: usize) -> Option<(usize, usize)> {
    match factor_block(net, index)? {
        Block::Dense { din, dout } => Some((din, dout)),
        Block::Depthwise { .. } => None,
    }
}

/// The shape of K-FAC's block for one layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Block {
    /// A: din×din (inputs + 1), G: dout×dout.
    Dense { din: usize, dout: usize },
    /// Per channel: A_c d×d (k² taps + 1), G_c a scalar. The spec gives kernel size and channels.
    Depthwise { spec: ConvSpec, d: usize },
}

pub fn factor_block(net: &LinearizedNet, index: usize) -> Option<Block> {
    if index == net.convs.len() {
        return Some(Block::Dense { din: net.features + 1, dout: net.classes });
    }
    let c = net.convs.get(index)?;
    if c.k == 1 && c.groups == 1 && c.stride == 1 {
        return Some(Block::Dense { din: c.cin + 1, dout: c.cout });
    }
    let d = c.k * c.k + 1;
    if c.groups == c.cin && c.cin == c.cout && d <= kernels::MAX_BLOCK {
        let spec =
            ConvSpec { batch: 1, in_h: c.k, in_w: c.k, cin: c.cin, cout: c.cout, kh: c.k, kw: c.k, stride: c.stride, groups: c.groups, padding: c.padding };
        return Some(Block::Depthwise { spec, d });
    }
    None
}

impl Block {
    fn a_len(&self) -> usize {
        match *self {
            Block::Dense { din, .. } => din * din,
            Block::Depthwise { spec, d } => spec.cout * d * d,
        }
    }
    fn g_len(&self) -> usize {
        match *self {
            Block::Dense { dout, .. } => dout * dout,
            Block::Depthwise { spec, .. } => spec.cout,
        }
    }
}

/// Undamped factors per ParamSet pair (None where K-FAC does not cover the layer), row-major;
/// for depthwise layers `a` is `[C, d, d]` and `g` is `[C]`.
#[derive(Debug, Clone)]
pub struct Factors {
    pub a: Vec<Option<Vec<f32>>>,
    pub g: Vec<Option<Vec<f32>>>,
}

#[allow(clippy::too_many_arguments)]
fn gemm_at(m: usize, n: usize, k: usize, lda: usize, ldb: usize, ldc: usize, off_c: usize, scale: f32) -> Gemm {
    let mut g = Gemm::new(m, n, k).trans(true, false).scale(scale, 1.0);
    g.lda = lda;
    g.ldb = ldb;
    g.ldc = ldc;
    g.off_c = off_c;
    g
}

/// A += s·āᵀā for input rows `a` (`[rows, cin]`) with a column of ones appended, by blocks:
/// aᵀa, aᵀ1, 1ᵀa and 1ᵀ1.
fn accumulate_a(rec: &mut Recorder<'_>, a: &Tensor, ones: &Tensor, rows: usize, cin: usize, acc: &Tensor, s: f32) -> Result<()> {
    let d = cin + 1;
    gemm(rec, &gemm_at(cin, cin, rows, cin, cin, d, 0, s), a, a, acc)?;
    gemm(rec, &gemm_at(cin, 1, rows, cin, 1, d, cin, s), a, ones, acc)?;
    gemm(rec, &gemm_at(1, cin, rows, 1, cin, d, cin * d, s), ones, a, acc)?;
    gemm(rec, &gemm_at(1, 1, rows, 1, 1, d, cin * d + cin, s), ones, ones, acc)
}

/// How the output-side factors G are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Exact type-2: C backward passes per image, one per unit vector e_c.
    #[default]
    Exact,
    /// One backward pass per image with a Rademacher vector v (E[vvᵀ] = I, so E[g_v g_vᵀ] =
    /// Σ_c g_c g_cᵀ): unbiased, C times cheaper, for many classes.
    MonteCarlo { seed: u64 },
}

/// How the factors are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Estimate {
    pub sampling: Sampling,
    pub positions: Positions,
}

/// The exact type-2 statistics of a training problem (positions as samples).
pub async fn statistics(gpu: &Gpu, prob: &Problem<'_>) -> Result<Factors> {
    statistics_with(gpu, prob, Estimate::default()).await
}

/// The statistics estimated as asked.
pub async fn statistics_with(gpu: &Gpu, prob: &Problem<'_>, estimate: Estimate) -> Result<Factors> {
    let Estimate { sampling, positions } = estimate;
    let net = prob.net;
    let pairs = net.convs.len() + 1;
    let blocks: Vec<Option<Block>> = (0..pairs).map(|i| factor_block(net, i)).collect();
    let a_acc: Vec<Option<Tensor>> = blocks.iter().map(|b| b.map(|b| gpu.zeros(b.a_len())).transpose()).collect::<Result<_>>()?;
    let g_acc: Vec<Option<Tensor>> = blocks.iter().map(|b| b.map(|b| gpu.zeros(b.g_len())).transpose()).collect::<Result<_>>()?;
    let n_total = prob.len() as f32;
    let c = net.classes;
    let (passes, mut rng) = match sampling {
        Sampling::Exact => (c, None),
        Sampling::MonteCarlo { seed } => (1, Some(crate::rng::Rng::new(seed))),
    };
    for b in &prob.batches {
        let tape = gpu.run(|rec| net.tape(rec, prob.theta0, &b.z(gpu)?, b.n))?;
        // Cross-entropy's output Hessian at θ0: Λ = diag(p) − ppᵀ = Σ_c p_c (e_c − p)(e_c − p)ᵀ.
        let probs = match prob.loss {
            Loss::Mse => None,
            Loss::CrossEntropy => Some(crate::cpu::elementwise::softmax_rows(&gpu.read(&b.f0).await?, c)),
        };
        for pass in 0..passes {
            let v: Vec<f32> = match (rng.as_mut(), &probs) {
                // MSE: Λ = I, the unit vectors e_c (exact) or Rademacher vectors (E[vvᵀ] = I).
                (None, None) => (0..b.n * c).map(|i| if i % c == pass { 1.0 } else { 0.0 }).collect(),
                (Some(rng), None) => (0..b.n * c).map(|_| if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 }).collect(),
                // Cross-entropy: the columns √p_c (e_c − p) (exact), or e_y − p with y ~ p.
                (None, Some(p)) => p.chunks(c).flat_map(|p| (0..c).map(move |k| p[pass].sqrt() * (if k == pass { 1.0 } else { 0.0 } - p[k]))).collect(),
                (Some(rng), Some(p)) => p
                    .chunks(c)
                    .flat_map(|p| {
                        let y = sample(p, rng.uniform());
                        (0..c).map(move |k| if k == y { 1.0 } else { 0.0 } - p[k])
                    })
                    .collect(),
            };
            let g = gpu.upload(&v)?;
            gpu.run(|rec| {
                net.backward(rec, prob.theta0, &tape, b.n, &g, |rec, layer| {
                    let (Some(ga), Some(aa), Some(block)) = (&g_acc[layer.index], &a_acc[layer.index], blocks[layer.index]) else { return Ok(()) };
                    let (t, rows) = (layer.positions, b.n * layer.positions);
                    // Reduce: per image the mean input and the summed gradient (t times the
                    // pooled one), so a layer's factors come from b.n rows.
                    let reduced = positions == Positions::Reduce && t > 1;
                    let pooled = |rec: &mut Recorder<'_>, x: &Tensor, c: usize| -> Result<Tensor> {
                        let out = rec.gpu().zeros(b.n * c)?;
                        reduce::global_avg_pool(rec, x, b.n, t, c, &out)?;
                        Ok(out)
                    };
                    // The output side is the same for both blocks: rows of gradients and their scale.
                    let cout = layer.grad.len / rows;
                    let (grad, g_rows, g_scale) =
                        if reduced { (pooled(rec, layer.grad, cout)?, b.n, (t * t) as f32 / n_total) } else { (layer.grad.clone(), rows, 1.0 / n_total) };
                    match block {
                        Block::Dense { din, dout } => {
                            gemm(rec, &gemm_at(dout, dout, g_rows, dout, dout, dout, 0, g_scale), &grad, &grad, ga)?;
                            if pass == 0 {
                                let (input, a_rows, a_scale) = if reduced {
                                    (pooled(rec, layer.input, din - 1)?, b.n, 1.0 / n_total)
                                } else {
                                    (layer.input.clone(), rows, 1.0 / (n_total * t as f32))
                                };
                                let ones = rec.gpu().upload(&vec![1.0; a_rows])?;
                                accumulate_a(rec, &input, &ones, a_rows, din - 1, aa, a_scale)?;
                            }
                        }
                        Block::Depthwise { spec, .. } => {
                            kernels::col_sumsq(rec, &grad, g_rows, spec.cout, ga, g_scale, 1.0)?;
                            if pass == 0 {
                                let s = layer.spec.unwrap_or(spec);
                                // The kernel sums the patches (not their mean), hence 1/t².
                                let (mode, a_scale) = if reduced {
                                    (Positions::Reduce, 1.0 / (n_total * (t * t) as f32))
                                } else {
                                    (Positions::Expand, 1.0 / (n_total * t as f32))
                                };
                                kernels::depthwise_patch_stats(rec, &s, layer.input, aa, a_scale, 1.0, mode)?;
                            }
                        }
                    }
                    Ok(())
                })
            })?;
        }
    }
    let mut out = Factors { a: Vec::new(), g: Vec::new() };
    for (a, g) in a_acc.iter().zip(&g_acc) {
        out.a.push(match a {
            Some(t) => Some(gpu.read(t).await?),
            None => None,
        });
        out.g.push(match g {
            Some(t) => Some(gpu.read(t).await?),
            None => None,
        });
    }
    Ok(out)
}

enum Inverse {
    Dense {
        din: usize,
        dout: usize,
        a_inv: Tensor,
        g_inv: Tensor,
    },
    /// `a_inv` `[C, d, d]`, `g_inv` `[C]` (scalars).
    Depthwise {
        spec: ConvSpec,
        a_inv: Tensor,
        g_inv: Tensor,
    },
}

/// The index a uniform draw `u` ∈ [0, 1) picks from probabilities `p`.
fn sample(p: &[f32], u: f64) -> usize {
    let mut acc = 0.0;
    for (k, &pk) in p.iter().enumerate() {
        acc += pk as f64;
        if u < acc {
            return k;
        }
    }
    p.len() - 1
}

/// The damped, inverted factors: the preconditioner M⁻¹ ≈ H⁻¹.
pub struct Kfac {
    layers: Vec<Option<Inverse>>,
    /// M⁻¹ on layers K-FAC does not cover.
    other_scale: f32,
}

fn trace_mean(m: &[f32], d: usize) -> f64 {
    (0..d).map(|i| m[i * d + i] as f64).sum::<f64>() / d as f64
}

impl Kfac {
    pub async fn new(gpu: &Gpu, prob: &Problem<'_>, damping: f32) -> Result<Kfac> {
        Kfac::estimated(gpu, prob, damping, Estimate::default()).await
    }

    pub async fn estimated(gpu: &Gpu, prob: &Problem<'_>, damping: f32, estimate: Estimate) -> Result<Kfac> {
        let f = statistics_with(gpu, prob, estimate).await?;
        Kfac::from_factors(gpu, prob.net, &f, damping).await
    }

    /// Damp and invert factors computed once: a λ path reuses one set of statistics.
    pub async fn from_factors(gpu: &Gpu, net: &LinearizedNet, f: &Factors, damping: f32) -> Result<Kfac> {
        let sqrt_l = (damping.max(0.0) as f64).sqrt();
        let mut layers = Vec::new();
        let mut scales = Vec::new();
        let mut statuses = Vec::new();
        for (i, (a, g)) in f.a.iter().zip(&f.g).enumerate() {
            let (Some(mut a), Some(mut g), Some(block)) = (a.clone(), g.clone(), factor_block(net, i)) else {
                layers.push(None);
                continue;
            };
            match block {
                Block::Dense { din, dout } => {
                    let (ta, tg) = (trace_mean(&a, din), trace_mean(&g, dout));
                    scales.push(ta * tg);
                    let pi = if ta > 0.0 && tg > 0.0 { (ta / tg).sqrt() } else { 1.0 };
                    for k in 0..din {
                        a[k * din + k] += (pi * sqrt_l) as f32;
                    }
                    for k in 0..dout {
                        g[k * dout + k] += (sqrt_l / pi) as f32;
                    }
                    let (a_inv, g_inv) = (gpu.upload(&a)?, gpu.upload(&g)?);
                    statuses.push(gpu.run(|rec| Ok((spd::spd_inverse_in_place(rec, &a_inv, din)?, spd::spd_inverse_in_place(rec, &g_inv, dout)?)))?);
                    layers.push(Some(Inverse::Dense { din, dout, a_inv, g_inv }));
                }
                Block::Depthwise { spec, d } => {
                    // Many d×d blocks (d ≤ 50): damped and inverted on the host in f64.
                    let mut a_inv = Vec::with_capacity(a.len());
                    let mut g_inv = Vec::with_capacity(g.len());
                    for (c, gc) in g.iter().enumerate() {
                        let block: Vec<f64> = a[c * d * d..(c + 1) * d * d].iter().map(|&v| v as f64).collect();
                        let ta = (0..d).map(|k| block[k * d + k]).sum::<f64>() / d as f64;
                        let tg = *gc as f64;
                        scales.push(ta * tg);
                        let pi = if ta > 0.0 && tg > 0.0 { (ta / tg).sqrt() } else { 1.0 };
                        let mut damped = block;
                        for k in 0..d {
                            damped[k * d + k] += pi * sqrt_l;
                        }
                        let inv = crate::cpu::linalg::spd_inverse(&damped, d)?;
                        a_inv.extend(inv.iter().map(|&v| v as f32));
                        g_inv.push((1.0 / (tg + sqrt_l / pi)) as f32);
                    }
                    layers.push(Some(Inverse::Depthwise { spec, a_inv: gpu.upload(&a_inv)?, g_inv: gpu.upload(&g_inv)? }));
                }
            }
        }
        for (sa, sg) in &statuses {
            spd::check_status(gpu, sa).await?;
            spd::check_status(gpu, sg).await?;
        }
        let mean = if scales.is_empty() { 0.0 } else { scales.iter().sum::<f64>() / scales.len() as f64 };
        Ok(Kfac { layers, other_scale: (1.0 / (damping as f64 + mean).max(1e-12)) as f32 })
    }

    /// out = M⁻¹·r: per covered layer A⁻¹·[∇W; ∇b]·G⁻¹, a scalar elsewhere.
    pub fn apply(&self, rec: &mut Recorder<'_>, r: &ParamSet, out: &ParamSet) -> Result<()> {
        let gpu = rec.gpu();
        for (i, layer) in self.layers.iter().enumerate() {
            let (rw, rb, ow, ob) = (&r.tensors[2 * i], &r.tensors[2 * i + 1], &out.tensors[2 * i], &out.tensors[2 * i + 1]);
            match layer {
                Some(Inverse::Dense { din, dout, a_inv, g_inv }) => {
                    let (din, dout) = (*din, *dout);
                    let packed = gpu.zeros(din * dout)?;
                    rec.copy(rw, 0, &packed, 0, rw.len);
                    rec.copy(rb, 0, &packed, rw.len, rb.len);
                    let (t, u) = (gpu.zeros(din * dout)?, gpu.zeros(din * dout)?);
                    gemm(rec, &Gemm::new(din, dout, din), a_inv, &packed, &t)?;
                    gemm(rec, &Gemm::new(din, dout, dout), &t, g_inv, &u)?;
                    rec.copy(&u, 0, ow, 0, ow.len);
                    rec.copy(&u, ow.len, ob, 0, ob.len);
                }
                Some(Inverse::Depthwise { spec, a_inv, g_inv }) => {
                    kernels::depthwise_precondition(rec, spec, rw, rb, a_inv, g_inv, ow, ob)?;
                }
                None => {
                    elementwise::axpby(rec, self.other_scale, rw, 0.0, rw, ow)?;
                    elementwise::axpby(rec, self.other_scale, rb, 0.0, rb, ob)?;
                }
            }
        }
        Ok(())
    }
}
