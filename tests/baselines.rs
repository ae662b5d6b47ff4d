//! The baselines in the engine (logistic probe, non-linear fine-tuning), λ selection and the
//! training entry point, on a tiny network whose references are computable in f64.
mod common;

use common::tiny::{random_params, rel, tiny};
use common::{block, f64s, gpu};
use lqf::lqf::finetune::{self, Finetune};
use lqf::lqf::train::{self, Depth, Init, Method, Settings, Split};
use lqf::lqf::{probe, reference, LinearizedNet, ParamSet};
use lqf::rng::Rng;

/// GPU result vs the f64 reference, relative to the reference's norm.
const LOGISTIC_REL: f64 = 1e-3;
const FINETUNE_STEP_REL: f64 = 1e-5;

fn softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Newton's method on the regularised multinomial logistic loss, in f64.
fn logistic_newton(x: &[f64], labels: &[u32], n: usize, d: usize, c: usize, lambda: f64) -> Vec<f64> {
    let p = d * c;
    let mut w = vec![0.0; p];
    for _ in 0..30 {
        let mut grad: Vec<f64> = w.iter().map(|v| lambda * v).collect();
        let mut h = vec![0.0; p * p];
        for i in 0..p {
            h[i * p + i] = lambda;
        }
        for i in 0..n {
            let xi = &x[i * d..(i + 1) * d];
            let logits: Vec<f64> = (0..c).map(|k| (0..d).map(|j| xi[j] * w[j * c + k]).sum()).collect();
            let pr = softmax(&logits);
            for j in 0..d {
                for k in 0..c {
                    grad[j * c + k] += xi[j] * (pr[k] - if labels[i] as usize == k { 1.0 } else { 0.0 }) / n as f64;
                    for j2 in 0..d {
                        for k2 in 0..c {
                            let s = if k == k2 { pr[k] } else { 0.0 } - pr[k] * pr[k2];
                            h[(j * c + k) * p + j2 * c + k2] += xi[j] * xi[j2] * s / n as f64;
                        }
                    }
                }
            }
        }
        let inv = lqf::cpu::linalg::spd_inverse(&h, p).unwrap();
        for a in 0..p {
            w[a] -= (0..p).map(|b| inv[a * p + b] * grad[b]).sum::<f64>();
        }
    }
    w
}

#[test]
fn logistic_probe_reaches_the_newton_optimum() {
    let g = gpu();
    let (n, f, c, lambda) = (30, 5, 3, 0.01f32);
    let mut rng = Rng::new(7);
    let pooled: Vec<f32> = rng.vec_f32(n * f).iter().map(|v| v * 2.0).collect();
    let labels: Vec<u32> = (0..n).map(|i| ((i * 7) % c) as u32).collect();
    let (w, b) = block(probe::logistic(g, &pooled, &labels, c, lambda, 3000)).unwrap();
    let mut x = Vec::new();
    for i in 0..n {
        x.extend(f64s(&pooled[i * f..(i + 1) * f]));
        x.push(1.0);
    }
    let want = logistic_newton(&x, &labels, n, f + 1, c, lambda as f64);
    let got: Vec<f64> = f64s(&w).into_iter().chain(f64s(&b)).collect();
    let r = rel(&got, &want);
    assert!(r < LOGISTIC_REL, "logistic probe vs Newton: {r:.2e}");
}

