//! Launchers for `shaders/elementwise.wgsl`.
use super::{check_len, words};
use crate::error::Result;
use crate::gpu::{groups_1d, pipeline, Recorder, Tensor};

fn params(len: usize, cols: usize, alpha: f32, beta: f32, kappa: f32) -> Vec<u8> {
    words(&[len as u32, cols as u32, 0, 0, alpha.to_bits(), beta.to_bits(), kappa.to_bits()])
}

/// `out = leaky_relu6(x)` with slope `alpha` outside [0, 6].
pub fn leaky_relu6(rec: &mut Recorder<'_>, x: &Tensor, out: &Tensor, alpha: f32) -> Result<()> {
    check_len("leaky_relu6 out", out, x.len)?;
    let p = params(x.len, 0, alpha, 0.0, 0.0);
    rec.dispatch(pipeline::ELEMENTWISE, "leaky_relu6_forward", &[], &[x, out], &p, groups_1d(x.len, 256));
    Ok(())
}

/// `out = σ'(u) ⊙ t`: the activation's JVP (t a tangent) and VJP (t an output gradient).
pub fn leaky_relu6_grad_mul(rec: &mut Recorder<'_>, u: &Tensor, t: &Tensor, out: &Tensor, alpha: f32) -> Result<()> {
    check_len("leaky_relu6_grad_mul t", t, u.len)?;
    check_len("leaky_relu6_grad_mul out", out, u.len)?;
    let p = params(u.len, 0, alpha, 0.0, 0.0);
    rec.dispatch(pipeline::ELEMENTWISE, "leaky_relu6_grad_mul", &[], &[u, t, out], &p, groups_1d(u.len, 256));
    Ok(())
}

/// `out = alpha·x + beta·y` (residual adds, tangent sums).
pub fn axpby(rec: &mut Recorder<'_>, alpha: f32, x: &Tensor, beta: f32, y: &Tensor, out: &Tensor) -> Result<()> {
    check_len("axpby y", y, x.len)?;
    check_len("axpby out", out, x.len)?;
    let p = params(x.len, 0, alpha, beta, 0.0);
    rec.dispatch(pipeline::ELEMENTWISE, "axpby", &[], &[x, y, out], &p, groups_1d(x.len, 256));
    Ok(())
}

/// `r = f − κ·onehot(labels)` over `[rows, classes]`.
pub fn mse_residual(rec: &mut Recorder<'_>, f: &Tensor, labels: &Tensor, classes: usize, kappa: f32, r: &Tensor) -> Result<()> {
    if classes == 0 || !f.len.is_multiple_of(classes) {
        return Err(crate::error::shape_err("mse_residual", format!("{} values are not rows of {classes} classes", f.len)));
    }
    check_len("mse_residual labels", labels, f.len / classes)?;
    check_len("mse_residual r", r, f.len)?;
    let p = params(f.len, classes, 0.0, 0.0, kappa);
    rec.dispatch(pipeline::ELEMENTWISE, "mse_residual", &[], &[f, labels, r], &p, groups_1d(f.len, 256));
    Ok(())
}

/// `y[r, c] += b[c]` for every row: the folded bias of a GEMM-backed convolution.
pub fn add_row_vector(rec: &mut Recorder<'_>, b: &Tensor, y: &Tensor, cols: usize) -> Result<()> {
    check_len("add_row_vector b", b, cols)?;
    if cols == 0 || !y.len.is_multiple_of(cols) {
        return Err(crate::error::shape_err("add_row_vector", format!("{} values are not rows of {cols}", y.len)));
    }
    let p = params(y.len, cols, 0.0, 0.0, 0.0);
    rec.dispatch(pipeline::ELEMENTWISE, "add_row_vector", &[], &[b, y], &p, groups_1d(y.len, 256));
    Ok(())
}
