//! `lqf`, the native command line: one module per group of commands.
mod backbone;
mod explain;
mod fewshot;
mod train;

use clap::{Args, Parser, Subcommand};
use lqf::gpu::{BackendChoice, Gpu};
use lqf::lqf::finetune::Finetune;
use lqf::lqf::train::{Depth, Init, Method, Settings, SolverKind};
use lqf::lqf::{Loss, LrScale, Phase, Progress};
use lqf::model::{Arch, Backbone};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "lqf",
    version,
    about = "LQF fine-tuning on the GPU (Vulkan, Metal, GL; WebGPU in the browser). With no command: a short demo on the bundled sample images."
)]
#[command(after_help = "Environment: WGPU_BACKEND=vulkan|metal|gl forces a backend; LQF_WEIGHTS_DIR sets where the backbone weight files are.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the GPU adapter this machine gives us and what cached trunk features cost per depth.
    Info,
    /// Check the GPU kernels against the CPU reference on this adapter.
    Selftest,
    /// Kernel throughput (GEMM 512³/1024³, MobileNetV2's convolutions) and backbone images/s.
    Bench {
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
        /// Timed repetitions per kernel (best one is reported).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        reps: u32,
    },
    /// Convert a PyTorch checkpoint (legacy or zip) or safetensors file into the project's weight file.
    ImportWeights {
        /// mobilenet_v2 or efficientnet_lite0
        #[arg(long)]
        arch: String,
        /// Store half-precision values (half the size).
        #[arg(long)]
        f16: bool,
        input: PathBuf,
        output: PathBuf,
    },
    /// Top-5 ImageNet classes of each image with the pretrained backbone.
    Imagenet {
        /// mobilenet_v2 or efficientnet_lite0
        #[arg(long, default_value = "mobilenet_v2")]
        backbone: String,
        /// A weight file (default: the bundled one for the backbone).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Fine-tune on an ImageFolder (one subfolder per class; DIR/train if it exists) and save the model.
    Train {
        /// The ImageFolder.
        #[arg(long)]
        data: PathBuf,
        /// Where to write the model file (atomically; nothing is written if training fails).
        #[arg(long)]
        out: PathBuf,
        /// Draw this many images per class (with --seed) instead of using them all.
        #[arg(long)]
        shots: Option<usize>,
        /// Seeds the draw of --shots.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// lqf, probe (ridge), logistic or finetune.
        #[arg(long, default_value = "lqf")]
        method: String,
        #[command(flatten)]
        opts: TrainOpts,
    },
    /// Accuracy of a model on an ImageFolder (DIR/test if it exists), per class and confusion matrix.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        /// `{"accuracy", "n", "per_class", "confusion"}` on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Class scores of each image under a trained model.
    Predict {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        json: bool,
        /// How many classes to list per image.
        #[arg(long, default_value_t = 3)]
        top: usize,
        /// List the N training images that pushed the prediction most toward and away from
        /// the predicted class (influence; needs --data, the training folder).
        #[arg(long, requires = "data")]
        explain: Option<usize>,
        /// The ImageFolder the model was trained on (DIR/train if it exists).
        #[arg(long)]
        data: Option<PathBuf>,
        /// CG iterations (K-FAC-preconditioned, to relative residual 1e-2) for the H⁻¹ in the
        /// influence; 0 applies the K-FAC inverse alone: one pass over the training set per
        /// image, approximate ranking.
        #[arg(long, default_value_t = 20)]
        influence_cg: usize,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Remove one training image from a model exactly (re-solve warm-started at the optimum).
    Forget {
        #[arg(long)]
        model: PathBuf,
        /// The ImageFolder the model was trained on (DIR/train if it exists).
        #[arg(long)]
        data: PathBuf,
        /// The training image to forget (as listed by --explain, or its path).
        #[arg(long)]
        image: PathBuf,
        /// Where to write the new model (atomically).
        #[arg(long)]
        out: PathBuf,
        /// Also retrain from scratch without the image and report both times and the difference.
        #[arg(long)]
        compare: bool,
    },
    /// Few-shot table: K shots per class from DIR/train with each seed, every method, tested on DIR/test.
    Fewshot {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "5,10,25", value_delimiter = ',')]
        shots: Vec<usize>,
        #[arg(long, default_value = "0,1,2", value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Any of lqf, probe, logistic, finetune.
        #[arg(long, default_value = "lqf,probe", value_delimiter = ',')]
        methods: Vec<String>,
        /// Use at most this many test images per class (default: all).
        #[arg(long)]
        test_per_class: Option<usize>,
        /// Learning rates to try for the SGD-trained methods (finetune, and lqf with --solver
        /// sgd): each is reported, and the best (by mean test accuracy) marked.
        #[arg(long, value_delimiter = ',')]
        lrs: Vec<f32>,
        /// A label for this configuration in the table (e.g. "α=0"), appended to method names.
        #[arg(long)]
        tag: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        opts: TrainOpts,
    },
}

