//! `lqf`: the native command line.
#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use clap::{Parser, Subcommand};
    use lqf::gpu::{BackendChoice, Gpu};
    use lqf::model::{self, Arch, Backbone};
    use std::path::{Path, PathBuf};

    #[derive(Parser)]
    #[command(name = "lqf", version, about = "LQF fine-tuning on the GPU (Vulkan, Metal, GL; WebGPU in the browser)")]
    #[command(after_help = "Environment: WGPU_BACKEND=vulkan|metal|gl forces a backend; LQF_WEIGHTS_DIR sets where the backbone weight files are.")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Print the GPU adapter this machine gives us.
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
    }

    type Res = Result<(), String>;

    fn open() -> Result<Gpu, String> {
        let gpu = pollster::block_on(Gpu::new(BackendChoice::Auto)).map_err(|e| e.to_string())?;
        eprintln!("adapter: {}", gpu.adapter);
        Ok(gpu)
    }

    /// Where the bundled weight files are: LQF_WEIGHTS_DIR, else the repository's `weights/`.
    fn weights_path(arch: Arch) -> PathBuf {
        let dir = std::env::var_os("LQF_WEIGHTS_DIR").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("weights"));
        dir.join(format!("{}.safetensors", arch.id()))
    }

    fn load_backbone(gpu: &Gpu, arch: Arch, weights: Option<&Path>) -> Result<Backbone, String> {
        let path = weights.map(Path::to_path_buf).unwrap_or_else(|| weights_path(arch));
        let bytes = lqf::fsutil::read(&path).map_err(|e| format!("{e} (weights for {})", arch.id()))?;
        Backbone::from_weight_file(gpu, &bytes, Some(arch)).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn bench(json: bool, reps: usize) -> Res {
        let gpu = open()?;
        let report = |f: &lqf::bench::Figure| {
            if !json {
                println!("{}", f.line());
            }
        };
        let mut figures = pollster::block_on(lqf::bench::run_all(&gpu, reps, report)).map_err(|e| e.to_string())?;
        for arch in Arch::ALL {
            let net = load_backbone(&gpu, arch, None)?;
            for batch in [1, 32] {
                let f = pollster::block_on(lqf::bench::bench_backbone(&gpu, &net, batch, reps.min(3))).map_err(|e| e.to_string())?;
                report(&f);
                figures.push(f);
            }
        }
        if json {
            let items: Vec<String> = figures.iter().map(|f| f.to_json()).collect();
            println!("{{\"adapter\":{:?},\"figures\":[{}]}}", gpu.adapter.to_string(), items.join(","));
        }
        Ok(())
    }

    fn import_weights(arch: &str, f16: bool, input: &Path, output: &Path) -> Res {
        let arch = Arch::from_id(arch).map_err(|e| e.to_string())?;
        let bytes = lqf::fsutil::read(input).map_err(|e| e.to_string())?;
        let tensors = model::checkpoint::read(&bytes).map_err(|e| format!("{}: {e}", input.display()))?;
        let name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dtype = if f16 { model::safetensors::Dtype::F16 } else { model::safetensors::Dtype::F32 };
        let out = model::weights::convert(arch, &tensors, &name, &model::weights::sha256_hex(&bytes), dtype)
            .map_err(|e| format!("{}: {e}", input.display()))?;
        lqf::fsutil::write_atomic(output, &out).map_err(|e| e.to_string())?;
        eprintln!(
            "wrote {} ({} tensors, {:.1} MB, sha256 {})",
            output.display(),
            arch.def().expected_tensors().len(),
            out.len() as f64 / 1e6,
            model::weights::sha256_hex(&out)
        );
        Ok(())
    }

    fn imagenet(backbone: &str, weights: Option<&Path>, json: bool, images: &[PathBuf]) -> Res {
        let arch = Arch::from_id(backbone).map_err(|e| e.to_string())?;
        let gpu = open()?;
        let net = load_backbone(&gpu, arch, weights)?;
        let labels = model::imagenet_labels();
        let mut inputs = Vec::new();
        let mut names = Vec::new();
        let mut failed = 0;
        for p in images {
            let name = p.display().to_string();
            match lqf::fsutil::read(p).and_then(|b| model::preprocess::preprocess(&b, &name, arch)) {
                Ok(x) => {
                    inputs.extend(x);
                    names.push(name);
                }
                Err(e) => {
                    eprintln!("skipping {e}");
                    failed += 1;
                }
            }
        }
        let logits = pollster::block_on(net.logits(&gpu, &inputs, names.len())).map_err(|e| e.to_string())?;
        let classes = net.def.classes;
        let mut records = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let top = model::top_k(&logits[i * classes..(i + 1) * classes], 5);
            if json {
                let items: Vec<String> = top
                    .iter()
                    .map(|&(j, s)| format!("{{\"index\":{j},\"label\":{},\"score\":{s:.6}}}", serde_json::to_string(labels[j]).unwrap_or_default()))
                    .collect();
                records.push(format!("{{\"image\":{},\"top5\":[{}]}}", serde_json::to_string(name).unwrap_or_default(), items.join(",")));
            } else {
                println!("{name}");
                for (j, s) in top {
                    println!("  {:>6.2}%  {:>4}  {}", 100.0 * s, j, labels[j]);
                }
            }
        }
        if json {
            println!("[{}]", records.join(","));
        }
        if failed > 0 {
            return Err(format!("{failed} of {} images could not be read", images.len()));
        }
        Ok(())
    }

    pub fn main() -> i32 {
        let cli = Cli::parse();
        let result = match cli.command {
            Command::Info => open().map(|_| ()),
            Command::Selftest => open().and_then(|gpu| {
                let summary = pollster::block_on(lqf::selftest::run_all(&gpu))?;
                println!("ok: {summary}");
                Ok(())
            }),
            Command::Bench { json, reps } => bench(json, reps as usize),
            Command::ImportWeights { arch, f16, input, output } => import_weights(&arch, f16, &input, &output),
            Command::Imagenet { backbone, weights, json, images } => imagenet(&backbone, weights.as_deref(), json, &images),
        };
        match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(target_arch = "wasm32")]
fn main() {}
