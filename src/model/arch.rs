//! The two backbones as layer graphs: blocks of convolutions (BatchNorm folded in at load), each
//! block optionally residual, then global pooling and a linear classifier. Block boundaries are
//! explicit so training can split the network into a frozen trunk and a linearized part.
use crate::error::{Error, Result};
use crate::ops::Padding;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    MobileNetV2,
    EfficientNetLite0,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::MobileNetV2, Arch::EfficientNetLite0];

    pub fn id(self) -> &'static str {
        match self {
            Arch::MobileNetV2 => "mobilenet_v2",
            Arch::EfficientNetLite0 => "efficientnet_lite0",
        }
    }

    pub fn from_id(id: &str) -> Result<Arch> {
        Arch::ALL
            .into_iter()
            .find(|a| a.id() == id)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown backbone {id:?}; expected one of: mobilenet_v2, efficientnet_lite0")))
    }

    fn bn_eps(self) -> f32 {
        match self {
            Arch::MobileNetV2 => 1e-5,
            Arch::EfficientNetLite0 => 1e-3,
        }
    }

    /// torchvision pads symmetrically; the TensorFlow-trained EfficientNet uses "SAME".
    fn padding(self, k: usize) -> Padding {
        match self {
            Arch::MobileNetV2 => Padding::Symmetric(k / 2, k / 2),
            Arch::EfficientNetLite0 => Padding::Same,
        }
    }

    /// Per-channel (scale, shift) applied to 0–255 RGB: x·scale + shift.
    pub fn normalisation(self) -> [(f32, f32); 3] {
        match self {
            Arch::MobileNetV2 => {
                let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
                [0, 1, 2].map(|c| (1.0 / (255.0 * std[c]), -mean[c] / std[c]))
            }
            Arch::EfficientNetLite0 => [(1.0 / 128.0, -127.0 / 128.0); 3],
        }
    }

    pub fn def(self) -> ArchDef {
        match self {
            Arch::MobileNetV2 => mobilenet_v2(),
            Arch::EfficientNetLite0 => efficientnet_lite0(),
        }
    }
}

/// One convolution with its BatchNorm, as named in the PyTorch checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvDef {
    /// e.g. `features.2.conv.0.0.weight`
    pub weight: String,
    /// e.g. `features.2.conv.0.1` (then `.weight`, `.bias`, `.running_mean`, `.running_var`)
    pub bn: String,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub groups: usize,
    pub padding: Padding,
    pub eps: f32,
    /// Followed by the (leaky) ReLU6.
    pub act: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BlockDef {
    pub name: String,
    pub convs: Vec<ConvDef>,
    /// out = convs(x) + x
    pub residual: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArchDef {
    pub arch: Arch,
    pub blocks: Vec<BlockDef>,
    pub classifier_weight: String,
    pub classifier_bias: String,
    pub features: usize,
    pub classes: usize,
    pub input: usize,
}

impl ArchDef {
    /// Every tensor the checkpoint must hold, with its PyTorch shape.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for b in &self.blocks {
            for c in &b.convs {
                out.push((c.weight.clone(), vec![c.cout, c.cin / c.groups, c.k, c.k]));
                for p in ["weight", "bias", "running_mean", "running_var"] {
                    out.push((format!("{}.{p}", c.bn), vec![c.cout]));
                }
            }
        }
        out.push((self.classifier_weight.clone(), vec![self.classes, self.features]));
        out.push((self.classifier_bias.clone(), vec![self.classes]));
        out
    }

    /// Multiply-adds ×2 of one image's forward pass, classifier included.
    pub fn flops(&self) -> f64 {
        self.flops_of(0..self.blocks.len()) + 2.0 * (self.features * self.classes) as f64
    }

    /// Multiply-adds ×2 of the convolutions of `blocks`.
    pub fn flops_of(&self, blocks: std::ops::Range<usize>) -> f64 {
        let mut hw = self.input;
        let mut total = 0.0;
        for (i, b) in self.blocks.iter().enumerate() {
            for c in &b.convs {
                hw = hw.div_ceil(c.stride);
                if blocks.contains(&i) {
                    total += 2.0 * (hw * hw * c.cout * c.k * c.k * (c.cin / c.groups)) as f64;
                }
            }
        }
        total
    }

    /// (h, w, c) after each block for an input of `self.input` pixels.
    pub fn block_shapes(&self) -> Vec<(usize, usize, usize)> {
        let mut hw = self.input;
        self.blocks
            .iter()
            .map(|b| {
                for c in &b.convs {
                    hw = hw.div_ceil(c.stride);
                }
                (hw, hw, b.convs.last().map(|c| c.cout).unwrap_or(0))
            })
            .collect()
    }
}

