//! A pretrained backbone on the GPU: folded weights in storage buffers and the forward pass,
//! block by block, so callers can stop at any block boundary (the frozen trunk) or run to the logits.
use super::arch::{Arch, ArchDef, ConvDef};
use super::weights::{self, Folded};
use crate::error::Result;
use crate::gpu::kernels::{
    conv, elementwise,
    gemm::{gemm_fused, Epilogue, Gemm},
    reduce,
};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::ops::{ConvSpec, LeakyRelu6};
use std::ops::Range;

/// A convolution's folded parameters on the GPU.
pub struct GpuConv {
    pub def: ConvDef,
    pub w: Tensor,
    pub b: Tensor,
}

impl GpuConv {
    pub fn spec(&self, batch: usize, h: usize, w: usize) -> ConvSpec {
        let d = &self.def;
        ConvSpec { batch, in_h: h, in_w: w, cin: d.cin, cout: d.cout, kh: d.k, kw: d.k, stride: d.stride, groups: d.groups, padding: d.padding }
    }
}

/// Spatial size and channels of an NHWC activation (per image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hwc {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Hwc {
    pub fn len(&self) -> usize {
        self.h * self.w * self.c
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A block of the network: its convolutions, and whether its input is added to its output.
pub struct GpuBlock {
    pub name: String,
    pub residual: bool,
    pub convs: Vec<GpuConv>,
}

pub struct Backbone {
    pub def: ArchDef,
    pub blocks: Vec<GpuBlock>,
    pub classifier_w: Tensor,
    pub classifier_b: Tensor,
    /// sha256 of the weight file this was loaded from.
    pub weights_sha256: String,
}

impl Backbone {
    pub fn new(gpu: &Gpu, folded: &Folded, weights_sha256: String) -> Result<Backbone> {
        let blocks = folded
            .blocks
            .iter()
            .zip(&folded.def.blocks)
            .map(|(b, d)| {
                let convs = b.iter().map(|c| Ok(GpuConv { def: c.def.clone(), w: gpu.upload(&c.w)?, b: gpu.upload(&c.b)? })).collect::<Result<_>>()?;
                Ok(GpuBlock { name: d.name.clone(), residual: d.residual, convs })
            })
            .collect::<Result<_>>()?;
        Ok(Backbone {
            def: folded.def.clone(),
            blocks,
            classifier_w: gpu.upload(&folded.classifier_w)?,
            classifier_b: gpu.upload(&folded.classifier_b)?,
            weights_sha256,
        })
    }

    /// Load a project weight file (see `lqf import-weights`), optionally requiring an architecture.
    pub fn from_weight_file(gpu: &Gpu, bytes: &[u8], want: Option<Arch>) -> Result<Backbone> {
        let wf = weights::load(bytes, want)?;
        let folded = weights::fold_all(wf.arch, &wf.tensors)?;
        Backbone::new(gpu, &folded, wf.sha256)
    }

    pub fn arch(&self) -> Arch {
        self.def.arch
    }

    pub fn input_hwc(&self) -> Hwc {
        Hwc { h: self.def.input, w: self.def.input, c: 3 }
    }

    /// Run `blocks` on `x` (NHWC, `batch` images of `hwc`) with activation slope `alpha`
    /// (0 = the pretrained ReLU6). Returns the output and its shape.
    pub fn run_blocks(&self, rec: &mut Recorder<'_>, x: &Tensor, batch: usize, hwc: Hwc, blocks: Range<usize>, alpha: f32) -> Result<(Tensor, Hwc)> {
        let gpu = rec.gpu();
        let mut cur = x.clone();
        let mut shape = hwc;
        for block in &self.blocks[blocks] {
            let input = cur.clone();
            let in_shape = shape;
            for c in &block.convs {
                let spec = c.spec(batch, shape.h, shape.w);
                let g = spec.validate()?;
                let out_shape = Hwc { h: g.out_h, w: g.out_w, c: c.def.cout };
                let y = gpu.zeros(batch * out_shape.len())?;
                let act = c.def.act.then_some(LeakyRelu6 { alpha });
                conv::conv2d_act(rec, &spec, &cur, &c.w, Some(&c.b), act, &y, false)?;
                cur = y;
                shape = out_shape;
            }
            if block.residual {
                debug_assert_eq!(in_shape, shape);
                let sum = gpu.zeros(batch * shape.len())?;
                elementwise::axpby(rec, 1.0, &cur, 1.0, &input, &sum)?;
                cur = sum;
            }
        }
        Ok((cur, shape))
    }

    /// Global average pool and the ImageNet classifier: `[batch, classes]` logits.
    pub fn head(&self, rec: &mut Recorder<'_>, x: &Tensor, batch: usize, hwc: Hwc) -> Result<Tensor> {
        let gpu = rec.gpu();
        let pooled = gpu.zeros(batch * hwc.c)?;
        reduce::global_avg_pool(rec, x, batch, hwc.h * hwc.w, hwc.c, &pooled)?;
        let logits = gpu.zeros(batch * self.def.classes)?;
        let epi = Epilogue { bias: Some(&self.classifier_b), act: None };
        gemm_fused(rec, &Gemm::new(batch, self.def.classes, hwc.c), &pooled, &self.classifier_w, &logits, epi)?;
        Ok(logits)
    }

    /// The most images one pass can hold: every activation must fit one storage binding.
    pub fn max_batch(&self, gpu: &Gpu) -> usize {
        let mut hw = self.def.input;
        let mut largest = hw * hw * 3;
        for b in &self.def.blocks {
            for c in &b.convs {
                hw = hw.div_ceil(c.stride);
                largest = largest.max(hw * hw * c.cout);
            }
        }
        gpu.max_batch(largest).min(64)
    }

    /// ImageNet logits for `n` preprocessed images (NHWC, 224×224×3 each), in chunks that fit.
    pub async fn logits(&self, gpu: &Gpu, images: &[f32], n: usize) -> Result<Vec<f32>> {
        let per = self.input_hwc().len();
        if images.len() != n * per {
            return Err(crate::error::shape_err("Backbone::logits", format!("{} values for {n} images of {per}", images.len())));
        }
        let chunk = self.max_batch(gpu);
        let mut out = Vec::with_capacity(n * self.def.classes);
        for (start, b) in crate::batches(n, chunk) {
            let x = gpu.upload(&images[start * per..(start + b) * per])?;
            let logits = gpu.run(|rec| {
                let (feat, hwc) = self.run_blocks(rec, &x, b, self.input_hwc(), 0..self.blocks.len(), 0.0)?;
                self.head(rec, &feat, b, hwc)
            })?;
            out.extend(gpu.read(&logits).await?);
        }
        Ok(out)
    }
}
