//! K-FAC against the exact curvature where theory says they are equal (type-2 factors, MSE):
//! for a single linear layer A ⊗ G = H − λI, and for a network of linear layers it is the exact
//! block-diagonal Gauss-Newton matrix. Dense Jacobians come from the f64 CPU mirror.
mod common;

use common::{block, f64s, gpu};
use lqf::cpu;
use lqf::gpu::kernels::gemm::Gemm;
use lqf::lqf::kfac::{self, Block, Positions};
use lqf::lqf::{reference, LinBlock, LinearizedNet, Loss, ParamSet, Problem};
use lqf::model::arch::ConvDef;
use lqf::model::backbone::Hwc;
use lqf::ops::Padding;
use lqf::rng::Rng;

/// f32 statistics vs the f64 Gauss-Newton matrix, relative to its largest entry.
const KFAC_REL: f64 = 1e-5;
/// Where positions are pooled, expand's factors are at least this far from the GGN (measured 0.92).
const EXPAND_MISS: f64 = 0.1;

fn pw(cin: usize, cout: usize) -> ConvDef {
    ConvDef { weight: String::new(), bn: String::new(), cin, cout, k: 1, stride: 1, groups: 1, padding: Padding::Symmetric(0, 0), eps: 0.0, act: false }
}

/// Two pointwise convolutions on a 1×1 input, no activation: a linear network, where K-FAC's
/// exactness can be checked.
fn two_linear_layers() -> LinearizedNet {
    LinearizedNet {
        convs: vec![pw(3, 5), pw(5, 4)],
        blocks: vec![LinBlock { residual: false, convs: vec![0, 1] }],
        input: Hwc { h: 1, w: 1, c: 3 },
        features: 4,
        classes: 3,
        alpha: 0.0,
    }
}

/// (1/N) Σ J_iᵀ Λ_i J_i restricted to the parameters [off, off + len): Λ = I under MSE,
/// diag(p) − ppᵀ at θ0 under cross-entropy.
fn ggn_block(net: &LinearizedNet, th: &[Vec<f32>], z: &[f32], n: usize, off: usize, len: usize, loss: Loss) -> Vec<f64> {
    let th64: Vec<Vec<f64>> = th.iter().map(|t| f64s(t)).collect();
    let mut jac = reference::dense_jacobian(net, &th64, &f64s(z), n);
    let p: usize = net.param_lens().iter().sum();
    if loss == Loss::CrossEntropy {
        let probs = cpu::elementwise::softmax_rows(&common::tiny::f_lin(net, th, z, n, &vec![0.0; p]), net.classes);
        jac = common::tiny::cross_entropy_rows(&jac, &probs, net.classes, p);
    }
    let rows = n * net.classes;
    let mut full = vec![0.0; p * p];
    cpu::gemm::gemm(&Gemm::new(p, p, rows).trans(true, false).scale(1.0 / n as f32, 0.0), &jac, &jac, &mut full);
    let mut out = vec![0.0; len * len];
    for i in 0..len {
        for j in 0..len {
            out[i * len + j] = full[(off + i) * p + off + j];
        }
    }
    out
}

/// A ⊗ G in the [W; b] row-major parameter order: entry ((i,o),(j,o')) = A[i,j]·G[o,o'].
fn kron(a: &[f32], g: &[f32], din: usize, dout: usize) -> Vec<f64> {
    let len = din * dout;
    let mut out = vec![0.0; len * len];
    for i in 0..din {
        for o in 0..dout {
            for j in 0..din {
                for o2 in 0..dout {
                    out[(i * dout + o) * len + j * dout + o2] = a[i * din + j] as f64 * g[o * dout + o2] as f64;
                }
            }
        }
    }
    out
}

/// max over layers of max |K-FAC − GGN| / max |GGN| on each layer's block (on a depthwise
/// layer, the per-channel blocks K-FAC models).
fn kfac_error(net: &LinearizedNet, th: &[Vec<f32>], z: &[f32], labels: &[u32], batch: usize, estimate: kfac::Estimate, loss: Loss) -> f64 {
    let g = gpu();
    let tth = ParamSet::upload(g, th).unwrap();
    let prob = block(Problem::new(g, net, &tth, z, labels, batch, 1.0, 0.0)).unwrap().with_loss(loss);
    let f = block(kfac::statistics_with(g, &prob, estimate)).unwrap();
    let lens = net.param_lens();
    let mut off = 0;
    let mut worst = 0.0f64;
    for pair in 0..=net.convs.len() {
        let (wl, bl) = (lens[2 * pair], lens[2 * pair + 1]);
        let len = wl + bl;
        let want = ggn_block(net, th, z, labels.len(), off, len, loss);
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let (a, gf) = (f.a[pair].as_ref().unwrap(), f.g[pair].as_ref().unwrap());
        let err = match kfac::factor_block(net, pair).expect("every layer here is covered") {
            Block::Dense { din, dout } => kron(a, gf, din, dout).iter().zip(&want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())),
            Block::Depthwise { spec, d } => {
                let channels = spec.cout;
                let index = |c: usize, t: usize| if t + 1 < d { t * channels + c } else { wl + c };
                let mut e = 0.0f64;
                for c in 0..channels {
                    for i in 0..d {
                        for j in 0..d {
                            let got = a[(c * d + i) * d + j] as f64 * gf[c] as f64;
                            e = e.max((got - want[index(c, i) * len + index(c, j)]).abs());
                        }
                    }
                }
                e
            }
        } / scale;
        eprintln!("{:?}, layer {pair}: max |K-FAC − GGN| / max |GGN| = {err:.2e}", estimate.positions);
        worst = worst.max(err);
        off += len;
    }
    worst
}

