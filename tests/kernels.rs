//! Every GPU kernel against its CPU reference, natively (lavapipe in CI), with named tolerances.
mod common;

use checks::{compare, ELEMENTWISE_REL, F32_REL, SOFTMAX_REL, SPD_RESIDUAL};
use common::{block, f64s, gpu};
use lqf::cpu;
use lqf::gpu::kernels::{
    elementwise as ew,
    gemm::{gemm, Gemm},
    reduce, spd,
};
use lqf::rng::Rng;
use lqf::selftest as checks;

#[test]
fn adapter_is_reported() {
    let g = gpu();
    assert!(!g.adapter.name.is_empty());
    assert!(!g.adapter.backend.is_empty());
    let text = g.adapter.to_string();
    assert!(text.contains(&g.adapter.backend), "{text}");
}

#[test]
fn gemm_all_transposes_batched_odd_sizes() {
    block(checks::gemm_matches_reference(gpu())).unwrap();
}

#[test]
fn gemm_random_shapes() {
    let mut rng = Rng::new(11);
    for _ in 0..24 {
        let pick = |r: &mut Rng| [1, 2, 3, 4, 8, 17, 31, 64, 100, 255][r.below(10)];
        let (m, n, k) = (pick(&mut rng), pick(&mut rng), pick(&mut rng));
        let g = Gemm::new(m, n, k).trans(rng.below(2) == 1, rng.below(2) == 1).batched(1 + rng.below(3)).scale(1.0, 0.0);
        block(checks::check_gemm(gpu(), &g, &mut rng)).unwrap();
    }
}

/// Both code paths on a size large enough to exercise the 64x64 vec4 tiles and their edges.
#[test]
fn gemm_vec4_path_large() {
    let mut rng = Rng::new(12);
    for &(m, n, k) in &[(256, 256, 256), (200, 136, 516), (72, 8, 1024)] {
        for ta in [false, true] {
            for tb in [false, true] {
                let g = Gemm::new(m, n, k).trans(ta, tb);
                assert!(g.vec4_ok(), "{g:?} should take the vec4 path");
                block(checks::check_gemm(gpu(), &g, &mut rng)).unwrap();
            }
        }
    }
}

/// K-FAC statistics: A += s·XᵀX accumulated over two mini-batches equals s·XᵀX of the union.
#[test]
fn outer_product_accumulation() {
    let g = gpu();
    let mut rng = Rng::new(13);
    let (rows, dim) = (37, 21);
    let x = rng.vec_f32(2 * rows * dim);
    let tx = g.upload(&x).unwrap();
    let acc = g.zeros(dim * dim).unwrap();
    let scale = 1.0 / (2 * rows) as f32;
    g.run(|rec| {
        for half in 0..2 {
            let mut s = Gemm::new(dim, dim, rows).trans(true, false).scale(scale, 1.0);
            s.off_a = half * rows * dim;
            s.off_b = half * rows * dim;
            gemm(rec, &s, &tx, &tx, &acc)?;
        }
        Ok(())
    })
    .unwrap();
    let got = block(g.read(&acc)).unwrap();
    let xd = f64s(&x);
    let mut want = vec![0.0; dim * dim];
    cpu::gemm::gemm(&Gemm::new(dim, dim, 2 * rows).trans(true, false).scale(scale, 0.0), &xd, &xd, &mut want);
    let xa: Vec<f64> = xd.iter().map(|v| v.abs()).collect();
    let mut sc = vec![0.0; dim * dim];
    cpu::gemm::gemm(&Gemm::new(dim, dim, 2 * rows).trans(true, false).scale(scale, 0.0), &xa, &xa, &mut sc);
    compare("A += XᵀX", &got, &want, &sc, F32_REL).unwrap();
    for i in 0..dim {
        for j in 0..dim {
            assert_eq!(got[i * dim + j], got[j * dim + i], "statistics must stay exactly symmetric");
        }
    }
}

#[test]
fn gemm_rejects_bad_shapes() {
    let g = gpu();
    let a = g.zeros(10).unwrap();
    let err = g.run(|rec| gemm(rec, &Gemm::new(4, 4, 4), &a, &a, &a)).unwrap_err();
    assert!(matches!(err, lqf::Error::Shape { .. }), "{err}");
}

#[test]
fn conv_forward_backward_all_geometries() {
    block(checks::conv_matches_reference(gpu())).unwrap();
}

