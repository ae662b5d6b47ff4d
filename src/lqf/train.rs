//! From a pretrained backbone to a trained linearized model: split the network, cache the trunk's
//! features, initialise the classifier, solve, predict.
use super::finetune::Finetune;
use super::kfac::{self, Kfac};
use super::linearized::{LinBlock, LinearizedNet};
use super::params::ParamSet;
use super::probe;
use super::progress::{OnProgress, Phase, Progress};
use super::recycle::KrylovBasis;
use super::solver::{Loss, Problem, Sgd, Step};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::arch::ArchDef;
use crate::model::backbone::{Backbone, Hwc};
use crate::rng::Rng;

/// How much of the backbone is linearized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Depth {
    /// The classifier only: a linear probe on the frozen features.
    Probe,
    /// The last `n` blocks before the head convolution, the head convolution and the classifier.
    Blocks(usize),
    /// Every block, stem included.
    All,
}

impl Depth {
    /// `probe` (or 0), `all`, or a number of blocks, as the CLI and the page write it.
    pub fn parse(s: &str) -> Result<Depth> {
        match s.trim() {
            "all" => Ok(Depth::All),
            "probe" | "0" => Ok(Depth::Probe),
            d => d.parse().map(Depth::Blocks).map_err(|_| Error::InvalidArgument(format!("depth {d:?}: a number of blocks, all, or probe"))),
        }
    }
}

impl std::fmt::Display for Depth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Depth::Probe => write!(f, "probe"),
            Depth::All => write!(f, "all"),
            Depth::Blocks(n) => write!(f, "{n}"),
        }
    }
}

/// The weight-decay path `--weight-decay auto` and the page's "auto" search. It reaches far
/// up because the linearized model nearly interpolates a few-shot set until λ is large: on
/// DTD-10 at 5 shots (500 outputs, depth 1) the fit uses ≈476 degrees of freedom at λ = 1,
/// 346 at 10, 112 at 100 (docs/RESULTS.md).
pub const AUTO_LAMBDA_PATH: [f32; 7] = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0];

/// λ when none is given, and the fallback of a search that cannot cross-validate.
pub const DEFAULT_LAMBDA: f32 = 1e-3;

/// How the new classifier is set at θ0 (it must not be zero, or every backbone Jacobian is).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Init {
    /// Kaiming-uniform as PyTorch's `nn.Linear`: W, b ~ U(±1/√features), seeded.
    Random { seed: u64 },
    /// The closed-form ridge probe on the trunk's pooled features.
    Ridge,
}

/// What is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The linearized network, MSE, K-FAC (the project's method).
    #[default]
    Lqf,
    /// Ridge regression on the frozen features (closed form; depth is ignored).
    Ridge,
    /// Logistic regression on the frozen features (depth is ignored).
    Logistic,
    /// Standard non-linear fine-tuning of the same blocks with cross-entropy.
    Finetune,
}

/// LQF's solver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolverKind {
    /// Full-batch preconditioned conjugate gradient (no learning rate).
    #[default]
    Cg,
    /// K-FAC-preconditioned SGD with momentum (settings in `Settings::sgd`).
    Sgd,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub method: Method,
    pub depth: Depth,
    /// Leaky-ReLU6 slope in the linearized part (the frozen trunk keeps the pretrained ReLU6).
    pub alpha: f32,
    /// Target scale κ.
    pub kappa: f32,
    /// LQF's data term (MSE unless asked; cross-entropy needs the SGD solver).
    #[serde(default)]
    pub loss: Loss,
    /// Weight decay λ toward θ0 (also the ridge probe's and the logistic probe's λ). When
    /// `lambda_path` is not empty, this is the λ that was chosen from it.
    pub lambda: f32,
    /// Candidate λ values chosen from by cross-validation on the training set (empty: use `lambda`).
    #[serde(default)]
    pub lambda_path: Vec<f32>,
    pub init: Init,
    /// Images per GPU pass.
    pub batch: usize,
    /// Precondition the solver with K-FAC (damped with λ): SGD always, CG only where it pays,
    /// below `KFAC_CG_MAX_LAMBDA` (`preconditions_with_kfac`).
    pub kfac: bool,
    /// Exact K-FAC statistics, or the Monte-Carlo estimate (for many classes).
    #[serde(default)]
    pub kfac_sampling: kfac::Sampling,
    /// How K-FAC's convolution factors treat output positions (as samples by default).
    #[serde(default)]
    pub kfac_positions: kfac::Positions,
    #[serde(default)]
    pub solver: SolverKind,
    /// Conjugate gradient stops at this relative residual (SGD at this relative gradient norm)…
    pub cg_tol: f64,
    /// …or after this many CG iterations.
    pub max_iter: usize,
    #[serde(default)]
    pub sgd: Sgd,
    #[serde(default)]
    pub finetune: Finetune,
    /// Iterations of the logistic probe (as an initialisation or a method).
    #[serde(default = "default_logistic_iterations")]
    pub logistic_iterations: usize,
    /// GPU memory (bytes) CG may spend keeping its directions for recycled forgetting
    /// (`recycle`); 0 keeps none. A property of the session, not of the model: not saved.
    #[serde(skip)]
    pub basis_budget: u64,
}