/// Seeded random parameters and features for `n` images of `net`, labels cycling through the
/// classes.
fn random_problem(net: &LinearizedNet, seed: u64, n: usize) -> (Vec<Vec<f32>>, Vec<f32>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let th: Vec<Vec<f32>> = net.param_lens().iter().map(|&n| rng.vec_f32(n)).collect();
    let z = rng.vec_f32(n * net.input.len());
    let labels: Vec<u32> = (0..n as u32).map(|i| i % net.classes as u32).collect();
    (th, z, labels)
}

/// With one output position per layer, both ways of estimating agree with the GGN.
fn check_equal(net: &LinearizedNet, th: &[Vec<f32>], z: &[f32], labels: &[u32], batch: usize) {
    let err = [Positions::Expand, Positions::Reduce]
        .map(|positions| kfac_error(net, th, z, labels, batch, kfac::Estimate { positions, ..Default::default() }, Loss::Mse))
        .into_iter()
        .fold(0.0, f64::max);
    assert!(err < KFAC_REL, "max |A⊗G − GGN| / max |GGN| = {err:.2e}");
}

#[test]
fn single_linear_layer_kfac_equals_the_hessian() {
    let net = LinearizedNet { convs: vec![], blocks: vec![], input: Hwc { h: 2, w: 2, c: 5 }, features: 5, classes: 3, alpha: 0.0 };
    let n = 7;
    let (th, z, labels) = random_problem(&net, 51, n);
    // Mini-batches of 3 accumulate to the same statistics as the full set.
    check_equal(&net, &th, &z, &labels, 3);
}

