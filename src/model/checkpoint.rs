//! Reading pretrained weights: PyTorch checkpoints (the legacy pre-1.6 stream and the zip
//! format) and safetensors, all into named f32 tensors in their stored (PyTorch) layout.
use super::pickle::{self, Value};
use super::safetensors;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Checkpoint(msg.into())
}

/// Any supported format, told apart by its first bytes.
pub fn read(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    if bytes.starts_with(b"PK\x03\x04") {
        read_torch_zip(bytes)
    } else if bytes.len() >= 2 && bytes[0] == 0x80 && bytes[1] <= 5 {
        read_torch_legacy(bytes)
    } else if bytes.len() > 9 && bytes[8] == b'{' {
        Ok(safetensors::read(bytes)?.tensors)
    } else {
        Err(bad("not a PyTorch checkpoint (legacy or zip) nor a safetensors file"))
    }
}

/// Reads one element from its little-endian bytes.
type Decode = fn(&[u8]) -> f32;

/// Element size and decoder of a torch storage class name.
fn storage_dtype(class: &str) -> Result<(usize, Decode)> {
    Ok(match class {
        "FloatStorage" => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        "DoubleStorage" => (8, |b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32),
        "HalfStorage" => (2, |b| crate::model::f16::to_f32(u16::from_le_bytes([b[0], b[1]]))),
        "BFloat16Storage" => (2, |b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)),
        "LongStorage" => (8, |b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32),
        "IntStorage" => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32),
        "ByteStorage" | "BoolStorage" => (1, |b| b[0] as f32),
        other => return Err(bad(format!("unsupported storage type {other}"))),
    })
}

