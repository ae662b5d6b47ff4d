//! Derivatives: JVP vs central finite differences of the primal (f64 on the CPU, then GPU vs
//! CPU), and the adjoint identity ⟨J v, u⟩ = ⟨v, Jᵀ u⟩ between the GPU's JVP and VJP passes,
//! per layer and through a small residual network shaped like a MobileNetV2 block.
mod common;

use checks::{compare, F32_REL};
use common::{block, dot, f64s, gpu};
use lqf::cpu::{self, rules};
use lqf::gpu::{Gpu, Tensor};
use lqf::nn::{self, ConvParams};
use lqf::ops::{ConvSpec, LeakyRelu6, Padding};
use lqf::rng::Rng;
use lqf::selftest as checks;

/// Central differences in f64 on piecewise-linear/bilinear maps are exact up to rounding.
const FD_REL_F64: f64 = 1e-7;
/// ⟨Jv,u⟩ vs ⟨v,Jᵀu⟩, both from f32 GPU passes, relative to Σ|terms|.
const ADJOINT_REL_F32: f64 = 1e-5;
const FD_STEP: f64 = 1e-5;

fn rel_err(a: f64, b: f64, scale: f64) -> f64 {
    (a - b).abs() / scale.max(1e-30)
}

fn up(g: &Gpu, x: &[f32]) -> Tensor {
    g.upload(x).unwrap()
}
fn rd(t: &Tensor) -> Vec<f32> {
    block(gpu().read(t)).unwrap()
}
fn axpy(a: &[f64], h: f64, d: &[f64]) -> Vec<f64> {
    a.iter().zip(d).map(|(x, y)| x + h * y).collect()
}

fn conv_spec() -> ConvSpec {
    ConvSpec { batch: 2, in_h: 7, in_w: 6, cin: 4, cout: 6, kh: 3, kw: 3, stride: 2, groups: 2, padding: Padding::Same }
}

#[test]
fn conv_jvp_matches_finite_differences() {
    let s = conv_spec();
    let mut rng = Rng::new(21);
    let v = |r: &mut Rng, n| f64s(&r.vec_f32(n));
    let (x, xd, w, dw, b, db) = (
        v(&mut rng, s.input_len()),
        v(&mut rng, s.input_len()),
        v(&mut rng, s.weight_len()),
        v(&mut rng, s.weight_len()),
        v(&mut rng, s.cout),
        v(&mut rng, s.cout),
    );
    let (_, jvp) = rules::conv_jvp(&s, &x, Some(&xd), &w, Some(&b), &dw, Some(&db));
    let f = |h: f64| cpu::conv::conv2d(&s, &axpy(&x, h, &xd), &axpy(&w, h, &dw), Some(&axpy(&b, h, &db)));
    let (fp, fm) = (f(FD_STEP), f(-FD_STEP));
    for i in 0..jvp.len() {
        let fd = (fp[i] - fm[i]) / (2.0 * FD_STEP);
        assert!(rel_err(fd, jvp[i], 1.0 + jvp[i].abs()) < FD_REL_F64, "entry {i}: fd {fd} jvp {}", jvp[i]);
    }
    // The GPU's two-stream pass equals the reference.
    let g = gpu();
    let f32s = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<_>>();
    let (tx, txd, tw, tdw, tb, tdb) = (up(g, &f32s(&x)), up(g, &f32s(&xd)), up(g, &f32s(&w)), up(g, &f32s(&dw)), up(g, &f32s(&b)), up(g, &f32s(&db)));
    let (ty, tyd) = (g.zeros(jvp.len()).unwrap(), g.zeros(jvp.len()).unwrap());
    g.run(|rec| nn::conv_jvp(rec, &s, &tx, Some(&txd), &ConvParams { w: &tw, b: Some(&tb) }, &ConvParams { w: &tdw, b: Some(&tdb) }, &ty, &tyd)).unwrap();
    let scale = vec![(s.kh * s.kw * s.cin_g() * 2 + 2) as f64; jvp.len()];
    compare("conv_jvp tangent", &rd(&tyd), &jvp, &scale, F32_REL).unwrap();
}

