//! One typed launcher per kernel family; each module mirrors a WGSL file in `shaders/`.
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod kfac;
pub mod reduce;
pub mod spd;

use crate::error::{shape_err, Result};
use crate::gpu::Tensor;

/// Loop iterations one invocation may run, all loops of a nest together. llvmpipe (lavapipe,
/// the CPU Vulkan driver) silently ends a loop nest after 65535 iterations
/// (`LP_MAX_TGSI_LOOP_ITERATIONS` in Mesa's gallivm): a column sum over 65536 rows dropped its
/// last row, and the bias gradient of MobileNetV2's 112×112 layers over 6 images came out
/// 40% off. Launchers of reductions that could run longer split them into dispatches that
/// accumulate (beta = 1); shorter partial sums are also more accurate in f32.
pub const LOOP_BUDGET: usize = 16384;

/// `(first, count, beta)` slices of `total` items, each of at most `LOOP_BUDGET / cost` items
/// (at least one) when an item costs `cost` loop iterations: the first slice applies the
/// caller's `beta` to what the output held, the others accumulate onto it (beta = 1). No items
/// is one empty slice, so the output is still scaled by beta, as one unsplit launch did.
pub(crate) fn loop_slices(total: usize, cost: usize, beta: f32) -> impl Iterator<Item = (usize, usize, f32)> {
    let empty = (total == 0).then_some((0, 0, beta));
    crate::batches(total, (LOOP_BUDGET / cost.max(1)).max(1)).map(move |(first, n)| (first, n, if first == 0 { beta } else { 1.0 })).chain(empty)
}

/// Loop iterations one image costs a kernel that loops over its output rows and positions.
pub(crate) fn image_iterations(g: &crate::ops::ConvGeom) -> usize {
    g.out_h * (g.out_w + 1) + 1
}

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
