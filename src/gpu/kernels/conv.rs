//! Launchers for `shaders/conv.wgsl`. Pointwise (1×1, stride 1, ungrouped) convolutions are
//! dispatched to the GEMM kernel instead: over NHWC they are exactly `[pixels, cin]·[cin, cout]`.
use super::gemm::{gemm, gemm_fused, Epilogue, Gemm};
use super::{check_len, image_iterations, loop_slices, reduce, words};
use crate::error::Result;
use crate::gpu::{groups_1d, pipeline, Recorder, Tensor};
use crate::ops::{ConvSpec, LeakyRelu6};

fn params(s: &ConvSpec, has_bias: bool, accumulate: bool, act: Option<LeakyRelu6>, alpha: f32, beta: f32) -> Result<Vec<u8>> {
    params_from(s, 0, has_bias, accumulate, act, alpha, beta)
}

/// `params` for images `first..s.batch` (the kernels that loop over images start at `first`).
fn params_from(s: &ConvSpec, first: usize, has_bias: bool, accumulate: bool, act: Option<LeakyRelu6>, alpha: f32, beta: f32) -> Result<Vec<u8>> {
    let g = s.validate()?;
    let u = |x: usize| x as u32;
    let mut p = words(&[
        u(s.batch),
        u(s.in_h),
        u(s.in_w),
        u(s.cin),
        u(s.cout),
        u(s.kh),
        u(s.kw),
        u(s.stride),
        u(s.groups),
        u(g.out_h),
        u(g.out_w),
        u(g.pad_top),
        u(g.pad_left),
        has_bias as u32,
        accumulate as u32,
        act.is_some() as u32,
    ]);
    p.extend(words(&[alpha.to_bits(), beta.to_bits(), act.map(|a| a.alpha).unwrap_or(0.0).to_bits(), first as u32]));
    Ok(p)
}

/// Depthwise with channel multiplier 1 and channels in vec4s: the fast depthwise kernel.
pub fn is_depthwise_vec4(s: &ConvSpec) -> bool {
    s.groups == s.cin && s.cin == s.cout && s.cin.is_multiple_of(4)
}

fn pixels_out(s: &ConvSpec) -> Result<usize> {
    let g = s.validate()?;
    Ok(s.batch * g.out_h * g.out_w)
}

/// `y = conv(x, w) + bias` (or `y += ...` when `accumulate`).
pub fn conv2d(rec: &mut Recorder<'_>, s: &ConvSpec, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, y: &Tensor, accumulate: bool) -> Result<()> {
    conv2d_act(rec, s, x, w, bias, None, y, accumulate)
}

/// `y = act(conv(x, w) + bias [+ y])`: convolution with the activation fused into its epilogue.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_act(
    rec: &mut Recorder<'_>,
    s: &ConvSpec,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    act: Option<LeakyRelu6>,
    y: &Tensor,
    accumulate: bool,
) -> Result<()> {
    s.validate()?;
    check_len("conv2d x", x, s.input_len())?;
    check_len("conv2d w", w, s.weight_len())?;
    check_len("conv2d y", y, s.output_len()?)?;
    if let Some(b) = bias {
        check_len("conv2d bias", b, s.cout)?;
    }
    if s.is_pointwise() {
        let g = Gemm::new(pixels_out(s)?, s.cout, s.cin).scale(1.0, if accumulate { 1.0 } else { 0.0 });
        return gemm_fused(rec, &g, x, w, y, Epilogue { bias, act });
    }
    let dummy;
    let bias_t = match bias {
        Some(b) => b,
        None => {
            // vec4 bindings need at least 16 bytes.
            dummy = rec.gpu().zeros(4)?;
            &dummy
        }
    };
    let p = params(s, bias.is_some(), accumulate, act, 1.0, 0.0)?;
    let vec4_entry = if is_depthwise_vec4(s) {
        Some("depthwise_vec4")
    } else if s.groups == 1 && s.cout.is_multiple_of(4) {
        Some("dense_vec4")
    } else {
        None
    };
    if let Some(entry) = vec4_entry {
        let g = s.validate()?;
        let threads = s.batch * g.out_h * g.out_w.div_ceil(4) * (s.cout / 4);
        rec.dispatch(pipeline::CONV, entry, &[], &[x, w, bias_t, y], &p, groups_1d(threads, 64));
        return Ok(());
    }
    let threads = pixels_out(s)? * s.cout.div_ceil(4);
    rec.dispatch(pipeline::CONV, "conv_forward", &[], &[x, w, bias_t, y], &p, groups_1d(threads, 64));
    Ok(())
}

/// `dx = ∂(conv(x, w))/∂x ᵀ · dy`.
pub fn conv2d_backward_data(rec: &mut Recorder<'_>, s: &ConvSpec, dy: &Tensor, w: &Tensor, dx: &Tensor) -> Result<()> {
    s.validate()?;
    check_len("conv2d_backward_data dy", dy, s.output_len()?)?;
    check_len("conv2d_backward_data w", w, s.weight_len())?;
    check_len("conv2d_backward_data dx", dx, s.input_len())?;
    if s.is_pointwise() {
        // dx[pix, cin] = dy[pix, cout] · w[cin, cout]ᵀ
        return gemm(rec, &Gemm::new(pixels_out(s)?, s.cin, s.cout).trans(false, true), dy, w, dx);
    }
    let p = params(s, false, false, None, 1.0, 0.0)?;
    rec.dispatch(pipeline::CONV, "conv_backward_data", &[], &[dy, w, dx], &p, groups_1d(s.input_len(), 64));
    Ok(())
}

/// `dw = alpha·(∂(conv(x, w))/∂w ᵀ · dy) + beta·dw`; with `db` also the bias gradient (same alpha/beta).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_weight(
    rec: &mut Recorder<'_>,
    s: &ConvSpec,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    db: Option<&Tensor>,
    alpha: f32,
    beta: f32,
) -> Result<()> {
    s.validate()?;
    check_len("conv2d_backward_weight x", x, s.input_len())?;
    check_len("conv2d_backward_weight dy", dy, s.output_len()?)?;
    check_len("conv2d_backward_weight dw", dw, s.weight_len())?;
    if let Some(db) = db {
        reduce::col_sum(rec, dy, pixels_out(s)?, s.cout, db, alpha, beta)?;
    }
    if s.is_pointwise() {
        // dw[cin, cout] = x[pix, cin]ᵀ · dy[pix, cout]
        let g = Gemm::new(s.cin, s.cout, pixels_out(s)?).trans(true, false).scale(alpha, beta);
        return gemm(rec, &g, x, dy, dw);
    }
    for (first, n, beta) in loop_slices(s.batch, image_iterations(&s.validate()?), beta) {
        let slice = ConvSpec { batch: first + n, ..*s };
        let p = params_from(&slice, first, false, false, None, alpha, beta)?;
        rec.dispatch(pipeline::CONV, "conv_backward_weight", &[], &[x, dy, dw], &p, groups_1d(s.weight_len(), 64));
    }
    Ok(())
}
