//! Linear probes on the frozen features (depth 0): the closed-form ridge probe (the baseline
//! every browser tool offers, and one of LQF's classifier initialisations) and the
//! logistic-regression probe (cross-entropy), both on the GPU.
use crate::error::{Error, Result};
use crate::gpu::kernels::{
    elementwise,
    gemm::{gemm, Gemm},
    reduce, spd,
};
use crate::gpu::Gpu;

/// X = [P, 1] (`[n, f + 1]`) and κ·onehot(labels) (`[n, classes]`).
fn design(pooled: &[f32], labels: &[u32], classes: usize, kappa: f32) -> Result<(Vec<f32>, Vec<f32>, usize)> {
    let n = labels.len();
    if n == 0 || !pooled.len().is_multiple_of(n) {
        return Err(Error::InvalidArgument(format!("{} feature values for {n} images", pooled.len())));
    }
    let f = pooled.len() / n;
    let mut x = Vec::with_capacity(n * (f + 1));
    for i in 0..n {
        x.extend_from_slice(&pooled[i * f..(i + 1) * f]);
        x.push(1.0);
    }
    let mut y = vec![0.0; n * classes];
    for (i, &l) in labels.iter().enumerate() {
        y[i * classes + l as usize] = kappa;
    }
    Ok((x, y, f))
}

fn split_bias(w: Vec<f32>, f: usize, classes: usize) -> (Vec<f32>, Vec<f32>) {
    (w[..f * classes].to_vec(), w[f * classes..].to_vec())
}

/// Ridge regression on pooled features P (`[n, f]`) to κ·onehot(labels), bias included:
/// [W; b] = (XᵀX/n + λI)⁻¹ XᵀY/n with X = [P, 1]. Returns W `[f, classes]` and b `[classes]`.
/// Runs on the GPU: GEMMs and one SPD inverse in f32. With fewer images than features (the
/// few-shot case) it solves the n×n dual [W; b] = Xᵀ(XXᵀ + nλI)⁻¹Y instead: equal in exact
/// arithmetic, but the primal's d×d matrix has rank n plus λ, a condition number near
/// ‖X‖²/(nλ) that f32 cannot invert accurately for small λ, while the dual's is bounded by
/// the spread of the images' own Gram matrix.
pub async fn ridge(gpu: &Gpu, pooled: &[f32], labels: &[u32], classes: usize, kappa: f32, lambda: f32) -> Result<(Vec<f32>, Vec<f32>)> {
    let n = labels.len();
    let (x, y, f) = design(pooled, labels, classes, kappa)?;
    let d = f + 1;
    // The matrix to invert starts as its damping: λI (primal, d×d) or nλI (dual, n×n).
    let (m, damping) = if n < d { (n, n as f32 * lambda) } else { (d, lambda) };
    let mut damp = vec![0.0; m * m];
    for i in 0..m {
        damp[i * m + i] = damping;
    }
    let (tx, ty, a) = (gpu.upload(&x)?, gpu.upload(&y)?, gpu.upload(&damp)?);
    let w = gpu.zeros(d * classes)?;
    if n < d {
        let alpha = gpu.zeros(n * classes)?;
        let status = gpu.run(|rec| {
            gemm(rec, &Gemm::new(n, n, d).trans(false, true).scale(1.0, 1.0), &tx, &tx, &a)?;
            spd::spd_inverse_in_place(rec, &a, n)
        })?;
        spd::check_status(gpu, &status).await?;
        gpu.run(|rec| {
            gemm(rec, &Gemm::new(n, classes, n), &a, &ty, &alpha)?;
            gemm(rec, &Gemm::new(d, classes, n).trans(true, false), &tx, &alpha, &w)
        })?;
    } else {
        let rhs = gpu.zeros(d * classes)?;
        let inv_n = 1.0 / n as f32;
        let status = gpu.run(|rec| {
            gemm(rec, &Gemm::new(d, d, n).trans(true, false).scale(inv_n, 1.0), &tx, &tx, &a)?;
            gemm(rec, &Gemm::new(d, classes, n).trans(true, false).scale(inv_n, 0.0), &tx, &ty, &rhs)?;
            spd::spd_inverse_in_place(rec, &a, d)
        })?;
        spd::check_status(gpu, &status).await?;
        gpu.run(|rec| gemm(rec, &Gemm::new(d, classes, d), &a, &rhs, &w))?;
    }
    Ok(split_bias(gpu.read(&w).await?, f, classes))
}

