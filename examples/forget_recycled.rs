//! Diagnostic: forgetting with training's Krylov basis recycled (`Correction::Recycled`)
//! against plain CG on the share and against retraining from scratch, at the same distance from
//! the exact optimum without the image (energy gap, as examples/forget_accuracy.rs).
//! On the 50 bundled EuroSAT photos (depth 1, the seeded classifier of examples/common):
//! training is plain CG from zero to 1e-5, keeping its directions; the exact optimum without
//! image IMAGE is plain CG from there to 1e-6. Printed for each basis size in KEEPS: H products
//! (and seconds) to cut the image's effect to ε, i.e. an energy gap of ε²·(L'(Δ*) − L'*).
//!   cargo run --release --example forget_recycled [LAMBDA] [IMAGE] [CAP] [KEEPS]
mod common;
use lqf::lqf::influence::{forget, Correction, ForgetTol};
use lqf::lqf::solver::Step;
use lqf::lqf::{ParamSet, Problem};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let lambda: f32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0.5);
    let j: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(7);
    let cap: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(60);
    let keeps: Vec<usize> = args.get(4).map_or("20,40,80", String::as_str).split(',').map(|v| v.parse()).collect::<Result<_, _>>()?;
    let gpu = pollster::block_on(lqf::gpu::Gpu::new(Default::default()))?;
    let common::Fifty { split, features: f, theta0, .. } = common::fifty_photos(&gpu, 1)?;
    let prob = pollster::block_on(Problem::new(&gpu, &split.net, &theta0, &f.z, &f.labels, 32, 5.0, lambda))?;
    let small = prob.without(&gpu, j)?;
    let most = keeps.iter().copied().max().unwrap_or(0);
    let (full, steps, basis) = pollster::block_on(prob.solve_cg_keeping(&gpu, None, None, 1e-5, 400, most, |_| {}))?;
    println!(
        "{} images, λ {lambda}, image #{j}: training {} plain CG iterations to 1e-5, {} directions kept ({:.0} MB)",
        prob.len(),
        steps.len(),
        basis.len(),
        basis.bytes() as f64 / 1e6
    );
    let (exact, st) = pollster::block_on(small.solve_cg(&gpu, Some(&full), None, 1e-6, 600, |_| {}))?;
    println!("exact without the image: {} more iterations to {:.1e}", st.len(), st.last().map_or(0.0, |s| s.relative_residual));
    let l_exact = pollster::block_on(small.loss(&gpu, &exact))?;
    let l_full = pollster::block_on(small.loss(&gpu, &full))?;
    let l_zero = pollster::block_on(small.loss(&gpu, &ParamSet::zeros(&gpu, &split.net.param_lens())?))?;
    // Forgetting's CG reports q(δ) = L'(Δ* + δ) − L'(Δ*); its optimum is L'* − L'(Δ*).
    let (effect, q_star) = (l_full - l_exact, l_exact - l_full);
    println!("the image's effect L'(Δ*) − L'* = {effect:.3e}; the whole L'(0) − L'* = {:.3e}", l_zero - l_exact);
    let mut rows: Vec<(String, Vec<f64>, f64)> = Vec::new();
    let timed = |run: &mut dyn FnMut() -> Result<Vec<Step>, Box<dyn std::error::Error>>| -> Result<(Vec<Step>, f64), Box<dyn std::error::Error>> {
        let t = Instant::now();
        let s = run()?;
        Ok((s, t.elapsed().as_secs_f64()))
    };
    // SKIP_BASELINES=1: only the recycled runs (the baselines do not depend on the basis).
    if std::env::var("SKIP_BASELINES").is_err() {
        let (cold, secs) = timed(&mut || Ok(pollster::block_on(small.solve_cg(&gpu, None, None, 0.0, cap, |_| {}))?.1))?;
        rows.push(("retraining, plain CG from zero".into(), cold.iter().map(|s| s.loss - l_exact).collect(), secs / cold.len() as f64));
        let (plain, secs) = timed(&mut || Ok(pollster::block_on(forget(&gpu, &prob, &full, Correction::Cg(None), j, ForgetTol::Share(0.0), cap))?.steps))?;
        rows.push(("forgetting, plain CG on the share".into(), plain.iter().map(|s| s.loss - q_star).collect(), secs / plain.len() as f64));
    }
    for &k in &keeps {
        let b = basis.first(k);
        let (rec, secs) = timed(&mut || Ok(pollster::block_on(forget(&gpu, &prob, &full, Correction::Recycled(&b), j, ForgetTol::Share(0.0), cap))?.steps))?;
        rows.push((format!("forgetting, recycled ({} directions)", b.len()), rec.iter().map(|s| s.loss - q_star).collect(), secs / rec.len().max(1) as f64));
    }
    let first_below = |gaps: &[f64], g: f64| gaps.iter().position(|&x| x <= g).map_or(format!(">{}", gaps.len()), |i| (i + 1).to_string());
    println!("H products to cut the image's effect to ε (energy gap ε²·{effect:.2e}); seconds per product:");
    for (name, gaps, per) in &rows {
        let cells: Vec<String> = [0.3, 0.1, 0.03, 0.01].iter().map(|e| format!("ε {e}: {}", first_below(gaps, e * e * effect))).collect();
        println!("  {name:<44} {}   ({per:.2} s)", cells.join(", "));
    }
    Ok(())
}
