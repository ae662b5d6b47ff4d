//! Launchers for `shaders/kfac.wgsl`: per-channel K-FAC blocks of depthwise convolutions.
use super::{check_len, image_iterations, loop_slices, words};
use crate::error::{shape_err, Result};
use crate::gpu::{groups_1d, pipeline, Recorder, Tensor};
use crate::ops::ConvSpec;

/// Largest per-channel block the preconditioner kernel holds (7×7 taps + bias).
pub const MAX_BLOCK: usize = 50;

/// How statistics treat a convolution's output positions, which share its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positions {
    /// Each position is a sample: Σ_positions ā āᵀ ("K-FAC-expand", Grosse & Martens 2016).
    #[default]
    Expand,
    /// Each image is one sample, its positions summed first: (Σ ā)(Σ ā)ᵀ ("K-FAC-reduce",
    /// Eschenhagen et al. 2023), exact when the positions are pooled linearly downstream.
    Reduce,
}

fn params(s: &ConvSpec, rows: usize, alpha: f32, beta: f32, positions: Positions) -> Result<Vec<u8>> {
    params_from(s, 0, rows, alpha, beta, positions)
}

/// Images (or rows) `first..rows`.
fn params_from(s: &ConvSpec, first: usize, rows: usize, alpha: f32, beta: f32, positions: Positions) -> Result<Vec<u8>> {
    let g = s.validate()?;
    let u = |x: usize| x as u32;
    let mode = match positions {
        Positions::Expand => 0,
        Positions::Reduce => 1,
    };
    let mut p = words(&[u(rows), u(s.in_h), u(s.in_w), u(s.cout), u(s.kh), u(s.kw), u(s.stride), u(g.out_h), u(g.out_w), u(g.pad_top), u(g.pad_left), mode]);
    p.extend(words(&[alpha.to_bits(), beta.to_bits(), first as u32]));
    Ok(p)
}

fn depthwise(s: &ConvSpec) -> Result<usize> {
    if s.groups != s.cin || s.cin != s.cout || s.kh * s.kw + 1 > MAX_BLOCK {
        return Err(shape_err("kfac", format!("not a depthwise convolution with at most 7×7 taps: {s:?}")));
    }
    Ok(s.kh * s.kw + 1)
}

/// `acc[c] = alpha·Σ_(images, positions) ā āᵀ + beta·acc[c]` per channel, `[C, d, d]`, d = k² + 1
/// (`Expand`), or `alpha·Σ_images (Σ_positions ā)(Σ_positions ā)ᵀ + beta·acc[c]` (`Reduce`).
#[allow(clippy::too_many_arguments)]
pub fn depthwise_patch_stats(rec: &mut Recorder<'_>, s: &ConvSpec, x: &Tensor, acc: &Tensor, alpha: f32, beta: f32, positions: Positions) -> Result<()> {
    let d = depthwise(s)?;
    check_len("depthwise_patch_stats x", x, s.input_len())?;
    check_len("depthwise_patch_stats acc", acc, s.cout * d * d)?;
    for (first, n, beta) in loop_slices(s.batch, image_iterations(&s.validate()?), beta) {
        let p = params_from(s, first, first + n, alpha, beta, positions)?;
        rec.dispatch(pipeline::KFAC, "depthwise_patch_stats", &[], &[x, acc], &p, groups_1d(s.cout * d * d, 64));
    }
    Ok(())
}

/// `out[c] = alpha·Σ_r x[r, c]² + beta·out[c]` over `[rows, cols]`.
pub fn col_sumsq(rec: &mut Recorder<'_>, x: &Tensor, rows: usize, cols: usize, out: &Tensor, alpha: f32, beta: f32) -> Result<()> {
    check_len("col_sumsq x", x, rows * cols)?;
    check_len("col_sumsq out", out, cols)?;
    for (first, n, beta) in loop_slices(rows, 1, beta) {
        let mut p = words(&[(first + n) as u32, 0, 0, cols as u32, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend(words(&[alpha.to_bits(), beta.to_bits(), first as u32]));
        rec.dispatch(pipeline::KFAC, "col_sumsq", &[], &[x, out], &p, groups_1d(cols, 64));
    }
    Ok(())
}

/// Per channel `[ow; ob] = A_c⁻¹·[gw; gb]·ginv[c]` for a depthwise layer's gradient.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_precondition(
    rec: &mut Recorder<'_>,
    s: &ConvSpec,
    gw: &Tensor,
    gb: &Tensor,
    a_inv: &Tensor,
    g_inv: &Tensor,
    ow: &Tensor,
    ob: &Tensor,
) -> Result<()> {
    let d = depthwise(s)?;
    for (what, t, n) in [
        ("gw", gw, s.weight_len()),
        ("gb", gb, s.cout),
        ("a_inv", a_inv, s.cout * d * d),
        ("g_inv", g_inv, s.cout),
        ("ow", ow, s.weight_len()),
        ("ob", ob, s.cout),
    ] {
        check_len(what, t, n)?;
    }
    let p = params(s, s.batch, 1.0, 0.0, Positions::Expand)?;
    rec.dispatch(pipeline::KFAC, "depthwise_precondition", &[], &[gw, gb, a_inv, g_inv, ow, ob], &p, groups_1d(s.cout, 64));
    Ok(())
}
