//! The linearized network f_lin(z; Δ) = g(z; θ0) + J_g(z; θ0)·Δ on the GPU, where z is the frozen
//! trunk's output and g the last blocks of the backbone followed by a new classifier.
//!
//! Parameters, in order: for every convolution of the linearized blocks its HWIO weight and
//! bias (BatchNorm folded), then the classifier's `[features, classes]` weight and its bias.
//! `jvp` runs both streams (primal at θ0, tangent J·Δ); `vjp` backpropagates an output gradient
//! at θ0 into parameter space (Jᵀ·g). Both recompute the primal: nothing per image is kept.
use super::params::ParamSet;
use crate::error::{shape_err, Result};
use crate::gpu::kernels::{
    conv, elementwise,
    gemm::{gemm, gemm_fused, Epilogue, Gemm},
    reduce,
};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::model::arch::ConvDef;
use crate::model::backbone::Hwc;
use crate::nn::{self, ConvParams};
use crate::ops::{ConvSpec, LeakyRelu6};

/// A block of the linearized part: indices into `convs`, and whether its input is added back.
#[derive(Debug, Clone)]
pub struct LinBlock {
    pub residual: bool,
    pub convs: Vec<usize>,
}

/// The structure of the linearized part; the parameters live in `ParamSet`s.
#[derive(Debug, Clone)]
pub struct LinearizedNet {
    pub convs: Vec<ConvDef>,
    pub blocks: Vec<LinBlock>,
    /// Shape of z, the trunk's output (per image).
    pub input: Hwc,
    pub features: usize,
    pub classes: usize,
    /// Leaky-ReLU6 slope of the linearized part.
    pub alpha: f32,
}

/// What `backward` hands each layer: its index in `ParamSet` pairs (convolutions, then the
/// classifier), its geometry (None for the classifier), input, and output gradient.
pub(crate) struct LayerGrad<'a> {
    pub index: usize,
    pub spec: Option<ConvSpec>,
    pub input: &'a Tensor,
    pub grad: &'a Tensor,
    /// Output positions per image (1 for the classifier).
    pub positions: usize,
}

/// Per-conv intermediates of one primal pass, kept for the backward pass of the same batch.
pub(crate) struct Tape {
    /// Input of each conv (index = conv index).
    inputs: Vec<Tensor>,
    /// Pre-activation of each conv that has an activation.
    pre: Vec<Option<Tensor>>,
    /// Spatial size of each conv's input.
    shapes: Vec<Hwc>,
    /// Final activation before pooling, its shape, and the pooled features.
    last: Hwc,
    pooled: Tensor,
}

impl LinearizedNet {
    /// Lengths of the parameter tensors, in `ParamSet` order.
    pub fn param_lens(&self) -> Vec<usize> {
        let mut v = Vec::new();
        for c in &self.convs {
            v.push(c.k * c.k * (c.cin / c.groups) * c.cout);
            v.push(c.cout);
        }
        v.push(self.features * self.classes);
        v.push(self.classes);
        v
    }

    /// Values per image of the largest tensor a pass allocates: the input or a convolution's
    /// output (its activation, tangent and gradient have the same size).
    fn largest_activation(&self) -> usize {
        let mut shape = self.input;
        let mut largest = shape.len();
        for block in &self.blocks {
            for &k in &block.convs {
                let c = &self.convs[k];
                if let Ok(g) = Self::spec(c, 1, shape).validate() {
                    shape = Hwc { h: g.out_h, w: g.out_w, c: c.cout };
                    largest = largest.max(shape.len());
                }
            }
        }
        largest
    }

    /// The most images one pass can hold on `gpu`: MobileNetV2 linearized from its second
    /// block has 112×112×96 activations, and 27 images of them fill WebGPU's 128 MiB binding.
    pub fn max_batch(&self, gpu: &Gpu) -> usize {
        gpu.max_batch(self.largest_activation())
    }

    /// `batch` lowered to what one pass can hold. Every loop over images in passes goes
    /// through this, so a batch setting never decides whether a depth fits the adapter.
    pub fn fit_batch(&self, gpu: &Gpu, batch: usize) -> usize {
        batch.clamp(1, self.max_batch(gpu))
    }

