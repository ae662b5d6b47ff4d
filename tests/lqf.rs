//! The LQF engine on a tiny network (an inverted-residual block, a head conv, a classifier)
//! whose dense Jacobian is computable in f64: GPU passes vs the CPU mirror, the adjoint
//! identity, and the solver reaching the closed-form optimum from any start and batching.
mod common;

use common::tiny::{flat, random_params as random_set, rel, tiny as tiny_net};
use common::{block, dot, f64s, gpu};
use lqf::cpu;
use lqf::gpu::kernels::gemm::Gemm;
use lqf::lqf::LrScale::{Absolute, Curvature};
use lqf::lqf::{reference, LinearizedNet, ParamSet, Problem};
use lqf::rng::Rng;

const N: usize = 6;
const KAPPA: f32 = 5.0;
const LAMBDA: f32 = 0.05;
/// ‖Δ_cg − Δ*‖/‖Δ*‖ (issue 4 asks 1e-4).
const SOLVE_REL: f64 = 1e-4;
/// A larger weight decay for the SGD runs: a better-conditioned quadratic keeps the epochs few.
const SGD_LAMBDA: f32 = 0.5;

fn data(net: &LinearizedNet, rng: &mut Rng) -> (Vec<f32>, Vec<u32>) {
    let z = rng.vec_f32(N * net.input.len()).iter().map(|v| v * 2.0).collect();
    let labels = (0..N).map(|i| (i % net.classes) as u32).collect();
    (z, labels)
}

#[test]
fn jvp_and_vjp_match_the_cpu_mirror_and_each_other() {
    let (g, net) = (gpu(), tiny_net(0.1));
    let mut rng = Rng::new(41);
    let th = random_set(&net, &mut rng, 0.7);
    let de = random_set(&net, &mut rng, 1.0);
    let (z, _) = data(&net, &mut rng);
    let (tth, tde) = (ParamSet::upload(g, &th).unwrap(), ParamSet::upload(g, &de).unwrap());
    let tz = g.upload(&z).unwrap();
    let u = rng.vec_f32(N * net.classes);
    let tu = g.upload(&u).unwrap();
    let grads = ParamSet::zeros(g, &net.param_lens()).unwrap();
    let primal = g.run(|rec| net.forward(rec, &tth, &tz, N)).unwrap();
    let (f0, fd) = g
        .run(|rec| {
            let out = net.jvp(rec, &tth, &tz, N, &tde)?;
            net.vjp(rec, &tth, &tz, N, &tu, &grads, 1.0, 0.0)?;
            Ok(out)
        })
        .unwrap();
    let th64: Vec<Vec<f64>> = th.iter().map(|t| f64s(t)).collect();
    let de64: Vec<Vec<f64>> = de.iter().map(|t| f64s(t)).collect();
    let (rf0, rfd) = reference::jvp(&net, &th64, &f64s(&z), N, &de64);
    let close = |got: &[f32], want: &[f64], what: &str| {
        let scale = 1.0 + want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in got.iter().zip(want) {
            assert!((*a as f64 - b).abs() / scale < 1e-5, "{what}: {a} vs {b}");
        }
    };
    close(&block(g.read(&f0)).unwrap(), &rf0, "f0");
    close(&block(g.read(&primal)).unwrap(), &rf0, "primal-only f0");
    close(&block(g.read(&fd)).unwrap(), &rfd, "J·Δ");
    // Jᵀu against the dense Jacobian, and ⟨JΔ, u⟩ = ⟨Δ, Jᵀu⟩.
    let jac = reference::dense_jacobian(&net, &th64, &f64s(&z), N);
    let p: usize = net.param_lens().iter().sum();
    let mut jtu = vec![0.0; p];
    cpu::gemm::gemm(&Gemm::new(p, 1, N * net.classes).trans(true, false), &jac, &f64s(&u), &mut jtu);
    let got = flat(&block(grads.read(g)).unwrap());
    close(&got.iter().map(|&v| v as f32).collect::<Vec<_>>(), &jtu, "Jᵀu");
    let lhs = dot(&f64s(&block(g.read(&fd)).unwrap()), &f64s(&u));
    let rhs = dot(&flat(&de), &got);
    assert!((lhs - rhs).abs() / (1.0 + lhs.abs()) < 1e-5, "adjoint: {lhs} vs {rhs}");
}

