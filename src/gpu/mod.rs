//! The GPU side: device, buffers, pipeline cache, and one typed launcher per kernel.
pub mod device;
pub mod kernels;
pub mod pipeline;
pub mod tensor;

pub use device::{AdapterReport, BackendChoice, Gpu};
pub use tensor::Tensor;

use pipeline::Shader;
use wgpu::util::DeviceExt;

/// Records dispatches into one command buffer; `Gpu::submit` sends it.
/// wgpu inserts the storage barriers between dependent dispatches.
pub struct Recorder<'g> {
    gpu: &'g Gpu,
    enc: wgpu::CommandEncoder,
}

impl Gpu {
    pub fn recorder(&self) -> Recorder<'_> {
        Recorder { gpu: self, enc: self.device.create_command_encoder(&Default::default()) }
    }

    pub fn submit(&self, rec: Recorder<'_>) {
        self.queue.submit([rec.enc.finish()]);
    }

    /// Record, submit, and (natively) wait: the convenience form for one-off launches.
    pub fn run<T>(&self, f: impl FnOnce(&mut Recorder<'_>) -> crate::Result<T>) -> crate::Result<T> {
        let mut rec = self.recorder();
        let out = f(&mut rec)?;
        self.submit(rec);
        self.wait()?;
        Ok(out)
    }
}

impl<'g> Recorder<'g> {
    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// One dispatch. Storage tensors bind at 0..n in order; the uniform `params` (if not empty) at n.
    pub(crate) fn dispatch(&mut self, shader: Shader, entry: &'static str, constants: &[(&str, f64)], storage: &[&Tensor], params: &[u8], groups: [u32; 3]) {
        if groups.contains(&0) {
            return;
        }
        let gpu = self.gpu;
        let pipeline = gpu.pipelines.get(&gpu.device, shader, entry, constants);
        let uniform = (!params.is_empty()).then(|| {
            gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some("params"), contents: params, usage: wgpu::BufferUsages::UNIFORM })
        });
        let mut entries: Vec<wgpu::BindGroupEntry> =
            storage.iter().enumerate().map(|(i, t)| wgpu::BindGroupEntry { binding: i as u32, resource: t.buf.as_entire_binding() }).collect();
        if let Some(u) = &uniform {
            entries.push(wgpu::BindGroupEntry { binding: storage.len() as u32, resource: u.as_entire_binding() });
        }
        let bind =
            gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(entry), layout: &pipeline.get_bind_group_layout(0), entries: &entries });
        let mut pass = self.enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(entry), timestamp_writes: None });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
    }

    pub fn copy(&mut self, src: &Tensor, src_offset: usize, dst: &Tensor, dst_offset: usize, len: usize) {
        if len > 0 {
            self.enc.copy_buffer_to_buffer(&src.buf, src_offset as u64 * 4, &dst.buf, dst_offset as u64 * 4, len as u64 * 4);
        }
    }
}

/// Workgroup counts for `n` threads in groups of `wg`, folded into y past the 65535 limit.
/// Shaders recover the linear index as `gid.x + gid.y * num_workgroups.x * wg`.
pub(crate) fn groups_1d(n: usize, wg: u32) -> [u32; 3] {
    let groups = n.div_ceil(wg as usize) as u32;
    if groups <= 65535 {
        [groups, 1, 1]
    } else {
        [65535, groups.div_ceil(65535), 1]
    }
}
