//! Interim few-shot experiment until `lqf fewshot` exists (issue 5): ridge probe vs LQF on an
//! ImageFolder set with MobileNetV2.
//!
//!   cargo run --release --example fewshot_lab -- DIR SHOTS SEED [DEPTH=3] [TEST_PER_CLASS=all]
//!   environment: LAMBDA (1e-3), ITERS (30 CG iterations), KFAC (1 = precondition, 0 = plain CG)
use lqf::data::ImageFolder;
use lqf::lqf::train::{self, Depth, Init, Settings};
use lqf::model::{preprocess, Arch, Backbone};
use std::path::PathBuf;
use std::time::Instant;

fn load(items: &[(PathBuf, u32)], arch: Arch) -> (Vec<f32>, Vec<u32>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (p, l) in items {
        match lqf::fsutil::read(p).and_then(|b| preprocess::preprocess(&b, &p.display().to_string(), arch)) {
            Ok(v) => {
                x.extend(v);
                y.push(*l);
            }
            Err(e) => eprintln!("skipping {e}"),
        }
    }
    (x, y)
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 4 {
        eprintln!("usage: fewshot_lab DIR SHOTS SEED [DEPTH] [TEST_PER_CLASS]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&a[1]);
    let (shots, seed): (usize, u64) = (a[2].parse().expect("SHOTS"), a[3].parse().expect("SEED"));
    let depth: usize = a.get(4).map(|s| s.parse().expect("DEPTH")).unwrap_or(3);
    let per_test: usize = a.get(5).map(|s| s.parse().expect("TEST_PER_CLASS")).unwrap_or(usize::MAX);
    let (lambda, iters, kfac): (f32, usize, bool) = (env("LAMBDA", 1e-3), env("ITERS", 30), env::<u8>("KFAC", 1) != 0);
    let gpu = pollster::block_on(lqf::gpu::Gpu::new(Default::default())).expect("GPU adapter");
    eprintln!("adapter: {}", gpu.adapter);
    let arch = Arch::MobileNetV2;
    let weights = lqf::fsutil::read(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights/mobilenet_v2.safetensors")).expect("weights");
    let net = Backbone::from_weight_file(&gpu, &weights, Some(arch)).expect("weights");
    let (trainset, testset) = (ImageFolder::scan(&dir.join("train")).expect("train/"), ImageFolder::scan(&dir.join("test")).expect("test/"));
    let c = trainset.classes.len();
    let t = Instant::now();
    let (xtr, ytr) = load(&trainset.shots(shots, seed), arch);
    let (xte, yte) = load(&testset.shots(per_test, 0), arch);
    let trunk_end = train::split(&net, Depth::Blocks(depth), c, 0.0).expect("depth").trunk_end;
    let ztr = pollster::block_on(train::trunk_features(&gpu, &net, trunk_end, &xtr, ytr.len())).unwrap();
    let zte = pollster::block_on(train::trunk_features(&gpu, &net, trunk_end, &xte, yte.len())).unwrap();
    eprintln!("features: {} train, {} test in {:.1}s", ytr.len(), yte.len(), t.elapsed().as_secs_f64());
    let evaluate = |alpha: f32, s: &Settings| {
        let t = Instant::now();
        let m = pollster::block_on(train::train(&gpu, train::split(&net, s.depth, c, alpha).unwrap(), &ztr, &ytr, s, |st| {
            if st.iteration % 5 == 0 {
                eprintln!("  iteration {} relative residual {:.2e}", st.iteration, st.relative_residual)
            }
        }))
        .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let acc = train::accuracy(&pollster::block_on(train::predict(&gpu, &m, &zte, yte.len(), 32)).unwrap(), &yte, c);
        (acc, m.steps.len(), m.steps.last().map(|s| s.relative_residual).unwrap_or(0.0), secs)
    };
    // The ridge probe: the pretrained network's own features (α = 0), no solver iterations.
    for l in [1e-4f32, 1e-3, 1e-2] {
        let (acc, _, _, secs) = evaluate(0.0, &Settings { depth: Depth::Blocks(depth), lambda: l, max_iter: 0, ..Default::default() });
        println!("ridge probe λ={l:e}: {:.1}% ({secs:.1}s)", acc * 100.0);
    }
    let s = Settings { depth: Depth::Blocks(depth), lambda, init: Init::Ridge, max_iter: iters, cg_tol: 1e-4, kfac, ..Default::default() };
    let (acc, its, rel, secs) = evaluate(s.alpha, &s);
    println!("LQF depth {depth} λ={lambda:e} K-FAC={kfac}: {:.1}% ({its} CG iterations, relative residual {rel:.1e}, {secs:.1}s)", acc * 100.0);
}