#[test]
fn conjugate_gradient_reaches_the_closed_form_optimum_from_any_start_batching_and_residency() {
    let (g, net) = (gpu(), tiny_net(0.1));
    let mut rng = Rng::new(42);
    let th = random_set(&net, &mut rng, 0.7);
    let (z, labels) = data(&net, &mut rng);
    let want = common::tiny::closed_form(&net, &th, &z, &labels, KAPPA, LAMBDA);
    let tth = ParamSet::upload(g, &th).unwrap();
    let warm = ParamSet::upload(g, &random_set(&net, &mut rng, 0.3)).unwrap();
    let mut losses = Vec::new();
    // (batch size, start, bytes of features kept on the GPU: 0 = all uploaded on every pass)
    for (batch, start, budget) in [(N, None, u64::MAX), (4, None, 0), (1, Some(&warm), 200)] {
        let prob = block(Problem::with_feature_budget(g, &net, &tth, &z, &labels, batch, KAPPA, LAMBDA, budget)).unwrap();
        assert_eq!(prob.batches.iter().filter(|b| b.on_gpu()).count(), prob.batches.len().min(budget as usize / (4 * 4 * 4 * 4 * batch).max(1)));
        let (delta, steps) = block(prob.solve_cg(g, start, None, 1e-7, 500, |_| {})).unwrap();
        let got = flat(&block(delta.read(g)).unwrap());
        let r = rel(&got, &want);
        assert!(r < SOLVE_REL, "batch {batch}, warm start {}: ‖Δ − Δ*‖/‖Δ*‖ = {r:.2e} after {} iterations", start.is_some(), steps.len());
        losses.push(block(prob.loss(g, &delta)).unwrap());
        // The optimum beats the starting point and its gradient vanishes: any perturbation is worse.
        let zero = ParamSet::zeros(g, &net.param_lens()).unwrap();
        assert!(losses.last().unwrap() < &block(prob.loss(g, &zero)).unwrap());
    }
    assert!(losses.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-5 * w[0].abs()), "same optimum, same loss: {losses:?}");
}

/// K-FAC-preconditioned CG reaches the same optimum as plain CG (the iteration counts are
/// printed; tests/kfac.rs asserts the speed-up where K-FAC is exact).
#[test]
fn kfac_preconditioned_cg_reaches_the_same_optimum() {
    let (g, net) = (gpu(), tiny_net(0.1));
    let mut rng = Rng::new(43);
    let th = random_set(&net, &mut rng, 0.7);
    let (z, labels) = data(&net, &mut rng);
    let want = common::tiny::closed_form(&net, &th, &z, &labels, KAPPA, LAMBDA);
    let tth = ParamSet::upload(g, &th).unwrap();
    let prob = block(Problem::new(g, &net, &tth, &z, &labels, 4, KAPPA, LAMBDA)).unwrap();
    let k = block(lqf::lqf::kfac::Kfac::new(g, &prob, LAMBDA)).unwrap();
    let iterations_to = |steps: &[lqf::lqf::solver::Step], tol: f64| steps.iter().position(|s| s.relative_residual <= tol).map(|i| i + 1);
    let (plain, plain_steps) = block(prob.solve_cg(g, None, None, 1e-7, 500, |_| {})).unwrap();
    let (pre, pre_steps) = block(prob.solve_cg(g, None, Some(&k), 1e-7, 500, |_| {})).unwrap();
    for (d, what) in [(&plain, "plain"), (&pre, "K-FAC")] {
        let r = rel(&flat(&block(d.read(g)).unwrap()), &want);
        assert!(r < SOLVE_REL, "{what}: {r:.2e}");
    }
    let (a, b) = (iterations_to(&plain_steps, 1e-3).unwrap(), iterations_to(&pre_steps, 1e-3).unwrap());
    eprintln!("iterations to 1e-3 relative residual: plain CG {a}, K-FAC CG {b}");
}

