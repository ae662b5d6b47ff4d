//! References for `shaders/kfac.wgsl`.
use super::Real;
use crate::gpu::kernels::kfac::Positions;
use crate::ops::ConvSpec;

/// `[C, d, d]` per channel (d = k² + 1, ā ends in 1): Σ over images and output positions of
/// ā āᵀ (`Expand`), or Σ over images of (Σ_positions ā)(Σ_positions ā)ᵀ (`Reduce`).
pub fn depthwise_patch_stats<T: Real>(s: &ConvSpec, x: &[T], positions: Positions) -> Vec<T> {
    let g = s.validate().expect("valid spec");
    let (kk, c) = (s.kh * s.kw, s.cout);
    let d = kk + 1;
    let mut acc = vec![T::ZERO; c * d * d];
    let mut patch = vec![T::ZERO; d];
    for n in 0..s.batch {
        // Reduce: the patches of image n summed over its positions, per channel.
        let mut sums = vec![T::ZERO; c * d];
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for ch in 0..c {
                    for (t, p) in patch.iter_mut().enumerate() {
                        *p = if t == kk {
                            T::ONE
                        } else {
                            let iy = (oy * s.stride + t / s.kw) as isize - g.pad_top as isize;
                            let ix = (ox * s.stride + t % s.kw) as isize - g.pad_left as isize;
                            if iy < 0 || ix < 0 || iy >= s.in_h as isize || ix >= s.in_w as isize {
                                T::ZERO
                            } else {
                                x[((n * s.in_h + iy as usize) * s.in_w + ix as usize) * c + ch]
                            }
                        };
                    }
                    match positions {
                        Positions::Expand => {
                            for i in 0..d {
                                for j in 0..d {
                                    acc[(ch * d + i) * d + j] += patch[i] * patch[j];
                                }
                            }
                        }
                        Positions::Reduce => {
                            for (sum, p) in sums[ch * d..(ch + 1) * d].iter_mut().zip(&patch) {
                                *sum += *p;
                            }
                        }
                    }
                }
            }
        }
        if positions == Positions::Reduce {
            for ch in 0..c {
                let m = &sums[ch * d..(ch + 1) * d];
                for i in 0..d {
                    for j in 0..d {
                        acc[(ch * d + i) * d + j] += m[i] * m[j];
                    }
                }
            }
        }
    }
    acc
}

/// Σ_rows x[r, c]².
pub fn col_sumsq<T: Real>(x: &[T], cols: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; cols];
    for (i, v) in x.iter().enumerate() {
        out[i % cols] += *v * *v;
    }
    out
}

/// Per channel c: [ow; ob] = A_c⁻¹·[gw; gb]·g_inv[c] (HWIO taps at t·C + c).
pub fn depthwise_precondition<T: Real>(k2: usize, channels: usize, gw: &[T], gb: &[T], a_inv: &[T], g_inv: &[T]) -> (Vec<T>, Vec<T>) {
    let d = k2 + 1;
    let (mut ow, mut ob) = (vec![T::ZERO; gw.len()], vec![T::ZERO; channels]);
    for c in 0..channels {
        let v: Vec<T> = (0..d).map(|t| if t < k2 { gw[t * channels + c] } else { gb[c] }).collect();
        for i in 0..d {
            let s: T = (0..d).map(|j| a_inv[(c * d + i) * d + j] * v[j]).sum::<T>() * g_inv[c];
            if i < k2 {
                ow[i * channels + c] = s;
            } else {
                ob[c] = s;
            }
        }
    }
    (ow, ob)
}
