//! Diagnostic: how well K-FAC's scale matches the curvature, per parameter tensor. For a random
//! v on one tensor, u = M⁻¹v and ρ = uᵀHu / uᵀv: 1 where M = H on that tensor, ≫ 1 where M⁻¹
//! takes steps that are too long (SGD diverges), a spread across tensors slows CG.
//! Both ways of treating convolution positions (expand, reduce) are measured on the same
//! problem (the 50 bundled EuroSAT photos), with the K-FAC-preconditioned CG iterations each
//! needs to relative residuals of 1e-2 and 1e-3, and the iterations forgetting image 0 then
//! needs to cut its share of the gradient tenfold (`ForgetTol::Share(0.1)`, cap 100), with
//! K-FAC and with plain CG.
//!   cargo run --release --example kfac_scale [DEPTH] [LAMBDA] [expand|reduce|expand,reduce] [cg] [TOL]
//! (`cg`: skip the per-tensor table and the power iteration.)
mod common;
use lqf::lqf::kfac::{Estimate, Kfac, Positions};
use lqf::lqf::{ParamSet, Problem};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let depth: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let lambda: f32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1e-3);
    let gpu = pollster::block_on(lqf::gpu::Gpu::new(Default::default()))?;
    let common::Fifty { split, features: f, theta0, mut rng } = common::fifty_photos(&gpu, depth)?;
    let prob = pollster::block_on(Problem::new(&gpu, &split.net, &theta0, &f.z, &f.labels, 32, 5.0, lambda))?;
    let lens = split.net.param_lens();
    println!("depth {depth}, λ {lambda:e}, {} images: ρ = uᵀHu/uᵀv with u = M⁻¹v, v random on one tensor", prob.len());
    let modes: Vec<Positions> = match args.get(3).map(String::as_str) {
        Some(list) => list
            .split(',')
            .map(|m| match m {
                "reduce" => Ok(Positions::Reduce),
                "expand" => Ok(Positions::Expand),
                m => Err(format!("unknown positions mode {m:?}: expand or reduce")),
            })
            .collect::<Result<_, _>>()?,
        None => vec![Positions::Expand, Positions::Reduce],
    };
    // A fourth argument `cg`: only the CG iteration counts.
    let cg_only = args.get(4).is_some_and(|a| a == "cg");
    // A fifth: training's CG tolerance (1e-3).
    let tol: f64 = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(1e-3);
    for positions in modes {
        println!("-- positions: {positions:?}");
        let k = pollster::block_on(Kfac::estimated(&gpu, &prob, lambda, Estimate { positions, ..Default::default() }))?;
        for t in 0..if cg_only { 0 } else { lens.len() + 1 } {
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
        for _ in 0..if cg_only { 0 } else { 20 } {
            let hx = prob.hvp(&gpu, &x)?;
            let y = ParamSet::zeros(&gpu, &lens)?;
            gpu.run(|rec| k.apply(rec, &hx, &y))?;
            let (yy, xx) = (pollster::block_on(ParamSet::dot(&gpu, &y, &y))?, pollster::block_on(ParamSet::dot(&gpu, &x, &x))?);
            est = (yy / xx).sqrt();
            let host: Vec<Vec<f32>> =
                pollster::block_on(y.read(&gpu))?.into_iter().map(|t| t.iter().map(|v| (*v as f64 / yy.sqrt()) as f32).collect()).collect();
            x = ParamSet::upload(&gpu, &host)?;
        }
        let share: Vec<String> = pollster::block_on(x.read(&gpu))?
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{i}:{:.2}", t.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()))
            .collect();
        if !cg_only {
            println!("λ_max(M⁻¹H) ≈ {est:.3e}; its eigenvector's mass per tensor: {}", share.join(" "));
        }
        let (delta, history) = pollster::block_on(prob.solve_cg(&gpu, None, Some(&k), tol, 100, |_| {}))?;
        let to = |t: f64| history.iter().position(|s| s.relative_residual <= t).map_or("-".to_string(), |i| (i + 1).to_string());
        println!("K-FAC CG to a relative residual of 1e-2: {}, 1e-3: {} iterations (cap 100)", to(1e-2), to(1e-3));
        // Forgetting image 0 from that optimum: its share of the gradient to a tenth.
        use lqf::lqf::influence::{forget, Correction, ForgetTol};
        let f = pollster::block_on(forget(&gpu, &prob, &delta, Correction::Cg(Some(&k)), 0, ForgetTol::Share(0.1), 100))?;
        let last = |f: &lqf::lqf::influence::Forgotten| f.steps.last().map_or(0.0, |s| s.relative_residual);
        println!("forgetting image 0 (share to 0.1): {} iterations (share left {:.2e})", f.steps.len(), last(&f));
        let plain = pollster::block_on(forget(&gpu, &prob, &delta, Correction::Cg(None), 0, ForgetTol::Share(0.1), 100))?;
        println!("  the same without K-FAC (plain CG): {} iterations (share left {:.2e})", plain.steps.len(), last(&plain));
    }
    Ok(())
}