#[test]
fn conv_same_padding_is_asymmetric() {
    use lqf::ops::{ConvSpec, Padding};
    let s = ConvSpec { batch: 1, in_h: 224, in_w: 224, cin: 3, cout: 32, kh: 3, kw: 3, stride: 2, groups: 1, padding: Padding::Same };
    let g = s.validate().unwrap();
    assert_eq!((g.out_h, g.out_w, g.pad_top, g.pad_left), (112, 112, 0, 0));
    let s = ConvSpec { kh: 5, kw: 5, in_h: 15, in_w: 15, ..s };
    let g = s.validate().unwrap();
    assert_eq!((g.out_h, g.pad_top), (8, 2));
    let bad = ConvSpec { groups: 5, ..s };
    assert!(bad.validate().is_err());
}

#[test]
fn elementwise_kernels() {
    let g = gpu();
    let mut rng = Rng::new(14);
    let n = 70_001; // not a multiple of the workgroup size
    let u: Vec<f32> = (0..n).map(|_| rng.range(-3.0, 9.0) as f32).collect();
    let t = rng.vec_f32(n);
    let (tu, tt) = (g.upload(&u).unwrap(), g.upload(&t).unwrap());
    let (y, d, s) = (g.zeros(n).unwrap(), g.zeros(n).unwrap(), g.zeros(n).unwrap());
    for alpha in [0.0f32, 0.01, 0.1] {
        g.run(|rec| {
            ew::leaky_relu6(rec, &tu, &y, alpha)?;
            ew::leaky_relu6_grad_mul(rec, &tu, &tt, &d, alpha)?;
            ew::axpby(rec, 0.5, &tu, -2.0, &tt, &s)
        })
        .unwrap();
        let (ud, td) = (f64s(&u), f64s(&t));
        let a = alpha as f64;
        let scale = |v: &[f64]| v.iter().map(|x| x.abs().max(1.0)).collect::<Vec<_>>();
        let want = cpu::elementwise::activation(&ud, a);
        compare("leaky_relu6", &block(g.read(&y)).unwrap(), &want, &scale(&want), ELEMENTWISE_REL).unwrap();
        let want = cpu::elementwise::activation_grad_mul(&ud, &td, a);
        compare("leaky_relu6_grad_mul", &block(g.read(&d)).unwrap(), &want, &scale(&want), ELEMENTWISE_REL).unwrap();
        let want = cpu::elementwise::axpby(0.5, &ud, -2.0, &td);
        compare("axpby", &block(g.read(&s)).unwrap(), &want, &scale(&ud), ELEMENTWISE_REL).unwrap();
    }
}

#[test]
fn mse_residual_and_bias_row() {
    let g = gpu();
    let mut rng = Rng::new(15);
    let (rows, classes) = (33, 7);
    let f = rng.vec_f32(rows * classes);
    let labels: Vec<u32> = (0..rows).map(|_| rng.below(classes) as u32).collect();
    let (tf, tl, tr) = (g.upload(&f).unwrap(), g.upload_u32(&labels).unwrap(), g.zeros(rows * classes).unwrap());
    let b = rng.vec_f32(classes);
    let tb = g.upload(&b).unwrap();
    let ty = g.upload(&f).unwrap();
    g.run(|rec| {
        ew::mse_residual(rec, &tf, &tl, classes, 5.0, &tr)?;
        ew::add_row_vector(rec, &tb, &ty, classes)
    })
    .unwrap();
    let want = cpu::elementwise::mse_residual(&f64s(&f), &labels, classes, 5.0);
    compare("mse_residual", &block(g.read(&tr)).unwrap(), &want, &vec![5.0; want.len()], ELEMENTWISE_REL).unwrap();
    let want: Vec<f64> = f.iter().enumerate().map(|(i, &v)| v as f64 + b[i % classes] as f64).collect();
    compare("add_row_vector", &block(g.read(&ty)).unwrap(), &want, &vec![2.0; want.len()], ELEMENTWISE_REL).unwrap();
    // A label outside the class range is a shape error on the host side only if lengths disagree.
    assert!(g.run(|rec| ew::mse_residual(rec, &tf, &tl, 8, 1.0, &tr)).is_err());
}

