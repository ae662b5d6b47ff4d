//! `lqf`: the native command line.
#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use lqf::gpu::{BackendChoice, Gpu};

    const USAGE: &str = "lqf: LQF fine-tuning on the GPU

USAGE:
    lqf info            print the GPU adapter this machine gives us
    lqf selftest        check the GPU kernels against the CPU reference on this adapter
    lqf bench [--json] [--reps N]
                        kernel throughput (GEMM 512³/1024³, MobileNetV2 convolutions), GFLOP/s
    lqf help            this text

ENVIRONMENT:
    WGPU_BACKEND=vulkan|metal|gl|dx12   force a backend (default: the best available)";

    fn open() -> Result<Gpu, lqf::Error> {
        let gpu = pollster::block_on(Gpu::new(BackendChoice::Auto))?;
        eprintln!("adapter: {}", gpu.adapter);
        Ok(gpu)
    }

    fn bench(args: &[String]) -> Result<(), String> {
        let mut json = false;
        let mut reps = 5;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--json" => json = true,
                "--reps" => {
                    reps = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .filter(|&r: &usize| r > 0)
                        .ok_or("--reps needs a positive integer")?
                }
                other => return Err(format!("bench: unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        let gpu = open().map_err(|e| e.to_string())?;
        let figures = pollster::block_on(lqf::bench::run_all(&gpu, reps, |f| {
            if !json {
                println!("{:<34} {:>9.3} ms {:>8.2} GFLOP/s", f.name, f.ms, f.gflops());
            }
        }))
        .map_err(|e| e.to_string())?;
        if json {
            let items: Vec<String> = figures.iter().map(|f| f.to_json()).collect();
            println!("{{\"adapter\":{:?},\"figures\":[{}]}}", gpu.adapter.to_string(), items.join(","));
        }
        Ok(())
    }

    pub fn main() -> i32 {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let result = match args.first().map(String::as_str) {
            Some("info") => open().map(|_| ()).map_err(|e| e.to_string()),
            Some("bench") => bench(&args[1..]),
            Some("selftest") => open().map_err(|e| e.to_string()).and_then(|gpu| {
                let summary = pollster::block_on(lqf::selftest::run_all(&gpu))?;
                println!("ok: {summary}");
                Ok(())
            }),
            None | Some("help") | Some("--help") | Some("-h") => {
                println!("{USAGE}");
                Ok(())
            }
            Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
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