#[test]
fn activation_jvp_matches_finite_differences() {
    let mut rng = Rng::new(22);
    // Keep points a step away from the kinks at 0 and 6, where σ is not differentiable.
    let u: Vec<f64> = (0..500)
        .map(|_| loop {
            let v = rng.range(-4.0, 10.0);
            if v.abs() > 1e-3 && (v - 6.0).abs() > 1e-3 {
                break v;
            }
        })
        .collect();
    let ud = f64s(&rng.vec_f32(500));
    for alpha in [0.0, 0.01, 0.1] {
        let (_, jvp) = rules::activation_jvp(alpha, &u, &ud);
        let fp = cpu::elementwise::activation(&axpy(&u, FD_STEP, &ud), alpha);
        let fm = cpu::elementwise::activation(&axpy(&u, -FD_STEP, &ud), alpha);
        for i in 0..u.len() {
            let fd = (fp[i] - fm[i]) / (2.0 * FD_STEP);
            assert!(rel_err(fd, jvp[i], 1.0) < FD_REL_F64, "u={} fd {fd} jvp {}", u[i], jvp[i]);
        }
    }
}

#[test]
fn conv_adjoint_identity() {
    let g = gpu();
    let mut rng = Rng::new(23);
    let specs = checks::conv_specs();
    for s in specs {
        let n_out = s.output_len().unwrap();
        let (x, xd, w, dw, db, u) = (
            rng.vec_f32(s.input_len()),
            rng.vec_f32(s.input_len()),
            rng.vec_f32(s.weight_len()),
            rng.vec_f32(s.weight_len()),
            rng.vec_f32(s.cout),
            rng.vec_f32(n_out),
        );
        let (tx, txd, tw, tdw, tdb, tu) = (up(g, &x), up(g, &xd), up(g, &w), up(g, &dw), up(g, &db), up(g, &u));
        let (ty, tyd) = (g.zeros(n_out).unwrap(), g.zeros(n_out).unwrap());
        let (gx, gw, gb) = (g.zeros(s.input_len()).unwrap(), g.zeros(s.weight_len()).unwrap(), g.zeros(s.cout).unwrap());
        g.run(|rec| {
            nn::conv_jvp(rec, &s, &tx, Some(&txd), &ConvParams { w: &tw, b: None }, &ConvParams { w: &tdw, b: Some(&tdb) }, &ty, &tyd)?;
            nn::conv_vjp(rec, &s, &tx, &tw, &tu, Some(&gx), &gw, Some(&gb), 1.0, 0.0)
        })
        .unwrap();
        let lhs = dot(&f64s(&rd(&tyd)), &f64s(&u));
        let terms = [dot(&f64s(&xd), &f64s(&rd(&gx))), dot(&f64s(&dw), &f64s(&rd(&gw))), dot(&f64s(&db), &f64s(&rd(&gb)))];
        let rhs: f64 = terms.iter().sum();
        let scale = n_out as f64 * (s.kh * s.kw * s.cin_g()) as f64 * 0.1;
        assert!(rel_err(lhs, rhs, scale) < ADJOINT_REL_F32, "{s:?}: ⟨Jv,u⟩={lhs} ⟨v,Jᵀu⟩={rhs}");
    }
}

