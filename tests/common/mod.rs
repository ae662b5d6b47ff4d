#![allow(dead_code)]
use lqf::gpu::{BackendChoice, Gpu};
use std::sync::OnceLock;

/// One device for the whole test binary (lavapipe here; whatever adapter is present elsewhere).
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let g = pollster::block_on(Gpu::new(BackendChoice::Auto)).expect("a GPU adapter (install mesa-vulkan-drivers for lavapipe)");
        eprintln!("testing on {}", g.adapter);
        g
    })
}

pub fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}
pub mod tiny;
