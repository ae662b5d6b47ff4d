//! Reference for `shaders/gemm.wgsl`.
use super::Real;
use crate::gpu::kernels::gemm::Gemm;

/// `C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b]` with the same indexing rules as the GPU kernel.
pub fn gemm<T: Real>(g: &Gemm, a: &[T], b: &[T], c: &mut [T]) {
    let (alpha, beta) = (T::from_f64(g.alpha as f64), T::from_f64(g.beta as f64));
    for bat in 0..g.batch {
        let (ba, bb, bc) = (g.off_a + bat * g.stride_a, g.off_b + bat * g.stride_b, g.off_c + bat * g.stride_c);
        for i in 0..g.m {
            for j in 0..g.n {
                let mut s = T::ZERO;
                for k in 0..g.k {
                    let av = if g.trans_a { a[ba + k * g.lda + i] } else { a[ba + i * g.lda + k] };
                    let bv = if g.trans_b { b[bb + j * g.ldb + k] } else { b[bb + k * g.ldb + j] };
                    s += av * bv;
                }
                let idx = bc + i * g.ldc + j;
                c[idx] = if g.beta != 0.0 { alpha * s + beta * c[idx] } else { alpha * s };
            }
        }
    }
}

/// The fused epilogue: `c[r, j] = act(c[r, j] + bias[j])` on a `[rows, n]` matrix (row stride `ld`).
pub fn epilogue<T: Real>(c: &mut [T], rows: usize, n: usize, ld: usize, bias: Option<&[T]>, act_alpha: Option<T>) {
    for r in 0..rows {
        for j in 0..n {
            let v = &mut c[r * ld + j];
            if let Some(b) = bias {
                *v += b[j];
            }
            if let Some(a) = act_alpha {
                *v = super::elementwise::leaky_relu6(*v, a);
            }
        }
    }
}