/// A tensor reference found in the pickled state dict.
struct TensorRef {
    name: String,
    storage_key: String,
    storage_class: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

fn ints(v: &Value, what: &str) -> Result<Vec<usize>> {
    v.as_seq()
        .ok_or_else(|| bad(format!("{what} is not a tuple")))?
        .iter()
        .map(|x| x.as_int().filter(|&i| i >= 0).map(|i| i as usize).ok_or_else(|| bad(format!("{what}: bad integer"))))
        .collect()
}

/// Interpret `_rebuild_tensor_v2(storage, offset, size, stride, ...)` (possibly wrapped in
/// `_rebuild_parameter`).
fn tensor_ref(name: &str, v: &Value) -> Result<Option<TensorRef>> {
    let Value::Call(f, args) = v else { return Ok(None) };
    let (Value::Global(_, fname), Some(args)) = (f.as_ref(), args.as_seq()) else { return Ok(None) };
    match fname.as_str() {
        "_rebuild_parameter" | "_rebuild_parameter_with_state" => match args.first() {
            Some(inner) => tensor_ref(name, inner),
            None => Err(bad(format!("{name}: empty parameter"))),
        },
        "_rebuild_tensor_v2" | "_rebuild_tensor" => {
            if args.len() < 4 {
                return Err(bad(format!("{name}: malformed tensor record")));
            }
            let Value::PersId(pid) = &args[0] else { return Err(bad(format!("{name}: tensor without storage"))) };
            let pid = pid.as_seq().ok_or_else(|| bad(format!("{name}: malformed storage id")))?;
            // ('storage', torch.FloatStorage, key, location, numel)
            let class = match pid.get(1) {
                Some(Value::Global(_, c)) => c.clone(),
                _ => return Err(bad(format!("{name}: storage without a type"))),
            };
            let key = pid.get(2).and_then(|k| k.as_str()).ok_or_else(|| bad(format!("{name}: storage without a key")))?;
            Ok(Some(TensorRef {
                name: name.to_string(),
                storage_key: key.to_string(),
                storage_class: class,
                offset: args[1].as_int().filter(|&o| o >= 0).ok_or_else(|| bad(format!("{name}: bad offset")))? as usize,
                shape: ints(&args[2], "shape")?,
                stride: ints(&args[3], "stride")?,
            }))
        }
        _ => Ok(None),
    }
}

/// Tensors of the state dict; accepts a bare state dict or one under "state_dict" / "model".
fn tensor_refs(root: &Value) -> Result<Vec<TensorRef>> {
    let Value::Dict(items) = root else { return Err(bad("the checkpoint does not hold a dict")) };
    let mut out = Vec::new();
    for (k, v) in items {
        if let Some(name) = k.as_str() {
            if let Some(t) = tensor_ref(name, v)? {
                out.push(t);
            }
        }
    }
    if out.is_empty() {
        for key in ["state_dict", "model", "model_state_dict"] {
            if let Some((_, inner)) = items.iter().find(|(k, _)| k.as_str() == Some(key)) {
                return tensor_refs(inner);
            }
        }
        return Err(bad("no tensors found in the checkpoint"));
    }
    Ok(out)
}

/// Materialise a (possibly strided) tensor from its storage bytes.
fn materialise(t: &TensorRef, storage: &[u8]) -> Result<NamedTensor> {
    let (size, conv) = storage_dtype(&t.storage_class)?;
    let numel: usize = t.shape.iter().product();
    if t.shape.len() != t.stride.len() {
        return Err(bad(format!("{}: shape and stride ranks differ", t.name)));
    }
    let mut data = Vec::with_capacity(numel);
    let mut idx = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let elem = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
        let b = storage.get(elem * size..(elem + 1) * size).ok_or_else(|| bad(format!("{}: storage {} is truncated", t.name, t.storage_key)))?;
        data.push(conv(b));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(NamedTensor { name: t.name.clone(), shape: t.shape.clone(), data })
}

/// Legacy format: magic, protocol version, sys info, state dict, storage keys (five pickles),
/// then per key an 8-byte little-endian element count and the raw elements.
pub fn read_torch_legacy(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let mut pos = 0;
    let magic = pickle::load(bytes, &mut pos)?;
    // 0x1950a86a20f9469cfc6c, little-endian
    const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    if magic != Value::BigInt(MAGIC.to_vec()) {
        return Err(bad("legacy checkpoint without the torch magic number"));
    }
    let _version = pickle::load(bytes, &mut pos)?;
    let _sys_info = pickle::load(bytes, &mut pos)?;
    let root = pickle::load(bytes, &mut pos)?;
    let keys = pickle::load(bytes, &mut pos)?;
    let keys: Vec<String> = keys
        .as_seq()
        .ok_or_else(|| bad("storage key list missing"))?
        .iter()
        .map(|k| k.as_str().map(str::to_string).ok_or_else(|| bad("storage key is not a string")))
        .collect::<Result<_>>()?;
    let refs = tensor_refs(&root)?;
    let mut storages = std::collections::HashMap::new();
    for key in &keys {
        let class = refs.iter().find(|r| &r.storage_key == key).map(|r| r.storage_class.clone());
        let count = bytes.get(pos..pos + 8).ok_or_else(|| bad(format!("storage {key}: truncated")))?;
        let count = u64::from_le_bytes(count.try_into().map_err(|_| bad("count"))?) as usize;
        pos += 8;
        let size = match &class {
            Some(c) => storage_dtype(c)?.0,
            None => return Err(bad(format!("storage {key} is not used by any tensor; cannot size it"))),
        };
        let len = count.checked_mul(size).ok_or_else(|| bad("storage too large"))?;
        let data = bytes.get(pos..pos + len).ok_or_else(|| bad(format!("storage {key}: file truncated")))?;
        storages.insert(key.clone(), data);
        pos += len;
    }
    refs.iter().map(|r| materialise(r, storages.get(&r.storage_key).ok_or_else(|| bad(format!("{}: missing storage", r.name)))?)).collect()
}

/// Zip format (torch >= 1.6): `<dir>/data.pkl` plus one stored entry per storage, `<dir>/data/<key>`.
pub fn read_torch_zip(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let entries = super::zip::entries(bytes)?;
    let (pkl_name, pkl) = entries.iter().find(|(n, _)| n.ends_with("/data.pkl") || n == "data.pkl").ok_or_else(|| bad("zip checkpoint without data.pkl"))?;
    let prefix = pkl_name.trim_end_matches("data.pkl");
    let mut pos = 0;
    let root = pickle::load(pkl, &mut pos)?;
    let refs = tensor_refs(&root)?;
    refs.iter()
        .map(|r| {
            let want = format!("{prefix}data/{}", r.storage_key);
            let data = entries.iter().find(|(n, _)| *n == want).map(|(_, d)| *d).ok_or_else(|| bad(format!("{}: storage entry {want} missing", r.name)))?;
            materialise(r, data)
        })
        .collect()
}