/// CG is preconditioned with K-FAC only below this λ. Factored damping (A + π√λ)⊗(G + √λ/π)
/// overstates the curvature of many directions once λ is large. On the 50 bundled photos
/// (`examples/precond_lambda`, docs/RESULTS.md) K-FAC CG reaches an energy gap of 1e-3 of
/// L(0) − L* in 13 iterations at λ = 1e-3 against plain CG's 24, but not in 40 at 1e-2, 3e-2 or
/// 0.1, where plain CG needs 23–24; at 0.5 it is still at 4e-4 after 80 where plain CG reaches
/// 1e-5 in 41. On DTD-10 at 5 shots and λ = 1e-2, plain CG met the 1e-3 tolerance in as many
/// iterations (23–29 against 25–28) at a lower loss on every seed. Building K-FAC with a
/// smaller damping than λ (0.1λ, 0.01λ) does not rescue it at 0.1. SGD keeps K-FAC at every λ:
/// there it also sets the learning rate's scale.
pub const KFAC_CG_MAX_LAMBDA: f32 = 1e-2;

impl Settings {
    pub fn kfac_estimate(&self) -> kfac::Estimate {
        kfac::Estimate { sampling: self.kfac_sampling, positions: self.kfac_positions }
    }

    /// Whether the solver is preconditioned with K-FAC when the weight decay is `lambda`.
    pub fn preconditions_with_kfac(&self, lambda: f32) -> bool {
        self.kfac && (self.solver == SolverKind::Sgd || lambda < KFAC_CG_MAX_LAMBDA)
    }

    /// Whether training chooses λ from `lambda_path` (only LQF searches).
    pub fn searches_lambda(&self) -> bool {
        self.method == Method::Lqf && !self.lambda_path.is_empty()
    }
}

fn default_logistic_iterations() -> usize {
    500
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            method: Method::Lqf,
            depth: Depth::Blocks(3),
            alpha: 0.05,
            kappa: 5.0,
            loss: Loss::Mse,
            lambda: DEFAULT_LAMBDA,
            lambda_path: Vec::new(),
            init: Init::Random { seed: 0 },
            batch: 32,
            kfac: true,
            kfac_sampling: kfac::Sampling::Exact,
            kfac_positions: kfac::Positions::Expand,
            solver: SolverKind::Cg,
            cg_tol: 1e-3,
            max_iter: 100,
            sgd: Sgd::default(),
            finetune: Finetune::default(),
            logistic_iterations: default_logistic_iterations(),
            basis_budget: 0,
        }
    }
}

impl Settings {
    /// The depth to split at: the probes need only the backbone's final features (they also
    /// train correctly on a deeper split made with `effective_alpha`, which `fewshot` uses to
    /// share one feature cache between methods).
    pub fn effective_depth(&self) -> Depth {
        match self.method {
            Method::Ridge | Method::Logistic => Depth::Probe,
            _ => self.depth,
        }
    }

    /// The activation slope actually used: the probes and standard fine-tuning keep the
    /// pretrained network's ReLU6; LQF uses the leaky one.
    pub fn effective_alpha(&self) -> f32 {
        match self.method {
            Method::Lqf => self.alpha,
            _ => 0.0,
        }
    }
}