    fn spec(c: &ConvDef, batch: usize, hwc: Hwc) -> ConvSpec {
        ConvSpec { batch, in_h: hwc.h, in_w: hwc.w, cin: c.cin, cout: c.cout, kh: c.k, kw: c.k, stride: c.stride, groups: c.groups, padding: c.padding }
    }

    fn check(&self, p: &ParamSet, what: &'static str) -> Result<()> {
        if p.lens() != self.param_lens() {
            return Err(shape_err(what, format!("parameter set {:?} does not match the network {:?}", p.lens(), self.param_lens())));
        }
        Ok(())
    }

    fn act(&self) -> LeakyRelu6 {
        LeakyRelu6 { alpha: self.alpha }
    }

    /// Both streams for `batch` inputs `z`: returns (f0, J·Δ) as `[batch, classes]`.
    pub fn jvp(&self, rec: &mut Recorder<'_>, theta0: &ParamSet, z: &Tensor, batch: usize, delta: &ParamSet) -> Result<(Tensor, Tensor)> {
        self.check(theta0, "jvp θ0")?;
        self.check(delta, "jvp Δ")?;
        let gpu = rec.gpu();
        let (mut a, mut a_dot): (Tensor, Option<Tensor>) = (z.clone(), None);
        let mut shape = self.input;
        for block in &self.blocks {
            let (block_in, block_in_dot) = (a.clone(), a_dot.clone());
            for &k in &block.convs {
                let c = &self.convs[k];
                let s = Self::spec(c, batch, shape);
                let g = s.validate()?;
                let out = Hwc { h: g.out_h, w: g.out_w, c: c.cout };
                let n = batch * out.len();
                let (u, u_dot) = (gpu.zeros(n)?, gpu.zeros(n)?);
                let th = ConvParams { w: &theta0.tensors[2 * k], b: Some(&theta0.tensors[2 * k + 1]) };
                let de = ConvParams { w: &delta.tensors[2 * k], b: Some(&delta.tensors[2 * k + 1]) };
                nn::conv_jvp(rec, &s, &a, a_dot.as_ref(), &th, &de, &u, &u_dot)?;
                if c.act {
                    let (y, y_dot) = (gpu.zeros(n)?, gpu.zeros(n)?);
                    nn::activation_jvp(rec, self.act(), &u, &u_dot, &y, &y_dot)?;
                    (a, a_dot) = (y, Some(y_dot));
                } else {
                    (a, a_dot) = (u, Some(u_dot));
                }
                shape = out;
            }
            if block.residual {
                let n = batch * shape.len();
                let (y, y_dot) = (gpu.zeros(n)?, gpu.zeros(n)?);
                let zero;
                let in_dot = match &block_in_dot {
                    Some(t) => t,
                    None => {
                        zero = gpu.zeros(n)?;
                        &zero
                    }
                };
                let ad = a_dot.as_ref().ok_or_else(|| shape_err("jvp", "residual block without convolutions"))?;
                nn::add_jvp(rec, &a, ad, &block_in, in_dot, &y, &y_dot)?;
                (a, a_dot) = (y, Some(y_dot));
            }
        }
        let a_dot = match a_dot {
            Some(t) => t,
            None => gpu.zeros(batch * shape.len())?,
        };
        let (p, p_dot) = (gpu.zeros(batch * shape.c)?, gpu.zeros(batch * shape.c)?);
        nn::pool_jvp(rec, batch, shape.h * shape.w, shape.c, &a, &a_dot, &p, &p_dot)?;
        // Classifier: f = p·W0 + b0;  ḟ = ṗ·W0 + p·ΔW + Δb.
        let nc = self.classes;
        let (w0, b0, dw, db) = (
            &theta0.tensors[2 * self.convs.len()],
            &theta0.tensors[2 * self.convs.len() + 1],
            &delta.tensors[2 * self.convs.len()],
            &delta.tensors[2 * self.convs.len() + 1],
        );
        let (f, f_dot) = (gpu.zeros(batch * nc)?, gpu.zeros(batch * nc)?);
        let g = Gemm::new(batch, nc, shape.c);
        gemm_fused(rec, &g, &p, w0, &f, Epilogue { bias: Some(b0), act: None })?;
        gemm(rec, &g, &p_dot, w0, &f_dot)?;
        gemm_fused(rec, &g.scale(1.0, 1.0), &p, dw, &f_dot, Epilogue { bias: Some(db), act: None })?;
        Ok((f, f_dot))
    }

