//! Kernel throughput figures (GFLOP/s), the same code natively and in the browser.
//! These print numbers; they are never timed tests.
use crate::error::Result;
use crate::gpu::kernels::{
    conv,
    gemm::{gemm, Gemm},
};
use crate::gpu::{Gpu, Recorder};
use crate::ops::{ConvSpec, Padding};
use crate::rng::Rng;

/// Milliseconds from an arbitrary origin.
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub name: String,
    pub gflop: f64,
    /// Best of the timed repetitions, in milliseconds.
    pub ms: f64,
    /// Images processed per repetition (0 for a kernel figure).
    pub images: usize,
}

impl Figure {
    pub fn gflops(&self) -> f64 {
        self.gflop / (self.ms / 1e3)
    }
    pub fn images_per_s(&self) -> f64 {
        self.images as f64 / (self.ms / 1e3)
    }
    pub fn to_json(&self) -> String {
        let mut s = format!("{{\"name\":\"{}\",\"gflop\":{:.6},\"ms\":{:.4},\"gflops\":{:.3}", self.name, self.gflop, self.ms, self.gflops());
        if self.images > 0 {
            s += &format!(",\"images_per_s\":{:.3}", self.images_per_s());
        }
        s + "}"
    }
    /// One aligned line for terminals.
    pub fn line(&self) -> String {
        let extra = if self.images > 0 { format!(" {:>8.2} images/s", self.images_per_s()) } else { String::new() };
        format!("{:<36} {:>9.3} ms {:>8.2} GFLOP/s{extra}", self.name, self.ms, self.gflops())
    }
}

