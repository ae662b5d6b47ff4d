//! `predict --explain` and `forget`: both need the training set again, which the model file
//! lists (paths relative to the training folder).
use super::train::load_model;
use super::{open, s, train_dir, ProgressLine, Res};
use lqf::data;
use lqf::gpu::Gpu;
use lqf::lqf::influence::{self, Correction, ForgetTol, InverseHessian};
use lqf::lqf::kfac::Kfac;
use lqf::lqf::model_file::ModelFile;
use lqf::lqf::train::Trained;
use lqf::lqf::Problem;
use lqf::model::Backbone;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The training set of a model, read back from its folder.
pub struct Training {
    pub names: Vec<String>,
    pub labels: Vec<u32>,
    pub z: Vec<f32>,
}

/// Why a prediction was made: the training images that pushed it toward the predicted class
/// (proponents) and away from it (opponents), with their influence on its score.
pub struct Why {
    pub class: usize,
    pub proponents: Vec<(String, u32, f64)>,
    pub opponents: Vec<(String, u32, f64)>,
}

impl Why {
    pub fn json(&self, classes: &[String]) -> String {
        let list = |v: &[(String, u32, f64)]| {
            v.iter()
                .map(|(n, l, sc)| {
                    format!(
                        "{{\"image\":{},\"class\":{},\"influence\":{sc:.6e}}}",
                        serde_json::to_string(n).unwrap_or_default(),
                        serde_json::to_string(&classes[*l as usize]).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{{\"class\":{},\"proponents\":[{}],\"opponents\":[{}]}}",
            serde_json::to_string(&classes[self.class]).unwrap_or_default(),
            list(&self.proponents),
            list(&self.opponents)
        )
    }

    pub fn print(&self, classes: &[String]) {
        println!("  why {}: removing these training images would lower its score (proponents)", classes[self.class]);
        for (n, l, sc) in &self.proponents {
            println!("    {sc:>+10.3e}  {n} ({})", classes[*l as usize]);
        }
        println!("  and these would raise it (opponents)");
        for (n, l, sc) in &self.opponents {
            println!("    {sc:>+10.3e}  {n} ({})", classes[*l as usize]);
        }
    }
}

impl Training {
    pub fn load(gpu: &Gpu, net: &Backbone, m: &Trained, file: &ModelFile, dir: &Path, pl: &mut ProgressLine) -> Result<Training, String> {
        if file.train_files.is_empty() {
            return Err("the model file does not list its training images, which explaining and forgetting need".into());
        }
        lqf::lqf::solver::require_quadratic(m.settings.loss, "explaining and forgetting").map_err(s)?;
        let root = train_dir(dir);
        let items: Vec<(PathBuf, u32)> = file.train_files.iter().map(|(f, l)| (root.join(f), *l)).collect();
        let feats = pollster::block_on(data::trunk_features(gpu, net, m.split.trunk_end, &items, &mut |p| pl.report(p))).map_err(s)?;
        pl.finish();
        if let Some((p, why)) = feats.skipped.first() {
            return Err(format!("training image {} is missing or unreadable ({why}); explaining and forgetting need the exact training set", p.display()));
        }
        Ok(Training { names: file.train_files.iter().map(|f| f.0.clone()).collect(), labels: feats.labels, z: feats.z })
    }

    fn problem<'a>(&self, gpu: &Gpu, m: &'a Trained) -> Result<Problem<'a>, String> {
        let st = &m.settings;
        pollster::block_on(Problem::new(gpu, &m.split.net, &m.theta0, &self.z, &self.labels, st.batch, st.kappa, st.lambda))
            .map(|p| p.with_loss(st.loss))
            .map_err(s)
    }

    /// Influence of every training image on the predicted class of each image in `xs`
    /// (trunk features, `[n, …]`): H⁻¹ by K-FAC-preconditioned CG to 1e-2 in at most `cg`
    /// iterations, or by the K-FAC inverse alone when `cg` is 0.
    pub fn explain_all(&self, gpu: &Gpu, m: &Trained, xs: &[f32], classes: &[usize], k: usize, cg: usize) -> Result<Vec<Why>, String> {
        let prob = self.problem(gpu, m)?;
        let kfac = pollster::block_on(Kfac::estimated(gpu, &prob, m.settings.lambda, m.settings.kfac_estimate())).map_err(s)?;
        let inverse = if cg == 0 { InverseHessian::Kfac } else { InverseHessian::Cg { tol: 1e-2, max_iter: cg } };
        let per = m.split.net.input.len();
        let mut out = Vec::new();
        for (i, &class) in classes.iter().enumerate() {
            let x = gpu.upload(&xs[i * per..(i + 1) * per]).map_err(s)?;
            let inf = pollster::block_on(influence::influence(gpu, &prob, &m.delta, Some(&kfac), &x, &[class], inverse)).map_err(s)?;
            let named = |v: Vec<(usize, f64)>| v.into_iter().map(|(j, sc)| (self.names[j].clone(), self.labels[j], sc)).collect();
            out.push(Why { class, proponents: named(inf[0].proponents(k)), opponents: named(inf[0].opponents(k)) });
        }
        Ok(out)
    }
}

pub fn forget(model: &Path, dir: &Path, image: &Path, out: &Path, compare: bool) -> Res {
    let gpu = open()?;
    let (mut file, net, m) = load_model(&gpu, model)?;
    let root = train_dir(dir);
    let wanted = image.strip_prefix(&root).unwrap_or(image).to_string_lossy().into_owned();
    let index = file
        .train_files
        .iter()
        .position(|(f, _)| *f == wanted || std::fs::canonicalize(root.join(f)).ok() == std::fs::canonicalize(image).ok())
        .ok_or_else(|| format!("{} is not one of the model's {} training images", image.display(), file.train_files.len()))?;
    let mut pl = ProgressLine::new();
    let training = Training::load(&gpu, &net, &m, &file, dir, &mut pl)?;
    let prob = training.problem(&gpu, &m)?;
    let st = &m.settings;
    let t = Instant::now();
    let forgot = pollster::block_on(influence::forget(&gpu, &prob, &m.delta, Correction::Cg(None), index, ForgetTol::Model { cg_tol: st.cg_tol }, st.max_iter))
        .map_err(s)?;
    let values = pollster::block_on(forgot.delta.read(&gpu)).map_err(s)?;
    let secs = t.elapsed().as_secs_f64();
    let share = forgot.steps.last().map_or(0.0, |s| s.relative_residual);
    eprintln!(
        "forgot {} in {secs:.1} s ({} CG iterations on its share of the gradient, to {share:.1e} of it; asked {:.1e})",
        file.train_files[index].0,
        forgot.steps.len(),
        forgot.tol
    );
    if compare {
        // Retrain without the image from scratch, as the model was trained (same tolerance and
        // iteration cap), and compare how close each is to the new optimum.
        let t = Instant::now();
        let scratch = &forgot.problem;
        let with_kfac = st.preconditions_with_kfac(st.lambda);
        let kfac2 = if with_kfac { Some(pollster::block_on(Kfac::estimated(&gpu, scratch, st.lambda, st.kfac_estimate())).map_err(s)?) } else { None };
        let (fresh, cold) = pollster::block_on(scratch.solve_cg(&gpu, None, kfac2.as_ref(), st.cg_tol, st.max_iter, |_| {})).map_err(s)?;
        let secs2 = t.elapsed().as_secs_f64();
        let fresh_values = pollster::block_on(fresh.read(&gpu)).map_err(s)?;
        let (a, b): (Vec<f64>, Vec<f64>) = (values.concat().iter().map(|&v| v as f64).collect(), fresh_values.concat().iter().map(|&v| v as f64).collect());
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt() / b.iter().map(|y| y * y).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        // ‖∇L'(Δ)‖/‖∇L'(0)‖ on the smaller problem for both (not timed).
        let residual = |d: &lqf::lqf::ParamSet| pollster::block_on(scratch.gradient_norms(&gpu, d)).map(|(g, b)| g / b).map_err(s);
        let (r_forget, r_scratch) = (residual(&forgot.delta)?, residual(&fresh)?);
        eprintln!(
            "retraining from scratch without it (features cached): {secs2:.1} s ({}K-FAC, {} CG iterations); forgetting is {:.1}× faster",
            if with_kfac { "" } else { "no " },
            cold.len(),
            secs2 / secs
        );
        eprintln!("relative residual on the problem without it: forgetting {r_forget:.2e}, from scratch {r_scratch:.2e}; ‖Δ_forget − Δ_scratch‖/‖Δ_scratch‖ = {diff:.2e}");
    }
    file.delta = values;
    file.train_files.remove(index);
    lqf::fsutil::write_atomic(out, &file.to_bytes()).map_err(s)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
