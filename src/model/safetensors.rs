//! safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
//! shape and byte range, then the raw little-endian data. The project's weight files use it
//! (readable by any other tool), with provenance in `__metadata__`.
use super::checkpoint::NamedTensor;
use super::f16;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SafeTensors {
    pub tensors: Vec<NamedTensor>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Checkpoint(format!("safetensors: {}", msg.into()))
}

#[derive(serde::Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

pub fn read(bytes: &[u8]) -> Result<SafeTensors> {
    let n = bytes.get(..8).ok_or_else(|| bad("file shorter than its header length"))?;
    let n = u64::from_le_bytes(n.try_into().map_err(|_| bad("header"))?) as usize;
    let header = bytes.get(8..8usize.saturating_add(n)).ok_or_else(|| bad("truncated header"))?;
    let data = &bytes[8 + n..];
    let raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(header).map_err(|e| bad(format!("header: {e}")))?;
    let mut out = SafeTensors::default();
    let mut entries: Vec<(String, Entry)> = Vec::new();
    for (name, v) in raw {
        if name == "__metadata__" {
            out.metadata = serde_json::from_value(v).map_err(|e| bad(format!("metadata: {e}")))?;
            continue;
        }
        entries.push((name.clone(), serde_json::from_value(v).map_err(|e| bad(format!("{name}: {e}")))?));
    }
    // Keep file order (by offset), which is the writer's order.
    entries.sort_by_key(|(_, e)| e.data_offsets[0]);
    for (name, e) in entries {
        let [s, t] = e.data_offsets;
        let raw = data.get(s..t).filter(|_| s <= t).ok_or_else(|| bad(format!("{name}: data out of range (file truncated?)")))?;
        let numel: usize = e.shape.iter().product();
        let values: Vec<f32> = match e.dtype.as_str() {
            "F32" => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            "F16" => raw.chunks_exact(2).map(|c| f16::to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            "BF16" => raw.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect(),
            "F64" => raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect(),
            "I64" => raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect(),
            other => return Err(bad(format!("{name}: unsupported dtype {other}"))),
        };
        if values.len() != numel {
            return Err(bad(format!("{name}: {} values for shape {:?}", values.len(), e.shape)));
        }
        out.tensors.push(NamedTensor { name, shape: e.shape, data: values });
    }
    Ok(out)
}

pub fn write(st: &SafeTensors, dtype: Dtype) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !st.metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::to_value(&st.metadata).unwrap_or_default());
    }
    let mut data = Vec::new();
    for t in &st.tensors {
        let start = data.len();
        match dtype {
            Dtype::F32 => t.data.iter().for_each(|v| data.extend_from_slice(&v.to_le_bytes())),
            Dtype::F16 => t.data.iter().for_each(|v| data.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        }
        header.insert(
            t.name.clone(),
            serde_json::json!({
                "dtype": match dtype { Dtype::F32 => "F32", Dtype::F16 => "F16" },
                "shape": t.shape,
                "data_offsets": [start, data.len()],
            }),
        );
    }
    let mut h = serde_json::to_vec(&header).unwrap_or_default();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + data.len());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    out
}