/// The paper's solver (K-FAC-preconditioned SGD with momentum, mini-batches in a seeded order)
/// ends at the same Δ* whatever the learning rate, momentum, seed, batch size or
/// preconditioner: the property that makes LQF predictable.
#[test]
fn sgd_reaches_the_same_optimum_for_any_learning_rate_seed_and_batch_order() {
    let (g, net) = (gpu(), tiny_net(0.1));
    let mut rng = Rng::new(44);
    let th = random_set(&net, &mut rng, 0.7);
    let (z, labels) = data(&net, &mut rng);
    let want = common::tiny::closed_form(&net, &th, &z, &labels, KAPPA, SGD_LAMBDA);
    let tth = ParamSet::upload(g, &th).unwrap();
    // (learning rate, momentum, seed of the batch order, batch size, K-FAC)
    let runs = [
        (0.4f32, 0.5f32, 0u64, 1usize, true),
        (0.4, 0.5, 1, 3, true),
        (0.2, 0.5, 2, 1, true),
        (0.1, 0.9, 3, 1, true),
        (0.1, 0.0, 4, 2, false),
        (0.05, 0.9, 5, 2, false),
    ];
    for (lr, momentum, seed, batch, kfac) in runs {
        let prob = block(Problem::new(g, &net, &tth, &z, &labels, batch, KAPPA, SGD_LAMBDA)).unwrap();
        let k = kfac.then(|| block(lqf::lqf::kfac::Kfac::new(g, &prob, SGD_LAMBDA)).unwrap());
        let sgd = lqf::lqf::Sgd { lr, momentum, epochs: 150, seed, variance_reduced: true, lr_scale: Absolute };
        let (delta, steps) = block(prob.solve_sgd(g, None, k.as_ref(), &sgd, 1e-7, |_| {})).unwrap();
        let r = rel(&flat(&block(delta.read(g)).unwrap()), &want);
        eprintln!("SGD lr {lr} momentum {momentum} seed {seed} batch {batch} K-FAC {kfac}: {} epochs, ‖Δ − Δ*‖/‖Δ*‖ = {r:.1e}", steps.len());
        assert!(r < SOLVE_REL, "lr {lr} momentum {momentum} seed {seed} batch {batch} K-FAC {kfac}: {r:.2e} after {} epochs", steps.len());
    }
}

/// A learning rate far too large is reported as divergence, not returned as a model.
#[test]
fn sgd_with_a_huge_learning_rate_reports_divergence() {
    let (g, net) = (gpu(), tiny_net(0.1));
    let mut rng = Rng::new(45);
    let th = random_set(&net, &mut rng, 0.7);
    let (z, labels) = data(&net, &mut rng);
    let tth = ParamSet::upload(g, &th).unwrap();
    let prob = block(Problem::new(g, &net, &tth, &z, &labels, 2, KAPPA, LAMBDA)).unwrap();
    let sgd = lqf::lqf::Sgd { lr: 50.0, momentum: 0.9, epochs: 50, seed: 0, variance_reduced: false, lr_scale: Absolute };
    match block(prob.solve_sgd(g, None, None, &sgd, 1e-7, |_| {})) {
        Err(lqf::Error::Diverged(msg)) => assert!(msg.contains("learning rate"), "{msg}"),
        Err(e) => panic!("expected divergence, got {e}"),
        Ok(_) => panic!("a learning rate of 50 cannot converge here"),
    }
}

