//! train, eval, predict, and the no-argument demo.
use super::{load_backbone, method_name, open, parse_method, s, test_dir, train_dir, warn_skipped, ProgressLine, Res, TrainOpts};
use lqf::data::{self, ImageFolder};
use lqf::gpu::Gpu;
use lqf::lqf::model_file::ModelFile;
use lqf::lqf::train::{self, Depth, Settings, Trained};
use lqf::model::Backbone;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Features of `items`, trained on, with progress: (model, features, seconds).
fn fit(
    gpu: &Gpu,
    net: &Backbone,
    settings: &Settings,
    items: &[(PathBuf, u32)],
    classes: &[String],
    pl: &mut ProgressLine,
) -> Result<(Trained, data::Features, f64), String> {
    let split = train::split(net, settings.effective_depth(), classes.len(), settings.effective_alpha()).map_err(s)?;
    let t = Instant::now();
    let feats = pollster::block_on(data::trunk_features(gpu, net, split.trunk_end, items, &mut |p| pl.report(p))).map_err(s)?;
    pl.finish();
    warn_skipped(&feats);
    data::check_every_class(&feats.labels, classes).map_err(s)?;
    let m = pollster::block_on(train::train(gpu, split, &feats.z, &feats.labels, settings, &mut |p| pl.report(p))).map_err(s)?;
    pl.finish();
    Ok((m, feats, t.elapsed().as_secs_f64()))
}

fn describe(m: &Trained, n: usize, classes: usize, secs: f64) -> String {
    let st = &m.settings;
    let mut d = format!("{} on {n} images of {classes} classes, depth {:?}, λ {:e}", super::method_name(st.method), st.effective_depth(), st.lambda);
    match m.lambda_origin() {
        train::LambdaOrigin::CrossValidated => {
            let path: Vec<String> =
                m.lambda_scores.iter().map(|s| format!("{:e}: loss {:.3} ± {:.3}, {:.1}%", s.lambda, s.loss, s.se, 100.0 * s.accuracy)).collect();
            d += &format!(" (chosen by 5-fold cross-validation: {})", path.join(", "));
        }
        train::LambdaOrigin::NotCrossValidated => d += " (not cross-validated: no class has 3 images; the default λ was used)",
        train::LambdaOrigin::Given => {}
    }
    if let Some(last) = m.steps.last() {
        d += &format!(", {} solver steps to residual {:.1e}", m.steps.len(), last.relative_residual);
    }
    d + &format!(", {secs:.1} s")
}

pub fn train(dir: &Path, out: &Path, shots: Option<usize>, seed: u64, method: &str, opts: &TrainOpts) -> Res {
    let settings = opts.settings(parse_method(method)?)?;
    let arch = opts.arch()?;
    let folder = ImageFolder::scan(&train_dir(dir)).map_err(s)?;
    if folder.items.is_empty() {
        return Err(format!("{}: no image files in the class folders", train_dir(dir).display()));
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(format!("{}: the folder for the model file does not exist", parent.display()));
        }
    }
    let items = match shots {
        Some(k) => folder.shots(k, seed).map_err(s)?,
        None => folder.items.clone(),
    };
    let gpu = open()?;
    let net = load_backbone(&gpu, arch, opts.weights.as_deref())?;
    let mut pl = ProgressLine::new();
    let (m, feats, secs) = fit(&gpu, &net, &settings, &items, &folder.classes, &mut pl)?;
    let logits = pollster::block_on(train::predict(&gpu, &m, &feats.z, feats.labels.len(), settings.batch)).map_err(s)?;
    let mut file = pollster::block_on(m.to_model_file(&gpu, &net, &folder.classes)).map_err(s)?;
    let root = train_dir(dir);
    file.train_files = feats.paths.iter().zip(&feats.labels).map(|(p, &l)| (p.strip_prefix(&root).unwrap_or(p).to_string_lossy().into_owned(), l)).collect();
    let bytes = file.to_bytes();
    lqf::fsutil::write_atomic(out, &bytes).map_err(s)?;
    eprintln!("trained {}", describe(&m, feats.labels.len(), folder.classes.len(), secs));
    eprintln!("training accuracy {:.1}%", 100.0 * train::accuracy(&logits, &feats.labels, folder.classes.len()));
    eprintln!("wrote {} ({:.1} MB)", out.display(), bytes.len() as f64 / 1e6);
    Ok(())
}

