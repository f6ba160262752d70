//! The GGUF container (llama.cpp's checkpoint file, versions 2 and 3): header, metadata
//! key/values, tensor infos and the aligned data section, read from untrusted bytes.
//!
//! Layout (little-endian): `GGUF`, `u32` version, `u64` tensor count, `u64` key/value count, the
//! key/values (`string` key, `u32` value type, value), the tensor infos (`string` name, `u32`
//! dimension count, `u64` dims innermost first, `u32` ggml type, `u64` offset into the data
//! section), padding to `general.alignment` (default 32), the data section. A `string` is a
//! `u64` byte length and UTF-8 bytes; an array is a `u32` element type, a `u64` count and the
//! elements (arrays may nest).
//!
//! Every count and length is checked against the bytes left before anything is allocated (each
//! element of a kind takes at least a known number of bytes), so a hostile count is an error,
//! never an allocation failure; tensor data ranges must lie inside the file, be aligned and not
//! overlap, and names and keys must be unique.

use super::dequant::GgmlType;
pub use super::value::{Array, Value};
use crate::error::Error;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// The first four bytes of every GGUF file.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// The data alignment when the file has no `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
const MAX_DIMS: u32 = 4;

/// One tensor's entry in the header.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`).
    pub name: String,
    /// The dimensions, innermost first (`dims[0]` is the row length), as ggml lists them.
    pub dims: Vec<usize>,
    /// The element (block) type.
    pub ggml_type: GgmlType,
    /// The number of elements.
    pub numel: usize,
    /// The absolute byte offset of the data in the file.
    pub start: usize,
    /// The data's byte length.
    pub len: usize,
}

/// A parsed GGUF header: everything but the tensor data.
#[derive(Debug, Clone)]
pub struct Header {
    /// The format version (2 or 3).
    pub version: u32,
    /// The metadata, by key.
    pub metadata: BTreeMap<String, Value>,
    /// The tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// The data alignment (`general.alignment`, default 32).
    pub alignment: u64,
    /// The absolute offset of the data section.
    pub data_start: usize,
}

/// A little-endian reader over the file's bytes that never reads past the end.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "truncated: {n} bytes needed at offset {}, the file has {}",
                    self.pos,
                    self.bytes.len()
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(super) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(super) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A `u64` count of items taking at least `min_each` bytes each, bounded by the bytes left.
    pub(super) fn count(&mut self, min_each: usize, what: &str) -> Result<usize, String> {
        let at = self.pos;
        let n = self.u64()?;
        let left = self.remaining();
        usize::try_from(n)
            .ok()
            .filter(|&n| n.checked_mul(min_each).is_some_and(|b| b <= left))
            .ok_or_else(|| {
                format!("{what} {n} at offset {at} does not fit in the {left} bytes left")
            })
    }

    pub(super) fn string(&mut self) -> Result<String, String> {
        let n = self.count(1, "string length")?;
        let at = self.pos;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("string at offset {at} is not UTF-8"))
    }
}

