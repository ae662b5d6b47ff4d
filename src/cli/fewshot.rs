//! `lqf fewshot`: the few-shot accuracy table. Trunk features are computed once per image (at
//! the requested depth) and shared by every method, shot count and seed; the probes run the
//! remaining pretrained blocks on them.
use super::{load_backbone, method_name, open, parse_method, ProgressLine, Res, TrainOpts};
use lqf::data::{self, ImageFolder};
use lqf::lqf::train;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `lqf fewshot` was asked for.
pub struct Table<'a> {
    pub dir: &'a Path,
    pub shots: &'a [usize],
    pub seeds: &'a [u64],
    pub methods: &'a [String],
    pub test_per_class: Option<usize>,
    /// Learning rates for the SGD-trained methods (empty: the one in the options).
    pub lrs: &'a [f32],
    pub tag: Option<&'a str>,
    pub json: bool,
}

/// One trained configuration: a method, with its learning rate when it has one.
struct Variant {
    name: String,
    method: train::Method,
    lr: Option<f32>,
}

fn variants(methods: &[train::Method], base: &train::Settings, lrs: &[f32], tag: Option<&str>) -> Vec<Variant> {
    let tag = tag.map(|t| format!(" {t}")).unwrap_or_default();
    let mut out = Vec::new();
    for &method in methods {
        let sgd = method == train::Method::Finetune || (method == train::Method::Lqf && base.solver == train::SolverKind::Sgd);
        if sgd && !lrs.is_empty() {
            out.extend(lrs.iter().map(|&lr| Variant { name: format!("{}{tag} lr={lr}", method_name(method)), method, lr: Some(lr) }));
        } else {
            out.push(Variant { name: format!("{}{tag}", method_name(method)), method, lr: None });
        }
    }
    out
}

struct Run {
    method: String,
    shots: usize,
    seed: u64,
    accuracy: f64,
    seconds: f64,
    lambda: f32,
    /// Training diverged (accuracy is then chance).
    diverged: bool,
    /// The λ search's verdict on each λ of the path (empty without a search).
    lambda_scores: Vec<train::LambdaScore>,
}