    /// f_lin(z; Δ) = f0 + J·Δ as one `[batch, classes]` tensor.
    pub fn f_lin(&self, rec: &mut Recorder<'_>, theta0: &ParamSet, z: &Tensor, batch: usize, delta: &ParamSet) -> Result<Tensor> {
        let (f0, jd) = self.jvp(rec, theta0, z, batch, delta)?;
        let f = rec.gpu().zeros(f0.len)?;
        elementwise::axpby(rec, 1.0, &f0, 1.0, &jd, &f)?;
        Ok(f)
    }

    /// The primal pass, keeping what the backward pass needs.
    fn forward_tape(&self, rec: &mut Recorder<'_>, theta0: &ParamSet, z: &Tensor, batch: usize) -> Result<Tape> {
        let gpu = rec.gpu();
        let mut tape = Tape { inputs: Vec::new(), pre: Vec::new(), shapes: Vec::new(), last: self.input, pooled: gpu.zeros(1)? };
        let mut a = z.clone();
        let mut shape = self.input;
        for block in &self.blocks {
            let block_in = a.clone();
            for &k in &block.convs {
                let c = &self.convs[k];
                let s = Self::spec(c, batch, shape);
                let g = s.validate()?;
                let out = Hwc { h: g.out_h, w: g.out_w, c: c.cout };
                let u = gpu.zeros(batch * out.len())?;
                conv::conv2d(rec, &s, &a, &theta0.tensors[2 * k], Some(&theta0.tensors[2 * k + 1]), &u, false)?;
                tape.inputs.push(a.clone());
                tape.shapes.push(shape);
                if c.act {
                    let y = gpu.zeros(batch * out.len())?;
                    elementwise::leaky_relu6(rec, &u, &y, self.alpha)?;
                    tape.pre.push(Some(u));
                    a = y;
                } else {
                    tape.pre.push(None);
                    a = u;
                }
                shape = out;
            }
            if block.residual {
                let y = gpu.zeros(batch * shape.len())?;
                elementwise::axpby(rec, 1.0, &a, 1.0, &block_in, &y)?;
                a = y;
            }
        }
        tape.pooled = gpu.zeros(batch * shape.c)?;
        reduce::global_avg_pool(rec, &a, batch, shape.h * shape.w, shape.c, &tape.pooled)?;
        tape.last = shape;
        Ok(tape)
    }

    /// f_lin(z; 0) = g(z; θ0) alone: the primal pass, without the tangent stream of `jvp`.
    pub fn forward(&self, rec: &mut Recorder<'_>, theta0: &ParamSet, z: &Tensor, batch: usize) -> Result<Tensor> {
        let pooled = self.pooled(rec, theta0, z, batch)?;
        let nconv = self.convs.len();
        let f = rec.gpu().zeros(batch * self.classes)?;
        let epi = Epilogue { bias: Some(&theta0.tensors[2 * nconv + 1]), act: None };
        gemm_fused(rec, &Gemm::new(batch, self.classes, self.features), &pooled, &theta0.tensors[2 * nconv], &f, epi)?;
        Ok(f)
    }

    /// The classifier's input at θ0 (pooled features), `[batch, features]`.
    pub fn pooled(&self, rec: &mut Recorder<'_>, theta0: &ParamSet, z: &Tensor, batch: usize) -> Result<Tensor> {
        Ok(self.tape(rec, theta0, z, batch)?.pooled)
    }