/// `LrScale::Curvature` reads a rate as a fraction of ρ = max over batches B of the largest
/// eigenvalue of M⁻¹H_B. The power iteration against that eigenvalue in f64 (H_B from the dense
/// Jacobian, M⁻¹ read column by column from the GPU preconditioner, Lᵀ H_B L with M⁻¹ = LLᵀ),
/// with and without K-FAC; then SGD at scaled rates either side of heavy-ball momentum's
/// bound 2(1 + μ) = 3: below it every run reaches Δ*, far above it the run is reported as
/// divergence (which an overestimated ρ would turn into convergence).
#[test]
fn curvature_scaled_rates_are_fractions_of_the_stiffest_batch_curvature() {
    use lqf::lqf::kfac::Kfac;
    let (g, net) = (gpu(), tiny_net(0.1));
    let mut rng = Rng::new(47);
    let th = random_set(&net, &mut rng, 0.7);
    let (z, labels) = data(&net, &mut rng);
    let tth = ParamSet::upload(g, &th).unwrap();
    let (c, lens) = (net.classes, net.param_lens());
    let p: usize = lens.iter().sum();
    let th64: Vec<Vec<f64>> = th.iter().map(|t| f64s(t)).collect();
    let jac = reference::dense_jacobian(&net, &th64, &f64s(&z), N);
    let batch = 4; // batches of 4 and 2 images
    let prob = block(Problem::new(g, &net, &tth, &z, &labels, batch, KAPPA, SGD_LAMBDA)).unwrap();
    let kfac = block(Kfac::new(g, &prob, SGD_LAMBDA)).unwrap();
    let split = |v: &[f32]| -> Vec<Vec<f32>> {
        let mut off = 0;
        lens.iter()
            .map(|&n| {
                off += n;
                v[off - n..off].to_vec()
            })
            .collect()
    };
    // M⁻¹, symmetrized (it is symmetric up to f32 rounding), and its Cholesky factor.
    let mut minv = vec![0.0f64; p * p];
    for j in 0..p {
        let mut e = vec![0.0f32; p];
        e[j] = 1.0;
        let (r, out) = (ParamSet::upload(g, &split(&e)).unwrap(), ParamSet::zeros(g, &lens).unwrap());
        g.run(|rec| kfac.apply(rec, &r, &out)).unwrap();
        for (i, v) in flat(&block(out.read(g)).unwrap()).into_iter().enumerate() {
            minv[i * p + j] = v;
        }
    }
    for i in 0..p {
        for j in 0..i {
            let m = 0.5 * (minv[i * p + j] + minv[j * p + i]);
            (minv[i * p + j], minv[j * p + i]) = (m, m);
        }
    }
    let chol = cpu::linalg::cholesky(&minv, p).unwrap();
    let identity: Vec<f64> = (0..p * p).map(|k| if k % (p + 1) == 0 { 1.0 } else { 0.0 }).collect();
    // max_B λ_max(Lᵀ H_B L) for a factor L of M⁻¹.
    let stiffest = |l: &[f64]| -> f64 {
        let mut rho = 0.0f64;
        for start in (0..N).step_by(batch) {
            let nb = batch.min(N - start);
            let rows = &jac[start * c * p..(start + nb) * c * p];
            let mut h = vec![0.0f64; p * p];
            cpu::gemm::gemm(&Gemm::new(p, p, nb * c).trans(true, false).scale(1.0 / nb as f32, 0.0), rows, rows, &mut h);
            (0..p).for_each(|i| h[i * p + i] += SGD_LAMBDA as f64);
            let mut hl = vec![0.0f64; p * p];
            cpu::gemm::gemm(&Gemm::new(p, p, p), &h, l, &mut hl);
            let mut s = vec![0.0f64; p * p];
            cpu::gemm::gemm(&Gemm::new(p, p, p).trans(true, false), l, &hl, &mut s);
            let (values, _) = cpu::linalg::symmetric_eigen(&s, p);
            rho = values.into_iter().fold(rho, f64::max);
        }
        rho
    };
    for (k, l) in [(Some(&kfac), &chol), (None, &identity)] {
        let want = stiffest(l);
        let exact = block(prob.curvature_scale(g, k, 300, 1)).unwrap();
        let quick = block(prob.curvature_scale(g, k, lqf::lqf::solver::CURVATURE_ITERATIONS, 1)).unwrap();
        eprintln!("K-FAC {}: ρ = {want:.6} (f64), {exact:.6} after 300 steps, {quick:.6} after {}", k.is_some(), lqf::lqf::solver::CURVATURE_ITERATIONS);
        assert!((exact - want).abs() < 1e-3 * want, "K-FAC {}: ρ {exact} against {want}", k.is_some());
        // A Rayleigh quotient: never above ρ; close enough that rate 1 keeps a 2× margin.
        assert!(
            quick <= want * (1.0 + 1e-4) && quick > want / 1.5,
            "K-FAC {}: {quick} after {} steps against {want}",
            k.is_some(),
            lqf::lqf::solver::CURVATURE_ITERATIONS
        );
    }
    let optimum = common::tiny::closed_form(&net, &th, &z, &labels, KAPPA, SGD_LAMBDA);
    for kfac_on in [true, false] {
        let k = kfac_on.then_some(&kfac);
        for lr in [1.0f32, 2.0] {
            let sgd = lqf::lqf::Sgd { lr, momentum: 0.5, epochs: 300, seed: 3, variance_reduced: true, lr_scale: Curvature };
            let (delta, steps) = block(prob.solve_sgd(g, None, k, &sgd, 1e-7, |_| {})).unwrap();
            let r = rel(&flat(&block(delta.read(g)).unwrap()), &optimum);
            eprintln!("scaled SGD lr {lr} K-FAC {kfac_on}: {} epochs, ‖Δ − Δ*‖/‖Δ*‖ = {r:.1e}", steps.len());
            assert!(r < SOLVE_REL, "scaled lr {lr} K-FAC {kfac_on}: {r:.2e} after {} epochs", steps.len());
        }
        let sgd = lqf::lqf::Sgd { lr: 8.0, momentum: 0.5, epochs: 100, seed: 3, variance_reduced: true, lr_scale: Curvature };
        match block(prob.solve_sgd(g, None, k, &sgd, 1e-7, |_| {})) {
            Err(lqf::Error::Diverged(_)) => {}
            other => panic!("scaled lr 8 (> 3) with K-FAC {kfac_on} must diverge, got {:?}", other.map(|(_, s)| s.len())),
        }
    }
}

