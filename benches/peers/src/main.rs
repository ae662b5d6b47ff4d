//! Our GEMM against its peers, in one process, on one adapter (issue 8): burn's wgpu-backend
//! matmul (autotuned, fused; version pinned in Cargo.toml) and the CPU's own best, a threaded
//! matrixmultiply sgemm, as the machine's limit. Prints one line per shape and the ratios;
//! `--json` prints one JSON object instead. Best of `--reps` (default 5) after a warm-up.
use burn::backend::wgpu::{Wgpu, WgpuDevice};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use lqf::bench::{bench_gemm, now_ms};
use lqf::gpu::kernels::gemm::Gemm;
use lqf::gpu::{BackendChoice, Gpu};

type B = Wgpu<f32, i32>;

fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up: pipelines, autotuning, allocations
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t0 = now_ms();
        f();
        best = best.min(now_ms() - t0);
    }
    best
}

fn burn_ms(dev: &WgpuDevice, m: usize, n: usize, k: usize, reps: usize) -> f64 {
    let a = Tensor::<B, 2>::random([m, k], Distribution::Default, dev);
    let b = Tensor::<B, 2>::random([k, n], Distribution::Default, dev);
    let _ = B::sync(dev);
    // Autotuning runs on the first calls of a shape; give it a few before timing.
    for _ in 0..3 {
        let _c = a.clone().matmul(b.clone());
        let _ = B::sync(dev);
    }
    best_of(reps, || {
        let _c = a.clone().matmul(b.clone());
        let _ = B::sync(dev);
    })
}

fn cpu_ms(m: usize, n: usize, k: usize, reps: usize) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 1000) as f32 / 1000.0).collect();
    let mut c = vec![0.0f32; m * n];
    best_of(reps, || unsafe {
        matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0, c.as_mut_ptr(), n as isize, 1);
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let reps = args.iter().position(|a| a == "--reps").and_then(|i| args.get(i + 1)).and_then(|r| r.parse().ok()).unwrap_or(5usize);
    let gpu = match pollster::block_on(Gpu::new(BackendChoice::Auto)) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("adapter: {}", gpu.adapter);
    let dev = WgpuDevice::default();
    // Square shapes, then the skinny ones training runs: a 1×1 conv at 7×7 over 64 images
    // (3136×160×960) and the classifier over 1024 pooled feature rows (1024×10×1280).
    let shapes = [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (3136, 160, 960), (1024, 10, 1280)];
    let mut rows = Vec::new();
    if !json {
        println!("{:<18} {:>12} {:>12} {:>12} {:>10} {:>10}", "shape m×n×k", "lqf GFLOP/s", "burn GFLOP/s", "CPU GFLOP/s", "lqf/burn", "lqf/CPU");
    }
    for (m, n, k) in shapes {
        let gflop = 2.0 * (m * n * k) as f64 / 1e9;
        let ours = match pollster::block_on(bench_gemm(&gpu, &Gemm::new(m, n, k), reps)) {
            Ok(f) => f.ms,
            Err(e) => {
                eprintln!("error: lqf gemm {m}×{n}×{k}: {e}");
                std::process::exit(1);
            }
        };
        let theirs = burn_ms(&dev, m, n, k, reps);
        let cpu = cpu_ms(m, n, k, reps);
        let (go, gb, gc) = (gflop / (ours / 1e3), gflop / (theirs / 1e3), gflop / (cpu / 1e3));
        if !json {
            println!("{:<18} {go:>12.2} {gb:>12.2} {gc:>12.2} {:>10.2} {:>10.2}", format!("{m}×{n}×{k}"), go / gb, go / gc);
        }
        rows.push(format!("{{\"m\":{m},\"n\":{n},\"k\":{k},\"lqf_gflops\":{go:.3},\"burn_gflops\":{gb:.3},\"cpu_gflops\":{gc:.3}}}"));
    }
    if json {
        println!("{{\"adapter\":{:?},\"burn\":\"0.20.1 wgpu\",\"cpu\":\"matrixmultiply sgemm, threaded\",\"shapes\":[{}]}}", gpu.adapter.to_string(), rows.join(","));
    }
}