/// Under cross-entropy the backward passes carry the columns of Λ^{1/2} = √p_c (e_c − p) at θ0.
/// Λ differs between images, so K-FAC's product of means is exact only for one image; with
/// several, the classifier's G must be the mean output Hessian (1/N) Σ_i (diag p_i − p_i p_iᵀ).
#[test]
fn cross_entropy_kfac_uses_the_softmax_curvature() {
    let net = two_linear_layers();
    let (th, z, labels) = random_problem(&net, 56, 8);
    let per = net.input.len();
    let err = kfac_error(&net, &th, &z[..per], &labels[..1], 1, kfac::Estimate::default(), Loss::CrossEntropy);
    assert!(err < KFAC_REL, "one image: max |A⊗G − GGN_CE| / max |GGN_CE| = {err:.2e}");
    let g = gpu();
    let tth = ParamSet::upload(g, &th).unwrap();
    let prob = block(Problem::new(g, &net, &tth, &z, &labels, 3, 1.0, 0.0)).unwrap().with_loss(Loss::CrossEntropy);
    let f = block(kfac::statistics(g, &prob)).unwrap();
    let c = net.classes;
    let p: usize = net.param_lens().iter().sum();
    let probs = cpu::elementwise::softmax_rows(&common::tiny::f_lin(&net, &th, &z, 8, &vec![0.0; p]), c);
    let mut want = vec![0.0; c * c];
    for pr in probs.chunks(c) {
        for a in 0..c {
            for b in 0..c {
                want[a * c + b] += (if a == b { pr[a] } else { 0.0 } - pr[a] * pr[b]) / 8.0;
            }
        }
    }
    let got = f.g[2].as_ref().unwrap();
    let worst = got.iter().zip(&want).fold(0.0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
    assert!(worst < KFAC_REL, "classifier G vs mean softmax Hessian: {worst:.2e} ({got:?} vs {want:?})");
}

#[test]
fn linear_network_kfac_equals_the_block_diagonal_gauss_newton() {
    let net = two_linear_layers();
    let n = 9;
    let (th, z, labels) = random_problem(&net, 52, n);
    check_equal(&net, &th, &z, &labels, n);
}

/// With several output positions pooled at the end, a linear network's output gradient is the
/// same at every position, so K-FAC-reduce (positions summed per image) is the exact GGN block
/// for every 1×1 layer and for a padded depthwise layer; expand (positions as samples) is not.
#[test]
fn reduce_kfac_is_exact_when_positions_are_pooled() {
    let dw = ConvDef {
        weight: String::new(),
        bn: String::new(),
        cin: 5,
        cout: 5,
        k: 3,
        stride: 1,
        groups: 5,
        padding: Padding::Symmetric(1, 1),
        eps: 0.0,
        act: false,
    };
    let net = LinearizedNet {
        convs: vec![dw, pw(5, 4)],
        blocks: vec![LinBlock { residual: false, convs: vec![0, 1] }],
        input: Hwc { h: 4, w: 3, c: 5 },
        features: 4,
        classes: 3,
        alpha: 0.0,
    };
    let n = 7;
    let (th, z, labels) = random_problem(&net, 57, n);
    let reduce = kfac_error(&net, &th, &z, &labels, 3, kfac::Estimate { positions: Positions::Reduce, ..Default::default() }, Loss::Mse);
    let expand = kfac_error(&net, &th, &z, &labels, 3, kfac::Estimate { positions: Positions::Expand, ..Default::default() }, Loss::Mse);
    assert!(reduce < KFAC_REL, "reduce: {reduce:.2e}");
    assert!(expand > EXPAND_MISS, "expand should miss the positions' correlation here: {expand:.2e}");
}

/// Where K-FAC is exact (a lone classifier), preconditioned CG needs only a few iterations even
/// when the problem is badly conditioned, while plain CG needs many.
#[test]
fn exact_kfac_makes_cg_converge_at_once() {
    let g = gpu();
    let net = LinearizedNet { convs: vec![], blocks: vec![], input: Hwc { h: 2, w: 2, c: 24 }, features: 24, classes: 4, alpha: 0.0 };
    let mut rng = Rng::new(53);
    let th: Vec<Vec<f32>> = net.param_lens().iter().map(|&n| rng.vec_f32(n)).collect();
    let n = 40;
    // Features with very different scales: an ill-conditioned quadratic.
    let z: Vec<f32> = (0..n * net.input.len()).map(|i| rng.range(-1.0, 1.0) as f32 * (1.0 + (i % 24) as f32).powi(2)).collect();
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 4).collect();
    let tth = ParamSet::upload(g, &th).unwrap();
    let lambda = 1e-4;
    let prob = block(Problem::new(g, &net, &tth, &z, &labels, 16, 5.0, lambda)).unwrap();
    let k = block(kfac::Kfac::new(g, &prob, lambda)).unwrap();
    let (_, plain) = block(prob.solve_cg(g, None, None, 1e-4, 300, |_| {})).unwrap();
    let (_, pre) = block(prob.solve_cg(g, None, Some(&k), 1e-4, 300, |_| {})).unwrap();
    eprintln!("iterations to 1e-4: plain CG {}, K-FAC CG {}", plain.len(), pre.len());
    assert!(pre.len() <= 5 && pre.len() * 4 < plain.len(), "K-FAC {} vs plain {}", pre.len(), plain.len());
}

/// Depthwise: with one output position and no activation the layer is linear, and each
/// channel's diagonal block of the Gauss-Newton matrix is exactly A_c·G_c.
#[test]
fn depthwise_kfac_blocks_equal_the_gauss_newton_channel_blocks() {
    let dw = ConvDef {
        weight: String::new(),
        bn: String::new(),
        cin: 4,
        cout: 4,
        k: 3,
        stride: 1,
        groups: 4,
        padding: Padding::Symmetric(0, 0),
        eps: 0.0,
        act: false,
    };
    let net = LinearizedNet {
        convs: vec![dw],
        blocks: vec![LinBlock { residual: false, convs: vec![0] }],
        input: Hwc { h: 3, w: 3, c: 4 },
        features: 4,
        classes: 3,
        alpha: 0.0,
    };
    let n = 8;
    let (th, z, labels) = random_problem(&net, 54, n);
    check_equal(&net, &th, &z, &labels, 5);
}