/// Time `f` (one recorded batch of work): one warm-up (pipeline compilation), then the best of `reps`.
async fn time(gpu: &Gpu, reps: usize, mut f: impl FnMut(&mut Recorder<'_>) -> Result<()>) -> Result<f64> {
    let mut best = f64::MAX;
    for i in 0..=reps {
        let t0 = now_ms();
        let mut rec = gpu.recorder();
        f(&mut rec)?;
        gpu.submit(rec);
        gpu.finish().await?;
        if i > 0 {
            best = best.min(now_ms() - t0);
        }
    }
    Ok(best)
}

pub async fn bench_gemm(gpu: &Gpu, g: &Gemm, reps: usize) -> Result<Figure> {
    let mut rng = Rng::new(0);
    let rows_a = if g.trans_a { g.k } else { g.m };
    let rows_b = if g.trans_b { g.n } else { g.k };
    let a = gpu.upload(&rng.vec_f32(rows_a * g.lda * g.batch))?;
    let b = gpu.upload(&rng.vec_f32(rows_b * g.ldb * g.batch))?;
    let c = gpu.zeros(g.m * g.ldc * g.batch)?;
    let ms = time(gpu, reps, |rec| gemm(rec, g, &a, &b, &c)).await?;
    let t = |x: bool| if x { "T" } else { "N" };
    Ok(Figure { name: format!("gemm {}x{}x{} {}{} b{}", g.m, g.n, g.k, t(g.trans_a), t(g.trans_b), g.batch), gflop: g.flops() / 1e9, ms, images: 0 })
}

pub async fn bench_conv(gpu: &Gpu, name: &str, s: &ConvSpec, reps: usize) -> Result<Figure> {
    let mut rng = Rng::new(0);
    let x = gpu.upload(&rng.vec_f32(s.input_len()))?;
    let w = gpu.upload(&rng.vec_f32(s.weight_len()))?;
    let b = gpu.upload(&rng.vec_f32(s.cout))?;
    let y = gpu.zeros(s.output_len()?)?;
    let ms = time(gpu, reps, |rec| conv::conv2d(rec, s, &x, &w, Some(&b), &y, false)).await?;
    Ok(Figure { name: format!("conv {name} b{}", s.batch), gflop: s.flops() / 1e9, ms, images: 0 })
}

/// Representative MobileNetV2 convolutions at 224×224 input (name, spec).
pub fn mobilenet_v2_convs(batch: usize) -> Vec<(&'static str, ConvSpec)> {
    let c = |hw, cin, cout, k, stride, groups| ConvSpec {
        batch,
        in_h: hw,
        in_w: hw,
        cin,
        cout,
        kh: k,
        kw: k,
        stride,
        groups,
        padding: Padding::Symmetric(k / 2, k / 2),
    };
    vec![
        ("stem 3x3/2 3->32 @224", c(224, 3, 32, 3, 2, 1)),
        ("dw 3x3 32 @112", c(112, 32, 32, 3, 1, 32)),
        ("pw 32->16 @112", c(112, 32, 16, 1, 1, 1)),
        ("pw 16->96 @112", c(112, 16, 96, 1, 1, 1)),
        ("dw 3x3/2 96 @112", c(112, 96, 96, 3, 2, 96)),
        ("pw 24->144 @56", c(56, 24, 144, 1, 1, 1)),
        ("dw 3x3 144 @56", c(56, 144, 144, 3, 1, 144)),
        ("pw 144->24 @56", c(56, 144, 24, 1, 1, 1)),
        ("dw 3x3 384 @14", c(14, 384, 384, 3, 1, 384)),
        ("pw 384->64 @14", c(14, 384, 64, 1, 1, 1)),
        ("pw 960->160 @7", c(7, 960, 160, 1, 1, 1)),
        ("pw 320->1280 @7", c(7, 320, 1280, 1, 1, 1)),
    ]
}

/// Square GEMMs, then the skinny shapes training runs at depth 3 over 64 images: a 1×1
/// convolution at 7×7 (forward, and its weight gradient Xᵀ·dY), the classifier over pooled
/// features, and a K-FAC input factor AᵀA.
pub fn gemm_shapes() -> Vec<Gemm> {
    let rows = 64 * 7 * 7;
    vec![
        Gemm::new(512, 512, 512),
        Gemm::new(1024, 1024, 1024),
        Gemm::new(2048, 2048, 2048),
        Gemm::new(rows, 160, 960),
        Gemm::new(960, 160, rows).trans(true, false),
        Gemm::new(64, 10, 1280),
        Gemm::new(960, 960, rows).trans(true, false),
    ]
}

/// The standard set: GEMMs ([`gemm_shapes`]), then MobileNetV2's convolutions at batch 1.
pub async fn run_all(gpu: &Gpu, reps: usize, mut report: impl FnMut(&Figure)) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    for g in gemm_shapes() {
        let f = bench_gemm(gpu, &g, reps).await?;
        report(&f);
        out.push(f);
    }
    for (name, s) in mobilenet_v2_convs(1) {
        let f = bench_conv(gpu, name, &s, reps).await?;
        report(&f);
        out.push(f);
    }
    Ok(out)
}

/// End-to-end inference: upload `batch` images, run the backbone to the logits, read them back.
pub async fn bench_backbone(gpu: &Gpu, net: &crate::model::Backbone, batch: usize, reps: usize) -> Result<Figure> {
    let mut rng = Rng::new(0);
    let x = rng.vec_f32(batch * net.input_hwc().len());
    net.logits(gpu, &x, batch).await?; // warm-up: pipelines
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t0 = now_ms();
        net.logits(gpu, &x, batch).await?;
        best = best.min(now_ms() - t0);
    }
    Ok(Figure { name: format!("{} forward b{batch}", net.arch().id()), gflop: net.def.flops() * batch as f64 / 1e9, ms: best, images: batch })
}

