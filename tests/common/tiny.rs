//! The tiny linearized network (an inverted-residual block, a head conv, a classifier) whose
//! dense Jacobian is cheap in f64, and the closed forms the GPU solvers are checked against.
use super::f64s;
use lqf::cpu;
use lqf::gpu::kernels::gemm::Gemm;
use lqf::lqf::{reference, LinBlock, LinearizedNet};
use lqf::model::arch::ConvDef;
use lqf::model::backbone::Hwc;
use lqf::ops::Padding;
use lqf::rng::Rng;

pub fn conv(cin: usize, cout: usize, k: usize, groups: usize, act: bool) -> ConvDef {
    ConvDef { weight: String::new(), bn: String::new(), cin, cout, k, stride: 1, groups, padding: Padding::Symmetric(k / 2, k / 2), eps: 0.0, act }
}

pub fn tiny(alpha: f32) -> LinearizedNet {
    LinearizedNet {
        convs: vec![conv(4, 8, 1, 1, true), conv(8, 8, 3, 8, true), conv(8, 4, 1, 1, false), conv(4, 6, 1, 1, true)],
        blocks: vec![LinBlock { residual: true, convs: vec![0, 1, 2] }, LinBlock { residual: false, convs: vec![3] }],
        input: Hwc { h: 4, w: 4, c: 4 },
        features: 6,
        classes: 3,
        alpha,
    }
}

pub fn random_params(net: &LinearizedNet, rng: &mut Rng, scale: f32) -> Vec<Vec<f32>> {
    net.param_lens().iter().map(|&n| rng.vec_f32(n).iter().map(|v| v * scale).collect()).collect()
}

pub fn flat(v: &[Vec<f32>]) -> Vec<f64> {
    v.iter().flat_map(|t| f64s(t)).collect()
}

/// ‖a − b‖ / ‖b‖
pub fn rel(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    d / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}

/// Δ* = (JᵀJ + NλI)⁻¹ Jᵀ(κY − f0) for `n` images, dense, in f64.
pub fn closed_form(net: &LinearizedNet, th: &[Vec<f32>], z: &[f32], labels: &[u32], kappa: f32, lambda: f32) -> Vec<f64> {
    let n = labels.len();
    let th64: Vec<Vec<f64>> = th.iter().map(|t| f64s(t)).collect();
    let jac = reference::dense_jacobian(net, &th64, &f64s(z), n);
    let zero: Vec<Vec<f64>> = net.param_lens().iter().map(|&l| vec![0.0; l]).collect();
    let (f0, _) = reference::jvp(net, &th64, &f64s(z), n, &zero);
    let rows = n * net.classes;
    let p: usize = net.param_lens().iter().sum();
    let target: Vec<f64> = (0..rows).map(|r| if labels[r / net.classes] as usize == r % net.classes { kappa as f64 } else { 0.0 } - f0[r]).collect();
    let mut h = vec![0.0; p * p];
    cpu::gemm::gemm(&Gemm::new(p, p, rows).trans(true, false), &jac, &jac, &mut h);
    for i in 0..p {
        h[i * p + i] += n as f64 * lambda as f64;
    }
    let mut rhs = vec![0.0; p];
    cpu::gemm::gemm(&Gemm::new(p, 1, rows).trans(true, false), &jac, &target, &mut rhs);
    let inv = cpu::linalg::spd_inverse(&h, p).unwrap();
    let mut x = vec![0.0; p];
    cpu::gemm::gemm(&Gemm::new(p, 1, p), &inv, &rhs, &mut x);
    x
}

/// f_lin(z; Δ) in f64 for `n` images, Δ flat.
pub fn f_lin(net: &LinearizedNet, th: &[Vec<f32>], z: &[f32], n: usize, delta: &[f64]) -> Vec<f64> {
    let th64: Vec<Vec<f64>> = th.iter().map(|t| f64s(t)).collect();
    let mut off = 0;
    let d: Vec<Vec<f64>> = net
        .param_lens()
        .iter()
        .map(|&l| {
            let v = delta[off..off + l].to_vec();
            off += l;
            v
        })
        .collect();
    let (f0, fd) = reference::jvp(net, &th64, &f64s(z), n, &d);
    f0.iter().zip(&fd).map(|(a, b)| a + b).collect()
}

/// The cross-entropy problem's optimum, min (1/N) Σ CE(f_lin(x_i; Δ), y_i) + (λ/2)‖Δ‖², by
/// Newton's method in f64 with the dense Jacobian (Hessian Σ J_iᵀ(diag p_i − p_i p_iᵀ)J_i/N + λI).
pub fn cross_entropy_optimum(net: &LinearizedNet, th: &[Vec<f32>], z: &[f32], labels: &[u32], lambda: f32) -> Vec<f64> {
    let (n, c) = (labels.len(), net.classes);
    let th64: Vec<Vec<f64>> = th.iter().map(|t| f64s(t)).collect();
    let jac = reference::dense_jacobian(net, &th64, &f64s(z), n);
    let p: usize = net.param_lens().iter().sum();
    let lambda = lambda as f64;
    let mut x = vec![0.0; p];
    for _ in 0..50 {
        let (grad, hess) = cross_entropy_newton_terms(&jac, &f_lin(net, th, z, n, &x), labels, c, p, lambda, &x);
        if grad.iter().map(|g| g * g).sum::<f64>().sqrt() < 1e-14 {
            break;
        }
        let mut step = grad;
        cpu::linalg::spd_solve(&hess, p, &mut step, 1).unwrap();
        x.iter_mut().zip(&step).for_each(|(x, s)| *x -= s);
    }
    x
}

/// The cross-entropy problem's gradient Jᵀ(p − Y)/N + λx and Hessian at logits `f`.
fn cross_entropy_newton_terms(jac: &[f64], f: &[f64], labels: &[u32], c: usize, p: usize, lambda: f64, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = labels.len();
    let (r, _) = cpu::elementwise::softmax_cross_entropy(f, labels, c);
    let probs = cpu::elementwise::softmax_rows(f, c);
    let mut grad: Vec<f64> = x.iter().map(|v| lambda * v).collect();
    cpu::gemm::gemm(&Gemm::new(p, 1, n * c).trans(true, false).scale(1.0 / n as f32, 1.0), jac, &r, &mut grad);
    // Rows √p_k (J_k − Σ_m p_m J_m) of each image: their Gram matrix is J_iᵀ Λ_i J_i.
    let scaled = cross_entropy_rows(jac, &probs, c, p);
    let mut hess = vec![0.0; p * p];
    cpu::gemm::gemm(&Gemm::new(p, p, n * c).trans(true, false).scale(1.0 / n as f32, 0.0), &scaled, &scaled, &mut hess);
    for i in 0..p {
        hess[i * p + i] += lambda;
    }
    (grad, hess)
}

/// Λ_i^{1/2} J_i for every image: rows √p_k (J_k − Σ_m p_m J_m), with `probs` the softmax of the
/// logits (J has `probs.len()` rows of `p` values).
pub fn cross_entropy_rows(jac: &[f64], probs: &[f64], c: usize, p: usize) -> Vec<f64> {
    let mut out = vec![0.0; jac.len()];
    for (i, pr) in probs.chunks(c).enumerate() {
        let rows = &jac[i * c * p..(i + 1) * c * p];
        let mean: Vec<f64> = (0..p).map(|q| (0..c).map(|m| pr[m] * rows[m * p + q]).sum()).collect();
        for k in 0..c {
            for q in 0..p {
                out[(i * c + k) * p + q] = pr[k].sqrt() * (rows[k * p + q] - mean[q]);
            }
        }
    }
    out
}
