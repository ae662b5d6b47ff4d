//! Launchers for `shaders/reduce.wgsl`.
use super::{check_len, loop_slices, words};
use crate::error::Result;
use crate::gpu::{groups_1d, pipeline, Recorder, Tensor};

fn params(rows: usize, cols: usize, inner: usize, alpha: f32, beta: f32) -> Vec<u8> {
    params_from(0, rows, cols, inner, alpha, beta)
}

/// Rows `first..rows` (the kernels that loop over rows start at `first`).
fn params_from(first: usize, rows: usize, cols: usize, inner: usize, alpha: f32, beta: f32) -> Vec<u8> {
    words(&[rows as u32, cols as u32, inner as u32, first as u32, alpha.to_bits(), beta.to_bits()])
}

/// `[n, hw, c]` → `[n, c]`, the mean over pixels.
pub fn global_avg_pool(rec: &mut Recorder<'_>, x: &Tensor, n: usize, hw: usize, c: usize, out: &Tensor) -> Result<()> {
    check_len("global_avg_pool x", x, n * hw * c)?;
    check_len("global_avg_pool out", out, n * c)?;
    let p = params(n, c, hw, 1.0, 0.0);
    rec.dispatch(pipeline::REDUCE, "global_avg_pool", &[], &[x, out], &p, groups_1d(n * c, 64));
    Ok(())
}

/// `[n, c]` → `[n, hw, c]`, the transpose of the pool (also its JVP's transpose).
pub fn global_avg_pool_backward(rec: &mut Recorder<'_>, g: &Tensor, n: usize, hw: usize, c: usize, out: &Tensor) -> Result<()> {
    check_len("global_avg_pool_backward g", g, n * c)?;
    check_len("global_avg_pool_backward out", out, n * hw * c)?;
    let p = params(n, c, hw, 1.0, 0.0);
    rec.dispatch(pipeline::REDUCE, "global_avg_pool_backward", &[], &[g, out], &p, groups_1d(n * hw * c, 64));
    Ok(())
}

/// `out = alpha·Σ_rows x + beta·out` over `[rows, cols]`.
pub fn col_sum(rec: &mut Recorder<'_>, x: &Tensor, rows: usize, cols: usize, out: &Tensor, alpha: f32, beta: f32) -> Result<()> {
    check_len("col_sum x", x, rows * cols)?;
    check_len("col_sum out", out, cols)?;
    for (first, n, beta) in loop_slices(rows, 1, beta) {
        let p = params_from(first, first + n, cols, 0, alpha, beta);
        rec.dispatch(pipeline::REDUCE, "col_sum", &[], &[x, out], &p, groups_1d(cols, 64));
    }
    Ok(())
}

pub fn softmax_rows(rec: &mut Recorder<'_>, x: &Tensor, rows: usize, cols: usize, out: &Tensor) -> Result<()> {
    check_len("softmax_rows x", x, rows * cols)?;
    check_len("softmax_rows out", out, rows * cols)?;
    let p = params(rows, cols, 0, 1.0, 0.0);
    rec.dispatch(pipeline::REDUCE, "softmax_rows", &[], &[x, out], &p, groups_1d(rows, 64));
    Ok(())
}

/// Cross-entropy over logits `[rows, cols]` with u32 `labels`: `r = softmax(f) − onehot(y)`
/// (the loss's gradient in f) and `loss[row] = logsumexp(f_row) − f_row[y]`.
pub fn softmax_cross_entropy(rec: &mut Recorder<'_>, f: &Tensor, labels: &Tensor, rows: usize, cols: usize, r: &Tensor, loss: &Tensor) -> Result<()> {
    if cols == 0 {
        return Err(crate::error::shape_err("softmax_cross_entropy", "no classes".to_string()));
    }
    check_len("softmax_cross_entropy f", f, rows * cols)?;
    check_len("softmax_cross_entropy labels", labels, rows)?;
    check_len("softmax_cross_entropy r", r, rows * cols)?;
    check_len("softmax_cross_entropy loss", loss, rows)?;
    let p = params(rows, cols, 0, 1.0, 0.0);
    rec.dispatch(pipeline::REDUCE, "softmax_cross_entropy", &[], &[f, labels, r, loss], &p, groups_1d(rows, 64));
    Ok(())
}

/// `out[r]` (u32) = index of the row's largest value.
pub fn argmax_rows(rec: &mut Recorder<'_>, x: &Tensor, rows: usize, cols: usize, out: &Tensor) -> Result<()> {
    check_len("argmax_rows x", x, rows * cols)?;
    check_len("argmax_rows out", out, rows)?;
    let p = params(rows, cols, 0, 1.0, 0.0);
    rec.dispatch(pipeline::REDUCE, "argmax_rows", &[], &[x, out], &p, groups_1d(rows, 64));
    Ok(())
}

/// Workgroups used by [`dot_partial`]; the host sums this many partials.
pub const DOT_GROUPS: usize = 64;

/// `out[slot·DOT_GROUPS + g]` = partial sums of x·y over `DOT_GROUPS` workgroups.
pub fn dot_partial(rec: &mut Recorder<'_>, x: &Tensor, y: &Tensor, out: &Tensor, slot: usize) -> Result<()> {
    check_len("dot y", y, x.len)?;
    check_len("dot out", out, (slot + 1) * DOT_GROUPS)?;
    let p = params(x.len, 0, slot * DOT_GROUPS, 1.0, 0.0);
    rec.dispatch(pipeline::REDUCE, "dot_partial", &[], &[x, y, out], &p, [DOT_GROUPS as u32, 1, 1]);
    Ok(())
}