#[test]
fn activation_pool_add_adjoint_identity() {
    let g = gpu();
    let mut rng = Rng::new(24);
    let (n, hw, c) = (2, 12, 5);
    let len = n * hw * c;
    let u: Vec<f32> = (0..len).map(|_| rng.range(-3.0, 9.0) as f32).collect();
    let (ud, gy) = (rng.vec_f32(len), rng.vec_f32(len));
    let act = LeakyRelu6 { alpha: 0.05 };
    let (tu, tud, tgy) = (up(g, &u), up(g, &ud), up(g, &gy));
    let (y, yd, gu) = (g.zeros(len).unwrap(), g.zeros(len).unwrap(), g.zeros(len).unwrap());
    let (p, pd, gp_in) = (g.zeros(n * c).unwrap(), g.zeros(n * c).unwrap(), rng.vec_f32(n * c));
    let tgp = up(g, &gp_in);
    let gx = g.zeros(len).unwrap();
    let (s, sd) = (g.zeros(len).unwrap(), g.zeros(len).unwrap());
    g.run(|rec| {
        nn::activation_jvp(rec, act, &tu, &tud, &y, &yd)?;
        nn::activation_vjp(rec, act, &tu, &tgy, &gu)?;
        nn::pool_jvp(rec, n, hw, c, &tu, &tud, &p, &pd)?;
        nn::pool_vjp(rec, n, hw, c, &tgp, &gx)?;
        nn::add_jvp(rec, &tu, &tud, &tgy, &tud, &s, &sd)
    })
    .unwrap();
    let close = |a: f64, b: f64, what: &str| assert!(rel_err(a, b, len as f64) < ADJOINT_REL_F32, "{what}: {a} vs {b}");
    close(dot(&f64s(&rd(&yd)), &f64s(&gy)), dot(&f64s(&ud), &f64s(&rd(&gu))), "activation");
    close(dot(&f64s(&rd(&pd)), &f64s(&gp_in)), dot(&f64s(&ud), &f64s(&rd(&gx))), "pool");
    // add: ẏ = ȧ + ḃ with ȧ = ḃ = ud, so ⟨ẏ, gy⟩ = 2⟨ud, gy⟩ (its transpose hands gy to both).
    close(dot(&f64s(&rd(&sd)), &f64s(&gy)), 2.0 * dot(&f64s(&ud), &f64s(&gy)), "add");
}

// ----------------------------------------------------------------------------------------------
// A small network: stem conv (SAME, stride 2) → σ → depthwise 3×3 → σ → pointwise + residual → σ
// → global pool → linear classifier. Linearized in all its parameters, input tangent 0.

struct Net {
    specs: [ConvSpec; 4],
    n: usize,
    alpha: f64,
}

fn net() -> Net {
    let (n, h) = (2, 9);
    let c = |in_h, cin, cout, k, stride, groups, padding| ConvSpec { batch: n, in_h, in_w: in_h, cin, cout, kh: k, kw: k, stride, groups, padding };
    Net {
        specs: [
            c(h, 3, 8, 3, 2, 1, Padding::Same),
            c(5, 8, 8, 3, 1, 8, Padding::Symmetric(1, 1)),
            c(5, 8, 8, 1, 1, 1, Padding::Symmetric(0, 0)),
            c(1, 8, 4, 1, 1, 1, Padding::Symmetric(0, 0)),
        ],
        n,
        alpha: 0.1,
    }
}

/// Parameters as (weights, bias) per conv.
type Params = Vec<(Vec<f64>, Vec<f64>)>;

fn random_params(net: &Net, rng: &mut Rng) -> Params {
    net.specs.iter().map(|s| (f64s(&rng.vec_f32(s.weight_len())), f64s(&rng.vec_f32(s.cout)))).collect()
}

/// CPU f64: (f, ḟ) for parameters θ and direction Δ.
fn cpu_jvp(net: &Net, x: &[f64], th: &Params, d: &Params) -> (Vec<f64>, Vec<f64>) {
    let a = net.alpha;
    let [s1, s2, s3, s4] = &net.specs;
    let (u1, u1d) = rules::conv_jvp(s1, x, None, &th[0].0, Some(&th[0].1), &d[0].0, Some(&d[0].1));
    let (a1, a1d) = rules::activation_jvp(a, &u1, &u1d);
    let (u2, u2d) = rules::conv_jvp(s2, &a1, Some(&a1d), &th[1].0, Some(&th[1].1), &d[1].0, Some(&d[1].1));
    let (a2, a2d) = rules::activation_jvp(a, &u2, &u2d);
    let (u3, u3d) = rules::conv_jvp(s3, &a2, Some(&a2d), &th[2].0, Some(&th[2].1), &d[2].0, Some(&d[2].1));
    let r = cpu::elementwise::axpby(1.0, &a1, 1.0, &u3);
    let rd_ = cpu::elementwise::axpby(1.0, &a1d, 1.0, &u3d);
    let (a3, a3d) = rules::activation_jvp(a, &r, &rd_);
    let hw = 25;
    let p = cpu::elementwise::global_avg_pool(&a3, net.n, hw, 8);
    let pd = cpu::elementwise::global_avg_pool(&a3d, net.n, hw, 8);
    rules::conv_jvp(s4, &p, Some(&pd), &th[3].0, Some(&th[3].1), &d[3].0, Some(&d[3].1))
}