/// A backbone split into a frozen trunk (blocks `..trunk_end`) and a linearized part.
pub struct Split {
    pub trunk_end: usize,
    pub net: LinearizedNet,
    /// θ0 of the linearized convolutions (shared with the backbone's own tensors).
    pub conv_params: Vec<Tensor>,
}

/// Where `depth` splits an architecture: the number of trunk blocks and the shape of the
/// trunk's output (the per-image features cached for training).
pub fn trunk_shape(def: &ArchDef, depth: Depth) -> Result<(usize, Hwc)> {
    let nblocks = def.blocks.len();
    // The last block is the head convolution; the ones before it are the network's blocks.
    let trunk_end = match depth {
        Depth::Probe => nblocks,
        Depth::All => 0,
        Depth::Blocks(n) if n + 1 < nblocks => nblocks - 1 - n,
        Depth::Blocks(n) => return Err(Error::InvalidArgument(format!("depth {n}: {} has {} blocks before its head", def.arch.id(), nblocks - 1))),
    };
    let shape = if trunk_end == nblocks {
        // The probe's trunk ends with the global pool: 1280 numbers an image instead of 7×7×1280.
        Hwc { h: 1, w: 1, c: def.block_shapes()[nblocks - 1].2 }
    } else if trunk_end == 0 {
        Hwc { h: def.input, w: def.input, c: 3 }
    } else {
        let (h, w, c) = def.block_shapes()[trunk_end - 1];
        Hwc { h, w, c }
    };
    Ok((trunk_end, shape))
}

pub fn split(backbone: &Backbone, depth: Depth, classes: usize, alpha: f32) -> Result<Split> {
    let (trunk_end, input) = trunk_shape(&backbone.def, depth)?;
    if classes < 2 {
        return Err(Error::InvalidArgument(format!("training needs at least 2 classes, got {classes}")));
    }
    let shapes = backbone.def.block_shapes();
    let mut convs = Vec::new();
    let mut blocks = Vec::new();
    let mut conv_params = Vec::new();
    for b in &backbone.blocks[trunk_end..] {
        let mut idx = Vec::new();
        for c in &b.convs {
            idx.push(convs.len());
            convs.push(c.def.clone());
            conv_params.push(c.w.clone());
            conv_params.push(c.b.clone());
        }
        blocks.push(LinBlock { residual: b.residual, convs: idx });
    }
    let features = shapes.last().map(|s| s.2).unwrap_or(0);
    Ok(Split { trunk_end, net: LinearizedNet { convs, blocks, input, features, classes, alpha }, conv_params })
}

/// The trunk's output for `n` preprocessed images, in host memory (`[n, h, w, c]`; pooled to
/// `[n, 1, 1, c]` when the trunk is the whole network, as for the probes).
pub async fn trunk_features(gpu: &Gpu, backbone: &Backbone, trunk_end: usize, images: &[f32], n: usize) -> Result<Vec<f32>> {
    let per = backbone.input_hwc().len();
    let chunk = backbone.max_batch(gpu);
    let mut out = Vec::new();
    for (start, b) in crate::batches(n, chunk) {
        let x = gpu.upload(&images[start * per..(start + b) * per])?;
        let z = gpu.run(|rec| {
            let (z, hwc) = backbone.run_blocks(rec, &x, b, backbone.input_hwc(), 0..trunk_end, 0.0)?;
            if trunk_end < backbone.blocks.len() {
                return Ok(z);
            }
            let pooled = rec.gpu().zeros(b * hwc.c)?;
            crate::gpu::kernels::reduce::global_avg_pool(rec, &z, b, hwc.h * hwc.w, hwc.c, &pooled)?;
            Ok(pooled)
        })?;
        out.extend(gpu.read(&z).await?);
    }
    Ok(out)
}