struct Builder {
    arch: Arch,
    blocks: Vec<BlockDef>,
}

/// Checkpoint names of one convolution: (weight tensor, BatchNorm prefix).
type Names = (String, String);

impl Builder {
    /// An inverted-residual block (MobileNetV2, EfficientNet): an optional 1×1 expansion (when
    /// `expand` is Some), a k×k depthwise convolution, a linear 1×1 projection; residual when the
    /// shape is kept.
    #[allow(clippy::too_many_arguments)]
    fn inverted_residual(
        &mut self,
        name: String,
        expand: Option<Names>,
        dw: Names,
        project: Names,
        cin: usize,
        hidden: usize,
        cout: usize,
        k: usize,
        stride: usize,
    ) {
        let mut convs = Vec::new();
        if let Some((w, bn)) = expand {
            convs.push(self.conv(&w, &bn, cin, hidden, 1, 1, 1, true));
        }
        convs.push(self.conv(&dw.0, &dw.1, hidden, hidden, k, stride, hidden, true));
        convs.push(self.conv(&project.0, &project.1, hidden, cout, 1, 1, 1, false));
        self.blocks.push(BlockDef { name, convs, residual: stride == 1 && cin == cout });
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(&self, weight: &str, bn: &str, cin: usize, cout: usize, k: usize, stride: usize, groups: usize, act: bool) -> ConvDef {
        ConvDef { weight: weight.into(), bn: bn.into(), cin, cout, k, stride, groups, padding: self.arch.padding(k), eps: self.arch.bn_eps(), act }
    }
}

fn mobilenet_v2() -> ArchDef {
    let mut b = Builder { arch: Arch::MobileNetV2, blocks: Vec::new() };
    let stem = b.conv("features.0.0.weight", "features.0.1", 3, 32, 3, 2, 1, true);
    b.blocks.push(BlockDef { name: "features.0".into(), convs: vec![stem], residual: false });
    // (expansion t, channels c, repeats n, first stride s), torchvision's table.
    let table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    let (mut cin, mut idx) = (32, 1);
    for (t, c, n, s) in table {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let p = format!("features.{idx}.conv");
            // torchvision numbers the sub-modules: without expansion the depthwise conv is `.0`.
            let j = (t != 1) as usize;
            let expand = (t != 1).then(|| (format!("{p}.0.0.weight"), format!("{p}.0.1")));
            let dw = (format!("{p}.{j}.0.weight"), format!("{p}.{j}.1"));
            let project = (format!("{p}.{}.weight", j + 1), format!("{p}.{}", j + 2));
            b.inverted_residual(format!("features.{idx}"), expand, dw, project, cin, cin * t, c, 3, stride);
            cin = c;
            idx += 1;
        }
    }
    let head = b.conv("features.18.0.weight", "features.18.1", 320, 1280, 1, 1, 1, true);
    b.blocks.push(BlockDef { name: "features.18".into(), convs: vec![head], residual: false });
    ArchDef {
        arch: Arch::MobileNetV2,
        blocks: b.blocks,
        classifier_weight: "classifier.1.weight".into(),
        classifier_bias: "classifier.1.bias".into(),
        features: 1280,
        classes: 1000,
        input: 224,
    }
}

fn efficientnet_lite0() -> ArchDef {
    let mut b = Builder { arch: Arch::EfficientNetLite0, blocks: Vec::new() };
    let stem = b.conv("_conv_stem.weight", "_bn0", 3, 32, 3, 2, 1, true);
    b.blocks.push(BlockDef { name: "stem".into(), convs: vec![stem], residual: false });
    // EfficientNet-B0's stages (repeats, kernel, stride, expansion, out), without squeeze-excitation.
    let table = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)];
    let (mut cin, mut idx) = (32, 0);
    for (n, k, s, e, cout) in table {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let p = format!("_blocks.{idx}");
            let expand = (e != 1).then(|| (format!("{p}._expand_conv.weight"), format!("{p}._bn0")));
            let dw = (format!("{p}._depthwise_conv.weight"), format!("{p}._bn1"));
            let project = (format!("{p}._project_conv.weight"), format!("{p}._bn2"));
            b.inverted_residual(p, expand, dw, project, cin, cin * e, cout, k, stride);
            cin = cout;
            idx += 1;
        }
    }
    let head = b.conv("_conv_head.weight", "_bn1", 320, 1280, 1, 1, 1, true);
    b.blocks.push(BlockDef { name: "head".into(), convs: vec![head], residual: false });
    ArchDef {
        arch: Arch::EfficientNetLite0,
        blocks: b.blocks,
        classifier_weight: "_fc.weight".into(),
        classifier_bias: "_fc.bias".into(),
        features: 1280,
        classes: 1000,
        input: 224,
    }
}