/// Training options shared by `train` and `fewshot`.
#[derive(Args, Clone)]
struct TrainOpts {
    /// mobilenet_v2 or efficientnet_lite0
    #[arg(long, default_value = "mobilenet_v2")]
    backbone: String,
    /// A weight file (default: the bundled one for the backbone).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Blocks linearized (or fine-tuned) before the head: a number, `all`, or `probe` (none).
    #[arg(long, default_value = "3")]
    depth: String,
    /// LQF's solver: cg (no learning rate) or sgd (K-FAC-preconditioned SGD with momentum).
    #[arg(long, default_value = "cg")]
    solver: String,
    /// Leaky-ReLU6 slope of the linearized blocks.
    #[arg(long, default_value_t = 0.05)]
    alpha: f32,
    /// Target scale κ of the MSE loss.
    #[arg(long, default_value_t = 5.0)]
    target_scale: f32,
    /// LQF's loss: mse (a quadratic problem, the method) or cross-entropy (the paper's
    /// ablation; not quadratic, so it needs --solver sgd and cannot be explained or forgotten).
    #[arg(long, default_value = "mse")]
    loss: String,
    /// Weight decay λ: a number, a comma-separated path to choose from by 5-fold
    /// cross-validation on the training set (the largest λ within one standard error of the
    /// lowest held-out MSE), or `auto` (the path 1e-4,1e-3,…,10,100).
    #[arg(long, default_value = "1e-3")]
    weight_decay: String,
    /// Classifier at θ0: random (seeded by --init-seed; measured better, and what makes forgetting
    /// exact) or ridge (the ridge probe).
    #[arg(long, default_value = "random")]
    init: String,
    /// Epochs of SGD (LQF's sgd solver, or fine-tuning).
    #[arg(long)]
    epochs: Option<usize>,
    /// Learning rate of SGD (LQF's sgd solver, or fine-tuning). For LQF read as --lr-scale says.
    #[arg(long)]
    lr: Option<f32>,
    /// How LQF's SGD reads --lr: curvature (a fraction of the stiffest direction's step,
    /// measured by power iteration; stable below 2(1 + momentum), default 1) or absolute (the
    /// step on the K-FAC-preconditioned gradient as given; MobileNetV2 needs about 1e-4).
    #[arg(long, default_value = "curvature")]
    lr_scale: String,
    /// Momentum of SGD.
    #[arg(long)]
    momentum: Option<f32>,
    /// Conjugate-gradient iterations at most.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Stop CG (or SGD) at this relative residual.
    #[arg(long, default_value_t = 1e-3)]
    tol: f64,
    /// Images per GPU pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Seeds the random classifier initialisation.
    #[arg(long, default_value_t = 0)]
    init_seed: u64,
    /// Estimate K-FAC's output factors with one Rademacher backward pass per image instead of
    /// one per class (unbiased; for many classes).
    #[arg(long)]
    kfac_monte_carlo: bool,
    /// K-FAC's convolution factors: expand (positions as independent samples, default) or
    /// reduce (positions summed per image).
    #[arg(long, default_value = "expand")]
    kfac_positions: String,
    /// Precondition with K-FAC (true/false). True: SGD always, CG below λ = 0.01 (from
    /// there on plain CG converges faster).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    kfac: bool,
}

type Res = Result<(), String>;

/// Any error as the message the commands print.
fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn open() -> Result<Gpu, String> {
    let gpu = pollster::block_on(Gpu::new(BackendChoice::Auto)).map_err(|e| e.to_string())?;
    eprintln!("adapter: {}", gpu.adapter);
    Ok(gpu)
}

/// Where the bundled files are: LQF_WEIGHTS_DIR, else the repository's `weights/`.
fn weights_path(arch: Arch) -> PathBuf {
    let dir = std::env::var_os("LQF_WEIGHTS_DIR").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("weights"));
    dir.join(format!("{}.safetensors", arch.id()))
}