/// Pooled features at θ0 (the input of the classifier) for the given trunk features.
pub async fn pooled_features(gpu: &Gpu, split: &Split, z: &[f32], n: usize, batch: usize) -> Result<Vec<f32>> {
    // θ0 with a zero classifier: we only need the pooled activations, which do not depend on it.
    let theta = theta0(gpu, split, &vec![0.0; split.net.features * split.net.classes], &vec![0.0; split.net.classes])?;
    let per = split.net.input.len();
    let mut out = Vec::new();
    for (start, b) in crate::batches(n, split.net.fit_batch(gpu, batch)) {
        let zt = gpu.upload(&z[start * per..(start + b) * per])?;
        let pooled = gpu.run(|rec| split.net.pooled(rec, &theta, &zt, b))?;
        out.extend(gpu.read(&pooled).await?);
    }
    Ok(out)
}

/// θ0 = the backbone's linearized convolutions and the given classifier.
pub fn theta0(gpu: &Gpu, split: &Split, w: &[f32], b: &[f32]) -> Result<ParamSet> {
    let mut tensors = split.conv_params.clone();
    tensors.push(gpu.upload(w)?);
    tensors.push(gpu.upload(b)?);
    Ok(ParamSet { tensors })
}

/// A trained model: θ0 and Δ. For LQF and the probes the prediction is f_lin(z; Δ) = f0 + J·Δ
/// (the probes have Δ = 0 and their classifier in θ0); for fine-tuning it is the network at θ0 + Δ.
pub struct Trained {
    pub split: Split,
    pub theta0: ParamSet,
    pub delta: ParamSet,
    /// The settings it was trained with, `lambda` being the one chosen when a path was searched.
    pub settings: Settings,
    pub steps: Vec<Step>,
    /// The held-out folds' verdict on each λ of the path (empty without a search).
    pub lambda_scores: Vec<LambdaScore>,
    /// The K-FAC inverse the solver used (LQF with K-FAC), kept for explaining and forgetting.
    pub kfac: Option<Kfac>,
    /// CG's directions kept for recycled forgetting (`Settings::basis_budget`).
    pub basis: Option<KrylovBasis>,
}

/// Where a trained model's λ came from: what the CLI and the page say next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LambdaOrigin {
    /// A fixed λ was asked for (or the method has no search).
    Given,
    /// Chosen from `lambda_path` by cross-validation (`Trained::lambda_scores` has the verdicts).
    CrossValidated,
    /// A search was asked for, but no class had the three images a fold needs: the default λ.
    NotCrossValidated,
}

impl Trained {
    pub fn lambda_origin(&self) -> LambdaOrigin {
        if !self.lambda_scores.is_empty() {
            LambdaOrigin::CrossValidated
        } else if self.settings.searches_lambda() {
            LambdaOrigin::NotCrossValidated
        } else {
            LambdaOrigin::Given
        }
    }
}

/// How one λ of the path did on the held-out folds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LambdaScore {
    pub lambda: f32,
    pub accuracy: f64,
    /// Held-out loss: mean squared error to the κ-scaled one-hot targets, or the mean
    /// cross-entropy for a cross-entropy model.
    #[serde(alias = "mse")]
    pub loss: f64,
    /// The standard error of `loss` over the held-out images.
    pub se: f64,
    /// Each held-out image's loss, fold by fold: two λ are compared image by image.
    pub losses: Vec<f64>,
}

/// The classifier at θ0 for features `z` of the split.
async fn init_classifier(
    gpu: &Gpu,
    split: &Split,
    z: &[f32],
    labels: &[u32],
    s: &Settings,
    init: Init,
    progress: OnProgress<'_>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (c, f) = (split.net.classes, split.net.features);
    progress(Progress::new(Phase::Init, 0, 1));
    let out = match init {
        Init::Random { seed } => {
            let mut rng = Rng::new(seed);
            let bound = 1.0 / (f as f64).sqrt();
            ((0..f * c).map(|_| rng.range(-bound, bound) as f32).collect(), (0..c).map(|_| rng.range(-bound, bound) as f32).collect())
        }
        Init::Ridge => {
            let pooled = pooled_features(gpu, split, z, labels.len(), s.batch).await?;
            probe::ridge(gpu, &pooled, labels, c, s.kappa, s.lambda).await?
        }
    };
    progress(Progress::new(Phase::Init, 1, 1));
    Ok(out)
}

