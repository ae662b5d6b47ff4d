//! Shape descriptors shared by the GPU launchers and the CPU references.
//!
//! Layouts: activations are NHWC, convolution weights HWIO `[kh, kw, cin/groups, cout]`, matrices
//! row-major. NHWC makes a 1×1 convolution a plain GEMM and keeps depthwise channels contiguous.
use crate::error::{shape_err, Result};

/// Spatial padding of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// The same padding on both sides (PyTorch): `(pad_h, pad_w)`.
    Symmetric(usize, usize),
    /// TensorFlow "SAME": output = ceil(input / stride); the odd extra pixel goes bottom/right.
    Same,
}

/// A 2-D convolution over an NHWC batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub cin: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub groups: usize,
    pub padding: Padding,
}

/// Resolved geometry: output size and the top/left padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    pub out_h: usize,
    pub out_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

fn same_pad(input: usize, k: usize, s: usize) -> (usize, usize) {
    let out = input.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(input);
    (out, total / 2)
}

impl ConvSpec {
    pub fn validate(&self) -> Result<ConvGeom> {
        let err = |d: String| Err(shape_err("conv2d", d));
        if self.groups == 0 || !self.cin.is_multiple_of(self.groups) || !self.cout.is_multiple_of(self.groups) {
            return err(format!("groups {} must divide cin {} and cout {}", self.groups, self.cin, self.cout));
        }
        if self.kh == 0 || self.kw == 0 || self.stride == 0 || self.in_h == 0 || self.in_w == 0 {
            return err(format!("zero-sized kernel, stride or input: {self:?}"));
        }
        let g = match self.padding {
            Padding::Symmetric(ph, pw) => {
                if self.in_h + 2 * ph < self.kh || self.in_w + 2 * pw < self.kw {
                    return err(format!("kernel {}x{} larger than padded input {self:?}", self.kh, self.kw));
                }
                ConvGeom {
                    out_h: (self.in_h + 2 * ph - self.kh) / self.stride + 1,
                    out_w: (self.in_w + 2 * pw - self.kw) / self.stride + 1,
                    pad_top: ph,
                    pad_left: pw,
                }
            }
            Padding::Same => {
                let (out_h, pad_top) = same_pad(self.in_h, self.kh, self.stride);
                let (out_w, pad_left) = same_pad(self.in_w, self.kw, self.stride);
                ConvGeom { out_h, out_w, pad_top, pad_left }
            }
        };
        Ok(g)
    }
    pub fn cin_g(&self) -> usize {
        self.cin / self.groups
    }
    pub fn cout_g(&self) -> usize {
        self.cout / self.groups
    }
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.cin
    }
    pub fn weight_len(&self) -> usize {
        self.kh * self.kw * self.cin_g() * self.cout
    }
    pub fn output_len(&self) -> Result<usize> {
        let g = self.validate()?;
        Ok(self.batch * g.out_h * g.out_w * self.cout)
    }
    /// Multiply-adds ×2 of the forward pass.
    pub fn flops(&self) -> f64 {
        let g = self.validate().map(|g| g.out_h * g.out_w).unwrap_or(0);
        2.0 * (self.batch * g * self.cout * self.kh * self.kw * self.cin_g()) as f64
    }
    /// A 1×1, stride-1, ungrouped convolution is exactly a GEMM over pixels.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.groups == 1 && matches!(self.padding, Padding::Symmetric(0, 0) | Padding::Same)
    }
}

/// Leaky-ReLU6: u on [0, 6], α·u below 0, 6 + α·(u − 6) above 6. α = 0 is ReLU6.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakyRelu6 {
    pub alpha: f32,
}