    /// `grads = scale·Jᵀ·g + beta·grads` for output gradients `g` (`[batch, classes]`), at θ0.
    #[allow(clippy::too_many_arguments)]
    pub fn vjp(&self, rec: &mut Recorder<'_>, theta0: &ParamSet, z: &Tensor, batch: usize, g: &Tensor, grads: &ParamSet, scale: f32, beta: f32) -> Result<()> {
        self.check(grads, "vjp gradient")?;
        let nconv = self.convs.len();
        let tape = self.tape(rec, theta0, z, batch)?;
        self.backward(rec, theta0, &tape, batch, g, |rec, layer| {
            let (gw, gb) = (&grads.tensors[2 * layer.index], &grads.tensors[2 * layer.index + 1]);
            match layer.spec {
                Some(s) => conv::conv2d_backward_weight(rec, &s, layer.input, layer.grad, gw, Some(gb), scale, beta),
                None => {
                    // The classifier: gW = pᵀ·g, gb = Σ_rows g.
                    debug_assert_eq!(layer.index, nconv);
                    gemm(rec, &Gemm::new(self.features, self.classes, batch).trans(true, false).scale(scale, beta), layer.input, layer.grad, gw)?;
                    reduce::col_sum(rec, layer.grad, batch, self.classes, gb, scale, beta)
                }
            }
        })
    }

    /// The primal pass at θ0, keeping each layer's input and pre-activation for `backward`.
    pub(crate) fn tape(&self, rec: &mut Recorder<'_>, theta0: &ParamSet, z: &Tensor, batch: usize) -> Result<Tape> {
        self.check(theta0, "θ0")?;
        self.forward_tape(rec, theta0, z, batch)
    }

    /// Backpropagate `g` (`[batch, classes]`) at θ0 and hand every layer, classifier first then
    /// the convolutions from last to first, its output gradient (w.r.t. the pre-activation) and
    /// its input. Input gradients are formed only where an earlier layer needs them.
    pub(crate) fn backward(
        &self,
        rec: &mut Recorder<'_>,
        theta0: &ParamSet,
        tape: &Tape,
        batch: usize,
        g: &Tensor,
        mut on_layer: impl FnMut(&mut Recorder<'_>, LayerGrad<'_>) -> Result<()>,
    ) -> Result<()> {
        let gpu = rec.gpu();
        let nconv = self.convs.len();
        let (nc, last) = (self.classes, tape.last);
        on_layer(rec, LayerGrad { index: nconv, spec: None, input: &tape.pooled, grad: g, positions: 1 })?;
        if self.blocks.is_empty() {
            return Ok(());
        }
        let gp = gpu.zeros(batch * last.c)?;
        gemm(rec, &Gemm::new(batch, last.c, nc).trans(false, true), g, &theta0.tensors[2 * nconv], &gp)?;
        let mut ga = gpu.zeros(batch * last.len())?;
        nn::pool_vjp(rec, batch, last.h * last.w, last.c, &gp, &ga)?;
        for (bi, block) in self.blocks.iter().enumerate().rev() {
            // The first block's input is z, the trunk's output: no gradient is needed there.
            let first = bi == 0;
            let g_out = ga.clone();
            let mut gcur = ga.clone();
            for &k in block.convs.iter().rev() {
                let c = &self.convs[k];
                let s = Self::spec(c, batch, tape.shapes[k]);
                if let Some(u) = &tape.pre[k] {
                    let gu = gpu.zeros(u.len)?;
                    nn::activation_vjp(rec, self.act(), u, &gcur, &gu)?;
                    gcur = gu;
                }
                let g = s.validate()?;
                let positions = g.out_h * g.out_w;
                on_layer(rec, LayerGrad { index: k, spec: Some(s), input: &tape.inputs[k], grad: &gcur, positions })?;
                if !(first && k == block.convs[0]) {
                    let gx = gpu.zeros(s.input_len())?;
                    conv::conv2d_backward_data(rec, &s, &gcur, &theta0.tensors[2 * k], &gx)?;
                    gcur = gx;
                }
            }
            if first {
                break;
            }
            if block.residual {
                let sum = gpu.zeros(gcur.len)?;
                elementwise::axpby(rec, 1.0, &gcur, 1.0, &g_out, &sum)?;
                gcur = sum;
            }
            ga = gcur;
        }
        Ok(())
    }
}
