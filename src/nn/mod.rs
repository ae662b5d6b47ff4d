//! Per-layer rules of the linearized network, built from the kernels.
//!
//! Every layer carries two streams (../shared/docs/method.md, "One pass, two streams"):
//! the primal `y` at θ0 and the tangent `ẏ` (the JVP). The VJP rules are the transposes,
//! used for gradients (backprop at θ0) and K-FAC statistics. `crate::cpu::rules` mirrors each
//! function in f32/f64, and the tests check JVP against finite differences and the adjoint
//! identity ⟨J v, u⟩ = ⟨v, Jᵀ u⟩ for each layer.
use crate::error::Result;
use crate::gpu::kernels::{conv, elementwise, reduce};
use crate::gpu::{Recorder, Tensor};
use crate::ops::{ConvSpec, LeakyRelu6};

/// The parameters of a convolution at θ0 (BatchNorm folded in) or a direction in their space.
pub struct ConvParams<'a> {
    pub w: &'a Tensor,
    pub b: Option<&'a Tensor>,
}

/// Convolution, primal and tangent:
/// `y = W0*x + b0`, `ẏ = W0*ẋ + ΔW*x + Δb`. A `None` input tangent means ẋ = 0 (trunk boundary).
#[allow(clippy::too_many_arguments)]
pub fn conv_jvp(
    rec: &mut Recorder<'_>,
    s: &ConvSpec,
    x: &Tensor,
    x_dot: Option<&Tensor>,
    theta0: &ConvParams<'_>,
    delta: &ConvParams<'_>,
    y: &Tensor,
    y_dot: &Tensor,
) -> Result<()> {
    conv::conv2d(rec, s, x, theta0.w, theta0.b, y, false)?;
    match x_dot {
        Some(xd) => {
            conv::conv2d(rec, s, xd, theta0.w, None, y_dot, false)?;
            conv::conv2d(rec, s, x, delta.w, delta.b, y_dot, true)
        }
        None => conv::conv2d(rec, s, x, delta.w, delta.b, y_dot, false),
    }
}

/// Convolution, transpose: given `gy`, the input gradient `gx` (if wanted) and the parameter
/// gradients `gw = alpha·(...) + beta·gw`, `gb` likewise (accumulate over mini-batches with beta = 1).
#[allow(clippy::too_many_arguments)]
pub fn conv_vjp(
    rec: &mut Recorder<'_>,
    s: &ConvSpec,
    x: &Tensor,
    w0: &Tensor,
    gy: &Tensor,
    gx: Option<&Tensor>,
    gw: &Tensor,
    gb: Option<&Tensor>,
    alpha: f32,
    beta: f32,
) -> Result<()> {
    if let Some(gx) = gx {
        conv::conv2d_backward_data(rec, s, gy, w0, gx)?;
    }
    conv::conv2d_backward_weight(rec, s, x, gy, gw, gb, alpha, beta)
}

/// Activation, primal and tangent: `y = σ(u)`, `ẏ = σ'(u)·u̇` with σ' taken at the primal u.
pub fn activation_jvp(rec: &mut Recorder<'_>, act: LeakyRelu6, u: &Tensor, u_dot: &Tensor, y: &Tensor, y_dot: &Tensor) -> Result<()> {
    elementwise::leaky_relu6(rec, u, y, act.alpha)?;
    elementwise::leaky_relu6_grad_mul(rec, u, u_dot, y_dot, act.alpha)
}

/// Activation, transpose: `gu = σ'(u)·gy` (σ' is diagonal, so it is its own transpose).
pub fn activation_vjp(rec: &mut Recorder<'_>, act: LeakyRelu6, u: &Tensor, gy: &Tensor, gu: &Tensor) -> Result<()> {
    elementwise::leaky_relu6_grad_mul(rec, u, gy, gu, act.alpha)
}

/// Global average pool, linear: the same map on both streams.
#[allow(clippy::too_many_arguments)]
pub fn pool_jvp(rec: &mut Recorder<'_>, n: usize, hw: usize, c: usize, x: &Tensor, x_dot: &Tensor, y: &Tensor, y_dot: &Tensor) -> Result<()> {
    reduce::global_avg_pool(rec, x, n, hw, c, y)?;
    reduce::global_avg_pool(rec, x_dot, n, hw, c, y_dot)
}

pub fn pool_vjp(rec: &mut Recorder<'_>, n: usize, hw: usize, c: usize, gy: &Tensor, gx: &Tensor) -> Result<()> {
    reduce::global_avg_pool_backward(rec, gy, n, hw, c, gx)
}

/// Residual add, linear: `y = a + b`, `ẏ = ȧ + ḃ`. Its transpose hands `gy` to both branches.
#[allow(clippy::too_many_arguments)]
pub fn add_jvp(rec: &mut Recorder<'_>, a: &Tensor, a_dot: &Tensor, b: &Tensor, b_dot: &Tensor, y: &Tensor, y_dot: &Tensor) -> Result<()> {
    elementwise::axpby(rec, 1.0, a, 1.0, b, y)?;
    elementwise::axpby(rec, 1.0, a_dot, 1.0, b_dot, y_dot)
}
