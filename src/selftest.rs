//! Kernel checks against the CPU references, as library code so one body runs on every device:
//! the native tests (`tests/kernels.rs`, lavapipe or a real GPU), the browser tests (`tests/web.rs`,
//! WebGPU in headless Chromium), `lqf selftest` and the web page's self-test on a user's own GPU.
//! Each returns Err with a description instead of panicking, so every harness can report it.
use crate::cpu;
use crate::gpu::kernels::{
    conv,
    gemm::{gemm, gemm_fused, Epilogue, Gemm},
};
use crate::gpu::Gpu;
use crate::ops::{ConvSpec, LeakyRelu6, Padding};
use crate::rng::Rng;

/// f32 kernels vs f64 references: |gpu − ref| ≤ F32_REL · (|A|·|B|)ᵢⱼ, i.e. relative to the sum
/// of absolute products that entry accumulates (the natural scale of f32 rounding error).
pub const F32_REL: f64 = 2e-6;
/// Element-wise kernels do one or two roundings.
pub const ELEMENTWISE_REL: f64 = 1e-6;
/// Softmax and cross-entropy: WGSL's exp and log are accurate to a few ulp, not correctly rounded;
/// errors are relative to the row's largest |logit| (at least 1).
pub const SOFTMAX_REL: f64 = 1e-5;
/// SPD inverse in f32: ‖A·A⁻¹ − I‖_max for matrices with condition number ≲ 1e2.
pub const SPD_RESIDUAL: f64 = 1e-4;

/// Compare against a reference with a per-entry scale; returns the worst normalised error.
pub fn compare(name: &str, got: &[f32], want: &[f64], scale: &[f64], tol: f64) -> Result<f64, String> {
    if got.len() != want.len() {
        return Err(format!("{name}: length {} != {}", got.len(), want.len()));
    }
    let mut worst = 0.0f64;
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i]).abs() / scale[i].max(1e-30);
        if !err.is_finite() || err > tol {
            return Err(format!("{name}: entry {i}: got {} want {} (scale {}, err {err:.2e} > tol {tol:.1e})", got[i], want[i], scale[i]));
        }
        worst = worst.max(err);
    }
    Ok(worst)
}

fn abs(x: &[f32]) -> Vec<f64> {
    x.iter().map(|v| v.abs() as f64).collect()
}

/// One GEMM configuration on the GPU against the f64 reference (C starts non-zero so beta is tested).
pub async fn check_gemm(gpu: &Gpu, g: &Gemm, rng: &mut Rng) -> Result<f64, String> {
    let rows_a = if g.trans_a { g.k } else { g.m };
    let rows_b = if g.trans_b { g.n } else { g.k };
    let len = |off: usize, stride: usize, rows: usize, ld: usize| off + stride * (g.batch - 1) + rows * ld;
    let a = rng.vec_f32(len(g.off_a, g.stride_a, rows_a, g.lda));
    let b = rng.vec_f32(len(g.off_b, g.stride_b, rows_b, g.ldb));
    let c0 = rng.vec_f32(len(g.off_c, g.stride_c, g.m, g.ldc));
    let e = |e: crate::Error| e.to_string();
    let (ta, tb, tc) = (gpu.upload(&a).map_err(e)?, gpu.upload(&b).map_err(e)?, gpu.upload(&c0).map_err(e)?);
    gpu.run(|rec| gemm(rec, g, &ta, &tb, &tc)).map_err(|e| e.to_string())?;
    let got = gpu.read(&tc).await.map_err(|e| e.to_string())?;
    let mut want: Vec<f64> = cpu::cast(&c0);
    cpu::gemm::gemm(g, &cpu::cast::<f32, f64>(&a), &cpu::cast::<f32, f64>(&b), &mut want);
    let mut scale = abs(&c0);
    let mut gs = *g;
    gs.alpha = g.alpha.abs();
    gs.beta = g.beta.abs();
    cpu::gemm::gemm(&gs, &abs(&a), &abs(&b), &mut scale);
    for s in scale.iter_mut() {
        *s = s.max(1.0);
    }
    compare(&format!("gemm {g:?}"), &got, &want, &scale, F32_REL)
}