/// Training throughput at `depth` over `n` images (trunk features of random images cached, as
/// training does): the two-stream forward (a JVP pass), the backward (a VJP pass), one LQF CG
/// iteration (a Hessian-vector product: both), the K-FAC statistics (C backward passes per
/// image) and the K-FAC inverse (damping and inverting the factors). GFLOP counts the forward
/// of the linearized blocks once per image for the passes, so read images/s; for the inverse it
/// counts n³ per inverted factor.
pub async fn bench_training(gpu: &Gpu, net: &crate::model::Backbone, depth: usize, n: usize, reps: usize) -> Result<Vec<Figure>> {
    use crate::lqf::kfac::{self, Kfac};
    use crate::lqf::{train, ParamSet, Problem};
    let mut rng = Rng::new(1);
    let classes = 10;
    let split = train::split(net, train::Depth::Blocks(depth), classes, 0.05)?;
    let x = rng.vec_f32(n * net.input_hwc().len());
    let z = train::trunk_features(gpu, net, split.trunk_end, &x, n).await?;
    let labels: Vec<u32> = (0..n as u32).map(|i| i % classes as u32).collect();
    let w = rng.vec_f32(split.net.features * classes).iter().map(|v| v * 0.03).collect::<Vec<f32>>();
    let theta0 = train::theta0(gpu, &split, &w, &vec![0.0; classes])?;
    let prob = Problem::new(gpu, &split.net, &theta0, &z, &labels, 32, 5.0, 1e-3).await?;
    let lin = &split.net;
    let v = ParamSet::upload(gpu, &lin.param_lens().iter().map(|&l| rng.vec_f32(l)).collect::<Vec<_>>())?;
    let g = gpu.upload(&rng.vec_f32(prob.batches.iter().map(|b| b.n).max().unwrap_or(0) * classes))?;
    let grads = ParamSet::zeros(gpu, &lin.param_lens())?;
    let zs = prob.batches.iter().map(|b| b.z(gpu)).collect::<Result<Vec<_>>>()?;
    let jvp = time(gpu, reps, |rec| {
        for (b, z) in prob.batches.iter().zip(&zs) {
            lin.jvp(rec, &theta0, z, b.n, &v)?;
        }
        Ok(())
    })
    .await?;
    let vjp = time(gpu, reps, |rec| {
        for (b, z) in prob.batches.iter().zip(&zs) {
            lin.vjp(rec, &theta0, z, b.n, &g, &grads, 1.0, 1.0)?;
        }
        Ok(())
    })
    .await?;
    let mut hvp = f64::MAX;
    for i in 0..=reps {
        let t0 = now_ms();
        let hv = prob.hvp(gpu, &v)?;
        gpu.read(&hv.tensors[0]).await?;
        if i > 0 {
            hvp = hvp.min(now_ms() - t0);
        }
    }
    let (mut stats_ms, mut inv_ms) = (f64::MAX, f64::MAX);
    for _ in 0..reps.max(1) {
        let t0 = now_ms();
        let f = kfac::statistics(gpu, &prob).await?;
        let t1 = now_ms();
        Kfac::from_factors(gpu, lin, &f, 1e-3).await?;
        stats_ms = stats_ms.min(t1 - t0);
        inv_ms = inv_ms.min(now_ms() - t1);
    }
    let inv_gflop: f64 =
        (0..=lin.convs.len()).filter_map(|i| kfac::factor_dims(lin, i)).map(|(a, g)| (a as f64).powi(3) + (g as f64).powi(3)).sum::<f64>() / 1e9;
    let gflop = net.def.flops_of(split.trunk_end..net.def.blocks.len()) * n as f64 / 1e9;
    let id = net.arch().id();
    let fig = |what: &str, ms: f64, gflop: f64, images: usize| Figure { name: format!("{id} {what} depth {depth}"), gflop, ms, images };
    Ok(vec![
        fig("JVP pass", jvp, gflop, n),
        fig("VJP pass", vjp, gflop, n),
        fig("LQF CG iteration", hvp, gflop, n),
        fig("K-FAC statistics", stats_ms, gflop * classes as f64, n),
        fig("K-FAC inverse", inv_ms, inv_gflop, 0),
    ])
}
