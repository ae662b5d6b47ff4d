//! Reference for `shaders/conv.wgsl`: NHWC input, HWIO weights, grouped, strided, padded.
use super::Real;
use crate::ops::ConvSpec;

/// Calls `f(x_index, w_index, y_index)` for every multiply-add of the convolution
/// `y[y_index] += x[x_index] · w[w_index]`. The forward pass and both transposes are this one
/// loop nest with the roles of the three arrays exchanged.
fn for_each_mac(s: &ConvSpec, mut f: impl FnMut(usize, usize, usize)) {
    let g = s.validate().expect("valid conv spec");
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    for n in 0..s.batch {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let y_pix = ((n * g.out_h + oy) * g.out_w + ox) * s.cout;
                for ky in 0..s.kh {
                    let iy = (oy * s.stride + ky) as isize - g.pad_top as isize;
                    if iy < 0 || iy >= s.in_h as isize {
                        continue;
                    }
                    for kx in 0..s.kw {
                        let ix = (ox * s.stride + kx) as isize - g.pad_left as isize;
                        if ix < 0 || ix >= s.in_w as isize {
                            continue;
                        }
                        let x_pix = ((n * s.in_h + iy as usize) * s.in_w + ix as usize) * s.cin;
                        for co in 0..s.cout {
                            let x_grp = x_pix + (co / cout_g) * cin_g;
                            for ci_l in 0..cin_g {
                                f(x_grp + ci_l, ((ky * s.kw + kx) * cin_g + ci_l) * s.cout + co, y_pix + co);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// y = conv(x, w) + bias.
pub fn conv2d<T: Real>(s: &ConvSpec, x: &[T], w: &[T], bias: Option<&[T]>) -> Vec<T> {
    let mut y = vec![T::ZERO; s.output_len().expect("valid conv spec")];
    for_each_mac(s, |xi, wi, yi| y[yi] += x[xi] * w[wi]);
    if let Some(b) = bias {
        for (i, v) in y.iter_mut().enumerate() {
            *v += b[i % s.cout];
        }
    }
    y
}

/// dx = conv_backward_data(dy, w): the transpose of `conv2d` in its input.
pub fn conv2d_backward_data<T: Real>(s: &ConvSpec, dy: &[T], w: &[T]) -> Vec<T> {
    let mut dx = vec![T::ZERO; s.input_len()];
    for_each_mac(s, |xi, wi, yi| dx[xi] += dy[yi] * w[wi]);
    dx
}

/// dw = conv_backward_weight(x, dy): the transpose of `conv2d` in its weights.
pub fn conv2d_backward_weight<T: Real>(s: &ConvSpec, x: &[T], dy: &[T]) -> Vec<T> {
    let mut dw = vec![T::ZERO; s.weight_len()];
    for_each_mac(s, |xi, wi, yi| dw[wi] += dy[yi] * x[xi]);
    dw
}

/// Sum over rows of a `[rows, cols]` matrix: the bias gradient of a layer over all its pixels.
pub fn col_sum<T: Real>(x: &[T], cols: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; cols];
    for (i, v) in x.iter().enumerate() {
        out[i % cols] += *v;
    }
    out
}
