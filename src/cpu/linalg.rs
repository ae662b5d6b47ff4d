//! Reference for `shaders/spd_inverse.wgsl`: Cholesky-based SPD inverse in f64.
use crate::error::{Error, Result};

/// Lower-triangular L with A = L·Lᵀ (row-major n×n), or an error if A is not positive definite.
pub fn cholesky(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for j in 0..n {
        let d = a[j * n + j] - (0..j).map(|k| l[j * n + k] * l[j * n + k]).sum::<f64>();
        // Not finite covers NaN, so the comparison below is total.
        if !d.is_finite() || d <= 0.0 {
            return Err(Error::NotPositiveDefinite { row: j });
        }
        let d = d.sqrt();
        l[j * n + j] = d;
        for i in j + 1..n {
            let s = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            l[i * n + j] = s / d;
        }
    }
    Ok(l)
}

/// A⁻¹ for symmetric positive-definite A, by Cholesky and two triangular solves per column.
pub fn spd_inverse(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let l = cholesky(a, n)?;
    let mut inv = vec![0.0; n * n];
    let mut y = vec![0.0; n];
    for col in 0..n {
        for i in 0..n {
            let rhs = if i == col { 1.0 } else { 0.0 };
            y[i] = (rhs - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
        }
        for i in (0..n).rev() {
            let s = y[i] - (i + 1..n).map(|k| l[k * n + i] * inv[k * n + col]).sum::<f64>();
            inv[i * n + col] = s / l[i * n + i];
        }
    }
    Ok(inv)
}

/// Solve A·X = B for SPD A (n×n) and B (n×cols, row-major) by Cholesky: X in place of B.
pub fn spd_solve(a: &[f64], n: usize, b: &mut [f64], cols: usize) -> Result<()> {
    let l = cholesky(a, n)?;
    for c in 0..cols {
        for i in 0..n {
            b[i * cols + c] = (b[i * cols + c] - (0..i).map(|k| l[i * n + k] * b[k * cols + c]).sum::<f64>()) / l[i * n + i];
        }
        for i in (0..n).rev() {
            b[i * cols + c] = (b[i * cols + c] - (i + 1..n).map(|k| l[k * n + i] * b[k * cols + c]).sum::<f64>()) / l[i * n + i];
        }
    }
    Ok(())
}