/// Two SGD-momentum steps of fine-tuning equal the same steps computed on the CPU from the
/// dense Jacobian at the current weights: forward and backward run at θ, not θ0.
#[test]
fn finetune_steps_match_the_cpu_at_the_current_weights() {
    let (g, net) = (gpu(), tiny(0.0));
    let n = 5;
    let mut rng = Rng::new(8);
    let th = random_params(&net, &mut rng, 0.7);
    let z: Vec<f32> = rng.vec_f32(n * net.input.len()).iter().map(|v| v * 2.0).collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    let ft = Finetune { lr: 0.3, momentum: 0.9, epochs: 1, weight_decay: 0.01, seed: 0 };
    // GPU: two steps.
    let (mut theta, mut v) = (ParamSet::upload(g, &th).unwrap(), ParamSet::zeros(g, &net.param_lens()).unwrap());
    for _ in 0..2 {
        let (t2, v2, _) = block(finetune::step(g, &net, &theta, &v, &z, &labels, &ft)).unwrap();
        (theta, v) = (t2, v2);
    }
    // CPU: the same two steps from the dense Jacobian at each current θ.
    let mut t64: Vec<Vec<f64>> = th.iter().map(|t| f64s(t)).collect();
    let mut v64: Vec<Vec<f64>> = t64.iter().map(|t| vec![0.0; t.len()]).collect();
    let c = net.classes;
    for _ in 0..2 {
        let zero: Vec<Vec<f64>> = t64.iter().map(|t| vec![0.0; t.len()]).collect();
        let (f, _) = reference::jvp(&net, &t64, &f64s(&z), n, &zero);
        let jac = reference::dense_jacobian(&net, &t64, &f64s(&z), n);
        let mut gout = vec![0.0; n * c];
        for i in 0..n {
            let p = softmax(&f[i * c..(i + 1) * c]);
            for k in 0..c {
                gout[i * c + k] = (p[k] - if labels[i] as usize == k { 1.0 } else { 0.0 }) / n as f64;
            }
        }
        let total: usize = net.param_lens().iter().sum();
        let grad: Vec<f64> = (0..total).map(|q| (0..n * c).map(|r| jac[r * total + q] * gout[r]).sum()).collect();
        let mut off = 0;
        for (t, v) in t64.iter_mut().zip(v64.iter_mut()) {
            for k in 0..t.len() {
                v[k] = ft.momentum as f64 * v[k] + grad[off + k] + ft.weight_decay as f64 * t[k];
                t[k] -= ft.lr as f64 * v[k];
            }
            off += t.len();
        }
    }
    let got: Vec<f64> = block(theta.read(g)).unwrap().iter().flat_map(|t| f64s(t)).collect();
    let want: Vec<f64> = t64.concat();
    let moved = rel(&want, &th.iter().flat_map(|t| f64s(t)).collect::<Vec<_>>());
    assert!(moved > 1e-3, "the steps change the weights ({moved:.1e})");
    let r = rel(&got, &want);
    assert!(r < FINETUNE_STEP_REL, "fine-tuning steps vs CPU: {r:.2e}");
}

/// A tiny `Split` whose linearized part is `tiny()` with random convolution weights.
fn tiny_split(g: &lqf::gpu::Gpu, rng: &mut Rng, alpha: f32) -> Split {
    let net = tiny(alpha);
    let params = random_params(&net, rng, 0.7);
    let nconv = net.convs.len();
    let conv_params = params[..2 * nconv].iter().map(|t| g.upload(t).unwrap()).collect();
    Split { trunk_end: 0, net, conv_params }
}

/// Three clusters in input space, so that every method has something to learn.
fn clustered(net: &LinearizedNet, rng: &mut Rng, n: usize) -> (Vec<f32>, Vec<u32>) {
    let per = net.input.len();
    let centres: Vec<Vec<f32>> = (0..net.classes).map(|_| rng.vec_f32(per).iter().map(|v| v * 2.0).collect()).collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % net.classes) as u32).collect();
    let z = labels.iter().flat_map(|&l| centres[l as usize].iter().map(|c| c + 0.6 * rng.range(-1.0, 1.0) as f32).collect::<Vec<_>>()).collect();
    (z, labels)
}

#[test]
fn every_method_trains_and_fits_separable_data() {
    let g = gpu();
    let mut rng = Rng::new(9);
    let split_rng = rng.clone();
    let net = tiny(0.1);
    let (z, labels) = clustered(&net, &mut rng, 24);
    for method in [Method::Lqf, Method::Finetune] {
        let s = Settings {
            method,
            depth: Depth::All,
            init: Init::Random { seed: 1 },
            batch: 8,
            finetune: Finetune { lr: 0.05, epochs: 40, ..Default::default() },
            ..Default::default()
        };
        let split = tiny_split(g, &mut split_rng.clone(), s.effective_alpha());
        let mut losses = Vec::new();
        let m = block(train::train(g, split, &z, &labels, &s, &mut |p| losses.extend(p.loss))).unwrap();
        let acc = train::accuracy(&block(train::predict(g, &m, &z, 24, 8)).unwrap(), &labels, 3);
        assert!(acc >= 0.9, "{method:?}: training accuracy {acc}");
        assert!(losses.last() < losses.first(), "{method:?}: loss goes down: {losses:?}");
    }
}

