//! Commands on the pretrained backbones: bench, import-weights, imagenet.
use super::{load_backbone, open, Res};
use lqf::model::{self, Arch};
use std::path::{Path, PathBuf};

pub fn bench(json: bool, reps: usize) -> Res {
    let gpu = open()?;
    // Under --json the JSON is printed once at the end; each figure still goes to stderr as it
    // is measured, so a bench stopped by a time limit leaves what it had.
    let report = |f: &lqf::bench::Figure| {
        if json {
            eprintln!("{}", f.line());
        } else {
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
        // Training over 64 images at depth 3: JVP, VJP, a CG iteration, K-FAC.
        for f in pollster::block_on(lqf::bench::bench_training(&gpu, &net, 3, 64, reps.min(2))).map_err(|e| e.to_string())? {
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

pub fn import_weights(arch: &str, f16: bool, input: &Path, output: &Path) -> Res {
    let arch = Arch::from_id(arch).map_err(|e| e.to_string())?;
    let bytes = lqf::fsutil::read(input).map_err(|e| e.to_string())?;
    let tensors = model::checkpoint::read(&bytes).map_err(|e| format!("{}: {e}", input.display()))?;
    let name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dtype = if f16 { model::safetensors::Dtype::F16 } else { model::safetensors::Dtype::F32 };
    let out = model::weights::convert(arch, &tensors, &name, &model::weights::sha256_hex(&bytes), dtype).map_err(|e| format!("{}: {e}", input.display()))?;
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

pub fn imagenet(backbone: &str, weights: Option<&Path>, json: bool, images: &[PathBuf]) -> Res {
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