/// Parses the header of the GGUF file `path` whose bytes are `bytes`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Header, Error> {
    let err = |at: &str, message: String| Error::Gguf {
        path: path.to_path_buf(),
        at: at.to_string(),
        message,
    };
    let mut c = Cursor { bytes, pos: 0 };
    let magic = c.take(4).map_err(|m| err("header", m))?;
    if magic != MAGIC {
        return Err(err(
            "header",
            format!("not a GGUF file (magic {magic:02x?}, expected `GGUF`)"),
        ));
    }
    let version = c.u32().map_err(|m| err("header", m))?;
    if !(2..=3).contains(&version) {
        return Err(err(
            "header",
            format!("version {version} is not supported (2 and 3 are; a big-endian file reads as a huge version)"),
        ));
    }
    // A tensor info takes at least 24 bytes (empty name, dimension count, type, offset), a
    // key/value at least 13 (empty key, type, one byte).
    let n_tensors = c.count(24, "tensor count").map_err(|m| err("header", m))?;
    let n_kv = c
        .count(13, "metadata count")
        .map_err(|m| err("header", m))?;

    let mut metadata = BTreeMap::new();
    for i in 0..n_kv {
        let key = c
            .string()
            .map_err(|m| err(&format!("metadata entry #{i}"), m))?;
        let at = format!("key `{key}`");
        let ty = c.u32().map_err(|m| err(&at, m))?;
        let value = super::value::read(&mut c, ty).map_err(|m| err(&at, m))?;
        if metadata.insert(key, value).is_some() {
            return Err(err(&at, "appears twice".to_string()));
        }
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(v) => {
            return Err(err(
                "key `general.alignment`",
                format!("must be a uint32 power of two, got {v:?}"),
            ))
        }
    };

    let mut raw = Vec::with_capacity(n_tensors);
    let mut names = HashSet::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let name = c
            .string()
            .map_err(|m| err(&format!("tensor info #{i}"), m))?;
        let at = format!("tensor `{name}`");
        let info = tensor_info(&mut c).map_err(|m| err(&at, m))?;
        if !names.insert(name.clone()) {
            return Err(err(&at, "appears twice".to_string()));
        }
        raw.push((name, info));
    }
    let data_start = usize::try_from(alignment)
        .ok()
        .and_then(|a| c.pos.checked_next_multiple_of(a))
        .filter(|&s| s <= bytes.len())
        .ok_or_else(|| {
            err(
                "header",
                format!(
                    "the data section (offset {} aligned to {alignment}) starts past the end of the {}-byte file",
                    c.pos,
                    bytes.len()
                ),
            )
        })?;

    let mut tensors = Vec::with_capacity(raw.len());
    for (name, (dims, ggml_type, offset)) in raw {
        let at = format!("tensor `{name}`");
        let (numel, len) = ggml_type.byte_len(&dims).map_err(|m| err(&at, m))?;
        if offset % alignment != 0 {
            return Err(err(
                &at,
                format!("data offset {offset} is not a multiple of the alignment {alignment}"),
            ));
        }
        let start = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(data_start))
            .filter(|&s| s.checked_add(len).is_some_and(|e| e <= bytes.len()))
            .ok_or_else(|| {
                err(
                    &at,
                    format!(
                        "data ({len} bytes at data offset {offset}) lies outside the {}-byte file",
                        bytes.len()
                    ),
                )
            })?;
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            numel,
            start,
            len,
        });
    }
    check_overlap(&tensors).map_err(|(at, m)| err(&at, m))?;
    Ok(Header {
        version,
        metadata,
        tensors,
        alignment,
        data_start,
    })
}

/// Dimensions, type and data offset of one tensor info (after its name).
fn tensor_info(c: &mut Cursor) -> Result<(Vec<usize>, GgmlType, u64), String> {
    let n_dims = c.u32()?;
    if n_dims > MAX_DIMS {
        return Err(format!("{n_dims} dimensions (ggml has at most {MAX_DIMS})"));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        let d = c.u64()?;
        dims.push(usize::try_from(d).map_err(|_| format!("dimension {d} is too large"))?);
    }
    let ty = c.u32()?;
    let ggml_type = GgmlType::from_id(ty).ok_or_else(|| format!("unknown ggml type {ty}"))?;
    let offset = c.u64()?;
    Ok((dims, ggml_type, offset))
}

/// Refuses tensors whose data ranges overlap (empty tensors overlap nothing).
fn check_overlap(tensors: &[TensorInfo]) -> Result<(), (String, String)> {
    let mut spans: Vec<&TensorInfo> = tensors.iter().filter(|t| t.len > 0).collect();
    spans.sort_by_key(|t| t.start);
    for w in spans.windows(2) {
        if w[0].start + w[0].len > w[1].start {
            return Err((
                format!("tensor `{}`", w[1].name),
                format!("data overlaps tensor `{}`'s", w[0].name),
            ));
        }
    }
    Ok(())
}

/// A memory-mapped GGUF file and its parsed header.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    map: memmap2::Mmap,
    /// The parsed header.
    pub header: Header,
}

impl GgufFile {
    /// Maps and parses `path` (a regular file).
    pub fn open(path: &Path) -> Result<GgufFile, Error> {
        let file = crate::hf::checkpoint::open_regular(path)?;
        // SAFETY: the mapping is only read. As with every mmap-based loader, a file that another
        // process modifies while it is mapped is outside our guarantees; every offset read from
        // it is validated against the mapping's length first.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let header = parse(path, &map)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
            header,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.header.metadata.get(key)
    }

    /// The stored bytes of a tensor of this file's header (whose range [`parse`] checked);
    /// `None` for a range outside the file.
    pub fn data(&self, t: &TensorInfo) -> Option<&[u8]> {
        self.map.get(t.start..t.start.checked_add(t.len)?)
    }
}