/// Check labels and features before any GPU work: clear messages instead of shape errors.
fn validate(split: &Split, z: &[f32], labels: &[u32]) -> Result<()> {
    let (n, c) = (labels.len(), split.net.classes);
    if n == 0 {
        return Err(Error::InvalidArgument("no training images".into()));
    }
    if z.len() != n * split.net.input.len() {
        return Err(Error::InvalidArgument(format!("{} feature values for {n} images of {}", z.len(), split.net.input.len())));
    }
    if let Some(&l) = labels.iter().find(|&&l| l as usize >= c) {
        return Err(Error::InvalidArgument(format!("label {l} is not below the {c} classes")));
    }
    require_two_classes(labels)
}

/// Training needs images of at least two classes (one class has nothing to separate).
pub fn require_two_classes(labels: &[u32]) -> Result<()> {
    let first = labels.first().copied();
    if labels.iter().all(|&l| Some(l) == first) {
        return Err(Error::InvalidArgument("training needs images of at least 2 classes".into()));
    }
    Ok(())
}

/// One LQF solve with the configured solver; CG keeps its directions within `basis_budget`.
async fn solve(
    gpu: &Gpu,
    prob: &Problem<'_>,
    start: Option<&ParamSet>,
    kfac: Option<&Kfac>,
    s: &Settings,
    progress: OnProgress<'_>,
) -> Result<(ParamSet, Vec<Step>, Option<KrylovBasis>)> {
    let total = match s.solver {
        SolverKind::Cg => s.max_iter,
        SolverKind::Sgd => s.sgd.epochs,
    };
    let mut report =
        |st: Step| progress(Progress { loss: Some(st.loss), residual: Some(st.relative_residual), ..Progress::new(Phase::Solve, st.iteration, total) });
    match s.solver {
        SolverKind::Cg => {
            // A direction and its H product: two parameter vectors of f32.
            let keep = (s.basis_budget / (8 * prob.net.param_lens().iter().sum::<usize>().max(1) as u64)) as usize;
            let (x, steps, basis) = prob.solve_cg_keeping(gpu, start, kfac, s.cg_tol, s.max_iter, keep, &mut report).await?;
            Ok((x, steps, Some(basis).filter(|b| !b.is_empty())))
        }
        SolverKind::Sgd => {
            let (x, steps) = prob.solve_sgd(gpu, start, kfac, &s.sgd, s.cg_tol, &mut report).await?;
            Ok((x, steps, None))
        }
    }
}

/// Folds of the λ search's cross-validation.
pub const LAMBDA_FOLDS: usize = 5;

/// The folds of the λ search: image k of a class (in the given order) is held out in fold
/// k mod 5 if the class has at least three images, so each such image is held out exactly
/// once and every fold trains on at least two of every class. Returns (train indices,
/// held-out indices) for each fold that holds anything out.
pub fn holdout_folds(labels: &[u32], classes: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut count = vec![0usize; classes];
    labels.iter().for_each(|&l| count[l as usize] += 1);
    let fold_of: Vec<Option<usize>> = {
        let mut seen = vec![0usize; classes];
        labels
            .iter()
            .map(|&l| {
                let k = seen[l as usize];
                seen[l as usize] += 1;
                (count[l as usize] >= 3).then_some(k % LAMBDA_FOLDS)
            })
            .collect()
    };
    (0..LAMBDA_FOLDS)
        .map(|f| {
            let (ho, tr): (Vec<usize>, Vec<usize>) = (0..labels.len()).partition(|&i| fold_of[i] == Some(f));
            (tr, ho)
        })
        .filter(|(_, ho)| !ho.is_empty())
        .collect()
}

/// The features (`per` values an image) and labels of images `idx`, in that order.
pub fn gather(z: &[f32], labels: &[u32], idx: &[usize], per: usize) -> (Vec<f32>, Vec<u32>) {
    (idx.iter().flat_map(|&i| z[i * per..(i + 1) * per].iter().copied()).collect(), idx.iter().map(|&i| labels[i]).collect())
}

