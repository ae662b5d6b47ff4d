//! The CPU path the page falls back to without WebGPU: the pretrained network's pooled
//! features and the ridge probe on the CPU, each against the GPU path it stands in for.
mod common;

use common::{block, gpu};
use lqf::lqf::{probe, train};
use lqf::model::{preprocess, weights, Arch, Backbone};
use lqf::rng::Rng;

/// CPU vs GPU pooled features, relative to the GPU's norm (f32 on both sides, different
/// summation orders through 17 blocks).
const FEATURES_REL: f64 = 1e-4;
/// CPU ridge (f64) vs GPU ridge (f32 GEMMs and SPD inverse), relative to the GPU's norm.
const RIDGE_REL: f64 = 1e-4;

fn rel(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>().sqrt();
    d / b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt()
}

#[test]
fn cpu_backbone_features_match_the_gpu() {
    let g = gpu();
    let bytes = std::fs::read("weights/mobilenet_v2.safetensors").unwrap();
    let net = Backbone::from_weight_file(g, &bytes, Some(Arch::MobileNetV2)).unwrap();
    let wf = weights::load(&bytes, Some(Arch::MobileNetV2)).unwrap();
    let folded = weights::fold_all(wf.arch, &wf.tensors).unwrap();
    let mut x = Vec::new();
    for f in ["web/samples/eurosat/test/Forest/Forest_1154.jpg", "web/samples/eurosat/test/SeaLake/SeaLake_1146.jpg"] {
        x.extend(preprocess::preprocess(&std::fs::read(f).unwrap(), f, Arch::MobileNetV2).unwrap());
    }
    let (trunk_end, _) = train::trunk_shape(&net.def, train::Depth::Probe).unwrap();
    let want = block(train::trunk_features(g, &net, trunk_end, &x, 2)).unwrap();
    let got = lqf::cpu::backbone::pooled_features(&folded, &x, 2);
    assert_eq!(got.len(), want.len());
    let r = rel(&got, &want);
    println!("CPU vs GPU pooled MobileNetV2 features: rel {r:.2e}");
    assert!(r < FEATURES_REL, "rel {r:.2e}");
}

#[test]
fn cpu_ridge_matches_the_gpu_in_both_forms() {
    let g = gpu();
    let mut rng = Rng::new(7);
    // n < f + 1 takes the dual (the few-shot shape last: 6 images of MobileNetV2's 1280
    // features, where the f32 primal was far off), n > f + 1 the primal.
    for (n, f, c) in [(12, 40, 3), (60, 8, 4), (6, 1280, 3)] {
        let pooled: Vec<f32> = (0..n * f).map(|_| rng.range(0.0, 2.0) as f32).collect();
        let labels: Vec<u32> = (0..n).map(|i| (i % c) as u32).collect();
        let (wg, bg) = block(probe::ridge(g, &pooled, &labels, c, 5.0, 1e-3)).unwrap();
        let (wc, bc) = probe::ridge_cpu(&pooled, &labels, c, 5.0, 1e-3).unwrap();
        let (rw, rb) = (rel(&wc, &wg), rel(&bc, &bg));
        println!("n {n} f {f}: ridge CPU vs GPU rel W {rw:.2e} b {rb:.2e}");
        assert!(rw < RIDGE_REL && rb < RIDGE_REL, "n {n} f {f}: W {rw:.2e} b {rb:.2e}");
    }
}
