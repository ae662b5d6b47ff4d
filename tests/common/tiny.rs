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
    let d: Vec<Vec<f64>> = net.param_lens().iter().map(|&l| {
        let v = delta[off..off + l].to_vec();
        off += l;
        v
    }).collect();
    let (f0, fd) = reference::jvp(net, &th64, &f64s(z), n, &d);
    f0.iter().zip(&fd).map(|(a, b)| a + b).collect()
}