/// Per-layer (weight, bias) gradients.
type LayerGrads = Vec<(Vec<f32>, Vec<f32>)>;

/// GPU: (ḟ, Jᵀ gf as per-layer (gw, gb)).
fn gpu_jvp_vjp(net: &Net, x: &[f32], th: &Params, d: &Params, gf: &[f32]) -> (Vec<f32>, LayerGrads) {
    let g = gpu();
    let act = LeakyRelu6 { alpha: net.alpha as f32 };
    let f32s = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<_>>();
    let tth: Vec<(Tensor, Tensor)> = th.iter().map(|(w, b)| (up(g, &f32s(w)), up(g, &f32s(b)))).collect();
    let tde: Vec<(Tensor, Tensor)> = d.iter().map(|(w, b)| (up(g, &f32s(w)), up(g, &f32s(b)))).collect();
    let grads: Vec<(Tensor, Tensor)> = net.specs.iter().map(|s| (g.zeros(s.weight_len()).unwrap(), g.zeros(s.cout).unwrap())).collect();
    let z = |n: usize| g.zeros(n).unwrap();
    let [s1, s2, s3, s4] = &net.specs;
    let l = s1.output_len().unwrap();
    let (u1, u1d, a1, a1d, u2, u2d, a2, a2d, u3, u3d, r, rdt, a3, a3d) = (z(l), z(l), z(l), z(l), z(l), z(l), z(l), z(l), z(l), z(l), z(l), z(l), z(l), z(l));
    let (p, pd, f, fd) = (z(net.n * 8), z(net.n * 8), z(net.n * 4), z(net.n * 4));
    let (gp, ga3, gr, ga2, gu2, ga1, ga1b, gu1) = (z(net.n * 8), z(l), z(l), z(l), z(l), z(l), z(l), z(l));
    let tx = up(g, x);
    let tgf = up(g, gf);
    let cp = |i: usize| ConvParams { w: &tth[i].0, b: Some(&tth[i].1) };
    let dp = |i: usize| ConvParams { w: &tde[i].0, b: Some(&tde[i].1) };
    g.run(|rec| {
        // forward, two streams
        nn::conv_jvp(rec, s1, &tx, None, &cp(0), &dp(0), &u1, &u1d)?;
        nn::activation_jvp(rec, act, &u1, &u1d, &a1, &a1d)?;
        nn::conv_jvp(rec, s2, &a1, Some(&a1d), &cp(1), &dp(1), &u2, &u2d)?;
        nn::activation_jvp(rec, act, &u2, &u2d, &a2, &a2d)?;
        nn::conv_jvp(rec, s3, &a2, Some(&a2d), &cp(2), &dp(2), &u3, &u3d)?;
        nn::add_jvp(rec, &a1, &a1d, &u3, &u3d, &r, &rdt)?;
        nn::activation_jvp(rec, act, &r, &rdt, &a3, &a3d)?;
        nn::pool_jvp(rec, net.n, 25, 8, &a3, &a3d, &p, &pd)?;
        nn::conv_jvp(rec, s4, &p, Some(&pd), &cp(3), &dp(3), &f, &fd)?;
        // backward at θ0 from gf
        nn::conv_vjp(rec, s4, &p, &tth[3].0, &tgf, Some(&gp), &grads[3].0, Some(&grads[3].1), 1.0, 0.0)?;
        nn::pool_vjp(rec, net.n, 25, 8, &gp, &ga3)?;
        nn::activation_vjp(rec, act, &r, &ga3, &gr)?;
        nn::conv_vjp(rec, s3, &a2, &tth[2].0, &gr, Some(&ga2), &grads[2].0, Some(&grads[2].1), 1.0, 0.0)?;
        nn::activation_vjp(rec, act, &u2, &ga2, &gu2)?;
        nn::conv_vjp(rec, s2, &a1, &tth[1].0, &gu2, Some(&ga1b), &grads[1].0, Some(&grads[1].1), 1.0, 0.0)?;
        lqf::gpu::kernels::elementwise::axpby(rec, 1.0, &gr, 1.0, &ga1b, &ga1)?;
        nn::activation_vjp(rec, act, &u1, &ga1, &gu1)?;
        nn::conv_vjp(rec, s1, &tx, &tth[0].0, &gu1, None, &grads[0].0, Some(&grads[0].1), 1.0, 0.0)
    })
    .unwrap();
    (rd(&fd), grads.iter().map(|(w, b)| (rd(w), rd(b))).collect())
}