/// The same ridge probe on the CPU in f64 (the reference `ridge` is tested against, and the
/// page's fallback without WebGPU). With fewer images than features it solves the n×n dual,
/// [W; b] = Xᵀ(XXᵀ + nλI)⁻¹Y, which equals the primal (XᵀX/n + λI)⁻¹XᵀY/n exactly.
pub fn ridge_cpu(pooled: &[f32], labels: &[u32], classes: usize, kappa: f32, lambda: f32) -> Result<(Vec<f32>, Vec<f32>)> {
    let n = labels.len();
    let (x, y, f) = design(pooled, labels, classes, kappa)?;
    let d = f + 1;
    let (x, y): (Vec<f64>, Vec<f64>) = (x.iter().map(|&v| v as f64).collect(), y.iter().map(|&v| v as f64).collect());
    let lambda = lambda as f64;
    let w = if n < d {
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v: f64 = (0..d).map(|t| x[i * d + t] * x[j * d + t]).sum();
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
            k[i * n + i] += n as f64 * lambda;
        }
        let mut alpha = y;
        crate::cpu::linalg::spd_solve(&k, n, &mut alpha, classes)?;
        let mut w = vec![0.0f32; d * classes];
        for t in 0..d {
            for c in 0..classes {
                w[t * classes + c] = (0..n).map(|i| x[i * d + t] * alpha[i * classes + c]).sum::<f64>() as f32;
            }
        }
        w
    } else {
        let mut a = vec![0.0; d * d];
        let mut rhs = vec![0.0; d * classes];
        for i in 0..n {
            let row = &x[i * d..(i + 1) * d];
            for s in 0..d {
                for t in 0..d {
                    a[s * d + t] += row[s] * row[t] / n as f64;
                }
                for c in 0..classes {
                    rhs[s * classes + c] += row[s] * y[i * classes + c] / n as f64;
                }
            }
        }
        (0..d).for_each(|s| a[s * d + s] += lambda);
        crate::cpu::linalg::spd_solve(&a, d, &mut rhs, classes)?;
        rhs.iter().map(|&v| v as f32).collect()
    };
    Ok(split_bias(w, f, classes))
}

/// Largest eigenvalue of XᵀX/n by power iteration (host, f64), for the logistic loss's
/// curvature bound. The Rayleigh quotient approaches λmax from below; a 10% margin covers what
/// 50 iterations miss (a step of 1/L with L too small could diverge).
fn gram_norm(x: &[f32], n: usize, d: usize) -> f64 {
    let mut v = vec![1.0f64 / (d as f64).sqrt(); d];
    let mut lam = 0.0;
    for _ in 0..50 {
        let xv: Vec<f64> = (0..n).map(|i| (0..d).map(|j| x[i * d + j] as f64 * v[j]).sum()).collect();
        let mut w = vec![0.0f64; d];
        for i in 0..n {
            for j in 0..d {
                w[j] += x[i * d + j] as f64 * xv[i] / n as f64;
            }
        }
        lam = w.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>();
        let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        v = w.into_iter().map(|a| a / norm).collect();
    }
    lam * 1.1
}

/// Multinomial logistic regression on pooled features, L2-regularised (bias included):
/// min over [W; b] of (1/n) Σ_i CE(softmax(x_i [W; b]), y_i) + (λ/2)‖[W; b]‖², by Nesterov's
/// accelerated gradient with step 1/L, L = ½·λmax(XᵀX/n) + λ (the softmax Hessian is at most ½).
/// Strongly convex for λ > 0: one optimum, reached to the accuracy `iterations` allow.
pub async fn logistic(gpu: &Gpu, pooled: &[f32], labels: &[u32], classes: usize, lambda: f32, iterations: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let n = labels.len();
    let (x, _, f) = design(pooled, labels, classes, 1.0)?;
    let d = f + 1;
    let step = (1.0 / (0.5 * gram_norm(&x, n, d) + lambda as f64).max(1e-12)) as f32;
    let (tx, tl) = (gpu.upload(&x)?, gpu.upload_u32(labels)?);
    let (mut w, mut w_prev) = (gpu.zeros(d * classes)?, gpu.zeros(d * classes)?);
    let (y, g, logits, prob) = (gpu.zeros(d * classes)?, gpu.zeros(d * classes)?, gpu.zeros(n * classes)?, gpu.zeros(n * classes)?);
    for k in 1..=iterations {
        let beta = (k as f32 - 1.0) / (k as f32 + 2.0);
        let w_next = gpu.zeros(d * classes)?;
        gpu.run(|rec| {
            // y = w + β(w − w_prev); g = Xᵀ(softmax(Xy) − Y)/n + λy; w_next = y − g/L.
            elementwise::axpby(rec, 1.0 + beta, &w, -beta, &w_prev, &y)?;
            gemm(rec, &Gemm::new(n, classes, d), &tx, &y, &logits)?;
            reduce::softmax_rows(rec, &logits, n, classes, &prob)?;
            elementwise::mse_residual(rec, &prob, &tl, classes, 1.0, &logits)?;
            elementwise::axpby(rec, lambda, &y, 0.0, &y, &g)?;
            gemm(rec, &Gemm::new(d, classes, n).trans(true, false).scale(1.0 / n as f32, 1.0), &tx, &logits, &g)?;
            elementwise::axpby(rec, 1.0, &y, -step, &g, &w_next)
        })?;
        (w_prev, w) = (w, w_next);
    }
    Ok(split_bias(gpu.read(&w).await?, f, classes))
}

/// Mean cross-entropy of logits `[n, classes]` against labels (host, f64).
pub fn cross_entropy(logits: &[f32], labels: &[u32], classes: usize) -> f64 {
    cross_entropy_rows(logits, labels, classes).iter().sum::<f64>() / labels.len().max(1) as f64
}

/// Each row's cross-entropy −log softmax(row)[label], in f64.
pub fn cross_entropy_rows(logits: &[f32], labels: &[u32], classes: usize) -> Vec<f64> {
    logits
        .chunks(classes)
        .zip(labels)
        .map(|(row, &l)| {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln() - row[l as usize] as f64
        })
        .collect()
}