/// The fused bias + leaky-ReLU6 epilogue, on both GEMM paths (aligned and odd shapes).
pub async fn check_gemm_epilogue(gpu: &Gpu, rng: &mut Rng) -> Result<(), String> {
    let e = |e: crate::Error| e.to_string();
    // The last two run longer than the K loop may (`LOOP_BUDGET`): slices, epilogue on the last.
    for &(m, n, k) in &[(37, 24, 16), (9, 7, 5), (70, 136, 32), (4, 8, 40000), (3, 5, 40001)] {
        let g = Gemm::new(m, n, k);
        let (a, b, bias) = (rng.vec_f32(m * k), rng.vec_f32(k * n), rng.vec_f32(n));
        let (ta, tb, tbias, tc) = (gpu.upload(&a).map_err(e)?, gpu.upload(&b).map_err(e)?, gpu.upload(&bias).map_err(e)?, gpu.zeros(m * n).map_err(e)?);
        let act = LeakyRelu6 { alpha: 0.1 };
        gpu.run(|rec| gemm_fused(rec, &g, &ta, &tb, &tc, Epilogue { bias: Some(&tbias), act: Some(act) })).map_err(e)?;
        let mut want = vec![0.0f64; m * n];
        cpu::gemm::gemm(&g, &cpu::cast::<f32, f64>(&a), &cpu::cast::<f32, f64>(&b), &mut want);
        cpu::gemm::epilogue(&mut want, m, n, n, Some(&cpu::cast::<f32, f64>(&bias)), Some(0.1));
        let mut scale = vec![0.0f64; m * n];
        cpu::gemm::gemm(&g, &abs(&a), &abs(&b), &mut scale);
        let scale: Vec<f64> = scale.iter().map(|v| v + 1.0).collect();
        compare(&format!("gemm epilogue {m}x{n}x{k} (vec4 path: {})", g.vec4_ok()), &gpu.read(&tc).await.map_err(e)?, &want, &scale, F32_REL)?;
    }
    Ok(())
}

/// GEMM over every transpose combination, odd and aligned sizes, batching, offsets and alpha/beta.
pub async fn gemm_matches_reference(gpu: &Gpu) -> Result<(), String> {
    let mut rng = Rng::new(1);
    let shapes = [(1, 1, 1), (3, 5, 7), (17, 1, 255), (255, 17, 3), (1, 64, 9), (64, 64, 64), (40, 24, 36), (33, 129, 68)];
    for &(m, n, k) in &shapes {
        for ta in [false, true] {
            for tb in [false, true] {
                let g = Gemm::new(m, n, k).trans(ta, tb).scale(0.75, if (m + n) % 2 == 0 { 0.5 } else { 0.0 });
                check_gemm(gpu, &g, &mut rng).await?;
            }
        }
    }
    // Batched, with a broadcast operand (stride 0) and padded leading dimensions / offsets.
    let mut g = Gemm::new(12, 20, 16).batched(3);
    g.stride_b = 0;
    check_gemm(gpu, &g, &mut rng).await?;
    let mut g = Gemm::new(9, 11, 13).batched(2).trans(true, false);
    g.lda += 3;
    g.ldb += 5;
    g.ldc += 2;
    g.off_a = 7;
    g.off_c = 1;
    g.stride_a = g.lda * 13 + 4;
    g.stride_b = g.ldb * 13;
    g.stride_c = g.ldc * 9 + 3;
    check_gemm(gpu, &g, &mut rng).await?;
    check_gemm_epilogue(gpu, &mut rng).await
}

/// Convolution forward, backward data and backward weight against the f64 reference.
pub async fn check_conv(gpu: &Gpu, s: &ConvSpec, rng: &mut Rng) -> Result<(), String> {
    let e = |e: crate::Error| e.to_string();
    let out_len = s.output_len().map_err(e)?;
    let x = rng.vec_f32(s.input_len());
    let w = rng.vec_f32(s.weight_len());
    let b = rng.vec_f32(s.cout);
    let gy = rng.vec_f32(out_len);
    let y_prev = rng.vec_f32(out_len);
    let (tx, tw, tb, tgy) = (gpu.upload(&x).map_err(e)?, gpu.upload(&w).map_err(e)?, gpu.upload(&b).map_err(e)?, gpu.upload(&gy).map_err(e)?);
    let ty = gpu.zeros(out_len).map_err(e)?;
    let tact = gpu.zeros(out_len).map_err(e)?;
    let tacc = gpu.upload(&y_prev).map_err(e)?;
    let tgx = gpu.zeros(s.input_len()).map_err(e)?;
    let tgw = gpu.upload(&vec![0.25; s.weight_len()]).map_err(e)?;
    let tgb = gpu.upload(&vec![0.25; s.cout]).map_err(e)?;
    gpu.run(|rec| {
        conv::conv2d(rec, s, &tx, &tw, Some(&tb), &ty, false)?;
        conv::conv2d_act(rec, s, &tx, &tw, Some(&tb), Some(LeakyRelu6 { alpha: 0.1 }), &tact, false)?;
        conv::conv2d(rec, s, &tx, &tw, None, &tacc, true)?;
        conv::conv2d_backward_data(rec, s, &tgy, &tw, &tgx)?;
        // alpha = 2, beta = 1: accumulate onto the 0.25 already there.
        conv::conv2d_backward_weight(rec, s, &tx, &tgy, &tgw, Some(&tgb), 2.0, 1.0)
    })
    .map_err(e)?;
    let (xd, wd, bd, gyd): (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) = (cpu::cast(&x), cpu::cast(&w), cpu::cast(&b), cpu::cast(&gy));
    let (xa, wa, gya) = (abs(&x), abs(&w), abs(&gy));
    let name = format!("{s:?}");
    let ones = vec![1.0; s.cout];
    // forward with bias
    let want = cpu::conv::conv2d(s, &xd, &wd, Some(&bd));
    let scale = cpu::conv::conv2d(s, &xa, &wa, Some(&ones));
    compare(&format!("conv2d {name}"), &gpu.read(&ty).await.map_err(e)?, &want, &scale, F32_REL)?;
    let want_act = cpu::elementwise::activation(&want, 0.1);
    compare(&format!("conv2d + leaky_relu6 {name}"), &gpu.read(&tact).await.map_err(e)?, &want_act, &scale, F32_REL)?;
    // forward accumulate, no bias
    let mut want = cpu::conv::conv2d(s, &xd, &wd, None);
    let mut scale = cpu::conv::conv2d(s, &xa, &wa, None);
    for i in 0..want.len() {
        want[i] += y_prev[i] as f64;
        scale[i] += (y_prev[i].abs() as f64).max(1.0);
    }
    compare(&format!("conv2d accumulate {name}"), &gpu.read(&tacc).await.map_err(e)?, &want, &scale, F32_REL)?;
    // backward data
    let want = cpu::conv::conv2d_backward_data(s, &gyd, &wd);
    let scale: Vec<f64> = cpu::conv::conv2d_backward_data(s, &gya, &wa).iter().map(|v| v.max(1.0)).collect();
    compare(&format!("conv2d_backward_data {name}"), &gpu.read(&tgx).await.map_err(e)?, &want, &scale, F32_REL)?;
    // backward weight and bias
    let want: Vec<f64> = cpu::conv::conv2d_backward_weight(s, &xd, &gyd).iter().map(|v| 2.0 * v + 0.25).collect();
    let scale: Vec<f64> = cpu::conv::conv2d_backward_weight(s, &xa, &gya).iter().map(|v| (2.0 * v).max(1.0)).collect();
    compare(&format!("conv2d_backward_weight {name}"), &gpu.read(&tgw).await.map_err(e)?, &want, &scale, F32_REL)?;
    let want: Vec<f64> = cpu::conv::col_sum(&gyd, s.cout).iter().map(|v| 2.0 * v + 0.25).collect();
    let scale: Vec<f64> = cpu::conv::col_sum(&gya, s.cout).iter().map(|v| (2.0 * v).max(1.0)).collect();
    compare(&format!("conv2d bias grad {name}"), &gpu.read(&tgb).await.map_err(e)?, &want, &scale, F32_REL)?;
    Ok(())
}

