//! Reference for `shaders/conv.wgsl`: NHWC input, HWIO weights, grouped, strided, padded.
use super::Real;
use crate::ops::ConvSpec;

/// Calls `f(n, oy, ox, ky, kx, iy, ix)` for every (output pixel, tap) that lands inside the input.
fn for_each_tap(s: &ConvSpec, mut f: impl FnMut(usize, usize, usize, usize, usize, usize, usize)) {
    let g = s.validate().expect("valid conv spec");
    for n in 0..s.batch {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
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
                        f(n, oy, ox, ky, kx, iy as usize, ix as usize);
                    }
                }
            }
        }
    }
}

/// Index helpers: (input, weight, output) flat indices for group-local channels.
struct Idx<'a>(&'a ConvSpec, usize, usize);
impl Idx<'_> {
    fn x(&self, n: usize, iy: usize, ix: usize, c: usize) -> usize {
        ((n * self.0.in_h + iy) * self.0.in_w + ix) * self.0.cin + c
    }
    fn w(&self, ky: usize, kx: usize, ci_l: usize, co: usize) -> usize {
        ((ky * self.0.kw + kx) * self.0.cin_g() + ci_l) * self.0.cout + co
    }
    fn y(&self, n: usize, oy: usize, ox: usize, co: usize) -> usize {
        ((n * self.1 + oy) * self.2 + ox) * self.0.cout + co
    }
}

fn idx(s: &ConvSpec) -> Idx<'_> {
    let g = s.validate().expect("valid conv spec");
    Idx(s, g.out_h, g.out_w)
}

/// y = conv(x, w) + bias.
pub fn conv2d<T: Real>(s: &ConvSpec, x: &[T], w: &[T], bias: Option<&[T]>) -> Vec<T> {
    let ix = idx(s);
    let mut y = vec![T::ZERO; s.output_len().expect("valid conv spec")];
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    for_each_tap(s, |n, oy, ox, ky, kx, iy, ixx| {
        for co in 0..s.cout {
            let grp = co / cout_g;
            let mut acc = T::ZERO;
            for ci_l in 0..cin_g {
                acc += x[ix.x(n, iy, ixx, grp * cin_g + ci_l)] * w[ix.w(ky, kx, ci_l, co)];
            }
            y[ix.y(n, oy, ox, co)] += acc;
        }
    });
    if let Some(b) = bias {
        for (i, v) in y.iter_mut().enumerate() {
            *v += b[i % s.cout];
        }
    }
    y
}

/// dx = conv_backward_data(dy, w): the transpose of `conv2d` in its input.
pub fn conv2d_backward_data<T: Real>(s: &ConvSpec, dy: &[T], w: &[T]) -> Vec<T> {
    let ix = idx(s);
    let mut dx = vec![T::ZERO; s.input_len()];
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    for_each_tap(s, |n, oy, ox, ky, kx, iy, ixx| {
        for co in 0..s.cout {
            let grp = co / cout_g;
            let g = dy[ix.y(n, oy, ox, co)];
            for ci_l in 0..cin_g {
                dx[ix.x(n, iy, ixx, grp * cin_g + ci_l)] += g * w[ix.w(ky, kx, ci_l, co)];
            }
        }
    });
    dx
}

/// dw = conv_backward_weight(x, dy): the transpose of `conv2d` in its weights.
pub fn conv2d_backward_weight<T: Real>(s: &ConvSpec, x: &[T], dy: &[T]) -> Vec<T> {
    let ix = idx(s);
    let mut dw = vec![T::ZERO; s.weight_len()];
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    for_each_tap(s, |n, oy, ox, ky, kx, iy, ixx| {
        for co in 0..s.cout {
            let grp = co / cout_g;
            let g = dy[ix.y(n, oy, ox, co)];
            for ci_l in 0..cin_g {
                dw[ix.w(ky, kx, ci_l, co)] += g * x[ix.x(n, iy, ixx, grp * cin_g + ci_l)];
            }
        }
    });
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
