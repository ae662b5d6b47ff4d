//! Diagnostic: forgetting against retraining at the same distance from the exact optimum
//! without the image.
//!
//! For a model file and its training folder: the model is first solved tightly (plain CG from
//! it, to REF_TOL: forgetting can get no closer than the model it starts from), then the
//! smaller problem's optimum Δ* (plain CG from there). Distance to Δ* is the energy gap
//! L'(Δ) − L'(Δ*) (half the squared H'-norm of the error, what CG minimises). Retraining from
//! scratch (CG from zero) and forgetting (CG on the image's share from the tight model), with
//! K-FAC and without, each run CAP iterations; printed: their gaps by iteration and the
//! iterations each needs to the same gap, for gaps relative to what the image contributes
//! (L'(Δ_full) − L'*) and relative to the whole problem (L'(0) − L'*).
//! `plain`: without the K-FAC runs. `recycled=K`: the tight model is trained from zero instead
//! (plain CG keeping its first K directions, as the page does) and forgetting with them
//! (`Correction::Recycled`) is measured too; `SKIP_BASELINES=1` leaves out retraining and
//! plain forgetting (measured before on the same problem).
//!   cargo run --release --example forget_accuracy MODEL DIR IMAGE_NAME [CAP] [REF_TOL] [plain|recycled=K]
use lqf::data;
use lqf::lqf::influence::{forget, Correction, ForgetTol};
use lqf::lqf::kfac::Kfac;
use lqf::lqf::model_file::ModelFile;
use lqf::lqf::recycle::KrylovBasis;
use lqf::lqf::train::Trained;
use lqf::lqf::{ParamSet, Problem};
use lqf::model::Backbone;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: forget_accuracy MODEL DIR IMAGE_NAME [CAP] [REF_TOL] [plain]".into());
    }
    let cap: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(100);
    let ref_tol: f64 = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(1e-5);
    let recycled: Option<usize> = args.get(6).and_then(|a| a.strip_prefix("recycled=")).map(str::parse).transpose()?;
    let plain_only = args.get(6).is_some_and(|a| a == "plain") || recycled.is_some();
    let skip_baselines = std::env::var("SKIP_BASELINES").is_ok();
    let gpu = pollster::block_on(lqf::gpu::Gpu::new(Default::default()))?;
    let file = ModelFile::from_bytes(&std::fs::read(&args[1])?, None)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let net = Backbone::from_weight_file(&gpu, &std::fs::read(root.join(format!("weights/{}.safetensors", file.backbone.id())))?, Some(file.backbone))?;
    let m = Trained::from_model_file(&gpu, &net, &file)?;
    let train = Path::new(&args[2]).join("train");
    let items: Vec<_> = file.train_files.iter().map(|(f, l)| (train.join(f), *l)).collect();
    let j = file.train_files.iter().position(|(f, _)| f.contains(args[3].as_str())).ok_or("no training image of that name")?;
    let feats = pollster::block_on(data::trunk_features(&gpu, &net, m.split.trunk_end, &items, &mut |_| {}))?;
    // A skipped image would shift every index after it.
    if let Some((p, why)) = feats.skipped.first() {
        return Err(format!("training image {} is missing or unreadable ({why})", p.display()).into());
    }
    let st = &m.settings;
    let prob = pollster::block_on(Problem::new(&gpu, &m.split.net, &m.theta0, &feats.z, &feats.labels, st.batch, st.kappa, st.lambda))?;
    // The K-FAC factors only when the K-FAC runs are asked for.
    let k = if plain_only { None } else { Some(pollster::block_on(Kfac::estimated(&gpu, &prob, st.lambda, st.kfac_estimate()))?) };
    let small = prob.without(&gpu, j)?;
    println!("{} images, forgetting #{j} {}; λ {:e}, training tolerance {:e}, cap {}", prob.len(), file.train_files[j].0, st.lambda, st.cg_tol, st.max_iter);

    // The model solved tightly first, so that what is measured is forgetting's own error.
    let (full, basis) = match recycled {
        Some(keep) => {
            let (full, steps, basis) = pollster::block_on(prob.solve_cg_keeping(&gpu, None, None, ref_tol, 600, keep, |_| {}))?;
            println!(
                "the full problem, plain CG from zero: {} iterations to {:.2e}, {} directions kept",
                steps.len(),
                steps.last().map_or(0.0, |s| s.relative_residual),
                basis.len()
            );
            (full, basis)
        }
        None => {
            let (full, steps) = pollster::block_on(prob.solve_cg(&gpu, Some(&m.delta), None, ref_tol, 600, |_| {}))?;
            println!("the full problem, plain CG from the model: {} iterations to {:.2e}", steps.len(), steps.last().map_or(0.0, |s| s.relative_residual));
            (full, KrylovBasis::default())
        }
    };
    let (exact, steps) = pollster::block_on(small.solve_cg(&gpu, Some(&full), None, ref_tol, 600, |_| {}))?;
    println!("without the image, plain CG from there: {} iterations to {:.2e}", steps.len(), steps.last().map_or(0.0, |s| s.relative_residual));
    let l_exact = pollster::block_on(small.loss(&gpu, &exact))?;
    let l_zero = pollster::block_on(small.loss(&gpu, &ParamSet::zeros(&gpu, &m.split.net.param_lens())?))?;
    let l_full = pollster::block_on(small.loss(&gpu, &full))?;
    println!("L'(0) − L'* = {:.4e}; L'(Δ_full) − L'* = {:.4e} (what forgetting removes)", l_zero - l_exact, l_full - l_exact);
    let pre = |kfac: bool| if kfac { k.as_ref() } else { None };
    let first_below = |gaps: &[f64], g: f64| gaps.iter().position(|&x| x <= g).map_or(format!(">{}", gaps.len()), |i| (i + 1).to_string());
    let mut table = Vec::new();
    let variants: &[bool] = if plain_only { &[false] } else { &[true, false] };
    for &kfac in variants.iter().filter(|_| !skip_baselines) {
        let name = if kfac { "K-FAC" } else { "plain" };
        let (_, cold) = pollster::block_on(small.solve_cg(&gpu, None, pre(kfac), 0.0, cap, |_| {}))?;
        let scratch: Vec<f64> = cold.iter().map(|s| s.loss - l_exact).collect();
        // Forgetting's CG minimises q(δ) = ½δᵀH'δ − gᵀδ; q_k − q* is the same energy gap
        // L'(Δ_full + δ_k) − L'(Δ_full + δ*), q* taken from a long run.
        let f = pollster::block_on(forget(&gpu, &prob, &full, Correction::Cg(pre(kfac)), j, ForgetTol::Share(0.0), cap))?;
        let q_star = f.steps.last().map_or(0.0, |s| s.loss);
        let forgetting: Vec<f64> = f.steps.iter().map(|s| s.loss - q_star).collect();
        println!("{name}: scratch gap by iteration {:?}", scratch.iter().map(|g| format!("{g:.2e}")).collect::<Vec<_>>());
        println!("{name}: forgetting gap by iteration {:?}", forgetting.iter().map(|g| format!("{g:.2e}")).collect::<Vec<_>>());
        println!("{name}: forgetting share residual by iteration {:?}", f.steps.iter().map(|s| format!("{:.2e}", s.relative_residual)).collect::<Vec<_>>());
        table.push((name, scratch, forgetting));
    }
    if recycled.is_some() {
        let t = std::time::Instant::now();
        let f = pollster::block_on(forget(&gpu, &prob, &full, Correction::Recycled(&basis), j, ForgetTol::Share(0.0), cap))?;
        let q_star = l_exact - l_full;
        let gaps: Vec<f64> = f.steps.iter().map(|s| s.loss - q_star).collect();
        println!(
            "recycled ({} directions, {:.1} s a product): forgetting gap by product {:?}",
            basis.len(),
            t.elapsed().as_secs_f64() / f.steps.len().max(1) as f64,
            gaps.iter().map(|g| format!("{g:.2e}")).collect::<Vec<_>>()
        );
        table.push(("recycled", Vec::new(), gaps));
    }
    // The same distance to the exact optimum for both: within ε of what the image contributes
    // (energy gap ε²·(L'(Δ_full) − L'*), the image's effect cut to ε) and, for reference, at
    // gaps relative to the whole problem's L'(0) − L'*.
    println!("iterations to the same energy gap G, scratch / forgetting:");
    let levels = [0.3, 0.1, 0.03, 0.01].map(|e: f64| (format!("ε = {e} of the image's effect"), e * e * (l_full - l_exact)));
    let whole = [1e-3, 1e-4, 1e-5].map(|r: f64| (format!("{r:.0e} of L'(0) − L'*"), r * (l_zero - l_exact)));
    for (label, g) in levels.iter().chain(&whole) {
        let row: Vec<String> = table.iter().map(|(name, s, f)| format!("{name} {} / {}", first_below(s, *g), first_below(f, *g))).collect();
        println!("  {label:<28} (G {g:.2e}): {}", row.join(",  "));
    }
    Ok(())
}
