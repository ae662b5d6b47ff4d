//! What the diagnostics share: the 50 bundled EuroSAT photos through MobileNetV2's trunk, and a
//! seeded random classifier at θ0 (the default initialisation's kind).
// Each example compiles this module for itself and reads only part of it.
#![allow(dead_code)]
use lqf::data::{self, Features, ImageFolder};
use lqf::lqf::{train, ParamSet};
use lqf::model::Backbone;
use lqf::rng::Rng;
use std::path::Path;

pub struct Fifty {
    pub split: train::Split,
    pub features: Features,
    pub theta0: ParamSet,
    /// The generator after θ0 was drawn, for what the diagnostic draws next.
    pub rng: Rng,
}

pub fn fifty_photos(gpu: &lqf::gpu::Gpu, depth: usize) -> Result<Fifty, Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let net = Backbone::from_weight_file(gpu, &std::fs::read(root.join("weights/mobilenet_v2.safetensors"))?, None)?;
    let set = ImageFolder::scan(&root.join("web/samples/eurosat/train"))?;
    let classes = set.classes.len();
    let split = train::split(&net, train::Depth::Blocks(depth), classes, 0.05)?;
    let features = pollster::block_on(data::trunk_features(gpu, &net, split.trunk_end, &set.items, &mut |_| {}))?;
    let mut rng = Rng::new(3);
    let w: Vec<f32> = rng.vec_f32(split.net.features * classes).iter().map(|v| v * 0.03).collect();
    let theta0 = train::theta0(gpu, &split, &w, &vec![0.0; classes])?;
    Ok(Fifty { split, features, theta0, rng })
}