#[test]
fn lambda_is_chosen_by_cross_validation_on_the_training_set() {
    // The folds: image k of each class with at least three is held out in fold k mod 5, once.
    let labels: Vec<u32> = (0..23).map(|i| if i < 20 { (i % 2) as u32 } else { 2 }).collect();
    let folds = train::holdout_folds(&labels, 3);
    assert_eq!(folds.len(), train::LAMBDA_FOLDS);
    let mut held_times = vec![0; labels.len()];
    for (tr, ho) in &folds {
        assert_eq!(tr.len() + ho.len(), labels.len());
        assert!(tr.iter().all(|i| !ho.contains(i)));
        ho.iter().for_each(|&i| held_times[i] += 1);
        for c in 0..3 {
            assert!(tr.iter().filter(|&&i| labels[i] == c).count() >= 2, "every fold trains on two of class {c}: {ho:?}");
        }
    }
    assert!(held_times.iter().all(|&t| t == 1), "every image is held out exactly once: {held_times:?}");
    let held = |c: u32| folds[0].1.iter().filter(|&&i| labels[i] == c).count();
    assert_eq!((held(0), held(1), held(2)), (2, 2, 1), "fold 0 holds out: {:?}", folds[0].1);
    assert!(train::holdout_folds(&[0, 1, 0, 1], 2).is_empty(), "classes of two keep all their images");
    let three: Vec<u32> = vec![0, 0, 0, 1, 1, 1];
    assert_eq!(train::holdout_folds(&three, 2).len(), 3, "three images a class: three folds of one each");

    let g = gpu();
    let mut rng = Rng::new(10);
    let split_rng = rng.clone();
    let split = tiny_split(g, &mut split_rng.clone(), 0.1);
    let (z, labels) = clustered(&split.net, &mut rng, 15);
    let s = Settings { depth: Depth::All, lambda_path: vec![1e-1, 10.0, 1.0], batch: 8, cg_tol: 1e-4, max_iter: 300, ..Default::default() };
    let mut reports = 0;
    let m = block(train::train(g, split, &z, &labels, &s, &mut |p| reports += (p.phase == lqf::lqf::Phase::LambdaSearch) as usize)).unwrap();
    assert_eq!(m.lambda_origin(), train::LambdaOrigin::CrossValidated);
    let lambdas: Vec<f32> = m.lambda_scores.iter().map(|s| s.lambda).collect();
    assert_eq!(lambdas[..], [10.0, 1.0, 1e-1][..lambdas.len()], "the path is solved from the largest λ down: {:?}", m.lambda_scores);
    let folds = train::holdout_folds(&labels, 3);
    assert_eq!(reports, lambdas.len() * folds.len(), "one report per fold and λ");
    // Down to the first λ whose held-out loss improves by no more than the standard error of
    // the image-by-image difference or a tenth of its own (or rises), or to the end.
    let sc = &m.lambda_scores;
    let falling = sc
        .windows(2)
        .take_while(|w| {
            let (worse, se) = train::paired_difference(&w[0].losses, &w[1].losses);
            worse > se && worse >= 0.1 * w[1].se
        })
        .count();
    assert!(falling + 1 == sc.len() || falling + 2 == sc.len(), "stops once the loss flattens: {sc:?}");
    assert!(lambdas.len() >= 2, "this data's held-out loss falls from λ = 10 to 0.1: {sc:?}");
    assert_eq!(Some(m.settings.lambda), train::one_standard_error_choice(sc), "{sc:?}");
    let chosen = sc.iter().find(|s| s.lambda == m.settings.lambda).unwrap();
    assert!(m.lambda_scores.iter().all(|s| (0.0..=1.0).contains(&s.accuracy)), "held-out accuracy is reported: {:?}", m.lambda_scores);
    // The held-out losses are those of the models solved on each fold's rest, at that λ,
    // every training image once.
    let per = m.split.net.input.len();
    let mut per_image = Vec::new();
    for (tr, ho) in &folds {
        let ((ztr, ltr), (zho, lho)) = (train::gather(&z, &labels, tr, per), train::gather(&z, &labels, ho, per));
        let fold = Settings { lambda: chosen.lambda, lambda_path: Vec::new(), ..s.clone() };
        let again = block(train::train(g, tiny_split(g, &mut split_rng.clone(), 0.1), &ztr, &ltr, &fold, &mut |_| {})).unwrap();
        let logits = block(train::predict(g, &again, &zho, lho.len(), 8)).unwrap();
        per_image.extend(
            logits
                .chunks(3)
                .zip(&lho)
                .map(|(row, &l)| row.iter().enumerate().map(|(k, &v)| (v as f64 - if l as usize == k { s.kappa as f64 } else { 0.0 }).powi(2)).sum::<f64>()),
        );
    }
    assert_eq!(chosen.losses.len(), labels.len());
    let (mse, se) = train::mean_and_standard_error(&per_image);
    assert!((mse - chosen.loss).abs() < 1e-2 * mse, "held-out MSE {} vs fresh solves' {mse}", chosen.loss);
    assert!((se - chosen.se).abs() < 2e-2 * se, "standard error {} vs fresh solves' {se}", chosen.se);
    for (a, b) in chosen.losses.iter().zip(&per_image) {
        assert!((a - b).abs() < 2e-2 * mse, "each held-out image's loss: {:?} vs fresh solves' {per_image:?}", chosen.losses);
    }
}

