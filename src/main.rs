#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use lqf::gpu::{kernels::gemm::{gemm, Gemm}, BackendChoice, Gpu};
    let gpu = pollster::block_on(Gpu::new(BackendChoice::Auto)).unwrap();
    eprintln!("adapter: {}", gpu.adapter);
    for &n in &[512usize, 1024] {
        let a = gpu.upload(&vec![1.0; n * n]).unwrap();
        let b = gpu.upload(&vec![1.0; n * n]).unwrap();
        let c = gpu.zeros(n * n).unwrap();
        let g = Gemm::new(n, n, n);
        gpu.run(|r| gemm(r, &g, &a, &b, &c)).unwrap();
        let t = std::time::Instant::now();
        let reps = 3;
        for _ in 0..reps { gpu.run(|r| gemm(r, &g, &a, &b, &c)).unwrap(); }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!("gemm {n}: {:.2} GFLOP/s", g.flops() / s / 1e9);
    }
}
#[cfg(target_arch = "wasm32")]
fn main() {}