/// Load a model file and the backbone it was trained on.
pub(super) fn load_model(gpu: &Gpu, path: &Path) -> Result<(ModelFile, Backbone, Trained), String> {
    let bytes = lqf::fsutil::read(path).map_err(s)?;
    let file = ModelFile::from_bytes(&bytes, None).map_err(|e| format!("{}: {e}", path.display()))?;
    let net = load_backbone(gpu, file.backbone, None)?;
    let m = Trained::from_model_file(gpu, &net, &file).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((file, net, m))
}

pub struct Report {
    pub accuracy: f64,
    pub n: usize,
    pub per_class: Vec<(String, Option<f64>)>,
    /// Rows: true class, columns: predicted class.
    pub confusion: Vec<Vec<usize>>,
}

impl Report {
    fn json(&self) -> String {
        let per: Vec<String> =
            self.per_class.iter().filter_map(|(c, a)| a.map(|a| format!("{}:{a:.6}", serde_json::to_string(c).unwrap_or_default()))).collect();
        let conf: Vec<String> = self.confusion.iter().map(|r| format!("[{}]", r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","))).collect();
        format!("{{\"accuracy\":{:.6},\"n\":{},\"per_class\":{{{}}},\"confusion\":[{}]}}", self.accuracy, self.n, per.join(","), conf.join(","))
    }
}

/// Evaluate `m` on an ImageFolder whose class folders are named as the model's classes.
fn evaluate(gpu: &Gpu, net: &Backbone, m: &Trained, classes: &[String], dir: &Path, pl: &mut ProgressLine) -> Result<Report, String> {
    let folder = ImageFolder::scan(dir).map_err(s)?;
    let mut map = Vec::new();
    for c in &folder.classes {
        match classes.iter().position(|k| k == c) {
            Some(i) => map.push(i as u32),
            None => return Err(format!("{}: class folder {c:?} is not one of the model's classes {classes:?}", dir.display())),
        }
    }
    let items: Vec<(PathBuf, u32)> = folder.items.iter().map(|(p, l)| (p.clone(), map[*l as usize])).collect();
    let feats = pollster::block_on(data::trunk_features(gpu, net, m.split.trunk_end, &items, &mut |p| pl.report(p))).map_err(s)?;
    pl.finish();
    warn_skipped(&feats);
    if feats.labels.is_empty() {
        return Err(format!("{}: no readable images", dir.display()));
    }
    let c = classes.len();
    let logits = pollster::block_on(train::predict(gpu, m, &feats.z, feats.labels.len(), 32)).map_err(s)?;
    let pred = lqf::cpu::elementwise::argmax_rows(&logits, c);
    let mut confusion = vec![vec![0usize; c]; c];
    for (&p, &l) in pred.iter().zip(&feats.labels) {
        confusion[l as usize][p as usize] += 1;
    }
    let per_class = classes
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let total: usize = confusion[i].iter().sum();
            (name.clone(), (total > 0).then(|| confusion[i][i] as f64 / total as f64))
        })
        .collect();
    Ok(Report { accuracy: train::accuracy(&logits, &feats.labels, c), n: feats.labels.len(), per_class, confusion })
}

pub fn eval(model: &Path, dir: &Path, json: bool) -> Res {
    let gpu = open()?;
    let (file, net, m) = load_model(&gpu, model)?;
    let mut pl = ProgressLine::new();
    let r = evaluate(&gpu, &net, &m, &file.classes, &test_dir(dir), &mut pl)?;
    if json {
        println!("{}", r.json());
    } else {
        println!("accuracy {:.2}% on {} images", 100.0 * r.accuracy, r.n);
        for (c, a) in &r.per_class {
            if let Some(a) = a {
                println!("  {:>6.1}%  {c}", 100.0 * a);
            }
        }
    }
    Ok(())
}