pub fn fewshot(t: &Table<'_>, opts: &TrainOpts) -> Res {
    let Table { dir, shots, seeds, test_per_class, json, .. } = *t;
    let methods: Vec<_> = t.methods.iter().map(|m| parse_method(m)).collect::<Result<_, _>>()?;
    if let Some(bad) = t.lrs.iter().find(|lr| !(lr.is_finite() && **lr > 0.0)) {
        return Err(format!("--lrs: every learning rate must be a positive number, got {bad}"));
    }
    let base = opts.settings(lqf::lqf::train::Method::Lqf)?;
    if base.depth == train::Depth::Probe && methods.iter().any(|m| matches!(m, train::Method::Lqf | train::Method::Finetune)) {
        return Err("--depth probe leaves nothing for lqf or finetune to train".into());
    }
    let (train_set, test_set) =
        (ImageFolder::scan(&dir.join("train")).map_err(|e| e.to_string())?, ImageFolder::scan(&dir.join("test")).map_err(|e| e.to_string())?);
    if train_set.classes != test_set.classes {
        return Err(format!("{}: train/ and test/ have different class folders", dir.display()));
    }
    let classes = train_set.classes.len();
    let variants = variants(&methods, &base, t.lrs, t.tag);
    // Every image any run uses, once.
    let mut draws = HashMap::new();
    for &k in shots {
        for &seed in seeds {
            draws.insert((k, seed), train_set.shots(k, seed).map_err(|e| e.to_string())?);
        }
    }
    let mut pool: Vec<(PathBuf, u32)> = draws.values().flatten().cloned().collect();
    pool.sort();
    pool.dedup();
    let test_items = match test_per_class {
        Some(k) => test_set.shots(k, 0).map_err(|e| e.to_string())?,
        None => test_set.items.clone(),
    };
    let gpu = open()?;
    let net = load_backbone(&gpu, opts.arch()?, opts.weights.as_deref())?;
    let trunk_end = train::split(&net, base.depth, classes, 0.0).map_err(|e| e.to_string())?.trunk_end;
    let mut pl = ProgressLine::new();
    let t = Instant::now();
    let trainf = pollster::block_on(data::trunk_features(&gpu, &net, trunk_end, &pool, &mut |p| pl.report(p))).map_err(|e| e.to_string())?;
    let testf = pollster::block_on(data::trunk_features(&gpu, &net, trunk_end, &test_items, &mut |p| pl.report(p))).map_err(|e| e.to_string())?;
    pl.finish();
    super::warn_skipped(&trainf);
    super::warn_skipped(&testf);
    eprintln!("features of {} training and {} test images in {:.1} s", trainf.paths.len(), testf.paths.len(), t.elapsed().as_secs_f64());
    let per = trainf.z.len() / trainf.paths.len().max(1);
    let index: HashMap<&PathBuf, usize> = trainf.paths.iter().enumerate().map(|(i, p)| (p, i)).collect();
    let mut runs = Vec::new();
    for &k in shots {
        for &seed in seeds {
            let chosen: Vec<usize> = draws[&(k, seed)].iter().filter_map(|(p, _)| index.get(p).copied()).collect();
            let (z, labels) = train::gather(&trainf.z, &trainf.labels, &chosen, per);
            data::check_every_class(&labels, &train_set.classes).map_err(|e| e.to_string())?;
            for v in &variants {
                let mut s = train::Settings {
                    method: v.method,
                    init: match base.init {
                        train::Init::Random { .. } => train::Init::Random { seed },
                        i => i,
                    },
                    ..base.clone()
                };
                if let Some(lr) = v.lr {
                    s.finetune.lr = lr;
                    s.sgd.lr = lr;
                }
                let split = train::split(&net, base.depth, classes, s.effective_alpha()).map_err(|e| e.to_string())?;
                let t = Instant::now();
                let run = match pollster::block_on(train::train(&gpu, split, &z, &labels, &s, &mut |p| pl.report(p))) {
                    Ok(m) => {
                        let logits = pollster::block_on(train::predict(&gpu, &m, &testf.z, testf.labels.len(), s.batch)).map_err(|e| e.to_string())?;
                        Run {
                            method: v.name.clone(),
                            shots: k,
                            seed,
                            accuracy: train::accuracy(&logits, &testf.labels, classes),
                            seconds: t.elapsed().as_secs_f64(),
                            lambda: m.settings.lambda,
                            diverged: false,
                            lambda_scores: m.lambda_scores.clone(),
                        }
                    }
                    // A learning rate too large for the method is a result of the table (the
                    // robustness comparison), scored at chance: what that model is worth.
                    Err(lqf::Error::Diverged(why)) => {
                        eprintln!("{} with {k} shots, seed {seed} diverged: {why}", v.name);
                        Run {
                            method: v.name.clone(),
                            shots: k,
                            seed,
                            accuracy: 1.0 / classes as f64,
                            seconds: t.elapsed().as_secs_f64(),
                            lambda: s.lambda,
                            diverged: true,
                            lambda_scores: Vec::new(),
                        }
                    }
                    Err(e) => return Err(format!("{} with {k} shots, seed {seed}: {e}", v.name)),
                };
                pl.finish();
                eprintln!("{} {k} shots seed {seed}: {:.2}% in {:.1} s (λ {:e})", run.method, 100.0 * run.accuracy, run.seconds, run.lambda);
                runs.push(run);
            }
        }
    }
    let mut summary = Vec::new();
    for v in &variants {
        for &k in shots {
            let of: Vec<&Run> = runs.iter().filter(|r| r.method == v.name && r.shots == k).collect();
            let (m, sd) = train::mean_and_std(&of.iter().map(|r| r.accuracy).collect::<Vec<_>>());
            let secs = of.iter().map(|r| r.seconds).sum::<f64>() / of.len().max(1) as f64;
            summary.push((v, k, m, sd, secs, of.iter().filter(|r| r.diverged).count()));
        }
    }
    // Per method and shot count, whether this learning rate has the best mean of its grid.
    let best = |v: &Variant, k: usize, m: f64| {
        v.lr.is_some() && summary.iter().filter(|(v2, k2, ..)| *k2 == k && v2.method == v.method && v2.lr.is_some()).all(|(_, _, m2, ..)| *m2 <= m)
    };
    if json {
        let rs: Vec<String> = runs
            .iter()
            .map(|r| {
                let scores = if r.lambda_scores.is_empty() {
                    String::new()
                } else {
                    format!(",\"lambda_scores\":{}", serde_json::to_string(&r.lambda_scores).unwrap_or_default())
                };
                format!(
                    "{{\"method\":{},\"shots\":{},\"seed\":{},\"accuracy\":{:.6},\"seconds\":{:.3},\"lambda\":{:e},\"diverged\":{}{scores}}}",
                    serde_json::to_string(&r.method).unwrap_or_default(),
                    r.shots,
                    r.seed,
                    r.accuracy,
                    r.seconds,
                    r.lambda,
                    r.diverged
                )
            })
            .collect();
        let ss: Vec<String> = summary
            .iter()
            .map(|(v, k, a, sd, t, dv)| {
                format!(
                    "{{\"method\":{},\"shots\":{k},\"mean\":{a:.6},\"std\":{sd:.6},\"seconds\":{t:.3},\"diverged\":{dv},\"best_lr\":{}}}",
                    serde_json::to_string(&v.name).unwrap_or_default(),
                    best(v, *k, *a)
                )
            })
            .collect();
        println!(
            "{{\"data\":{},\"backbone\":\"{}\",\"depth\":\"{}\",\"test_images\":{},\"runs\":[{}],\"summary\":[{}]}}",
            serde_json::to_string(&dir.display().to_string()).unwrap_or_default(),
            opts.backbone,
            opts.depth,
            testf.labels.len(),
            rs.join(","),
            ss.join(",")
        );
    } else {
        println!("{:<24} {:>6} {:>16} {:>10}", "method", "shots", "accuracy %", "seconds");
        for (v, k, a, sd, t, dv) in &summary {
            let (m, mark) = (&v.name, if best(v, *k, *a) { "  (best lr)" } else { "" });
            let dv = if *dv > 0 { format!("  ({dv} diverged, scored at chance)") } else { String::new() };
            println!("{m:<24} {k:>6} {:>9.2} ± {:<5.2} {t:>10.1}{mark}{dv}", 100.0 * a, 100.0 * sd);
        }
    }
    Ok(())
}
