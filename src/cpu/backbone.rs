//! The pretrained network on the CPU, straight from the folded weights: the reference the GPU
//! backbone is checked against, and the page's fallback where a browser has no WebGPU (the
//! pooled features a linear probe trains on).
use super::{conv, elementwise};
use crate::model::weights::Folded;
use crate::ops::ConvSpec;

/// Every block, then the global average pool: `[n, features]` for `n` preprocessed images
/// (NHWC, the backbone's input size). ReLU6 as pretrained.
pub fn pooled_features(net: &Folded, x: &[f32], n: usize) -> Vec<f32> {
    let (mut h, mut w, mut c) = (net.def.input, net.def.input, 3);
    assert_eq!(x.len(), n * h * w * c, "pooled_features: input is not {n} images of {h}×{w}×{c}");
    let mut cur = x.to_vec();
    for (convs, def) in net.blocks.iter().zip(&net.def.blocks) {
        let input = def.residual.then(|| cur.clone());
        for fc in convs {
            let d = &fc.def;
            let s = ConvSpec { batch: n, in_h: h, in_w: w, cin: d.cin, cout: d.cout, kh: d.k, kw: d.k, stride: d.stride, groups: d.groups, padding: d.padding };
            let g = s.validate().expect("the architecture's convolutions are valid");
            cur = conv::conv2d(&s, &cur, &fc.w, Some(&fc.b));
            if d.act {
                cur = elementwise::activation(&cur, 0.0);
            }
            (h, w, c) = (g.out_h, g.out_w, d.cout);
        }
        if let Some(input) = input {
            cur = elementwise::axpby(1.0, &cur, 1.0, &input);
        }
    }
    elementwise::global_avg_pool(&cur, n, h * w, c)
}
