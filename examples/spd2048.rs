//! One-off figure: time and accuracy of the GPU SPD inverse at n = 2048 (the tests stop at 300).
//!   cargo run --release --example spd2048
use lqf::gpu::kernels::{
    gemm::{gemm, Gemm},
    spd,
};

fn main() {
    let gpu = pollster::block_on(lqf::gpu::Gpu::new(Default::default())).expect("GPU adapter");
    let (n, rows) = (2048, 2048 + 64);
    let mut rng = lqf::rng::Rng::new(5);
    let x = gpu.upload(&rng.vec_f32(rows * n)).unwrap();
    let mut damp = vec![0.0f32; n * n];
    for i in 0..n {
        damp[i * n + i] = 0.1;
    }
    // A = XᵀX/rows + 0.1·I, like a damped K-FAC factor.
    let a = gpu.upload(&damp).unwrap();
    gpu.run(|r| gemm(r, &Gemm::new(n, n, rows).trans(true, false).scale(1.0 / rows as f32, 1.0), &x, &x, &a)).unwrap();
    let t = std::time::Instant::now();
    let inv = pollster::block_on(spd::spd_inverse(&gpu, &a, n)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let prod = gpu.zeros(n * n).unwrap();
    gpu.run(|r| gemm(r, &Gemm::new(n, n, n), &a, &inv, &prod)).unwrap();
    let p = pollster::block_on(gpu.read(&prod)).unwrap();
    let res = (0..n * n).map(|i| (p[i] - if i % (n + 1) == 0 { 1.0 } else { 0.0 }).abs()).fold(0.0f32, f32::max);
    println!("{}: n={n} SPD inverse {secs:.2} s, max |A·A⁻¹ − I| = {res:.2e}", gpu.adapter);
}
