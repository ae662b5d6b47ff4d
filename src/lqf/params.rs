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

impl ParamSet {
    /// ⟨x_i, y⟩ for every x_i, in one pass and one readback (what the deflated solver needs
    /// each iteration).
    pub async fn dots(gpu: &Gpu, xs: &[&ParamSet], y: &ParamSet) -> Result<Vec<f64>> {
        let groups: Vec<Vec<(&Tensor, &Tensor)>> = xs.iter().map(|x| x.tensors.iter().zip(&y.tensors).collect()).collect();
        dot_groups(gpu, &groups).await
    }

    /// Σ c_i·x_i (at least one term), in one submission.
    pub fn combination(gpu: &Gpu, terms: &[(f64, &ParamSet)]) -> Result<ParamSet> {
        let lens = terms.first().map(|t| t.1.lens()).unwrap_or_default();
        let buffers = [ParamSet::zeros(gpu, &lens)?, ParamSet::zeros(gpu, &lens)?];
        gpu.run(|rec| {
            for (i, (c, x)) in terms.iter().enumerate() {
                // Ping-pong: wgpu forbids one buffer as both input and output of a dispatch.
                let (acc, out) = (&buffers[i % 2], &buffers[(i + 1) % 2]);
                ParamSet::axpby(rec, if i == 0 { 0.0 } else { 1.0 }, acc, *c as f32, x, out)?;
            }
            Ok(())
        })?;
        let [a, b] = buffers;
        Ok(if terms.len().is_multiple_of(2) { a } else { b })
    }
}

/// Σ_i ⟨x_i, y_i⟩ over tensor pairs, in f64: one dispatch per pair into one buffer, one readback.
pub async fn dot_sum(gpu: &Gpu, pairs: &[(&Tensor, &Tensor)]) -> Result<f64> {
    Ok(dot_groups(gpu, &[pairs.to_vec()]).await?[0])
}

/// `dot_sum` of every group of pairs, in one submission and one readback.
async fn dot_groups(gpu: &Gpu, groups: &[Vec<(&Tensor, &Tensor)>]) -> Result<Vec<f64>> {
    let slots: Vec<usize> = groups.iter().map(Vec::len).collect();
    let partial = gpu.zeros(reduce::DOT_GROUPS * slots.iter().sum::<usize>())?;
    gpu.run(|rec| groups.iter().flatten().enumerate().try_for_each(|(slot, (x, y))| reduce::dot_partial(rec, x, y, &partial, slot)))?;
    let values = gpu.read(&partial).await?;
    let mut at = 0;
    Ok(slots
        .iter()
        .map(|&n| {
            let sum = values[at..at + n * reduce::DOT_GROUPS].iter().map(|&v| v as f64).sum();
            at += n * reduce::DOT_GROUPS;
            sum
        })
        .collect())
}
