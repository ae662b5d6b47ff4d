//! One typed launcher per kernel family; each module mirrors a WGSL file in `shaders/`.
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod kfac;
pub mod reduce;
pub mod spd;

use crate::error::{shape_err, Result};
use crate::gpu::Tensor;

/// Uniform blocks are padded to 16 bytes; launchers build them as u32 words.
pub(crate) fn words(w: &[u32]) -> Vec<u8> {
    let mut v = w.to_vec();
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    bytemuck::cast_slice(&v).to_vec()
}

/// A launcher's operand must hold at least `need` elements.
pub(crate) fn check_len(what: &'static str, t: &Tensor, need: usize) -> Result<()> {
    if t.len < need {
        return Err(shape_err(what, format!("needs {need} elements, tensor has {}", t.len)));
    }
    Ok(())
}
