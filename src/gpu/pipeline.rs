//! Shader sources (one WGSL file per kernel family) and the cache of compiled pipelines.
use std::collections::HashMap;
use std::sync::Mutex;

/// One WGSL file under `shaders/`, compiled into the binary so native and wasm builds carry it,
/// with the shared prelude `shaders/common.wgsl` in front (WGSL has no includes).
#[derive(Debug, Clone, Copy)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! shader {
    ($id:ident, $file:literal) => {
        pub const $id: Shader =
            Shader { name: $file, source: concat!(include_str!("../../shaders/common.wgsl"), include_str!(concat!("../../shaders/", $file))) };
    };
}
shader!(GEMM, "gemm.wgsl");
shader!(CONV, "conv.wgsl");
shader!(ELEMENTWISE, "elementwise.wgsl");
shader!(REDUCE, "reduce.wgsl");
shader!(SPD, "spd_inverse.wgsl");
shader!(KFAC, "kfac.wgsl");

/// The prelude file, part of every `Shader::source`.
pub const PRELUDE: &str = "common.wgsl";

/// Every shader of the crate, for the naga validation test and for warm-up.
pub const ALL_SHADERS: &[Shader] = &[GEMM, CONV, ELEMENTWISE, REDUCE, SPD, KFAC];

type Key = (&'static str, &'static str, String);

/// Pipelines specialised by WGSL `override` constants, compiled once per (file, entry, constants).
#[derive(Default)]
pub struct PipelineCache {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Key, wgpu::ComputePipeline>>,
}

impl PipelineCache {
    pub fn get(&self, device: &wgpu::Device, shader: Shader, entry: &'static str, constants: &[(&str, f64)]) -> wgpu::ComputePipeline {
        let key: Key = (shader.name, entry, format!("{constants:?}"));
        let mut pipes = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pipes.get(&key) {
            return p.clone();
        }
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        let module = modules
            .entry(shader.name)
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor { label: Some(shader.name), source: wgpu::ShaderSource::Wgsl(shader.source.into()) };
                // Bounds checks stay on. Loop bounding (an extra counter and branch in every loop,
                // wgpu's guard against infinite loops in untrusted shaders) is off: it costs ~10%
                // in the GEMM inner loop on lavapipe (15.9 -> 17.6 GFLOP/s at 1024³, interleaved
                // runs).
                let mut checks = wgpu::ShaderRuntimeChecks::checked();
                checks.force_loop_bounding = false;
                // SAFETY: these are our own shaders, not user input. Every loop runs to a bound
                // taken from a uniform that a launcher validated against tensor lengths (< 2^30
                // elements), with a positive step that cannot wrap (or, in reductions, halves a
                // power of two down to zero), so every loop terminates.
                unsafe { device.create_shader_module_trusted(desc, checks) }
            })
            .clone();
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants, zero_initialize_workgroup_memory: false },
            cache: None,
        });
        pipes.insert(key, pipeline.clone());
        pipeline
    }
}
