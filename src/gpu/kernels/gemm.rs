//! Launcher for `shaders/gemm.wgsl`.
use super::{loop_slices, words, LOOP_BUDGET};
use crate::error::{shape_err, Result};
use crate::gpu::{pipeline, Recorder, Tensor};
use crate::ops::LeakyRelu6;

/// `C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b]` for b in 0..batch, row-major with leading dimensions.
/// op(A) is m×k (stored k×m when `trans_a`), op(B) is k×n (stored n×k when `trans_b`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub off_a: usize,
    pub off_b: usize,
    pub off_c: usize,
    pub stride_a: usize,
    pub stride_b: usize,
    pub stride_c: usize,
    pub alpha: f32,
    pub beta: f32,
}

impl Gemm {
    /// Dense, contiguous, single matrix product `C = A·B`.
    pub fn new(m: usize, n: usize, k: usize) -> Gemm {
        Gemm {
            m,
            n,
            k,
            batch: 1,
            trans_a: false,
            trans_b: false,
            lda: k,
            ldb: n,
            ldc: n,
            off_a: 0,
            off_b: 0,
            off_c: 0,
            stride_a: m * k,
            stride_b: k * n,
            stride_c: m * n,
            alpha: 1.0,
            beta: 0.0,
        }
    }
    /// Transpose flags with contiguous leading dimensions recomputed.
    pub fn trans(mut self, trans_a: bool, trans_b: bool) -> Gemm {
        self.trans_a = trans_a;
        self.trans_b = trans_b;
        self.lda = if trans_a { self.m } else { self.k };
        self.ldb = if trans_b { self.k } else { self.n };
        self
    }
    /// `batch` contiguous products; a stride of 0 broadcasts that operand.
    pub fn batched(mut self, batch: usize) -> Gemm {
        self.batch = batch;
        self
    }
    pub fn scale(mut self, alpha: f32, beta: f32) -> Gemm {
        self.alpha = alpha;
        self.beta = beta;
        self
    }
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k * self.batch) as f64
    }

    /// Last element index + 1 touched in a stored (rows × cols, ld) operand.
    fn extent(off: usize, stride: usize, batch: usize, rows: usize, cols: usize, ld: usize) -> usize {
        if rows == 0 || cols == 0 || batch == 0 {
            return 0;
        }
        off + (batch - 1) * stride + (rows - 1) * ld + cols
    }

    /// Whether the vec4 kernel applies: every vectorised extent, leading dimension, offset and
    /// batch stride a multiple of 4 (the vec4 kernel loads op(A) along k, or along m when transposed).
    pub fn vec4_ok(&self) -> bool {
        let a_vec = if self.trans_a { self.m } else { self.k };
        let b_vec = if self.trans_b { self.k } else { self.n };
        // Strides only matter when there is more than one matrix.
        let strides = if self.batch > 1 { [self.stride_a, self.stride_b, self.stride_c] } else { [0; 3] };
        [self.k, self.n, a_vec, b_vec, self.lda, self.ldb, self.ldc, self.off_a, self.off_b, self.off_c].iter().chain(strides.iter()).all(|x| x % 4 == 0)
    }

    fn validate(&self, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<()> {
        let (ar, ac) = if self.trans_a { (self.k, self.m) } else { (self.m, self.k) };
        let (br, bc) = if self.trans_b { (self.n, self.k) } else { (self.k, self.n) };
        let checks = [
            ("A", ac, self.lda, Self::extent(self.off_a, self.stride_a, self.batch, ar, ac, self.lda), a.len),
            ("B", bc, self.ldb, Self::extent(self.off_b, self.stride_b, self.batch, br, bc, self.ldb), b.len),
            ("C", self.n, self.ldc, Self::extent(self.off_c, self.stride_c, self.batch, self.m, self.n, self.ldc), c.len),
        ];
        for (name, cols, ld, need, have) in checks {
            if ld < cols {
                return Err(shape_err("gemm", format!("{name}: leading dimension {ld} < {cols} columns")));
            }
            if need > have {
                return Err(shape_err("gemm", format!("{name} needs {need} elements, tensor has {have} ({self:?})")));
            }
        }
        Ok(())
    }
}

