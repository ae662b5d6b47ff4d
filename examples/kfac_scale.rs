//! Diagnostic: how well K-FAC's scale matches the curvature, per parameter tensor. For a random
//! v on one tensor, u = M⁻¹v and ρ = uᵀHu / uᵀv: 1 where M = H on that tensor, ≫ 1 where M⁻¹
//! takes steps that are too long (SGD diverges), a spread across tensors slows CG.
//!   cargo run --release --example kfac_scale [DEPTH] [LAMBDA]
use lqf::data::{self, ImageFolder};
use lqf::lqf::kfac::Kfac;
use lqf::lqf::{train, ParamSet, Problem};
use lqf::model::Backbone;
use lqf::rng::Rng;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let depth: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let lambda: f32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1e-3);
    let gpu = pollster::block_on(lqf::gpu::Gpu::new(Default::default()))?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let net = Backbone::from_weight_file(&gpu, &std::fs::read(root.join("weights/mobilenet_v2.safetensors"))?, None)?;
    let set = ImageFolder::scan(&root.join("web/samples/eurosat/train"))?;
    let classes = set.classes.len();
    let split = train::split(&net, train::Depth::Blocks(depth), classes, 0.05)?;
    let f = pollster::block_on(data::trunk_features(&gpu, &net, split.trunk_end, &set.items, &mut |_| {}))?;
    let mut rng = Rng::new(3);
    let w: Vec<f32> = rng.vec_f32(split.net.features * classes).iter().map(|v| v * 0.03).collect();
    let theta0 = train::theta0(&gpu, &split, &w, &vec![0.0; classes])?;
    let prob = pollster::block_on(Problem::new(&gpu, &split.net, &theta0, &f.z, &f.labels, 32, 5.0, lambda))?;
    let k = pollster::block_on(Kfac::new(&gpu, &prob, lambda))?;
    let lens = split.net.param_lens();
    println!("depth {depth}, λ {lambda:e}, {} images: ρ = uᵀHu/uᵀv with u = M⁻¹v, v random on one tensor", prob.len());
    for t in 0..=lens.len() {
        // t == lens.len(): v random on every tensor.
        let host: Vec<Vec<f32>> = lens.iter().enumerate().map(|(i, &l)| if t == lens.len() || i == t { rng.vec_f32(l) } else { vec![0.0; l] }).collect();
        let v = ParamSet::upload(&gpu, &host)?;
        let u = ParamSet::zeros(&gpu, &lens)?;
        gpu.run(|rec| k.apply(rec, &v, &u))?;
        let hu = prob.hvp(&gpu, &u)?;
        let (uhu, uv) = (pollster::block_on(ParamSet::dot(&gpu, &u, &hu))?, pollster::block_on(ParamSet::dot(&gpu, &u, &v))?);
        let name = if t == lens.len() { "all".to_string() } else { format!("tensor {t} ({} values)", lens[t]) };
        println!("{name:<28} ρ = {:.3e}", uhu / uv);
    }
    // The largest eigenvalue of M⁻¹H by power iteration (what bounds SGD's stable step:
    // η·λ_max < 2(1 + μ)), and where its eigenvector lives.
    let mut x = ParamSet::upload(&gpu, &lens.iter().map(|&l| rng.vec_f32(l)).collect::<Vec<_>>())?;
    let mut est = 0.0;
    for _ in 0..30 {
        let hx = prob.hvp(&gpu, &x)?;
        let y = ParamSet::zeros(&gpu, &lens)?;
        gpu.run(|rec| k.apply(rec, &hx, &y))?;
        let (yy, xx) = (pollster::block_on(ParamSet::dot(&gpu, &y, &y))?, pollster::block_on(ParamSet::dot(&gpu, &x, &x))?);
        est = (yy / xx).sqrt();
        let host: Vec<Vec<f32>> = pollster::block_on(y.read(&gpu))?.into_iter().map(|t| t.iter().map(|v| (*v as f64 / yy.sqrt()) as f32).collect()).collect();
        x = ParamSet::upload(&gpu, &host)?;
    }
    let share: Vec<String> = pollster::block_on(x.read(&gpu))?.iter().enumerate().map(|(i, t)| format!("{i}:{:.2}", t.iter().map(|v| (*v as f64).powi(2)).sum::<f64>())).collect();
    println!("λ_max(M⁻¹H) ≈ {est:.3e}; its eigenvector's mass per tensor: {}", share.join(" "));
    Ok(())
}