/// The cross-entropy ablation: the GPU loss and gradient against the f64 mirror (whose gradient
/// matches central differences of its loss), and the SGD solver's control variate reaching the
/// f64 Newton optimum whatever the learning rate, seed, batch size or preconditioner. CG and
/// H·v refuse the problem, which is not quadratic.
#[test]
fn cross_entropy_sgd_reaches_the_newton_optimum() {
    use lqf::lqf::Loss;
    let (g, net) = (gpu(), tiny_net(0.1));
    let mut rng = Rng::new(46);
    let th = random_set(&net, &mut rng, 0.7);
    let (z, labels) = data(&net, &mut rng);
    let (c, p) = (net.classes, net.param_lens().iter().sum::<usize>());
    let tth = ParamSet::upload(g, &th).unwrap();
    // Loss and gradient at a random point.
    let x = random_set(&net, &mut rng, 0.3);
    let prob = block(Problem::new(g, &net, &tth, &z, &labels, 4, KAPPA, SGD_LAMBDA)).unwrap().with_loss(Loss::CrossEntropy);
    let (grad, loss) = block(prob.gradient(g, &ParamSet::upload(g, &x).unwrap())).unwrap();
    let th64: Vec<Vec<f64>> = th.iter().map(|t| f64s(t)).collect();
    let jac = reference::dense_jacobian(&net, &th64, &f64s(&z), N);
    let ref_loss = |x: &[f64]| {
        let (_, l) = cpu::elementwise::softmax_cross_entropy(&common::tiny::f_lin(&net, &th, &z, N, x), &labels, c);
        l.iter().sum::<f64>() / N as f64 + 0.5 * SGD_LAMBDA as f64 * dot(x, x)
    };
    let xf = flat(&x);
    let (r, _) = cpu::elementwise::softmax_cross_entropy(&common::tiny::f_lin(&net, &th, &z, N, &xf), &labels, c);
    let mut want_grad: Vec<f64> = xf.iter().map(|v| SGD_LAMBDA as f64 * v).collect();
    cpu::gemm::gemm(&Gemm::new(p, 1, N * c).trans(true, false).scale(1.0 / N as f32, 1.0), &jac, &r, &mut want_grad);
    let got = flat(&block(grad.read(g)).unwrap());
    assert!(rel(&got, &want_grad) < 1e-5, "gradient: {:.2e}", rel(&got, &want_grad));
    assert!((loss - ref_loss(&xf)).abs() < 1e-5 * ref_loss(&xf), "loss {loss} vs {}", ref_loss(&xf));
    let v = flat(&random_set(&net, &mut rng, 1.0));
    let h = 1e-5;
    let (up, down): (Vec<f64>, Vec<f64>) = (xf.iter().zip(&v).map(|(a, b)| a + h * b).collect(), xf.iter().zip(&v).map(|(a, b)| a - h * b).collect());
    let diff = (ref_loss(&up) - ref_loss(&down)) / (2.0 * h);
    assert!((diff - dot(&want_grad, &v)).abs() < 1e-6 * dot(&want_grad, &v).abs().max(1.0), "central difference {diff} vs ⟨∇L, v⟩ {}", dot(&want_grad, &v));
    // One optimum, whatever the run.
    let want = common::tiny::cross_entropy_optimum(&net, &th, &z, &labels, SGD_LAMBDA);
    let mse = common::tiny::closed_form(&net, &th, &z, &labels, KAPPA, SGD_LAMBDA);
    assert!(rel(&want, &mse) > 0.1, "the cross-entropy optimum is a different model");
    for (lr, momentum, seed, batch, kfac) in [(0.4f32, 0.5f32, 0u64, 1usize, true), (0.2, 0.5, 1, 3, true), (0.1, 0.0, 2, 2, false)] {
        let prob = block(Problem::new(g, &net, &tth, &z, &labels, batch, KAPPA, SGD_LAMBDA)).unwrap().with_loss(Loss::CrossEntropy);
        let k = kfac.then(|| block(lqf::lqf::kfac::Kfac::new(g, &prob, SGD_LAMBDA)).unwrap());
        let sgd = lqf::lqf::Sgd { lr, momentum, epochs: 150, seed, variance_reduced: true, lr_scale: Absolute };
        let (delta, steps) = block(prob.solve_sgd(g, None, k.as_ref(), &sgd, 1e-7, |_| {})).unwrap();
        let r = rel(&flat(&block(delta.read(g)).unwrap()), &want);
        eprintln!("cross-entropy SGD lr {lr} seed {seed} batch {batch} K-FAC {kfac}: {} epochs, ‖Δ − Δ*‖/‖Δ*‖ = {r:.1e}", steps.len());
        assert!(r < SOLVE_REL, "lr {lr} seed {seed} batch {batch} K-FAC {kfac}: {r:.2e} after {} epochs", steps.len());
    }
    match block(prob.solve_cg(g, None, None, 1e-7, 10, |_| {})) {
        Err(lqf::Error::InvalidArgument(msg)) => assert!(msg.contains("quadratic"), "{msg}"),
        other => panic!("CG on cross-entropy must be refused, got {:?}", other.map(|(_, s)| s.len())),
    }
    assert!(prob.hvp(g, &ParamSet::zeros(g, &net.param_lens()).unwrap()).is_err());
}

