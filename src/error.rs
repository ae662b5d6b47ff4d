//! Typed errors for everything the crate can report to a user.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// No adapter at all: no GPU, no software driver, no WebGPU in the browser.
    #[error("no GPU adapter found ({0}). Natively, install a Vulkan driver (on Debian: `apt-get install mesa-vulkan-drivers`) or a Metal-capable Mac; in a browser, use one with WebGPU enabled")]
    NoAdapter(String),
    #[error("the GPU refused to create a device: {0}")]
    RequestDevice(String),
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("GPU validation error: {0}")]
    Gpu(String),
    #[error("reading a buffer back from the GPU failed: {0}")]
    Readback(String),
    #[error("shape mismatch in {op}: {detail}")]
    Shape { op: &'static str, detail: String },
    #[error("buffer of {bytes} bytes exceeds the adapter's storage-binding limit of {limit} bytes")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("matrix is not symmetric positive definite (non-positive or non-finite pivot at row {row})")]
    NotPositiveDefinite { row: usize },
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("weights do not match {arch}: {detail}")]
    WeightsMismatch { arch: String, detail: String },
    #[error("image {name}: {reason}")]
    Image { name: String, reason: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("model file: {0}")]
    ModelFile(String),
    #[error("training diverged: {0}")]
    Diverged(String),
    #[error("cancelled")]
    Cancelled,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn shape_err(op: &'static str, detail: impl Into<String>) -> Error {
    Error::Shape { op, detail: detail.into() }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn io_err(path: impl AsRef<std::path::Path>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.as_ref().display().to_string();
    move |source| Error::Io { path, source }
}
