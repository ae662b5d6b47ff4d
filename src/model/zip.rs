//! Just enough of the zip format to read PyTorch's checkpoints: stored (uncompressed) entries,
//! found through the central directory, with zip64 sizes and offsets.
use crate::error::{Error, Result};

fn bad(msg: impl Into<String>) -> Error {
    Error::Checkpoint(format!("zip: {}", msg.into()))
}

fn u16_at(b: &[u8], p: usize) -> Result<u16> {
    b.get(p..p + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or_else(|| bad("truncated"))
}
fn u32_at(b: &[u8], p: usize) -> Result<u32> {
    b.get(p..p + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(|| bad("truncated"))
}
fn u64_at(b: &[u8], p: usize) -> Result<u64> {
    b.get(p..p + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]))).ok_or_else(|| bad("truncated"))
}

/// (name, contents) of every entry.
pub fn entries(b: &[u8]) -> Result<Vec<(String, &[u8])>> {
    // End of central directory: the last 0x06054b50 within the final 64 KiB + 22 bytes.
    let search_from = b.len().saturating_sub(65_557);
    let eocd = (search_from..b.len().saturating_sub(21))
        .rev()
        .find(|&p| u32_at(b, p).ok() == Some(0x0605_4b50))
        .ok_or_else(|| bad("no end-of-central-directory record (truncated file?)"))?;
    let mut count = u16_at(b, eocd + 10)? as u64;
    let mut cd = u32_at(b, eocd + 16)? as u64;
    if count == 0xFFFF || cd == 0xFFFF_FFFF {
        // zip64: the locator sits just before the EOCD and points at the zip64 EOCD record.
        let loc = eocd.checked_sub(20).ok_or_else(|| bad("zip64 locator missing"))?;
        if u32_at(b, loc)? != 0x0706_4b50 {
            return Err(bad("zip64 locator missing"));
        }
        let rec = u64_at(b, loc + 8)? as usize;
        if u32_at(b, rec)? != 0x0606_4b50 {
            return Err(bad("zip64 end record missing"));
        }
        count = u64_at(b, rec + 32)?;
        cd = u64_at(b, rec + 48)?;
    }
    let mut out = Vec::new();
    let mut p = cd as usize;
    for _ in 0..count {
        if u32_at(b, p)? != 0x0201_4b50 {
            return Err(bad("corrupt central directory"));
        }
        let method = u16_at(b, p + 10)?;
        let mut csize = u32_at(b, p + 20)? as u64;
        let mut usize_ = u32_at(b, p + 24)? as u64;
        let name_len = u16_at(b, p + 28)? as usize;
        let extra_len = u16_at(b, p + 30)? as usize;
        let comment_len = u16_at(b, p + 32)? as usize;
        let mut local = u32_at(b, p + 42)? as u64;
        let name = String::from_utf8(b.get(p + 46..p + 46 + name_len).ok_or_else(|| bad("truncated"))?.to_vec()).map_err(|_| bad("entry name is not UTF-8"))?;
        // zip64 extra field (id 1): the 0xFFFFFFFF fields, in order usize, csize, offset.
        let mut e = p + 46 + name_len;
        let extra_end = e + extra_len;
        while e + 4 <= extra_end {
            let (id, len) = (u16_at(b, e)?, u16_at(b, e + 2)? as usize);
            if id == 1 {
                let mut q = e + 4;
                if usize_ == 0xFFFF_FFFF {
                    usize_ = u64_at(b, q)?;
                    q += 8;
                }
                if csize == 0xFFFF_FFFF {
                    csize = u64_at(b, q)?;
                    q += 8;
                }
                if local == 0xFFFF_FFFF {
                    local = u64_at(b, q)?;
                }
            }
            e += 4 + len;
        }
        if method != 0 || csize != usize_ {
            return Err(bad(format!("entry {name} is compressed (method {method}); PyTorch writes stored entries")));
        }
        let l = local as usize;
        if u32_at(b, l)? != 0x0403_4b50 {
            return Err(bad(format!("entry {name}: bad local header")));
        }
        let data_start = l + 30 + u16_at(b, l + 26)? as usize + u16_at(b, l + 28)? as usize;
        let data = b.get(data_start..data_start + csize as usize).ok_or_else(|| bad(format!("entry {name} truncated")))?;
        out.push((name, data));
        p += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}