/// No pass allocates more than one storage binding holds. MobileNetV2 linearized from its
/// second block has 112×112×96 activations, so a batch of 32 asked for 147 MiB where WebGPU
/// binds 128 MiB by default, and training stopped with "buffer exceeds the storage-binding
/// limit". Here an adapter that binds 16 images' activations of the tiny net is asked for
/// batches of 32: the problem is split into passes that fit, CG still reaches the closed-form
/// optimum, and a fine-tuning step (the mini-batch's gradient accumulated over passes) equals
/// the same step taken in one pass on the unconstrained adapter.
#[test]
fn passes_are_split_to_fit_the_adapter_binding_limit() {
    use lqf::gpu::{BackendChoice, Gpu};
    use lqf::lqf::finetune::{self, Finetune};
    const MANY: usize = 40;
    let (g, net) = (gpu(), tiny_net(0.1));
    let mut small = block(Gpu::new(BackendChoice::Auto)).unwrap();
    let per_image = 4 * 4 * 8; // the tiny net's largest activation, the expansion's output
    small.limits.max_storage_buffer_binding_size = (16 * per_image * 4) as u64;
    assert_eq!(net.max_batch(&small), 16);
    assert_eq!(net.fit_batch(&small, 32), 16);
    assert_eq!(net.fit_batch(g, 32), 32);

    let mut rng = Rng::new(47);
    let th = random_set(&net, &mut rng, 0.7);
    let z: Vec<f32> = rng.vec_f32(MANY * net.input.len()).iter().map(|v| v * 2.0).collect();
    let labels: Vec<u32> = (0..MANY).map(|i| (i % net.classes) as u32).collect();
    let want = common::tiny::closed_form(&net, &th, &z, &labels, KAPPA, LAMBDA);
    let tth = ParamSet::upload(&small, &th).unwrap();
    let prob = block(Problem::new(&small, &net, &tth, &z, &labels, 32, KAPPA, LAMBDA)).unwrap();
    assert_eq!(prob.batches.iter().map(|b| b.n).collect::<Vec<_>>(), vec![16, 16, 8]);
    let k = block(lqf::lqf::kfac::Kfac::new(&small, &prob, LAMBDA)).unwrap();
    let (delta, _) = block(prob.solve_cg(&small, None, Some(&k), 1e-7, 500, |_| {})).unwrap();
    let r = rel(&flat(&block(delta.read(&small)).unwrap()), &want);
    assert!(r < SOLVE_REL, "‖Δ − Δ*‖/‖Δ*‖ = {r:.2e} with passes of 16 images");

    let ft = Finetune { lr: 0.1, ..Finetune::default() };
    let v = random_set(&net, &mut rng, 0.1);
    let stepped = |gpu: &Gpu| {
        let (theta, vel) = (ParamSet::upload(gpu, &th).unwrap(), ParamSet::upload(gpu, &v).unwrap());
        let (t2, v2, ce) = block(finetune::step(gpu, &net, &theta, &vel, &z, &labels, &ft)).unwrap();
        (flat(&block(t2.read(gpu)).unwrap()), flat(&block(v2.read(gpu)).unwrap()), ce)
    };
    let (split_theta, split_v, split_ce) = stepped(&small);
    let (one_theta, one_v, one_ce) = stepped(g);
    assert!(rel(&split_theta, &one_theta) < 1e-6 && rel(&split_v, &one_v) < 1e-6, "θ' {:.2e}, v' {:.2e}", rel(&split_theta, &one_theta), rel(&split_v, &one_v));
    assert!((split_ce - one_ce).abs() < 1e-6 * one_ce.abs(), "mean cross-entropy {split_ce} vs {one_ce}");
}