pub fn predict(model: &Path, json: bool, top: usize, images: &[PathBuf], explain: Option<(usize, &Path, usize)>) -> Res {
    let gpu = open()?;
    let (file, net, m) = load_model(&gpu, model)?;
    let mut pl0 = ProgressLine::new();
    let training = match explain {
        Some((_, dir, _)) => Some(super::explain::Training::load(&gpu, &net, &m, &file, dir, &mut pl0)?),
        None => None,
    };
    let items: Vec<(PathBuf, u32)> = images.iter().map(|p| (p.clone(), 0)).collect();
    let mut pl = ProgressLine::new();
    let feats = pollster::block_on(data::trunk_features(&gpu, &net, m.split.trunk_end, &items, &mut |p| pl.report(p))).map_err(s)?;
    pl.finish();
    warn_skipped(&feats);
    let c = file.classes.len();
    let logits = pollster::block_on(train::predict(&gpu, &m, &feats.z, feats.paths.len(), 32)).map_err(s)?;
    let top1: Vec<usize> = logits.chunks(c).map(|row| (0..c).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0)).collect();
    let whys = match (&training, explain) {
        (Some(t), Some((k, _, cg))) => t.explain_all(&gpu, &m, &feats.z, &top1, k, cg)?,
        _ => Vec::new(),
    };
    let mut records = Vec::new();
    for (i, p) in feats.paths.iter().enumerate() {
        let row = &logits[i * c..(i + 1) * c];
        let mut order: Vec<usize> = (0..c).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let best: Vec<(usize, f32)> = order.into_iter().take(top.max(1)).map(|j| (j, row[j])).collect();
        let why = whys.get(i);
        if json {
            let items: Vec<String> =
                best.iter().map(|&(j, v)| format!("{{\"class\":{},\"score\":{v:.6}}}", serde_json::to_string(&file.classes[j]).unwrap_or_default())).collect();
            let why = why.as_ref().map(|w| format!(",\"explain\":{}", w.json(&file.classes))).unwrap_or_default();
            records.push(format!("{{\"image\":{},\"top\":[{}]{why}}}", serde_json::to_string(&p.display().to_string()).unwrap_or_default(), items.join(",")));
        } else {
            println!("{}", p.display());
            for (j, v) in best {
                println!("  {v:>8.3}  {}", file.classes[j]);
            }
            if let Some(w) = why {
                w.print(&file.classes);
            }
        }
    }
    if json {
        println!("[{}]", records.join(","));
    }
    if !feats.skipped.is_empty() {
        return Err(format!("{} of {} images could not be read", feats.skipped.len(), images.len()));
    }
    Ok(())
}

/// `lqf` with no arguments: the ridge probe and LQF on the bundled EuroSAT sample.
pub fn demo() -> Res {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/samples/eurosat");
    eprintln!("demo: fine-tuning MobileNetV2 on the bundled EuroSAT sample ({}); `lqf --help` lists the commands", root.display());
    let folder = ImageFolder::scan(&root.join("train")).map_err(s)?;
    let gpu = open()?;
    let net = load_backbone(&gpu, lqf::model::Arch::MobileNetV2, None)?;
    let mut pl = ProgressLine::new();
    for settings in [Settings { method: train::Method::Ridge, ..Default::default() }, Settings { depth: Depth::Blocks(1), max_iter: 20, ..Default::default() }]
    {
        let (m, feats, secs) = fit(&gpu, &net, &settings, &folder.items, &folder.classes, &mut pl)?;
        let r = evaluate(&gpu, &net, &m, &folder.classes, &root.join("test"), &mut pl)?;
        println!(
            "{}: test accuracy {:.1}% on {} images ({})",
            method_name(settings.method),
            100.0 * r.accuracy,
            r.n,
            describe(&m, feats.labels.len(), folder.classes.len(), secs)
        );
    }
    Ok(())
}