/// Choose λ from `s.lambda_path` by 5-fold cross-validation on the training set (never the
/// test set; `holdout_folds`). Each fold has its own θ0 (initialised on the fold's training
/// part); the K-FAC statistics are computed once, on the first fold, when the path first
/// reaches a λ that CG preconditions, and serve every fold (a preconditioner only: CG still
/// reaches each fold's optimum). The path is solved from the largest λ down, each fold's solve
/// warm-started at its solution for the previous λ. The held-out loss, not accuracy, is the
/// criterion (accuracy moves in steps of 1/n), pooled over every held-out image, under the
/// one-standard-error rule with paired differences: the largest λ whose loss exceeds the
/// lowest by at most the standard error of the image-by-image difference wins. Below λ ≈ 1 a
/// few-shot set's held-out loss is flat while test accuracy falls by 6 points (DTD-10,
/// docs/RESULTS.md): the lowest loss alone picks a small λ. One fold (a fifth of the photos)
/// was not enough: at 5 shots on Flowers-5 it holds out five photos, no λ could be shown worse
/// than another, and the rule stayed at λ = 100. The search stops once a step down the path
/// lowers the loss by no more than the standard error of that step's difference, or by less
/// than a tenth of the loss's own standard error: the smaller λ still to come are the
/// expensive solves, and a paired difference can stay significant long after it is too small
/// to matter (Flowers-5: 14.448 → 14.444 → 14.444 from λ = 0.1 to 1e-3).
pub async fn choose_lambda(gpu: &Gpu, split: &Split, z: &[f32], labels: &[u32], s: &Settings, progress: OnProgress<'_>) -> Result<(f32, Vec<LambdaScore>)> {
    let c = split.net.classes;
    let folds = holdout_folds(labels, c);
    if folds.is_empty() || s.lambda_path.is_empty() {
        return Ok((s.lambda, Vec::new()));
    }
    let per = split.net.input.len();
    let mut path = s.lambda_path.clone();
    path.sort_by(|a, b| b.total_cmp(a));
    path.dedup();
    let solve_settings = Settings { basis_budget: 0, ..s.clone() };
    // Each fold's θ0 and its solution at the previous λ (the warm start).
    let mut theta0s = Vec::with_capacity(folds.len());
    for (tr, _) in &folds {
        let (ztr, ltr) = gather(z, labels, tr, per);
        let (w, b) = init_classifier(gpu, split, &ztr, &ltr, s, s.init, &mut |_| {}).await?;
        theta0s.push(theta0(gpu, split, &w, &b)?);
    }
    let mut starts: Vec<Option<ParamSet>> = folds.iter().map(|_| None).collect();
    let mut factors = None;
    let mut scores: Vec<LambdaScore> = Vec::new();
    for (i, &lambda) in path.iter().enumerate() {
        let (mut losses, mut held_labels, mut held_logits) = (Vec::new(), Vec::new(), Vec::new());
        let mut kfac = None;
        for (f, (tr, ho)) in folds.iter().enumerate() {
            let ((ztr, ltr), (zho, lho)) = (gather(z, labels, tr, per), gather(z, labels, ho, per));
            let prob = Problem::new(gpu, &split.net, &theta0s[f], &ztr, &ltr, s.batch, s.kappa, lambda).await?.with_loss(s.loss);
            if kfac.is_none() && s.preconditions_with_kfac(lambda) {
                if factors.is_none() {
                    factors = Some(kfac::statistics_with(gpu, &prob, s.kfac_estimate()).await?);
                }
                if let Some(f) = &factors {
                    kfac = Some(Kfac::from_factors(gpu, &split.net, f, lambda).await?);
                }
            }
            let (sol, _, _) = solve(gpu, &prob, starts[f].as_ref(), kfac.as_ref(), &solve_settings, &mut |_| {}).await?;
            let held = Problem::new(gpu, &split.net, &theta0s[f], &zho, &lho, s.batch, s.kappa, lambda).await?.with_loss(s.loss);
            let logits = held.predict(gpu, &sol).await?;
            losses.extend(held_out_losses(&logits, &lho, c, s.loss, s.kappa));
            held_logits.extend(logits);
            held_labels.extend(lho);
            starts[f] = Some(sol);
            // The λ's last fold is reported below, with the pooled loss.
            if f + 1 < folds.len() {
                progress(Progress::new(Phase::LambdaSearch, i * folds.len() + f + 1, path.len() * folds.len()));
            }
        }
        let (loss, se) = mean_and_standard_error(&losses);
        progress(Progress { loss: Some(loss), ..Progress::new(Phase::LambdaSearch, (i + 1) * folds.len(), path.len() * folds.len()) });
        scores.push(LambdaScore { lambda, accuracy: accuracy(&held_logits, &held_labels, c), loss, se, losses });
        // A step that lowers the loss by no more than its paired standard error, or by less than
        // a tenth of the loss's own standard error (too little to matter next to how much the
        // photos differ), ends the search.
        let flat = match &scores[..] {
            [.., p, q] => {
                let (worse, se) = paired_difference(&p.losses, &q.losses);
                worse <= se || worse < 0.1 * q.se
            }
            _ => false,
        };
        if flat {
            break;
        }
    }
    Ok((one_standard_error_choice(&scores).unwrap_or(s.lambda), scores))
}

