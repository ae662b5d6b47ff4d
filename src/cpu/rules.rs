//! CPU mirrors of `crate::nn`: the two-stream rules and their transposes, in any float type.
use super::{conv, elementwise as ew, Real};
use crate::ops::ConvSpec;

/// `(y, ẏ)` of a convolution; `x_dot = None` means a zero input tangent.
pub fn conv_jvp<T: Real>(s: &ConvSpec, x: &[T], x_dot: Option<&[T]>, w0: &[T], b0: Option<&[T]>, dw: &[T], db: Option<&[T]>) -> (Vec<T>, Vec<T>) {
    let y = conv::conv2d(s, x, w0, b0);
    let mut y_dot = conv::conv2d(s, x, dw, db);
    if let Some(xd) = x_dot {
        for (a, b) in y_dot.iter_mut().zip(conv::conv2d(s, xd, w0, None)) {
            *a += b;
        }
    }
    (y, y_dot)
}

/// `(gx, gw, gb)` of a convolution for output gradient `gy`.
pub fn conv_vjp<T: Real>(s: &ConvSpec, x: &[T], w0: &[T], gy: &[T]) -> (Vec<T>, Vec<T>, Vec<T>) {
    (conv::conv2d_backward_data(s, gy, w0), conv::conv2d_backward_weight(s, x, gy), conv::col_sum(gy, s.cout))
}

pub fn activation_jvp<T: Real>(alpha: T, u: &[T], u_dot: &[T]) -> (Vec<T>, Vec<T>) {
    (ew::activation(u, alpha), ew::activation_grad_mul(u, u_dot, alpha))
}

pub fn activation_vjp<T: Real>(alpha: T, u: &[T], gy: &[T]) -> Vec<T> {
    ew::activation_grad_mul(u, gy, alpha)
}
