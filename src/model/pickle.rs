//! A minimal Python unpickler: just what `torch.save` writes (protocols 2-5, no arbitrary code).
//! Globals are kept as names; `REDUCE` of a known constructor is interpreted by the caller.
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, as little-endian two's-complement bytes (torch's magic number).
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Insertion-ordered, as Python dicts are.
    Dict(Vec<(Value, Value)>),
    /// `module.name`, from GLOBAL / STACK_GLOBAL.
    Global(String, String),
    /// `callable(*args)`, from REDUCE / NEWOBJ, left for the caller to interpret.
    Call(Box<Value>, Box<Value>),
    /// A persistent id (torch storages).
    PersId(Box<Value>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Checkpoint(format!("pickle: {}", msg.into()))
}

/// Reads one pickle from `data[*pos..]`, leaving `*pos` just past its STOP opcode.
pub fn load(data: &[u8], pos: &mut usize) -> Result<Value> {
    let mut stack: Vec<Value> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: std::collections::HashMap<u32, Value> = Default::default();
    let take = |pos: &mut usize, n: usize| -> Result<&[u8]> {
        let end = pos.checked_add(n).filter(|&e| e <= data.len()).ok_or_else(|| bad("truncated"))?;
        let s = &data[*pos..end];
        *pos = end;
        Ok(s)
    };
    fn le_u(b: &[u8]) -> u64 {
        b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64)
    }
    fn pop(stack: &mut Vec<Value>) -> Result<Value> {
        stack.pop().ok_or_else(|| bad("stack underflow"))
    }
    fn pop_mark(stack: &mut Vec<Value>, marks: &mut Vec<usize>) -> Result<Vec<Value>> {
        let m = marks.pop().ok_or_else(|| bad("no mark"))?;
        if m > stack.len() {
            return Err(bad("mark beyond stack"));
        }
        Ok(stack.split_off(m))
    }
    fn string(b: &[u8]) -> Result<Value> {
        Ok(Value::Str(String::from_utf8(b.to_vec()).map_err(|_| bad("invalid UTF-8 string"))?))
    }
    fn add_items(target: &mut Value, items: Vec<Value>) -> Result<()> {
        match target {
            Value::Dict(d) => {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            // OrderedDict() is REDUCE(Global(collections.OrderedDict), ()); the loader turns it
            // into a Dict, but be lenient with other dict-like constructors.
            _ => Err(bad("SETITEM(S) on a non-dict")),
        }
    }
    loop {
        let op = *take(pos, 1)?.first().ok_or_else(|| bad("truncated"))?;
        match op {
            0x80 => {
                take(pos, 1)?; // PROTO
            }
            0x95 => {
                take(pos, 8)?; // FRAME
            }
            b'.' => return pop(&mut stack),  // STOP
            b'(' => marks.push(stack.len()), // MARK
            b'}' => stack.push(Value::Dict(Vec::new())),
            b']' => stack.push(Value::List(Vec::new())),
            b')' => stack.push(Value::Tuple(Vec::new())),
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'J' => {
                let b = take(pos, 4)?;
                stack.push(Value::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64))
            }
            b'K' => stack.push(Value::Int(take(pos, 1)?[0] as i64)),
            b'M' => stack.push(Value::Int(le_u(take(pos, 2)?) as i64)),
            0x8a => {
                // LONG1: little-endian two's complement of n bytes
                let n = take(pos, 1)?[0] as usize;
                let b = take(pos, n)?;
                if n > 8 {
                    stack.push(Value::BigInt(b.to_vec()));
                    continue;
                }
                let mut v = le_u(b) as i64;
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Value::Int(v))
            }
            b'G' => {
                let b = take(pos, 8)?;
                stack.push(Value::Float(f64::from_be_bytes(b.try_into().map_err(|_| bad("float"))?)))
            }
            b'X' => {
                let n = le_u(take(pos, 4)?) as usize;
                stack.push(string(take(pos, n)?)?)
            }
            0x8c => {
                let n = take(pos, 1)?[0] as usize;
                stack.push(string(take(pos, n)?)?)
            }
            0x8d => {
                let n = le_u(take(pos, 8)?) as usize;
                stack.push(string(take(pos, n)?)?)
            }
            b'C' => {
                let n = take(pos, 1)?[0] as usize;
                stack.push(Value::Bytes(take(pos, n)?.to_vec()))
            }
            b'B' => {
                let n = le_u(take(pos, 4)?) as usize;
                stack.push(Value::Bytes(take(pos, n)?.to_vec()))
            }
            b'c' => {
                // GLOBAL: "module\nname\n"
                let read_line = |pos: &mut usize| -> Result<String> {
                    let rest = &data[*pos..];
                    let end = rest.iter().position(|&c| c == b'\n').ok_or_else(|| bad("unterminated GLOBAL"))?;
                    *pos += end + 1;
                    String::from_utf8(rest[..end].to_vec()).map_err(|_| bad("GLOBAL name"))
                };
                let module = read_line(pos)?;
                let name = read_line(pos)?;
                stack.push(Value::Global(module, name))
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => stack.push(Value::Global(m, n)),
                    _ => return Err(bad("STACK_GLOBAL of non-strings")),
                }
            }
            b'q' => {
                let i = take(pos, 1)?[0] as u32;
                memo.insert(i, stack.last().cloned().ok_or_else(|| bad("BINPUT on empty stack"))?);
            }
            b'r' => {
                let i = le_u(take(pos, 4)?) as u32;
                memo.insert(i, stack.last().cloned().ok_or_else(|| bad("LONG_BINPUT on empty stack"))?);
            }
            0x94 => {
                let i = memo.len() as u32;
                memo.insert(i, stack.last().cloned().ok_or_else(|| bad("MEMOIZE on empty stack"))?);
            }
            b'h' => {
                let i = take(pos, 1)?[0] as u32;
                stack.push(memo.get(&i).cloned().ok_or_else(|| bad("BINGET of unknown memo"))?)
            }
            b'j' => {
                let i = le_u(take(pos, 4)?) as u32;
                stack.push(memo.get(&i).cloned().ok_or_else(|| bad("LONG_BINGET of unknown memo"))?)
            }
            b't' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::Tuple(items))
            }
            0x85 => {
                let a = pop(&mut stack)?;
                stack.push(Value::Tuple(vec![a]))
            }
            0x86 => {
                let b = pop(&mut stack)?;
                let a = pop(&mut stack)?;
                stack.push(Value::Tuple(vec![a, b]))
            }
            0x87 => {
                let c = pop(&mut stack)?;
                let b = pop(&mut stack)?;
                let a = pop(&mut stack)?;
                stack.push(Value::Tuple(vec![a, b, c]))
            }
            b'l' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::List(items))
            }
            b'd' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                let mut d = Value::Dict(Vec::new());
                add_items(&mut d, items)?;
                stack.push(d)
            }
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.push(v),
                    _ => return Err(bad("APPEND to a non-list")),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.extend(items),
                    _ => return Err(bad("APPENDS to a non-list")),
                }
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                add_items(stack.last_mut().ok_or_else(|| bad("SETITEM on empty stack"))?, vec![k, v])?;
            }
            b'u' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                add_items(stack.last_mut().ok_or_else(|| bad("SETITEMS on empty stack"))?, items)?;
            }
            b'R' | 0x81 => {
                // REDUCE / NEWOBJ
                let args = pop(&mut stack)?;
                let f = pop(&mut stack)?;
                let v = match (&f, &args) {
                    (Value::Global(m, n), Value::Tuple(a)) if m == "collections" && n == "OrderedDict" && a.is_empty() => Value::Dict(Vec::new()),
                    _ => Value::Call(Box::new(f), Box::new(args)),
                };
                stack.push(v)
            }
            b'b' => {
                // BUILD: object state (e.g. OrderedDict._metadata); not needed.
                pop(&mut stack)?;
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(Value::PersId(Box::new(pid)))
            }
            other => return Err(bad(format!("unsupported opcode 0x{other:02x} at byte {}", *pos - 1))),
        }
    }
}
