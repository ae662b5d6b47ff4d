//! Launcher for `shaders/spd_inverse.wgsl`: SPD inverse by blocked Gauss-Jordan, with the bulk
//! of the work in the GEMM kernel.
use super::gemm::{gemm, Gemm};
use super::{check_len, words};
use crate::error::{Error, Result};
use crate::gpu::{groups_1d, pipeline, Gpu, Recorder, Tensor};

/// Diagonal block size; 64×64 f32 fills exactly WebGPU's default 16 KiB of workgroup memory.
pub const BLOCK: usize = 64;

/// Replace `a` (n×n, SPD) by its inverse in place. Returns a status tensor (one u32): 0 on
/// success, else 1 + the index of the first diagonal block with a non-positive or non-finite pivot.
/// Reading the status is left to the caller so many inversions can share one readback.
pub fn spd_inverse_in_place(rec: &mut Recorder<'_>, a: &Tensor, n: usize) -> Result<Tensor> {
    check_len("spd_inverse a", a, n * n)?;
    let gpu = rec.gpu();
    let status = gpu.upload_u32(&[0])?;
    if n == 0 {
        return Ok(status);
    }
    let bs_max = BLOCK.min(n);
    let pinv = gpu.zeros(bs_max * bs_max)?;
    let r0 = gpu.zeros(bs_max * n)?;
    let r = gpu.zeros(bs_max * n)?;
    let ccol = gpu.zeros(n * bs_max)?;
    let t = gpu.zeros(n * bs_max)?;
    for (block, k0) in (0..n).step_by(BLOCK).enumerate() {
        let bs = BLOCK.min(n - k0);
        let p = words(&[n as u32, k0 as u32, bs as u32, block as u32]);
        rec.dispatch(pipeline::SPD, "block_inverse", &[], &[a, &pinv, &status], &p, [1, 1, 1]);
        rec.copy(a, k0 * n, &r0, 0, bs * n);
        rec.dispatch(pipeline::SPD, "extract_cols", &[], &[a, &ccol], &p, groups_1d(n * bs, 64));
        gemm(rec, &Gemm::new(bs, n, bs), &pinv, &r0, &r)?;
        gemm(rec, &Gemm::new(n, bs, bs), &ccol, &pinv, &t)?;
        gemm(rec, &Gemm::new(n, n, bs).scale(-1.0, 1.0), &ccol, &r, a)?;
        rec.dispatch(pipeline::SPD, "put_rows", &[], &[&r, &pinv, a], &p, groups_1d(bs * n, 64));
        rec.dispatch(pipeline::SPD, "put_cols", &[], &[&t, a], &p, groups_1d(n * bs, 64));
    }
    Ok(status)
}

/// Turn a status tensor from [`spd_inverse_in_place`] into a result.
pub async fn check_status(gpu: &Gpu, status: &Tensor) -> Result<()> {
    let s = gpu.read_u32(status).await?;
    match s.first() {
        Some(&0) | None => Ok(()),
        Some(&b) => Err(Error::NotPositiveDefinite { row: (b as usize - 1) * BLOCK }),
    }
}

/// The inverse of an SPD matrix, as a new tensor; `a` is left untouched.
pub async fn spd_inverse(gpu: &Gpu, a: &Tensor, n: usize) -> Result<Tensor> {
    check_len("spd_inverse a", a, n * n)?;
    let out = gpu.zeros(n * n)?;
    let status = gpu.run(|rec| {
        rec.copy(a, 0, &out, 0, n * n);
        spd_inverse_in_place(rec, &out, n)
    })?;
    check_status(gpu, &status).await?;
    Ok(out)
}
