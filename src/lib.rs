//! LQF: Linear Quadratic Fine-Tuning on the GPU (wgpu natively, WebGPU in the browser).
//!
//! Layers: `gpu` (device, buffers, WGSL kernels with typed launchers), `cpu` (reference
//! implementations in f32/f64 that every kernel is tested against), `nn` (per-layer forward,
//! JVP and VJP rules built from the kernels), `bench` (figures, never timed tests).
pub mod bench;
pub mod cpu;
#[cfg(not(target_arch = "wasm32"))]
pub mod data;
pub mod error;
pub mod gpu;
pub mod lqf;
pub mod model;
pub mod nn;
pub mod ops;
pub mod rng;
pub mod selftest;

pub use error::{Error, Result};

/// `(start, len)` of consecutive mini-batches of at most `batch` (≥ 1) items out of `n`.
pub fn batches(n: usize, batch: usize) -> impl Iterator<Item = (usize, usize)> {
    let b = batch.max(1);
    (0..n).step_by(b).map(move |start| (start, b.min(n - start)))
}
#[cfg(not(target_arch = "wasm32"))]
pub mod fsutil;
#[cfg(target_arch = "wasm32")]
pub mod web;