#[test]
fn network_jvp_matches_finite_differences_and_gpu() {
    let net = net();
    let mut rng = Rng::new(25);
    let x = rng.vec_f32(net.specs[0].input_len()).iter().map(|v| v * 3.0).collect::<Vec<f32>>();
    let th = random_params(&net, &mut rng);
    let d = random_params(&net, &mut rng);
    let (_, jvp) = cpu_jvp(&net, &f64s(&x), &th, &d);
    let shifted = |h: f64| -> Params { th.iter().zip(&d).map(|((w, b), (dw, db))| (axpy(w, h, dw), axpy(b, h, db))).collect() };
    let zero: Params = d.iter().map(|(w, b)| (vec![0.0; w.len()], vec![0.0; b.len()])).collect();
    let (fp, _) = cpu_jvp(&net, &f64s(&x), &shifted(FD_STEP), &zero);
    let (fm, _) = cpu_jvp(&net, &f64s(&x), &shifted(-FD_STEP), &zero);
    for i in 0..jvp.len() {
        let fd = (fp[i] - fm[i]) / (2.0 * FD_STEP);
        // Second-order terms (products of Δs across layers) cancel in central differences up to O(h²).
        assert!(rel_err(fd, jvp[i], 1.0 + jvp[i].abs()) < 1e-6, "output {i}: fd {fd} jvp {}", jvp[i]);
    }
    let gf = rng.vec_f32(jvp.len());
    let (gpu_jvp, _) = gpu_jvp_vjp(&net, &x, &th, &d, &gf);
    let scale = vec![1.0 + jvp.iter().fold(0.0f64, |m, v| m.max(v.abs())); jvp.len()];
    compare("network JVP, GPU vs CPU", &gpu_jvp, &jvp, &scale, 1e-5).unwrap();
}

#[test]
fn network_adjoint_identity() {
    let net = net();
    let mut rng = Rng::new(26);
    let x = rng.vec_f32(net.specs[0].input_len());
    let th = random_params(&net, &mut rng);
    let d = random_params(&net, &mut rng);
    let gf = rng.vec_f32(net.n * 4);
    let (fd, grads) = gpu_jvp_vjp(&net, &x, &th, &d, &gf);
    let lhs = dot(&f64s(&fd), &f64s(&gf));
    let rhs: f64 = d.iter().zip(&grads).map(|((dw, db), (gw, gb))| dot(dw, &f64s(gw)) + dot(db, &f64s(gb))).sum();
    assert!(rel_err(lhs, rhs, 1.0 + lhs.abs()) < 1e-4, "⟨Jv,u⟩={lhs} ⟨v,Jᵀu⟩={rhs}");
}
