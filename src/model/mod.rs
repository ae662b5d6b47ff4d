//! Pretrained backbones: weight files, architectures, preprocessing, and the GPU forward pass.
pub mod arch;
pub mod backbone;
pub mod checkpoint;
pub mod f16;
pub mod pickle;
pub mod preprocess;
pub mod safetensors;
pub mod weights;
mod zip;

pub use arch::Arch;
pub use backbone::Backbone;

/// The 1000 ImageNet class names, in index order (torchvision's list, BSD-3-Clause).
pub fn imagenet_labels() -> Vec<&'static str> {
    include_str!("../../weights/imagenet_classes.txt").lines().collect()
}

/// The `k` largest softmax probabilities of `logits`, as (index, probability), best first.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let p = crate::cpu::elementwise::softmax_rows(logits, logits.len().max(1));
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    idx.into_iter().take(k).map(|i| (i, p[i])).collect()
}