pub fn conv_specs() -> Vec<ConvSpec> {
    let c = |batch, hw: (usize, usize), cin, cout, k: (usize, usize), stride, groups, padding| ConvSpec {
        batch,
        in_h: hw.0,
        in_w: hw.1,
        cin,
        cout,
        kh: k.0,
        kw: k.1,
        stride,
        groups,
        padding,
    };
    vec![
        c(2, (9, 7), 3, 8, (3, 3), 2, 1, Padding::Symmetric(1, 1)),      // MobileNetV2 stem, odd size
        c(2, (8, 8), 3, 5, (3, 3), 2, 1, Padding::Same),                 // EfficientNet stem: pads 0 top/left, 1 bottom/right
        c(1, (7, 9), 6, 6, (3, 3), 1, 6, Padding::Symmetric(1, 1)),      // depthwise, channels not in vec4s
        c(2, (9, 11), 8, 8, (3, 3), 1, 8, Padding::Symmetric(1, 1)),     // depthwise vec4 kernel, ragged row tiles
        c(1, (10, 13), 12, 12, (3, 3), 2, 12, Padding::Symmetric(1, 1)), // depthwise vec4, stride 2
        c(2, (9, 7), 8, 8, (5, 5), 2, 8, Padding::Same),                 // depthwise vec4, 5x5 SAME (EfficientNet)
        c(2, (11, 10), 5, 5, (5, 5), 2, 5, Padding::Same),               // depthwise 5x5 stride 2, SAME
        c(1, (6, 5), 8, 12, (1, 1), 1, 1, Padding::Symmetric(0, 0)),     // pointwise -> GEMM path
        c(1, (6, 6), 4, 6, (3, 1), 1, 2, Padding::Symmetric(1, 0)),      // grouped, non-square
        c(3, (1, 1), 17, 3, (1, 1), 1, 1, Padding::Symmetric(0, 0)),     // a classifier as a 1x1 conv
        c(1, (5, 5), 2, 3, (2, 2), 3, 1, Padding::Symmetric(0, 0)),      // stride larger than kernel
        c(1, (7, 6), 5, 12, (5, 5), 1, 1, Padding::Same),                // dense vec4 kernel, 5x5 SAME
    ]
}

pub async fn conv_matches_reference(gpu: &Gpu) -> Result<(), String> {
    let mut rng = Rng::new(2);
    for s in conv_specs() {
        check_conv(gpu, &s, &mut rng).await?;
    }
    Ok(())
}

/// Everything above, for `lqf selftest` and the web page: Ok(summary) or the first failure.
pub async fn run_all(gpu: &Gpu) -> Result<String, String> {
    gemm_matches_reference(gpu).await?;
    conv_matches_reference(gpu).await?;
    Ok(format!(
        "GEMM (all transposes, batched, odd sizes) and conv2d (forward, backward data and weight; {} geometries) match the CPU reference on {}",
        conv_specs().len(),
        gpu.adapter
    ))
}
