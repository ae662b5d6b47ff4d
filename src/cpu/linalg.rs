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

/// Eigen-decomposition of a small symmetric matrix (row-major n×n) by cyclic Jacobi rotations:
/// (eigenvalues, eigenvectors as the columns of a row-major n×n matrix). For the deflated
/// solver's Galerkin matrix (n ≤ a few dozen), where a pseudo-inverse must drop the directions
/// that f32 arithmetic made dependent.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..64 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| i * n + j)).map(|ij| a[ij] * a[ij]).sum::<f64>().sqrt();
        if off <= 1e-15 * norm || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.5.1).
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = if theta == 0.0 { 1.0 } else { theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt()) };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}
