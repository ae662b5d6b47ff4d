//! Vectors in parameter space (θ0, Δ, gradients, CG directions) as GPU tensors, one per weight
//! or bias of the linearized part, with the BLAS-1 operations the solvers need.
use crate::error::Result;
use crate::gpu::kernels::{elementwise, reduce};
use crate::gpu::{Gpu, Recorder, Tensor};

#[derive(Clone, Debug)]
pub struct ParamSet {
    pub tensors: Vec<Tensor>,
}

impl ParamSet {
    pub fn zeros(gpu: &Gpu, lens: &[usize]) -> Result<ParamSet> {
        Ok(ParamSet { tensors: lens.iter().map(|&n| gpu.zeros(n)).collect::<Result<_>>()? })
    }

    pub fn upload(gpu: &Gpu, host: &[Vec<f32>]) -> Result<ParamSet> {
        Ok(ParamSet { tensors: host.iter().map(|v| gpu.upload(v)).collect::<Result<_>>()? })
    }

    pub async fn read(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            out.push(gpu.read(t).await?);
        }
        Ok(out)
    }

    pub fn lens(&self) -> Vec<usize> {
        self.tensors.iter().map(|t| t.len).collect()
    }

    pub fn len(&self) -> usize {
        self.tensors.iter().map(|t| t.len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// out = a·x + b·y, tensor by tensor (out may be x or y only through a copy: wgpu forbids
    /// binding one buffer as both input and output, so callers pass a third set).
    pub fn axpby(rec: &mut Recorder<'_>, a: f32, x: &ParamSet, b: f32, y: &ParamSet, out: &ParamSet) -> Result<()> {
        for ((x, y), o) in x.tensors.iter().zip(&y.tensors).zip(&out.tensors) {
            elementwise::axpby(rec, a, x, b, y, o)?;
        }
        Ok(())
    }

    /// ⟨x, y⟩ accumulated in f64 from per-workgroup partial sums.
    pub async fn dot(gpu: &Gpu, x: &ParamSet, y: &ParamSet) -> Result<f64> {
        let pairs: Vec<(&Tensor, &Tensor)> = x.tensors.iter().zip(&y.tensors).collect();
        dot_sum(gpu, &pairs).await
    }
}

/// Σ_i ⟨x_i, y_i⟩ over tensor pairs, in f64: one dispatch per pair into one buffer, one readback.
pub async fn dot_sum(gpu: &Gpu, pairs: &[(&Tensor, &Tensor)]) -> Result<f64> {
    let partial = gpu.zeros(reduce::DOT_GROUPS * pairs.len())?;
    gpu.run(|rec| pairs.iter().enumerate().try_for_each(|(slot, (x, y))| reduce::dot_partial(rec, x, y, &partial, slot)))?;
    Ok(gpu.read(&partial).await?.iter().map(|&v| v as f64).sum())
}