fn load_backbone(gpu: &Gpu, arch: Arch, weights: Option<&Path>) -> Result<Backbone, String> {
    let path = weights.map(Path::to_path_buf).unwrap_or_else(|| weights_path(arch));
    let bytes = lqf::fsutil::read(&path).map_err(|e| format!("{e} (weights for {})", arch.id()))?;
    Backbone::from_weight_file(gpu, &bytes, Some(arch)).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_method(s: &str) -> Result<Method, String> {
    match s {
        "lqf" => Ok(Method::Lqf),
        "probe" | "ridge" => Ok(Method::Ridge),
        "logistic" => Ok(Method::Logistic),
        "finetune" => Ok(Method::Finetune),
        _ => Err(format!("unknown method {s:?}: use lqf, probe, logistic or finetune")),
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Lqf => "lqf",
        Method::Ridge => "probe",
        Method::Logistic => "logistic",
        Method::Finetune => "finetune",
    }
}

impl TrainOpts {
    fn arch(&self) -> Result<Arch, String> {
        Arch::from_id(&self.backbone).map_err(|e| e.to_string())
    }

    fn settings(&self, method: Method) -> Result<Settings, String> {
        let depth = Depth::parse(&self.depth).map_err(|_| format!("--depth {:?}: a number of blocks, all, or probe", self.depth))?;
        let (lambda, lambda_path) = match self.weight_decay.as_str() {
            "auto" => (lqf::lqf::train::DEFAULT_LAMBDA, lqf::lqf::train::AUTO_LAMBDA_PATH.to_vec()),
            w => {
                let path: Vec<f32> = w
                    .split(',')
                    .map(|v| v.trim().parse::<f32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("--weight-decay {w:?}: a number, a comma-separated list, or auto"))?;
                if path.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                    return Err(format!("--weight-decay {w:?}: values must be finite and non-negative"));
                }
                if path.len() == 1 {
                    (path[0], Vec::new())
                } else {
                    (lqf::lqf::train::DEFAULT_LAMBDA, path)
                }
            }
        };
        let init = match self.init.as_str() {
            "ridge" => Init::Ridge,
            "random" => Init::Random { seed: self.init_seed },
            i => return Err(format!("--init {i:?}: ridge or random")),
        };
        let solver = match self.solver.as_str() {
            "cg" => SolverKind::Cg,
            "sgd" => SolverKind::Sgd,
            s => return Err(format!("--solver {s:?}: cg or sgd")),
        };
        if self.batch == 0 {
            return Err("--batch must be at least 1".into());
        }
        let kfac_sampling = if self.kfac_monte_carlo { lqf::lqf::kfac::Sampling::MonteCarlo { seed: self.init_seed } } else { lqf::lqf::kfac::Sampling::Exact };
        let kfac_positions = match self.kfac_positions.as_str() {
            "reduce" => lqf::lqf::kfac::Positions::Reduce,
            "expand" => lqf::lqf::kfac::Positions::Expand,
            p => return Err(format!("--kfac-positions {p:?}: reduce or expand")),
        };
        let lr_scale = match self.lr_scale.as_str() {
            "curvature" => LrScale::Curvature,
            "absolute" => LrScale::Absolute,
            v => return Err(format!("--lr-scale {v:?}: curvature or absolute")),
        };
        let loss = Loss::parse(&self.loss).map_err(|_| format!("--loss {:?}: mse or cross-entropy", self.loss))?;
        if loss == Loss::CrossEntropy && solver == SolverKind::Cg {
            return Err("--loss cross-entropy makes the problem non-quadratic: use --solver sgd".into());
        }
        let mut s = Settings {
            method,
            depth,
            alpha: self.alpha,
            kappa: self.target_scale,
            loss,
            lambda,
            lambda_path,
            init,
            batch: self.batch,
            kfac: self.kfac,
            kfac_sampling,
            kfac_positions,
            solver,
            cg_tol: self.tol,
            max_iter: self.iterations,
            ..Default::default()
        };
        let ft = Finetune::default();
        s.finetune = Finetune { lr: self.lr.unwrap_or(ft.lr), momentum: self.momentum.unwrap_or(ft.momentum), epochs: self.epochs.unwrap_or(ft.epochs), ..ft };
        let sgd = s.sgd;
        s.sgd = lqf::lqf::Sgd {
            lr: self.lr.unwrap_or(sgd.lr),
            momentum: self.momentum.unwrap_or(sgd.momentum),
            epochs: self.epochs.unwrap_or(sgd.epochs),
            lr_scale,
            ..sgd
        };
        Ok(s)
    }
}

/// Progress on stderr: one rewritten line on a terminal, a line per step (every tenth for long
/// phases) otherwise, so logs stay short.
struct ProgressLine {
    tty: bool,
    last: Option<Phase>,
}

impl ProgressLine {
    fn new() -> ProgressLine {
        ProgressLine { tty: std::io::stderr().is_terminal(), last: None }
    }

