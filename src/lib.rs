//! LQF: Linear Quadratic Fine-Tuning on the GPU (wgpu natively, WebGPU in the browser).
//!
//! Layers: `gpu` (device, buffers, WGSL kernels with typed launchers), `cpu` (reference
//! implementations in f32/f64 that every kernel is tested against), `nn` (per-layer forward,
//! JVP and VJP rules built from the kernels), `bench` (figures, never timed tests).
pub mod error;
pub mod bench;
pub mod cpu;
#[cfg(not(target_arch = "wasm32"))]
pub mod data;
pub mod gpu;
pub mod lqf;
pub mod model;
pub mod nn;
pub mod ops;
pub mod rng;
pub mod selftest;

pub use error::{Error, Result};
#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(not(target_arch = "wasm32"))]
pub mod fsutil;
