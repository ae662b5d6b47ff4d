//! Diagnostic: forgetting against retraining in the issue's own measure, the relative distance
//! in parameters ‖Δ − Δ'*‖/‖Δ'*‖ to the exact optimum Δ'* without the image (the energy gap of
//! examples/forget_recycled.rs weighs the small-curvature directions, where forgetting's work
//! lies, least; this weighs every parameter alike).
//! On the 50 bundled EuroSAT photos (depth 1, the seeded classifier of examples/common):
//! training is plain CG from zero to TRAIN_TOL keeping KEEP directions. Retraining is plain CG
//! from zero on the problem without the image, run to 1e-6 (at most REF_CAP products); its last
//! iterate is Δ'*. Measuring retraining against its own end favours retraining, and a reference
//! that never saw Δ* cannot favour forgetting (a reference warm-started at Δ* would share Δ*'s
//! own error with every forgetting iterate). Printed: the H products each solver needs to come
//! within 1e-2 … 1e-4 of Δ'*, and how close each got (training's error and f32 set the floor).
//!   cargo run --release --example forget_distance [LAMBDA] [IMAGE] [CAP] [KEEP] [TRAIN_TOL] [REF_CAP] [plain]
mod common;
use lqf::gpu::Gpu;
use lqf::lqf::influence::{forget_traced, Correction, ForgetTol};
use lqf::lqf::ParamSet;
use lqf::lqf::Problem;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// ‖base + x − exact‖ / ‖exact‖, the difference formed in f32 before its norm is taken (the
/// expanded form cancels below 1e-4).
fn distance(gpu: &Gpu, base: Option<&ParamSet>, x: &ParamSet, exact: &ParamSet, norm: f64) -> Res<f64> {
    // The two large sets first: their difference is what the small iterate corrects.
    let terms = match base {
        Some(b) => vec![(1.0, b), (-1.0, exact), (1.0, x)],
        None => vec![(1.0, x), (-1.0, exact)],
    };
    let d = ParamSet::combination(gpu, &terms)?;
    Ok(pollster::block_on(ParamSet::dot(gpu, &d, &d))?.sqrt() / norm)
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let lambda: f32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0.5);
    let j: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(7);
    let cap: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(60);
    let keep: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(20);
    let train_tol: f64 = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(1e-6);
    let ref_cap: usize = args.get(6).and_then(|a| a.parse().ok()).unwrap_or(250);
    let with_plain = args.get(7).is_some_and(|a| a == "plain");
    let clock = Instant::now();
    let gpu = pollster::block_on(Gpu::new(Default::default()))?;
    let common::Fifty { split, features: f, theta0, .. } = common::fifty_photos(&gpu, 1)?;
    let prob = pollster::block_on(Problem::new(&gpu, &split.net, &theta0, &f.z, &f.labels, 32, 5.0, lambda))?;
    let small = prob.without(&gpu, j)?;
    let t = Instant::now();
    let (full, steps, basis) = pollster::block_on(prob.solve_cg_keeping(&gpu, None, None, train_tol, 600, keep, |_| {}))?;
    println!(
        "[{:.0} s] {} images, λ {lambda}, image #{j}: training {} plain CG iterations to {:.1e} ({:.1} s a product), {} directions kept",
        clock.elapsed().as_secs_f64(),
        prob.len(),
        steps.len(),
        steps.last().map_or(0.0, |s| s.relative_residual),
        t.elapsed().as_secs_f64() / steps.len().max(1) as f64,
        basis.len()
    );
    // Retraining from zero, every iterate kept; its end is the reference.
    let (b, _) = pollster::block_on(small.rhs(&gpu))?;
    let mut retrain = Vec::new();
    let t = Instant::now();
    let (exact, st) = pollster::block_on(small.solve_linear_traced(&gpu, &b, None, 1e-6, ref_cap, |_, x| retrain.push(x.clone())))?;
    let retrain_per = t.elapsed().as_secs_f64() / retrain.len().max(1) as f64;
    let norm = pollster::block_on(ParamSet::dot(&gpu, &exact, &exact))?.sqrt();
    println!(
        "[{:.0} s] Δ'*: retraining from zero, {} iterations to {:.1e}; ‖Δ* − Δ'*‖/‖Δ'*‖ = {:.3e} (the image's effect in parameters)",
        clock.elapsed().as_secs_f64(),
        st.len(),
        st.last().map_or(0.0, |s| s.relative_residual),
        distance(&gpu, None, &full, &exact, norm)?
    );
    let levels = [1e-2, 3e-3, 1e-3, 3e-4, 1e-4];
    let mut rows: Vec<(String, Vec<f64>, f64)> = Vec::new();
    // Not the last iterate: it is Δ'* itself (distance 0).
    let d = retrain[..retrain.len().saturating_sub(1)].iter().map(|x| distance(&gpu, None, x, &exact, norm)).collect::<Res<Vec<f64>>>()?;
    drop(retrain);
    rows.push(("retraining, plain CG from zero".into(), d, retrain_per));
    // Each forgetting run keeps its iterates (shared GPU sets) and measures them afterwards.
    let mut trace = |name: &str, correction: Correction<'_>| -> Res<()> {
        let mut xs = Vec::new();
        let t = Instant::now();
        pollster::block_on(forget_traced(&gpu, &prob, &full, correction, j, ForgetTol::Share(0.0), cap, |_, x| xs.push(x.clone())))?;
        let per = t.elapsed().as_secs_f64() / xs.len().max(1) as f64;
        let d = xs.iter().map(|x| distance(&gpu, Some(&full), x, &exact, norm)).collect::<Res<Vec<f64>>>()?;
        println!("[{:.0} s] {name}: {} products", clock.elapsed().as_secs_f64(), xs.len());
        rows.push((name.to_string(), d, per));
        Ok(())
    };
    trace(&format!("forgetting, recycled ({} directions)", basis.len()), Correction::Recycled(&basis))?;
    if with_plain {
        trace("forgetting, plain CG on the share", Correction::Cg(None))?;
    }
    println!("H products to come within τ of Δ'* (relative, in parameters); the closest reached; seconds per product:");
    for (name, d, per) in &rows {
        let cells: Vec<String> =
            levels.iter().map(|&t| format!("τ {t:.0e}: {}", d.iter().position(|&x| x <= t).map_or(format!(">{}", d.len()), |i| (i + 1).to_string()))).collect();
        let best = d.iter().cloned().fold(f64::INFINITY, f64::min);
        println!("  {name:<40} {}   (closest {best:.1e}; {per:.2} s)", cells.join(", "));
    }
    Ok(())
}