    fn report(&mut self, p: Progress) {
        let name = match p.phase {
            Phase::Features => "features",
            Phase::Init => "classifier init",
            Phase::Curvature => "K-FAC curvature",
            Phase::LambdaSearch => "choosing λ",
            Phase::Solve => "solving",
        };
        let mut line = format!("  {name} {}/{}", p.step, p.total);
        if let Some(l) = p.loss {
            line += &format!("  loss {l:.4e}");
        }
        if let Some(r) = p.residual {
            line += &format!("  residual {r:.2e}");
        }
        let done = p.step >= p.total;
        if self.tty {
            eprint!("\r{line:<72}");
            if done {
                eprintln!();
            }
        } else if p.phase == Phase::Solve || p.phase == Phase::LambdaSearch || done || p.step.is_multiple_of((p.total / 10).max(1)) {
            eprintln!("{line}");
        }
        self.last = Some(p.phase);
    }

    /// End a rewritten line before other output.
    fn finish(&mut self) {
        if self.tty && self.last.is_some() {
            eprintln!();
        }
        self.last = None;
    }
}

/// An ImageFolder's training part: DIR/train if it exists.
fn train_dir(dir: &Path) -> PathBuf {
    if dir.join("train").is_dir() {
        dir.join("train")
    } else {
        dir.to_path_buf()
    }
}

fn test_dir(dir: &Path) -> PathBuf {
    if dir.join("test").is_dir() {
        dir.join("test")
    } else {
        dir.to_path_buf()
    }
}

/// Warn about skipped files, naming them, with a count.
fn warn_skipped(f: &lqf::data::Features) {
    for (p, why) in &f.skipped {
        eprintln!("warning: skipped {}: {why}", p.display());
    }
    if !f.skipped.is_empty() {
        eprintln!("warning: {} file(s) skipped, {} image(s) used", f.skipped.len(), f.paths.len());
    }
}

/// The feature cache: what 1000 training images cost at each depth (f32 trunk outputs; they
/// stay on the GPU up to `GPU_FEATURE_BUDGET`, beyond it in host memory).
fn info() {
    println!("trunk features per 1000 images (kept on the GPU up to {} MiB, the rest in host memory):", lqf::lqf::solver::GPU_FEATURE_BUDGET >> 20);
    for arch in Arch::ALL {
        let def = arch.def();
        let depths = [Depth::Probe, Depth::Blocks(1), Depth::Blocks(2), Depth::Blocks(3), Depth::Blocks(5), Depth::Blocks(8), Depth::All];
        for d in depths {
            if let Ok((_, hwc)) = lqf::lqf::train::trunk_shape(&def, d) {
                println!(
                    "  {:<18} depth {:<5} {:>4}×{:<3}×{:>4}  {:>8.1} MB",
                    arch.id(),
                    d.to_string(),
                    hwc.h,
                    hwc.w,
                    hwc.c,
                    (hwc.len() * 4 * 1000) as f64 / 1e6
                );
            }
        }
    }
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        None => train::demo(),
        Some(Command::Info) => open().map(|_| info()),
        Some(Command::Selftest) => open().and_then(|gpu| {
            let summary = pollster::block_on(lqf::selftest::run_all(&gpu))?;
            println!("ok: {summary}");
            Ok(())
        }),
        Some(Command::Bench { json, reps }) => backbone::bench(json, reps as usize),
        Some(Command::ImportWeights { arch, f16, input, output }) => backbone::import_weights(&arch, f16, &input, &output),
        Some(Command::Imagenet { backbone, weights, json, images }) => backbone::imagenet(&backbone, weights.as_deref(), json, &images),
        Some(Command::Train { data, out, shots, seed, method, opts }) => train::train(&data, &out, shots, seed, &method, &opts),
        Some(Command::Eval { model, data, json }) => train::eval(&model, &data, json),
        Some(Command::Predict { model, json, top, explain, data, influence_cg, images }) => {
            train::predict(&model, json, top, &images, explain.zip(data.as_deref()).map(|(k, d)| (k, d, influence_cg)))
        }
        Some(Command::Forget { model, data, image, out, compare }) => explain::forget(&model, &data, &image, &out, compare),
        Some(Command::Fewshot { data, shots, seeds, methods, test_per_class, lrs, tag, json, opts }) => fewshot::fewshot(
            &fewshot::Table { dir: &data, shots: &shots, seeds: &seeds, methods: &methods, test_per_class, lrs: &lrs, tag: tag.as_deref(), json },
            &opts,
        ),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