/// Each held-out image's loss: squared error to the κ-scaled one-hot target summed over the
/// classes, or the cross-entropy.
fn held_out_losses(logits: &[f32], labels: &[u32], c: usize, loss: Loss, kappa: f32) -> Vec<f64> {
    match loss {
        Loss::Mse => logits
            .chunks(c)
            .zip(labels)
            .map(|(row, &l)| row.iter().enumerate().map(|(k, &v)| (v as f64 - if l as usize == k { kappa as f64 } else { 0.0 }).powi(2)).sum())
            .collect(),
        Loss::CrossEntropy => probe::cross_entropy_rows(logits, labels, c),
    }
}

/// The mean of `v` and its sample standard deviation (0 below two values).
pub fn mean_and_std(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (mean, var.sqrt())
}

/// The mean of `v` and its standard error (sample standard deviation / √n; 0 for one value).
pub fn mean_and_standard_error(v: &[f64]) -> (f64, f64) {
    let (mean, std) = mean_and_std(v);
    (mean, std / (v.len().max(1) as f64).sqrt())
}

/// How much worse the losses `a` are than `b` on the same images: the mean of `a − b` and its
/// standard error.
pub fn paired_difference(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
    mean_and_standard_error(&d)
}

/// The one-standard-error rule on paired differences: the largest λ whose loss exceeds the
/// lowest loss by at most the standard error of their image-by-image difference (None for no
/// scores).
pub fn one_standard_error_choice(scores: &[LambdaScore]) -> Option<f32> {
    let best = scores.iter().min_by(|a, b| a.loss.total_cmp(&b.loss))?;
    scores
        .iter()
        .filter(|s| {
            let (worse, se) = paired_difference(&s.losses, &best.losses);
            worse <= se
        })
        .map(|s| s.lambda)
        .max_by(f32::total_cmp)
}

/// Train on trunk features `z` (computed with `split.trunk_end`) with `labels`, reporting progress.
pub async fn train(gpu: &Gpu, split: Split, z: &[f32], labels: &[u32], s: &Settings, progress: OnProgress<'_>) -> Result<Trained> {
    validate(&split, z, labels)?;
    // θ0 is set with the λ given, not the one chosen: the search solved around that θ0.
    let given = s;
    let mut settings = s.clone();
    let mut lambda_scores = Vec::new();
    if s.searches_lambda() {
        (settings.lambda, lambda_scores) = choose_lambda(gpu, &split, z, labels, s, progress).await?;
    }
    let s = &settings;
    let c = split.net.classes;
    let (w, b) = match s.method {
        Method::Logistic => {
            progress(Progress::new(Phase::Init, 0, 1));
            let pooled = pooled_features(gpu, &split, z, labels.len(), s.batch).await?;
            probe::logistic(gpu, &pooled, labels, c, s.lambda, s.logistic_iterations).await?
        }
        Method::Ridge => init_classifier(gpu, &split, z, labels, s, Init::Ridge, progress).await?,
        Method::Lqf | Method::Finetune => init_classifier(gpu, &split, z, labels, given, s.init, progress).await?,
    };
    let theta0 = theta0(gpu, &split, &w, &b)?;
    let (delta, steps, kfac, basis) = match s.method {
        Method::Ridge | Method::Logistic => (ParamSet::zeros(gpu, &split.net.param_lens())?, Vec::new(), None, None),
        Method::Finetune => (super::finetune::finetune(gpu, &split.net, &theta0, z, labels, s.batch, &s.finetune, progress).await?, Vec::new(), None, None),
        Method::Lqf => {
            let prob = Problem::new(gpu, &split.net, &theta0, z, labels, s.batch, s.kappa, s.lambda).await?.with_loss(s.loss);
            let kfac = if s.preconditions_with_kfac(s.lambda) && s.max_iter > 0 {
                progress(Progress::new(Phase::Curvature, 0, 1));
                let k = Kfac::estimated(gpu, &prob, s.lambda, s.kfac_estimate()).await?;
                progress(Progress::new(Phase::Curvature, 1, 1));
                Some(k)
            } else {
                None
            };
            let (delta, steps, basis) = solve(gpu, &prob, None, kfac.as_ref(), s, progress).await?;
            (delta, steps, kfac, basis)
        }
    };
    Ok(Trained { split, theta0, delta, settings: settings.clone(), steps, lambda_scores, kfac, basis })
}