#[test]
fn pool_softmax_argmax() {
    let g = gpu();
    let mut rng = Rng::new(16);
    let (n, hw, c) = (3, 49, 19);
    let x = rng.vec_f32(n * hw * c);
    let gy = rng.vec_f32(n * c);
    let (tx, tg) = (g.upload(&x).unwrap(), g.upload(&gy).unwrap());
    let (pooled, back) = (g.zeros(n * c).unwrap(), g.zeros(n * hw * c).unwrap());
    let rows = 37;
    let logits: Vec<f32> = rng.vec_f32(rows * c).iter().map(|v| v * 30.0).collect();
    let tl = g.upload(&logits).unwrap();
    let (sm, am) = (g.zeros(rows * c).unwrap(), g.zeros(rows).unwrap());
    g.run(|rec| {
        reduce::global_avg_pool(rec, &tx, n, hw, c, &pooled)?;
        reduce::global_avg_pool_backward(rec, &tg, n, hw, c, &back)?;
        reduce::softmax_rows(rec, &tl, rows, c, &sm)?;
        reduce::argmax_rows(rec, &tl, rows, c, &am)
    })
    .unwrap();
    let want = cpu::elementwise::global_avg_pool(&f64s(&x), n, hw, c);
    compare("global_avg_pool", &block(g.read(&pooled)).unwrap(), &want, &vec![1.0; want.len()], F32_REL * 10.0).unwrap();
    let want = cpu::elementwise::global_avg_pool_backward(&f64s(&gy), n, hw, c);
    compare("global_avg_pool_backward", &block(g.read(&back)).unwrap(), &want, &vec![1.0; want.len()], ELEMENTWISE_REL).unwrap();
    let want = cpu::elementwise::softmax_rows(&f64s(&logits), c);
    let got = block(g.read(&sm)).unwrap();
    compare("softmax_rows", &got, &want, &vec![1.0; want.len()], SOFTMAX_REL).unwrap();
    for r in got.chunks(c) {
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    assert_eq!(block(g.read_u32(&am)).unwrap(), cpu::elementwise::argmax_rows(&logits, c));
}

#[test]
fn softmax_cross_entropy_is_the_loss_and_its_gradient() {
    let g = gpu();
    let mut rng = Rng::new(17);
    let (rows, c) = (41, 9);
    // The first row's logits are large: the max subtraction must keep exp finite.
    let f: Vec<f32> = rng.vec_f32(rows * c).iter().enumerate().map(|(i, v)| v * if i < c { 80.0 } else { 4.0 }).collect();
    let labels: Vec<u32> = (0..rows).map(|_| rng.below(c) as u32).collect();
    let (tf, tl) = (g.upload(&f).unwrap(), g.upload_u32(&labels).unwrap());
    let (tr, tloss) = (g.zeros(rows * c).unwrap(), g.zeros(rows).unwrap());
    g.run(|rec| reduce::softmax_cross_entropy(rec, &tf, &tl, rows, c, &tr, &tloss)).unwrap();
    let fd = f64s(&f);
    let (want_r, want_loss) = cpu::elementwise::softmax_cross_entropy(&fd, &labels, c);
    let row_scale: Vec<f64> = fd.chunks(c).map(|row| row.iter().fold(1.0f64, |a, v| a.max(v.abs()))).collect();
    compare("softmax_cross_entropy r", &block(g.read(&tr)).unwrap(), &want_r, &vec![1.0; want_r.len()], SOFTMAX_REL).unwrap();
    compare("softmax_cross_entropy loss", &block(g.read(&tloss)).unwrap(), &want_loss, &row_scale, SOFTMAX_REL).unwrap();
    // The reference residual is the loss's gradient: central differences in f64.
    let h = 1e-6;
    for i in (0..rows * c).step_by(5) {
        let (row, mut up, mut down) = (i / c, fd.clone(), fd.clone());
        up[i] += h;
        down[i] -= h;
        let at = |x: &[f64]| cpu::elementwise::softmax_cross_entropy(&x[row * c..(row + 1) * c], &labels[row..row + 1], c).1[0];
        let diff = (at(&up) - at(&down)) / (2.0 * h);
        assert!((diff - want_r[i]).abs() < 1e-7, "entry {i}: finite difference {diff} vs residual {}", want_r[i]);
    }
    // Losses are non-negative, residual rows sum to zero.
    assert!(want_loss.iter().all(|&l| l >= 0.0));
    assert!(block(g.read(&tr)).unwrap().chunks(c).all(|r| r.iter().sum::<f32>().abs() < 1e-5));
    assert!(g.run(|rec| reduce::softmax_cross_entropy(rec, &tf, &tl, rows + 1, c, &tr, &tloss)).is_err());
}

/// A well-conditioned SPD matrix like a damped K-FAC factor: XᵀX/rows + damping·I.
fn spd_matrix(n: usize, rng: &mut Rng) -> Vec<f64> {
    let rows = n + 8;
    let x: Vec<f64> = (0..rows * n).map(|_| rng.range(-1.0, 1.0)).collect();
    let mut a = vec![0.0; n * n];
    cpu::gemm::gemm(&Gemm::new(n, n, rows).trans(true, false).scale(1.0 / rows as f32, 0.0), &x, &x, &mut a);
    for i in 0..n {
        a[i * n + i] += 0.1;
    }
    a
}

/// ‖A·A⁻¹ − I‖_max in f64 with the f32 inverse from the GPU.
fn residual(a: &[f64], inv: &[f32], n: usize) -> f64 {
    let mut prod = vec![0.0; n * n];
    cpu::gemm::gemm(&Gemm::new(n, n, n), a, &f64s(inv), &mut prod);
    (0..n * n).map(|i| (prod[i] - if i % (n + 1) == 0 { 1.0 } else { 0.0 }).abs()).fold(0.0, f64::max)
}

#[test]
fn spd_inverse_residual() {
    let g = gpu();
    let mut rng = Rng::new(17);
    for &n in &[1usize, 3, 17, 64, 65, 130, 300] {
        let a = spd_matrix(n, &mut rng);
        let ta = g.upload(&a.iter().map(|&v| v as f32).collect::<Vec<_>>()).unwrap();
        let inv = block(spd::spd_inverse(g, &ta, n)).unwrap();
        let got = block(g.read(&inv)).unwrap();
        let r = residual(&a, &got, n);
        assert!(r < SPD_RESIDUAL, "n={n}: ‖A·A⁻¹ − I‖ = {r:.2e}");
        // And it agrees with the Cholesky reference.
        let want = cpu::linalg::spd_inverse(&a, n).unwrap();
        let norm = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = got.iter().zip(&want).fold(0.0f64, |m, (x, y)| m.max((*x as f64 - y).abs()));
        assert!(diff / norm < SPD_RESIDUAL, "n={n}: vs Cholesky {:.2e}", diff / norm);
    }
}

#[test]
fn spd_inverse_rejects_indefinite() {
    let g = gpu();
    let n = 70;
    let mut a = vec![0.0f32; n * n];
    for i in 0..n {
        a[i * n + i] = if i == 66 { -1.0 } else { 2.0 };
    }
    let ta = g.upload(&a).unwrap();
    let err = block(spd::spd_inverse(g, &ta, n)).unwrap_err();
    assert!(matches!(err, lqf::Error::NotPositiveDefinite { row: 64 }), "{err}");
    let nan = g.upload(&[f32::NAN; 4]).unwrap();
    assert!(block(spd::spd_inverse(g, &nan, 2)).is_err());
    assert!(cpu::linalg::spd_inverse(&[1.0, 2.0, 2.0, 1.0], 2).is_err());
}

/// The host-side eigensolver of the deflated solver's Galerkin matrix (`recycle`): A·v = λ·v
/// and VᵀV = I to this tolerance, on symmetric matrices with a zero and a negative eigenvalue
/// and a repeated one.
const EIGEN_RESIDUAL: f64 = 1e-10;

#[test]
fn symmetric_eigen_decomposes() {
    let mut rng = Rng::new(19);
    for &n in &[1usize, 2, 7, 40] {
        let b: Vec<f64> = rng.vec_f32(n * n).iter().map(|&v| v as f64).collect();
        // A = B + Bᵀ (indefinite), plus a rank-deficient case: A = u uᵀ (one eigenvalue ‖u‖², the rest 0).
        let sym: Vec<f64> = (0..n * n).map(|k| b[k] + b[(k % n) * n + k / n]).collect();
        let rank1: Vec<f64> = (0..n * n).map(|k| b[k / n] * b[k % n]).collect();
        for a in [sym, rank1, (0..n * n).map(|k| if k / n == k % n { 3.0 } else { 0.0 }).collect::<Vec<f64>>()] {
            let (values, vectors) = cpu::linalg::symmetric_eigen(&a, n);
            let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for e in 0..n {
                for i in 0..n {
                    let av: f64 = (0..n).map(|k| a[i * n + k] * vectors[k * n + e]).sum();
                    assert!((av - values[e] * vectors[i * n + e]).abs() < EIGEN_RESIDUAL * scale * n as f64, "n={n}: A·v ≠ λ·v");
                }
                for f in 0..n {
                    let dot: f64 = (0..n).map(|k| vectors[k * n + e] * vectors[k * n + f]).sum();
                    assert!((dot - if e == f { 1.0 } else { 0.0 }).abs() < EIGEN_RESIDUAL * n as f64, "n={n}: VᵀV ≠ I");
                }
            }
        }
    }
}

/// No adapter of the requested kind: a typed, readable error rather than a panic.
#[cfg(target_os = "linux")]
#[test]
fn missing_adapter_is_a_typed_error() {
    if std::env::var_os("WGPU_BACKEND").is_some() {
        return; // the variable overrides the choice below
    }
    let err = block(lqf::gpu::Gpu::new(lqf::gpu::BackendChoice::Metal)).err().expect("no Metal on Linux");
    assert!(matches!(err, lqf::Error::NoAdapter(_)), "{err}");
    assert!(err.to_string().contains("mesa-vulkan-drivers"), "{err}");
}

/// Dot products from per-workgroup partial sums, several pairs sharing one buffer (offsets).
#[test]
fn dot_products_match_the_f64_sum() {
    let g = gpu();
    let mut rng = Rng::new(18);
    let lens = [1usize, 255, 16_384, 70_001];
    let xs: Vec<Vec<f32>> = lens.iter().map(|&n| rng.vec_f32(n)).collect();
    let ys: Vec<Vec<f32>> = lens.iter().map(|&n| rng.vec_f32(n)).collect();
    let tx: Vec<_> = xs.iter().map(|v| g.upload(v).unwrap()).collect();
    let ty: Vec<_> = ys.iter().map(|v| g.upload(v).unwrap()).collect();
    let pairs: Vec<_> = tx.iter().zip(&ty).collect();
    let got = block(lqf::lqf::params::dot_sum(g, &pairs)).unwrap();
    let want: f64 = xs.iter().zip(&ys).flat_map(|(x, y)| x.iter().zip(y).map(|(a, b)| *a as f64 * *b as f64)).sum();
    let scale: f64 = xs.iter().zip(&ys).flat_map(|(x, y)| x.iter().zip(y).map(|(a, b)| (*a as f64 * *b as f64).abs())).sum();
    assert!((got - want).abs() <= F32_REL * scale, "dot {got} vs {want} (scale {scale})");
    let one = block(lqf::lqf::params::dot_sum(g, &[(&tx[3], &ty[3])])).unwrap();
    let want3: f64 = xs[3].iter().zip(&ys[3]).map(|(a, b)| *a as f64 * *b as f64).sum();
    assert!((one - want3).abs() <= F32_REL * scale, "single pair {one} vs {want3}");
}

/// Reductions longer than a loop may run on lavapipe. llvmpipe ends every loop nest after 65535
/// iterations without a word, so a bias gradient over 6 images of 112×112 pixels (75 264 rows)
/// summed only the first 65 535 (RESULTS.md, depth 16). Each reduction here runs well past
/// that in one launch — GEMM's K, column sums, the depthwise weight gradient and its K-FAC
/// patch statistics (loops over images × rows × columns) — and must equal the f64 reference
/// to F32_REL of the sum of absolute terms; with one slice (`LOOP_BUDGET` = ∞) they did not.
#[test]
fn reductions_past_the_cpu_drivers_loop_limit() {
    use lqf::gpu::kernels::{conv as kconv, kfac as kk};
    use lqf::ops::{ConvSpec, Padding};
    let g = gpu();
    let mut rng = Rng::new(17);
    // GEMM: both kernels (odd sizes take the scalar one), alpha and beta, K of 70 001 and 270 000.
    for gm in [
        Gemm::new(3, 5, 70_001).trans(true, false).scale(0.5, 0.75),
        Gemm::new(4, 8, 270_000).trans(true, false).scale(1.0, 1.0),
        Gemm::new(4, 8, 70_000).scale(1.0, 0.0),
    ] {
        block(checks::check_gemm(g, &gm, &mut rng)).unwrap();
    }
    // Column sums (bias gradients) and sums of squares (K-FAC's G for depthwise layers).
    let (rows, cols) = (70_001, 6);
    let x = rng.vec_f32(rows * cols);
    let (tx, sum, sumsq) = (g.upload(&x).unwrap(), g.upload(&[1.0; 6]).unwrap(), g.upload(&[1.0; 6]).unwrap());
    g.run(|rec| {
        reduce::col_sum(rec, &tx, rows, cols, &sum, 0.5, 2.0)?;
        kk::col_sumsq(rec, &tx, rows, cols, &sumsq, 0.5, 2.0)
    })
    .unwrap();
    let x64 = f64s(&x);
    let want_sum: Vec<f64> = cpu::conv::col_sum(&x64, cols).iter().map(|v| 0.5 * v + 2.0).collect();
    let want_sq: Vec<f64> = cpu::kfac::col_sumsq(&x64, cols).iter().map(|v| 0.5 * v + 2.0).collect();
    let abs_sum: Vec<f64> = cpu::conv::col_sum(&x64.iter().map(|v| v.abs()).collect::<Vec<_>>(), cols).iter().map(|v| 0.5 * v + 2.0).collect();
    compare("col_sum, 70 001 rows", &block(g.read(&sum)).unwrap(), &want_sum, &abs_sum, F32_REL).unwrap();
    compare("col_sumsq, 70 001 rows", &block(g.read(&sumsq)).unwrap(), &want_sq, &want_sq, F32_REL).unwrap();
    // No rows at all still scales what the output held by beta, as one launch always did.
    g.run(|rec| {
        reduce::col_sum(rec, &tx, 0, cols, &sum, 0.5, 2.0)?;
        kk::col_sumsq(rec, &tx, 0, cols, &sumsq, 0.5, 2.0)
    })
    .unwrap();
    let doubled = |v: &[f64]| v.iter().map(|x| 2.0 * x).collect::<Vec<_>>();
    compare("col_sum, no rows", &block(g.read(&sum)).unwrap(), &doubled(&want_sum), &doubled(&abs_sum), F32_REL).unwrap();
    compare("col_sumsq, no rows", &block(g.read(&sumsq)).unwrap(), &doubled(&want_sq), &doubled(&want_sq), F32_REL).unwrap();
    // A depthwise 3×3 layer over 6 images of 112×112: 75 264 output positions per weight.
    let s = ConvSpec { batch: 6, in_h: 112, in_w: 112, cin: 8, cout: 8, kh: 3, kw: 3, stride: 1, groups: 8, padding: Padding::Symmetric(1, 1) };
    let (x, dy) = (rng.vec_f32(s.input_len()), rng.vec_f32(s.output_len().unwrap()));
    let (tx, tdy, dw) = (g.upload(&x).unwrap(), g.upload(&dy).unwrap(), g.zeros(s.weight_len()).unwrap());
    g.run(|rec| kconv::conv2d_backward_weight(rec, &s, &tx, &tdy, &dw, None, 1.0, 0.0)).unwrap();
    let (x64, dy64) = (f64s(&x), f64s(&dy));
    let abs = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let scale = cpu::conv::conv2d_backward_weight(&s, &abs(&x64), &abs(&dy64));
    compare("conv2d_backward_weight, 75 264 positions", &block(g.read(&dw)).unwrap(), &cpu::conv::conv2d_backward_weight(&s, &x64, &dy64), &scale, F32_REL)
        .unwrap();
    for positions in [kk::Positions::Expand, kk::Positions::Reduce] {
        let d = s.kh * s.kw + 1;
        let acc = g.zeros(s.cout * d * d).unwrap();
        g.run(|rec| kk::depthwise_patch_stats(rec, &s, &tx, &acc, 1.0, 0.0, positions)).unwrap();
        let want = cpu::kfac::depthwise_patch_stats(&s, &x64, positions);
        let scale = cpu::kfac::depthwise_patch_stats(&s, &abs(&x64), positions);
        compare(&format!("depthwise_patch_stats {positions:?}, 75 264 positions"), &block(g.read(&acc)).unwrap(), &want, &scale, F32_REL).unwrap();
    }
}
