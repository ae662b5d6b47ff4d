//! Diagnostic: training's CG with and without K-FAC across λ, measured as the distance that
//! matters, the energy gap L(Δ) − L* (half the squared H-norm of the error), not the gradient.
//! On the 50 bundled EuroSAT photos (depth 1, the seeded random classifier of examples/common),
//! for each λ: a reference optimum (plain CG from the first K-FAC CG's last iterate to REF_TOL), then the
//! iterations each solver needs from zero to a gap of 1e-2 … 1e-5 of L(0) − L*, and the
//! relative gradient residual it shows there. SCALES (default 1) builds K-FAC with a damping of
//! scale·λ instead of λ, one row each: a smaller damping shrinks the factored damping's cross
//! terms √λ(πI⊗G + A⊗I/π), which overstate the curvature at a large λ.
//!   cargo run --release --example precond_lambda [LAMBDAS] [CAP] [REF_TOL] [SCALES]
mod common;
use lqf::lqf::kfac::Kfac;
use lqf::lqf::solver::Step;
use lqf::lqf::Problem;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let lambdas: Vec<f32> = args.get(1).map_or("1e-3,1e-2,1e-1,0.5", String::as_str).split(',').map(|v| v.parse()).collect::<Result<_, _>>()?;
    let cap: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(60);
    let ref_tol: f64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1e-5);
    let scales: Vec<f32> = args.get(4).map_or("1", String::as_str).split(',').map(|v| v.parse()).collect::<Result<_, _>>()?;
    let gpu = pollster::block_on(lqf::gpu::Gpu::new(Default::default()))?;
    let common::Fifty { split, features: f, theta0, .. } = common::fifty_photos(&gpu, 1)?;
    for lambda in lambdas {
        let prob = pollster::block_on(Problem::new(&gpu, &split.net, &theta0, &f.z, &f.labels, 32, 5.0, lambda))?;
        let mut kfac_runs = Vec::new();
        for &scale in &scales {
            let k = pollster::block_on(Kfac::new(&gpu, &prob, scale * lambda))?;
            kfac_runs.push((scale, pollster::block_on(prob.solve_cg(&gpu, None, Some(&k), 0.0, cap, |_| {}))?));
        }
        let kd = &kfac_runs[0].1 .0;
        let (_, ps) = pollster::block_on(prob.solve_cg(&gpu, None, None, 0.0, cap, |_| {}))?;
        let (exact, rs) = pollster::block_on(prob.solve_cg(&gpu, Some(kd), None, ref_tol, 4 * cap, |_| {}))?;
        let l_star = pollster::block_on(prob.loss(&gpu, &exact))?;
        let l0 = pollster::block_on(prob.loss(&gpu, &lqf::lqf::ParamSet::zeros(&gpu, &split.net.param_lens())?))?;
        println!(
            "λ {lambda:e}: reference {} more plain iterations to {:.1e}; L(0) − L* = {:.3e}",
            rs.len(),
            rs.last().map_or(0.0, |s| s.relative_residual),
            l0 - l_star
        );
        let at = |steps: &[Step], g: f64| {
            steps.iter().find(|s| s.loss - l_star <= g).map_or(format!(">{cap}"), |s| format!("{} (residual {:.1e})", s.iteration, s.relative_residual))
        };
        for rel in [1e-2, 1e-3, 1e-4, 1e-5] {
            let g = rel * (l0 - l_star);
            let kfac: Vec<String> = kfac_runs.iter().map(|(scale, (_, ks))| format!("K-FAC({scale}λ) CG {:<24}", at(ks, g))).collect();
            println!("  gap ≤ {rel:.0e}: {} plain CG {}", kfac.join(" "), at(&ps, g));
        }
    }
    Ok(())
}
