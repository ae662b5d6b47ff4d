//! The ridge linear probe (depth 0, closed form): the baseline every browser tool offers, and
//! one of the two classifier initialisations LQF can start from.
use crate::error::Result;
use crate::gpu::kernels::{gemm::{gemm, Gemm}, spd};
use crate::gpu::Gpu;

/// Ridge regression on pooled features P (`[n, f]`) to κ·onehot(labels), bias included:
/// [W; b] = (XᵀX/n + λI)⁻¹ XᵀY/n with X = [P, 1]. Returns W `[f, classes]` and b `[classes]`.
/// Runs on the GPU: two GEMMs and the SPD inverse.
pub async fn ridge(gpu: &Gpu, pooled: &[f32], labels: &[u32], classes: usize, kappa: f32, lambda: f32) -> Result<(Vec<f32>, Vec<f32>)> {
    let n = labels.len();
    let f = pooled.len() / n.max(1);
    let d = f + 1;
    let mut x = Vec::with_capacity(n * d);
    for i in 0..n {
        x.extend_from_slice(&pooled[i * f..(i + 1) * f]);
        x.push(1.0);
    }
    let mut y = vec![0.0; n * classes];
    for (i, &l) in labels.iter().enumerate() {
        y[i * classes + l as usize] = kappa;
    }
    let mut damp = vec![0.0; d * d];
    for i in 0..d {
        damp[i * d + i] = lambda;
    }
    let (tx, ty, a) = (gpu.upload(&x)?, gpu.upload(&y)?, gpu.upload(&damp)?);
    let (rhs, w) = (gpu.zeros(d * classes)?, gpu.zeros(d * classes)?);
    let inv_n = 1.0 / n as f32;
    let status = gpu.run(|rec| {
        gemm(rec, &Gemm::new(d, d, n).trans(true, false).scale(inv_n, 1.0), &tx, &tx, &a)?;
        gemm(rec, &Gemm::new(d, classes, n).trans(true, false).scale(inv_n, 0.0), &tx, &ty, &rhs)?;
        spd::spd_inverse_in_place(rec, &a, d)
    })?;
    spd::check_status(gpu, &status).await?;
    gpu.run(|rec| gemm(rec, &Gemm::new(d, classes, d), &a, &rhs, &w))?;
    let w = gpu.read(&w).await?;
    Ok((w[..f * classes].to_vec(), w[f * classes..].to_vec()))
}