#[test]
fn kfac_kernels_match_their_references() {
    use lqf::gpu::kernels::kfac as k;
    let g = gpu();
    let mut rng = Rng::new(55);
    for s in [
        lqf::ops::ConvSpec { batch: 2, in_h: 7, in_w: 6, cin: 5, cout: 5, kh: 3, kw: 3, stride: 2, groups: 5, padding: Padding::Same },
        lqf::ops::ConvSpec { batch: 1, in_h: 9, in_w: 9, cin: 3, cout: 3, kh: 5, kw: 5, stride: 1, groups: 3, padding: Padding::Symmetric(2, 2) },
    ] {
        let d = s.kh * s.kw + 1;
        let x = rng.vec_f32(s.input_len());
        let tx = g.upload(&x).unwrap();
        let modes = [k::Positions::Expand, k::Positions::Reduce];
        let accs: Vec<_> = modes.iter().map(|_| g.upload(&vec![1.0; s.cout * d * d]).unwrap()).collect();
        let rows = 13;
        let y = rng.vec_f32(rows * s.cout);
        let (ty, sq) = (g.upload(&y).unwrap(), g.zeros(s.cout).unwrap());
        let (gw, gb) = (rng.vec_f32(s.weight_len()), rng.vec_f32(s.cout));
        let ainv = rng.vec_f32(s.cout * d * d);
        let ginv = rng.vec_f32(s.cout);
        let (tgw, tgb, ta, tg) = (g.upload(&gw).unwrap(), g.upload(&gb).unwrap(), g.upload(&ainv).unwrap(), g.upload(&ginv).unwrap());
        let (ow, ob) = (g.zeros(s.weight_len()).unwrap(), g.zeros(s.cout).unwrap());
        g.run(|rec| {
            for (mode, acc) in modes.iter().zip(&accs) {
                k::depthwise_patch_stats(rec, &s, &tx, acc, 0.5, 1.0, *mode)?;
            }
            k::col_sumsq(rec, &ty, rows, s.cout, &sq, 2.0, 0.0)?;
            k::depthwise_precondition(rec, &s, &tgw, &tgb, &ta, &tg, &ow, &ob)
        })
        .unwrap();
        let close = |got: Vec<f32>, want: Vec<f64>, what: &str| {
            for (a, b) in got.iter().zip(&want) {
                assert!((*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()) * d as f64, "{what}: {a} vs {b}");
            }
        };
        for (mode, acc) in modes.iter().zip(&accs) {
            let stats: Vec<f64> = cpu::kfac::depthwise_patch_stats(&s, &f64s(&x), *mode).iter().map(|v| 0.5 * v + 1.0).collect();
            close(block(g.read(acc)).unwrap(), stats, &format!("depthwise_patch_stats {mode:?}"));
        }
        close(block(g.read(&sq)).unwrap(), cpu::kfac::col_sumsq(&f64s(&y), s.cout).iter().map(|v| 2.0 * v).collect(), "col_sumsq");
        let (rw, rb) = cpu::kfac::depthwise_precondition(s.kh * s.kw, s.cout, &f64s(&gw), &f64s(&gb), &f64s(&ainv), &f64s(&ginv));
        close(block(g.read(&ow)).unwrap(), rw, "depthwise_precondition weights");
        close(block(g.read(&ob)).unwrap(), rb, "depthwise_precondition bias");
    }
}

/// The Monte-Carlo option (one backward pass per image instead of C: a Rademacher vector under
/// MSE, e_y − p with y drawn from the softmax under cross-entropy) is unbiased: averaged over
/// many draws its G factors approach the exact ones, and A is identical.
#[test]
fn monte_carlo_kfac_is_unbiased() {
    let g = gpu();
    let net = LinearizedNet {
        convs: vec![pw(5, 6), pw(6, 4)],
        blocks: vec![LinBlock { residual: false, convs: vec![0, 1] }],
        input: Hwc { h: 2, w: 2, c: 5 },
        features: 4,
        classes: 5,
        alpha: 0.0,
    };
    let n = 6;
    let (th, z, labels) = random_problem(&net, 55, n);
    let tth = ParamSet::upload(g, &th).unwrap();
    for loss in [Loss::Mse, Loss::CrossEntropy] {
        let prob = block(Problem::new(g, &net, &tth, &z, &labels, 4, 1.0, 0.0)).unwrap().with_loss(loss);
        let exact = block(kfac::statistics(g, &prob)).unwrap();
        let draws = 300;
        let mut mean: Vec<Vec<f64>> = exact.g.iter().map(|v| vec![0.0; v.as_ref().unwrap().len()]).collect();
        for seed in 0..draws {
            let f = block(kfac::statistics_with(g, &prob, kfac::Estimate { sampling: kfac::Sampling::MonteCarlo { seed }, ..Default::default() })).unwrap();
            assert_eq!(f.a, exact.a, "A does not depend on the sampling");
            for (m, v) in mean.iter_mut().zip(&f.g) {
                m.iter_mut().zip(v.as_ref().unwrap()).for_each(|(m, x)| *m += *x as f64 / draws as f64);
            }
        }
        for (layer, (m, e)) in mean.iter().zip(&exact.g).enumerate() {
            let e: Vec<f64> = e.as_ref().unwrap().iter().map(|&v| v as f64).collect();
            let err = m.iter().zip(&e).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt() / e.iter().map(|b| b * b).sum::<f64>().sqrt();
            eprintln!("{loss:?}, layer {layer}: mean of {draws} Monte-Carlo G vs exact: {err:.3}");
            assert!(err < 0.1, "{loss:?}, layer {layer}: {err:.3}");
        }
    }
}
