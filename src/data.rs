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
            let mut files: Vec<PathBuf> = std::fs::read_dir(path).map_err(io_err(path))?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file() && is_image(p)).collect();
            files.sort();
            items.extend(files.into_iter().map(|f| (f, ci as u32)));
        }
        if classes.is_empty() {
            return Err(Error::InvalidArgument(format!("{}: no class folders (expected one subfolder per class)", dir.display())));
        }
        Ok(ImageFolder { classes: classes.into_iter().map(|c| c.0).collect(), items })
    }

    /// `k` images per class drawn without replacement with `seed` (all of a class if it has fewer).
    pub fn shots(&self, k: usize, seed: u64) -> Vec<(PathBuf, u32)> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        for c in 0..self.classes.len() as u32 {
            let mut of: Vec<&(PathBuf, u32)> = self.items.iter().filter(|i| i.1 == c).collect();
            // Fisher-Yates, first k.
            for i in 0..of.len().min(k) {
                let j = i + rng.below(of.len() - i);
                of.swap(i, j);
            }
            out.extend(of.into_iter().take(k).cloned());
        }
        out
    }
}
