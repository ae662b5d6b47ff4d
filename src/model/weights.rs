//! Weight files: validating a checkpoint against an architecture, converting it into the
//! project's file (safetensors with provenance), and folding BatchNorm into the convolutions.
use super::arch::{Arch, ArchDef, ConvDef};
use super::checkpoint::NamedTensor;
use super::safetensors::{self, Dtype, SafeTensors};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub const FORMAT: &str = "lqf-weights";
pub const VERSION: &str = "1";

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn mismatch(def: &ArchDef, detail: String) -> Error {
    Error::WeightsMismatch { arch: def.arch.id().into(), detail }
}

/// Every expected tensor present with its shape and finite values, nothing unexpected
/// (BatchNorm's `num_batches_tracked` counters are ignored). Problems are reported by kind,
/// the first five names of each, so a checkpoint of another network is recognisable at a glance.
pub fn validate(def: &ArchDef, tensors: &[NamedTensor]) -> Result<()> {
    let have: HashMap<&str, &NamedTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let expected = def.expected_tensors();
    let (mut missing, mut shape, mut non_finite, mut unexpected) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, want) in &expected {
        match have.get(name.as_str()) {
            None => missing.push(name.clone()),
            Some(t) if &t.shape != want => shape.push(format!("{name} has shape {:?}, expected {want:?}", t.shape)),
            Some(t) if t.data.iter().any(|v| !v.is_finite()) => non_finite.push(name.clone()),
            _ => {}
        }
    }
    let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    for t in tensors {
        if !known.contains(t.name.as_str()) && !t.name.ends_with("num_batches_tracked") {
            unexpected.push(t.name.clone());
        }
    }
    let mut parts = Vec::new();
    for (what, list) in [("missing", missing), ("wrong shape", shape), ("NaN or infinite values", non_finite), ("unexpected tensor", unexpected)] {
        if !list.is_empty() {
            let more = if list.len() > 5 { format!(", … {} more", list.len() - 5) } else { String::new() };
            parts.push(format!("{} {what}: {}{more}", list.len(), list.iter().take(5).cloned().collect::<Vec<_>>().join(", ")));
        }
    }
    if parts.is_empty() {
        Ok(())
    } else {
        Err(mismatch(def, parts.join("; ")))
    }
}

/// The project's weight file for a validated checkpoint: its tensors in architecture order,
/// with the architecture, format version and the source's name and sha256 as metadata.
pub fn convert(arch: Arch, tensors: &[NamedTensor], source_name: &str, source_sha256: &str, dtype: Dtype) -> Result<Vec<u8>> {
    let def = arch.def();
    validate(&def, tensors)?;
    let by_name: HashMap<&str, &NamedTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let ordered = def.expected_tensors().iter().map(|(n, _)| by_name[n.as_str()].clone()).collect();
    let metadata = [("format", FORMAT), ("version", VERSION), ("arch", arch.id()), ("source", source_name), ("source_sha256", source_sha256)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok(safetensors::write(&SafeTensors { tensors: ordered, metadata }, dtype))
}

/// A weight file, checked: its format, its architecture (if one is required), every tensor.
pub struct WeightFile {
    pub arch: Arch,
    pub tensors: Vec<NamedTensor>,
    /// sha256 of the file's bytes: identifies the backbone a trained model was built on.
    pub sha256: String,
}

pub fn load(bytes: &[u8], want: Option<Arch>) -> Result<WeightFile> {
    let st = safetensors::read(bytes)?;
    let meta = |k: &str| st.metadata.get(k).map(String::as_str);
    if meta("format") != Some(FORMAT) {
        return Err(Error::Checkpoint("not an lqf weight file (convert a checkpoint with `lqf import-weights`)".into()));
    }
    if meta("version") != Some(VERSION) {
        return Err(Error::Checkpoint(format!("weight file version {:?}; this build reads version {VERSION}", meta("version"))));
    }
    let arch = Arch::from_id(meta("arch").unwrap_or(""))?;
    if let Some(w) = want {
        if w != arch {
            return Err(Error::Checkpoint(format!("weight file is for {}, not {}", arch.id(), w.id())));
        }
    }
    validate(&arch.def(), &st.tensors)?;
    Ok(WeightFile { arch, tensors: st.tensors, sha256: sha256_hex(bytes) })
}

/// A convolution with BatchNorm folded in: HWIO weights `[k, k, cin/groups, cout]` and a bias.
#[derive(Debug, Clone)]
pub struct FoldedConv {
    pub def: ConvDef,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// W' = W·γ/√(σ²+ε) per output channel, b' = β − μ·γ/√(σ²+ε); OIHW → HWIO.
pub fn fold(c: &ConvDef, t: &HashMap<&str, &NamedTensor>) -> FoldedConv {
    let get = |n: String| &t[n.as_str()].data;
    let (w, gamma, beta, mean, var) = (
        get(c.weight.clone()),
        get(format!("{}.weight", c.bn)),
        get(format!("{}.bias", c.bn)),
        get(format!("{}.running_mean", c.bn)),
        get(format!("{}.running_var", c.bn)),
    );
    let cin_g = c.cin / c.groups;
    let kk = c.k * c.k;
    let mut hwio = vec![0.0; w.len()];
    let mut b = vec![0.0; c.cout];
    for co in 0..c.cout {
        let s = gamma[co] / (var[co] + c.eps).sqrt();
        b[co] = beta[co] - mean[co] * s;
        for ci in 0..cin_g {
            for p in 0..kk {
                hwio[(p * cin_g + ci) * c.cout + co] = w[(co * cin_g + ci) * kk + p] * s;
            }
        }
    }
    FoldedConv { def: c.clone(), w: hwio, b }
}

/// The folded network: convolutions per block, then the classifier as `[features, classes]`.
pub struct Folded {
    pub def: ArchDef,
    pub blocks: Vec<Vec<FoldedConv>>,
    pub classifier_w: Vec<f32>,
    pub classifier_b: Vec<f32>,
}

pub fn fold_all(arch: Arch, tensors: &[NamedTensor]) -> Result<Folded> {
    let def = arch.def();
    validate(&def, tensors)?;
    let t: HashMap<&str, &NamedTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let blocks = def.blocks.iter().map(|b| b.convs.iter().map(|c| fold(c, &t)).collect()).collect();
    let w = &t[def.classifier_weight.as_str()].data;
    let mut classifier_w = vec![0.0; w.len()];
    for o in 0..def.classes {
        for i in 0..def.features {
            classifier_w[i * def.classes + o] = w[o * def.features + i];
        }
    }
    let classifier_b = t[def.classifier_bias.as_str()].data.clone();
    Ok(Folded { def, blocks, classifier_w, classifier_b })
}