#[test]
fn the_largest_lambda_within_one_standard_error_of_the_best_is_chosen() {
    let (mean, se) = train::mean_and_standard_error(&[1.0, 2.0, 3.0, 6.0]);
    assert!((mean - 3.0).abs() < 1e-12 && (se - (14.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-12, "{mean} {se}");
    assert_eq!(train::mean_and_standard_error(&[4.0]), (4.0, 0.0));
    let score = |lambda: f32, losses: &[f64]| {
        let (loss, se) = train::mean_and_standard_error(losses);
        train::LambdaScore { lambda, accuracy: 0.5, loss, se, losses: losses.to_vec() }
    };
    let (worse, se) = train::paired_difference(&[3.0, 5.0, 4.0], &[1.0, 2.0, 3.0]);
    assert!((worse - 2.0).abs() < 1e-12 && (se - (1.0f64 / 3.0).sqrt()).abs() < 1e-12, "{worse} {se}");
    // The photos differ far more from one another than the λ do on any one photo: the error of
    // each loss alone (about 3.3 here) would let λ = 100, worse by 2 on every photo, stand.
    let best = [10.0, 20.0, 5.0, 15.0];
    let path = [score(100.0, &[12.0, 22.0, 7.1, 16.9]), score(10.0, &[11.0, 19.0, 6.0, 14.4]), score(1.0, &best)];
    assert!(path[0].loss <= path[2].loss + path[2].se, "unpaired, 100 would be within one error: {path:?}");
    assert_eq!(train::one_standard_error_choice(&path), Some(10.0), "10 is worse by 0.1 ± 0.5, 100 by 2.0 ± 0.04");
    let exact = [score(10.0, &[12.8, 12.8]), score(1.0, &[12.2, 12.2])];
    assert_eq!(train::one_standard_error_choice(&exact), Some(1.0), "no spread: the lowest loss");
    let level = [score(10.0, &[12.2, 13.0]), score(1.0, &[12.2, 13.0])];
    assert_eq!(train::one_standard_error_choice(&level), Some(10.0), "a tie goes to the larger λ (the bound is inclusive)");
    assert_eq!(train::one_standard_error_choice(&[]), None);
}

#[test]
fn cg_is_preconditioned_with_kfac_only_below_the_measured_lambda() {
    let s = Settings { depth: Depth::All, batch: 8, max_iter: 5, ..Default::default() };
    assert!(s.preconditions_with_kfac(1e-3) && s.preconditions_with_kfac(0.009));
    assert!(!s.preconditions_with_kfac(train::KFAC_CG_MAX_LAMBDA) && !s.preconditions_with_kfac(0.1) && !s.preconditions_with_kfac(0.5));
    let sgd = Settings { solver: train::SolverKind::Sgd, ..s.clone() };
    assert!(sgd.preconditions_with_kfac(0.5), "SGD keeps K-FAC at every λ");
    assert!(!Settings { kfac: false, ..s.clone() }.preconditions_with_kfac(1e-3));
    // Training honours it: the trained model carries K-FAC exactly when CG used it.
    let g = gpu();
    let mut rng = Rng::new(11);
    let split_rng = rng.clone();
    let net = tiny(0.1);
    let (z, labels) = clustered(&net, &mut rng, 12);
    for (lambda, kfac) in [(1e-3, true), (0.5, false)] {
        let split = tiny_split(g, &mut split_rng.clone(), 0.1);
        let m = block(train::train(g, split, &z, &labels, &Settings { lambda, ..s.clone() }, &mut |_| {})).unwrap();
        assert_eq!(m.kfac.is_some(), kfac, "λ {lambda}: K-FAC {}", m.kfac.is_some());
        assert!(!m.steps.is_empty(), "λ {lambda}: CG ran");
    }
}

#[test]
fn training_refuses_bad_input_with_clear_messages() {
    let g = gpu();
    let mut rng = Rng::new(11);
    let (z, _) = clustered(&tiny(0.1), &mut rng, 6);
    let s = Settings { depth: Depth::All, batch: 4, ..Default::default() };
    let cases: [(&[u32], &str); 3] = [(&[0, 0, 0, 0, 0, 0], "at least 2 classes"), (&[0, 1, 2, 0, 1, 7], "label 7"), (&[], "no training images")];
    for (labels, want) in cases {
        let zz = if labels.is_empty() { &z[..0] } else { &z[..] };
        let err = block(train::train(g, tiny_split(g, &mut rng, 0.1), zz, labels, &s, &mut |_| {})).err().expect("refused");
        assert!(err.to_string().contains(want), "{err}");
    }
    let diverging = Settings {
        solver: train::SolverKind::Sgd,
        sgd: lqf::lqf::Sgd { lr: 500.0, momentum: 0.9, epochs: 20, seed: 0, variance_reduced: false, lr_scale: lqf::lqf::LrScale::Absolute },
        ..s.clone()
    };
    let err = block(train::train(g, tiny_split(g, &mut rng, 0.1), &z, &[0, 1, 2, 0, 1, 2], &diverging, &mut |_| {})).err().expect("diverges");
    assert!(matches!(err, lqf::Error::Diverged(_)), "{err}");
}