/// What the GEMM does to each output after the product: add a bias row, apply the activation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// `n` values, added to every row of C.
    pub bias: Option<&'a Tensor>,
    pub act: Option<LeakyRelu6>,
}

pub fn gemm(rec: &mut Recorder<'_>, g: &Gemm, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<()> {
    gemm_fused(rec, g, a, b, c, Epilogue::default())
}

/// `C = act(alpha·op(A)·op(B) + beta·C + bias)`: the 1×1 convolution in one pass.
pub fn gemm_fused(rec: &mut Recorder<'_>, g: &Gemm, a: &Tensor, b: &Tensor, c: &Tensor, epi: Epilogue<'_>) -> Result<()> {
    g.validate(a, b, c)?;
    if let Some(bias) = epi.bias {
        super::check_len("gemm bias", bias, g.n)?;
    }
    if g.m == 0 || g.n == 0 || g.batch == 0 {
        return Ok(());
    }
    // The K loop runs once per k (scalar kernel) or per 4 (vec4): long products (weight
    // gradients sum over every pixel of a batch) go in slices that accumulate into C, the
    // epilogue applied by the last (see LOOP_BUDGET).
    if g.k > LOOP_BUDGET {
        for (k0, len, beta) in loop_slices(g.k, 1, g.beta) {
            let slice =
                Gemm { k: len, off_a: g.off_a + if g.trans_a { k0 * g.lda } else { k0 }, off_b: g.off_b + if g.trans_b { k0 } else { k0 * g.ldb }, beta, ..*g };
            gemm_fused(rec, &slice, a, b, c, if k0 + len == g.k { epi } else { Epilogue::default() })?;
        }
        return Ok(());
    }
    let u = |x: usize| x as u32;
    let mut params = words(&[
        u(g.m),
        u(g.n),
        u(g.k),
        u(g.batch),
        u(g.lda),
        u(g.ldb),
        u(g.ldc),
        0,
        u(g.off_a),
        u(g.off_b),
        u(g.off_c),
        0,
        u(g.stride_a),
        u(g.stride_b),
        u(g.stride_c),
        0,
    ]);
    params.extend_from_slice(&words(&[
        g.alpha.to_bits(),
        g.beta.to_bits(),
        epi.bias.is_some() as u32,
        epi.act.is_some() as u32,
        epi.act.map(|a| a.alpha).unwrap_or(0.0).to_bits(),
    ]));
    let dummy;
    let bias = match epi.bias {
        Some(b) => b,
        None => {
            dummy = rec.gpu().zeros(4)?;
            &dummy
        }
    };
    let (ta, tb) = (g.trans_a as u32 as f64, g.trans_b as u32 as f64);
    if g.vec4_ok() {
        // 8×8 outputs per invocation; as many invocation columns as N needs (1..8), the rest rows.
        let wg_x = g.n.div_ceil(8).next_power_of_two().min(8);
        let wg_y = 64 / wg_x;
        let consts = [("TRANS_A", ta), ("TRANS_B", tb), ("WG_X", wg_x as f64), ("WG_Y", wg_y as f64)];
        let groups = [u(g.n.div_ceil(8 * wg_x)), u(g.m.div_ceil(8 * wg_y)), u(g.batch)];
        rec.dispatch(pipeline::GEMM, "gemm_vec4", &consts, &[a, b, c, bias], &params, groups);
    } else {
        let groups = [u(g.n.div_ceil(32)), u(g.m.div_ceil(32)), u(g.batch)];
        rec.dispatch(pipeline::GEMM, "gemm_scalar", &[("TRANS_A", ta), ("TRANS_B", tb)], &[a, b, c, bias], &params, groups);
    }
    Ok(())
}
