//! ImageFolder datasets (one subfolder per class) and seeded K-shot sampling. Native only.
use crate::error::{io_err, Error, Result};
use crate::rng::Rng;
use std::path::{Path, PathBuf};

pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif", "bmp"];

#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// Class names, sorted.
    pub classes: Vec<String>,
    /// (file, class index), sorted by class then file name.
    pub items: Vec<(PathBuf, u32)>,
}

fn is_image(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())).unwrap_or(false)
}

impl ImageFolder {
    pub fn scan(dir: &Path) -> Result<ImageFolder> {
        let mut classes: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        classes.sort();
        let mut items = Vec::new();
        for (ci, (_, path)) in classes.iter().enumerate() {
            let mut files: Vec<PathBuf> =
                std::fs::read_dir(path).map_err(io_err(path))?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file() && is_image(p)).collect();
            files.sort();
            items.extend(files.into_iter().map(|f| (f, ci as u32)));
        }
        if classes.is_empty() {
            return Err(Error::InvalidArgument(format!("{}: no class folders (expected one subfolder per class)", dir.display())));
        }
        Ok(ImageFolder { classes: classes.into_iter().map(|c| c.0).collect(), items })
    }

    /// `k` images per class drawn without replacement with `seed`; a class with fewer than `k`
    /// images is an error that names it.
    pub fn shots(&self, k: usize, seed: u64) -> Result<Vec<(PathBuf, u32)>> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        for (c, name) in self.classes.iter().enumerate() {
            let mut of: Vec<&(PathBuf, u32)> = self.items.iter().filter(|i| i.1 == c as u32).collect();
            if of.len() < k {
                return Err(Error::InvalidArgument(format!("class {name:?} has {} images, fewer than the {k} shots asked", of.len())));
            }
            // Fisher-Yates, first k.
            for i in 0..k {
                let j = i + rng.below(of.len() - i);
                of.swap(i, j);
            }
            out.extend(of.into_iter().take(k).cloned());
        }
        Ok(out)
    }
}

/// Trunk features of a list of images, with what could not be read.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// `[n, h, w, c]` trunk outputs, in the order of `paths`.
    pub z: Vec<f32>,
    pub labels: Vec<u32>,
    pub paths: Vec<PathBuf>,
    /// Files that are not readable images, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Read, preprocess and run the frozen trunk (blocks `..trunk_end`) over `items`, a chunk at a
/// time, so that only trunk features (never all the pixels) are held. Unreadable or corrupt
/// files are skipped and listed; the caller decides whether enough remain.
pub async fn trunk_features(
    gpu: &crate::gpu::Gpu,
    backbone: &crate::model::Backbone,
    trunk_end: usize,
    items: &[(PathBuf, u32)],
    progress: crate::lqf::progress::OnProgress<'_>,
) -> Result<Features> {
    use crate::lqf::progress::{Phase, Progress};
    let arch = backbone.arch();
    let chunk = backbone.max_batch(gpu).max(1);
    let mut out = Features::default();
    for (start, len) in crate::batches(items.len(), chunk) {
        let mut pixels = Vec::new();
        let mut kept = 0;
        for (path, label) in &items[start..start + len] {
            match crate::fsutil::read(path).and_then(|b| crate::model::preprocess::preprocess(&b, &path.display().to_string(), arch)) {
                Ok(x) => {
                    pixels.extend(x);
                    out.labels.push(*label);
                    out.paths.push(path.clone());
                    kept += 1;
                }
                Err(e) => out.skipped.push((path.clone(), e.to_string())),
            }
        }
        if kept > 0 {
            out.z.extend(crate::lqf::train::trunk_features(gpu, backbone, trunk_end, &pixels, kept).await?);
        }
        progress(Progress::new(Phase::Features, start + len, items.len()));
    }
    Ok(out)
}

/// Refuse a training set that lost a whole class to unreadable files, naming it.
pub fn check_every_class(labels: &[u32], classes: &[String]) -> Result<()> {
    let mut count = vec![0usize; classes.len()];
    labels.iter().for_each(|&l| count[l as usize] += 1);
    let empty: Vec<&str> = classes.iter().zip(&count).filter(|(_, &n)| n == 0).map(|(c, _)| c.as_str()).collect();
    if !empty.is_empty() {
        return Err(Error::InvalidArgument(format!("no readable image in class folder(s) {}", empty.join(", "))));
    }
    if classes.len() < 2 {
        return Err(Error::InvalidArgument(format!("one class folder ({}) only: training needs at least 2 classes", classes.join(""))));
    }
    Ok(())
}
