//! Diagnostic: how far CG's recurrences drift from the truth. CG reports L(x) = L(0) − ½xᵀ(b + r)
//! and ‖r‖/‖b‖ with r updated as r − αHp, never recomputed; this prints, after each iteration,
//! those figures next to the loss and the gradient computed afresh at x (two extra passes).
//!   cargo run --release --example cg_drift [DEPTH] [IMAGES] [ITERATIONS] [LAMBDA]
mod common;
use lqf::lqf::kfac::Kfac;
use lqf::lqf::{ParamSet, Problem};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (depth, images, iterations, lambda) = (arg(1, 17.0) as usize, arg(2, 10.0) as usize, arg(3, 10.0) as usize, arg(4, 1e-3) as f32);
    let gpu = pollster::block_on(lqf::gpu::Gpu::new(Default::default()))?;
    let common::Fifty { split, features: f, theta0, .. } = common::fifty_photos(&gpu, depth)?;
    // Every fifth photo: the 50 are sorted by class, so this keeps the classes mixed.
    let pick: Vec<usize> = (0..f.labels.len()).step_by(5).take(images).collect();
    let per = split.net.input.len();
    let z: Vec<f32> = pick.iter().flat_map(|&i| f.z[i * per..(i + 1) * per].iter().copied()).collect();
    let labels: Vec<u32> = pick.iter().map(|&i| f.labels[i]).collect();
    let prob = pollster::block_on(Problem::new(&gpu, &split.net, &theta0, &z, &labels, 32, 5.0, lambda))?;
    let k = pollster::block_on(Kfac::new(&gpu, &prob, lambda))?;
    // b = −∇L(0), so ‖b‖ is what both relative residuals divide by.
    let (b, loss0) = pollster::block_on(prob.rhs(&gpu))?;
    let b0 = pollster::block_on(ParamSet::dot(&gpu, &b, &b))?.sqrt();
    let at_zero = pollster::block_on(prob.loss(&gpu, &ParamSet::zeros(&gpu, &split.net.param_lens())?))?;
    println!("depth {depth}, {} images, λ {lambda:e}; ‖∇L(0)‖ = {b0:.4e}; L(0) from the cached f0 {loss0:.6e}, from the JVP pass {at_zero:.6e}", prob.len());
    println!("{:>4} {:>14} {:>14} {:>12} {:>12}", "it", "CG's loss", "true loss", "CG's ‖r‖/‖b‖", "true");
    let mut iterates = Vec::new();
    pollster::block_on(prob.solve_linear_traced(&gpu, &b, Some(&k), 0.0, iterations, |s, x| iterates.push((s, x.clone()))))?;
    for (s, x) in &iterates {
        let (g, _) = pollster::block_on(prob.gradient_norms(&gpu, x))?;
        let true_loss = pollster::block_on(prob.loss(&gpu, x))?;
        // solve_linear reports ½xᵀHx − bᵀx; training's loss adds L(0).
        println!("{:>4} {:>14.6e} {:>14.6e} {:>12.3e} {:>12.3e}", s.iteration, loss0 + s.loss, true_loss, s.relative_residual, g / b0);
    }
    Ok(())
}
