//! Flat f32 / u32 buffers on the GPU, with upload and asynchronous readback.
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use wgpu::util::DeviceExt;

/// A flat array of 32-bit values in GPU storage. Shapes live with the launchers that use it.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub(crate) buf: wgpu::Buffer,
    pub len: usize,
}

impl Tensor {
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buf
    }
    pub fn bytes(&self) -> u64 {
        self.len as u64 * 4
    }
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl Gpu {
    /// The most images one pass can hold when its largest tensor has `values_per_image` f32
    /// values per image: every tensor must fit one storage binding (128 MiB on WebGPU by default).
    pub fn max_batch(&self, values_per_image: usize) -> usize {
        let limit = (self.limits.max_storage_buffer_binding_size / 4) as usize;
        (limit / values_per_image.max(1)).max(1)
    }

    fn check_size(&self, len: usize) -> Result<u64> {
        // Zero-length bindings are invalid; keep one element so empty tensors still bind.
        let bytes = (len.max(1) as u64) * 4;
        let limit = self.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(Error::TooLarge { bytes, limit });
        }
        Ok(bytes)
    }

    /// A zero-filled tensor of `len` elements.
    pub fn zeros(&self, len: usize) -> Result<Tensor> {
        let size = self.check_size(len)?;
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor { label: None, size, usage: STORAGE, mapped_at_creation: false });
        Ok(Tensor { buf, len })
    }

    pub fn upload(&self, data: &[f32]) -> Result<Tensor> {
        self.upload_bytes(bytemuck::cast_slice(data), data.len())
    }

    pub fn upload_u32(&self, data: &[u32]) -> Result<Tensor> {
        self.upload_bytes(bytemuck::cast_slice(data), data.len())
    }

    fn upload_bytes(&self, bytes: &[u8], len: usize) -> Result<Tensor> {
        self.check_size(len)?;
        if bytes.is_empty() {
            return self.zeros(0);
        }
        let buf = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytes, usage: STORAGE });
        Ok(Tensor { buf, len })
    }

    /// Overwrite a tensor's contents from the host.
    pub fn write(&self, t: &Tensor, data: &[f32]) -> Result<()> {
        if data.len() != t.len {
            return Err(crate::error::shape_err("write", format!("{} values into a tensor of {}", data.len(), t.len)));
        }
        self.queue.write_buffer(&t.buf, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Read a tensor back as f32. Asynchronous so the browser's event loop is never blocked.
    pub async fn read(&self, t: &Tensor) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(t).await?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    pub async fn read_u32(&self, t: &Tensor) -> Result<Vec<u32>> {
        let bytes = self.read_bytes(t).await?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    async fn read_bytes(&self, t: &Tensor) -> Result<Vec<u8>> {
        self.check_alive()?;
        if t.len == 0 {
            return Ok(Vec::new());
        }
        let size = t.bytes();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&t.buf, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.await.map_err(|_| Error::Readback("the map callback was dropped".into()))?.map_err(|e| Error::Readback(e.to_string()))?;
        let data = staging.slice(..).get_mapped_range().map_err(|e| Error::Readback(e.to_string()))?.to_vec();
        staging.unmap();
        Ok(data)
    }
}