/// The model's logits for `n` trunk feature maps: `[n, classes]`.
pub async fn predict(gpu: &Gpu, m: &Trained, z: &[f32], n: usize, batch: usize) -> Result<Vec<f32>> {
    let per = m.split.net.input.len();
    if z.len() != n * per {
        return Err(Error::InvalidArgument(format!("{} feature values for {n} images of {per}", z.len())));
    }
    let theta = match m.settings.method {
        Method::Finetune => Some(super::finetune::add(gpu, &m.theta0, &m.delta)?),
        _ => None,
    };
    let mut out = Vec::new();
    for (start, b) in crate::batches(n, m.split.net.fit_batch(gpu, batch)) {
        let zt = gpu.upload(&z[start * per..(start + b) * per])?;
        let f = gpu.run(|rec| match &theta {
            Some(theta) => m.split.net.forward(rec, theta, &zt, b),
            None => m.split.net.f_lin(rec, &m.theta0, &zt, b, &m.delta),
        })?;
        out.extend(gpu.read(&f).await?);
    }
    Ok(out)
}

/// Fraction of rows of `logits` whose argmax is the label.
pub fn accuracy(logits: &[f32], labels: &[u32], classes: usize) -> f64 {
    let pred = crate::cpu::elementwise::argmax_rows(logits, classes);
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len().max(1) as f64
}

impl Trained {
    /// The model file of this training run.
    pub async fn to_model_file(&self, gpu: &Gpu, backbone: &Backbone, classes: &[String]) -> Result<super::model_file::ModelFile> {
        let nconv = self.split.net.convs.len();
        Ok(super::model_file::ModelFile {
            backbone: backbone.arch(),
            weights_sha256: backbone.weights_sha256.clone(),
            classes: classes.to_vec(),
            settings: self.settings.clone(),
            classifier_weight0: gpu.read(&self.theta0.tensors[2 * nconv]).await?,
            classifier_bias0: gpu.read(&self.theta0.tensors[2 * nconv + 1]).await?,
            delta: self.delta.read(gpu).await?,
            train_files: Vec::new(),
        })
    }

    /// Rebuild a trained model from its file on `backbone` (which must be the one it was trained on).
    pub fn from_model_file(gpu: &Gpu, backbone: &Backbone, m: &super::model_file::ModelFile) -> Result<Trained> {
        if m.backbone != backbone.arch() || m.weights_sha256 != backbone.weights_sha256 {
            return Err(Error::ModelFile(format!(
                "trained on {} weights {}, not on the loaded {} weights {}",
                m.backbone.id(),
                m.weights_sha256,
                backbone.arch().id(),
                backbone.weights_sha256
            )));
        }
        let split = split(backbone, m.settings.effective_depth(), m.classes.len(), m.settings.effective_alpha())?;
        if m.delta.iter().map(Vec::len).ne(split.net.param_lens()) || m.classifier_weight0.len() != split.net.features * split.net.classes {
            return Err(Error::ModelFile("parameter shapes do not match the backbone split".into()));
        }
        let theta0 = theta0(gpu, &split, &m.classifier_weight0, &m.classifier_bias0)?;
        let delta = ParamSet::upload(gpu, &m.delta)?;
        Ok(Trained { split, theta0, delta, settings: m.settings.clone(), steps: Vec::new(), lambda_scores: Vec::new(), kfac: None, basis: None })
    }
}
