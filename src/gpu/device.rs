//! Adapter and device setup, identical natively and in the browser.
use crate::error::{Error, Result};
use crate::gpu::pipeline::PipelineCache;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What we tell the user about the GPU we run on.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

impl std::fmt::Display for AdapterReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() {
            write!(f, " [{}]", self.driver)?;
        }
        Ok(())
    }
}

/// Which backends to try. `Auto` means Vulkan/Metal/DX12 first, then GL; in a browser, WebGPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    #[default]
    Auto,
    Vulkan,
    Metal,
    Gl,
    BrowserWebGpu,
}

impl BackendChoice {
    fn backends(self) -> wgpu::Backends {
        match self {
            BackendChoice::Auto => wgpu::Backends::all(),
            BackendChoice::Vulkan => wgpu::Backends::VULKAN,
            BackendChoice::Metal => wgpu::Backends::METAL,
            BackendChoice::Gl => wgpu::Backends::GL,
            BackendChoice::BrowserWebGpu => wgpu::Backends::BROWSER_WEBGPU,
        }
    }
}

/// A device, its queue, the pipelines compiled for it, and what it is.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterReport,
    pub limits: wgpu::Limits,
    pub(crate) pipelines: PipelineCache,
    lost: Arc<Mutex<Option<String>>>,
    gpu_error: Arc<Mutex<Option<String>>>,
    /// Set by `cancel`: long runs stop with `Error::Cancelled` at their next readback.
    cancelled: AtomicBool,
}

impl Gpu {
    /// Open the best adapter. `WGPU_BACKEND` (vulkan, metal, gl, ...) overrides `choice` natively.
    pub async fn new(choice: BackendChoice) -> Result<Gpu> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        if std::env::var_os("WGPU_BACKEND").is_none() || cfg!(target_arch = "wasm32") {
            desc.backends = choice.backends();
        }
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| Error::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let report = AdapterReport {
            name: if info.name.is_empty() { "unnamed adapter".into() } else { info.name.clone() },
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: [info.driver.as_str(), info.driver_info.as_str()].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join(" "),
        };
        // Ask for the adapter's own storage limits: the defaults (128 MiB bindings) are too small
        // for 2048x2048 K-FAC work on some devices, and asking for more than it has fails.
        let alimits = adapter.limits();
        let mut limits = wgpu::Limits::downlevel_defaults();
        limits.max_storage_buffer_binding_size = alimits.max_storage_buffer_binding_size;
        limits.max_buffer_size = alimits.max_buffer_size;
        limits.max_storage_buffers_per_shader_stage = alimits.max_storage_buffers_per_shader_stage.min(8);
        limits.max_compute_workgroup_storage_size = alimits.max_compute_workgroup_storage_size;
        limits.max_compute_invocations_per_workgroup = alimits.max_compute_invocations_per_workgroup.min(256);
        limits.max_compute_workgroup_size_x = alimits.max_compute_workgroup_size_x.min(256);
        limits.max_compute_workgroup_size_y = alimits.max_compute_workgroup_size_y.min(256);
        limits.max_compute_workgroups_per_dimension = alimits.max_compute_workgroups_per_dimension;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("lqf"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::RequestDevice(e.to_string()))?;
        let lost = Arc::new(Mutex::new(None));
        let lost_cb = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = lost_cb.lock() {
                *l = Some(format!("{reason:?}: {msg}"));
            }
        });
        // Validation errors would panic by default; keep the first one and report it as a typed error.
        let gpu_error = Arc::new(Mutex::new(None));
        let err_cb = gpu_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = err_cb.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        Ok(Gpu { device, queue, adapter: report, limits, pipelines: PipelineCache::default(), lost, gpu_error, cancelled: AtomicBool::new(false) })
    }

    /// `Err(DeviceLost)` once the device is gone, so callers stop instead of reading garbage.
    pub fn check_alive(&self) -> Result<()> {
        // Observed once: the cancelled run stops, whatever runs next is not cancelled too.
        if self.cancelled.swap(false, Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        if let Some(msg) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(Error::DeviceLost(msg));
        }
        match self.gpu_error.lock().ok().and_then(|mut e| e.take()) {
            Some(msg) => Err(Error::Gpu(msg)),
            None => Ok(()),
        }
    }

    /// Ask the running work to stop: its next readback fails with `Error::Cancelled` (once).
    /// Cooperative, so a training run stops within one GPU pass. Entry points call
    /// `clear_cancel` first, so a cancel pressed while nothing ran does not hit the next job.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Accept work again after a `cancel`.
    pub fn clear_cancel(&self) {
        self.cancelled.store(false, Ordering::Relaxed);
    }

    /// Resolve once all submitted work has finished, natively and in the browser.
    pub async fn finish(&self) -> Result<()> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        self.wait()?;
        rx.await.map_err(|_| Error::DeviceLost("work-done callback dropped".into()))?;
        self.check_alive()
    }

    /// Block natively until submitted work is done (no-op in the browser, where the event loop drives it).
    pub fn wait(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
        self.check_alive()
    }
}
