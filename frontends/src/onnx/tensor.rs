//! `TensorProto` decoding: every storage form (little-endian `raw_data`, the typed fields,
//! external files) into a [`Weight`] or a host [`Tensor`], checking every size.
//!
//! External data is refused unless its location is relative, has no `..`, and still lies inside
//! the model folder once symlinks are resolved; each external file is memory-mapped once and
//! weights point into the mapping (no copy). Checks on the location live in `onnx::external`.

use super::external::{self, ExternalInfo};
use super::proto::tensor_proto::{DataLocation, DataType};
use super::proto::TensorProto;
use crate::Error;
use kiln_compiler::ir::Weight;
use kiln_runtime::{DType, Tensor};
use memmap2::Mmap;
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The Kiln dtype of an ONNX `TensorProto.DataType` value, or a message naming the ONNX type
/// when Kiln has no such dtype.
pub fn onnx_dtype(data_type: i32) -> Result<DType, String> {
    match DataType::try_from(data_type) {
        Ok(DataType::Float) => Ok(DType::F32),
        Ok(DataType::Uint8) => Ok(DType::U8),
        Ok(DataType::Int8) => Ok(DType::I8),
        Ok(DataType::Int32) => Ok(DType::I32),
        Ok(DataType::Int64) => Ok(DType::I64),
        Ok(DataType::Bool) => Ok(DType::Bool),
        Ok(DataType::Float16) => Ok(DType::F16),
        Ok(DataType::Double) => Ok(DType::F64),
        Ok(DataType::Bfloat16) => Ok(DType::BF16),
        Ok(DataType::Int16) => Ok(DType::I16),
        Ok(DataType::Uint16) => Ok(DType::U16),
        Ok(DataType::Uint32) => Ok(DType::U32),
        Ok(DataType::Uint64) => Ok(DType::U64),
        Ok(DataType::Undefined) => Err("data type is not set (UNDEFINED)".to_string()),
        Ok(other) => Err(format!(
            "unsupported data type {} ({data_type})",
            other.onnx_name()
        )),
        Err(_) => Err(format!("unknown data type {data_type}")),
    }
}

/// The ONNX `TensorProto.DataType` value of a Kiln dtype.
pub fn dtype_to_onnx(dtype: DType) -> i32 {
    let t = match dtype {
        DType::F32 => DataType::Float,
        DType::F16 => DataType::Float16,
        DType::BF16 => DataType::Bfloat16,
        DType::F64 => DataType::Double,
        DType::I64 => DataType::Int64,
        DType::I32 => DataType::Int32,
        DType::I8 => DataType::Int8,
        DType::U8 => DataType::Uint8,
        DType::I16 => DataType::Int16,
        DType::U16 => DataType::Uint16,
        DType::U32 => DataType::Uint32,
        DType::U64 => DataType::Uint64,
        DType::Bool => DataType::Bool,
    };
    t as i32
}

/// ONNX dims as a Kiln shape: negative dims and dims that do not fit `usize` are refused.
pub fn tensor_dims(dims: &[i64]) -> Result<Vec<usize>, String> {
    dims.iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                format!(
                    "dimension {d} in dims {} is not a valid size",
                    fmt_dims(dims)
                )
            })
        })
        .collect()
}

/// `dims` for a message, elided when very long.
pub(crate) fn fmt_dims<T: std::fmt::Debug>(dims: &[T]) -> String {
    if dims.len() <= 16 {
        format!("{dims:?}")
    } else {
        format!("[{} dims]", dims.len())
    }
}

/// Where the tensors of one model come from: the model file (named in errors), its folder
/// (external data is resolved against it) and the external files mapped so far.
#[derive(Debug)]
pub struct TensorSource {
    /// The `.onnx` (or `.pb`) file, for messages.
    pub path: PathBuf,
    /// The folder external data must stay inside.
    pub dir: PathBuf,
    files: Mutex<Files>,
}

#[derive(Debug, Default)]
struct Files {
    /// The canonical model folder, once resolved.
    root: Option<PathBuf>,
    /// Mapped external files, by canonical path.
    maps: HashMap<PathBuf, Arc<Mmap>>,
}

impl TensorSource {
    /// The source for a model file; its folder is the file's parent (`.` when it has none).
    pub fn new(path: impl Into<PathBuf>) -> TensorSource {
        let path = path.into();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        TensorSource::with_dir(path, dir)
    }

    /// A source whose external data is resolved against `dir`.
    pub fn with_dir(path: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> TensorSource {
        TensorSource {
            path: path.into(),
            dir: dir.into(),
            files: Mutex::new(Files::default()),
        }
    }

    /// How many distinct external files have been mapped.
    pub fn mapped_files(&self) -> usize {
        self.lock().maps.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Files> {
        // A panic while holding the lock cannot leave the cache inconsistent (inserts are
        // atomic), so a poisoned lock is still usable.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tensor_error(&self, tensor: &str, message: impl Into<String>) -> Error {
        Error::Tensor {
            path: self.path.clone(),
            tensor: tensor.to_string(),
            message: message.into(),
        }
    }

    /// The mapping of the external file at `location` (relative to the model folder), mapped on
    /// first use. Refuses locations that leave the folder.
    fn map_file(&self, location: &str) -> Result<Arc<Mmap>, String> {
        external::check_location(location)?;
        let mut files = self.lock();
        let root = match &files.root {
            Some(r) => r.clone(),
            None => {
                let r = std::fs::canonicalize(&self.dir).map_err(|e| {
                    format!(
                        "cannot resolve the model folder `{}`: {e}",
                        self.dir.display()
                    )
                })?;
                files.root = Some(r.clone());
                r
            }
        };
        let real = external::resolve_inside(&root, location)?;
        if let Some(map) = files.maps.get(&real) {
            return Ok(map.clone());
        }
        // Refuse FIFOs, devices and folders before opening (opening a FIFO would block).
        let not_regular = || format!("`{}` is not a regular file", real.display());
        let meta = std::fs::metadata(&real)
            .map_err(|e| format!("cannot stat `{}`: {e}", real.display()))?;
        if !meta.is_file() {
            return Err(not_regular());
        }
        let file = std::fs::File::open(&real)
            .map_err(|e| format!("cannot open `{}`: {e}", real.display()))?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(not_regular());
        }
        // SAFETY: the mapping is only ever read, through `&[u8]` slices whose bounds are
        // checked against the mapping's length. The file is opened read-only and treated as
        // immutable: like every mmap-based model loader, we accept that another process
        // truncating or rewriting a model's data file while it is loaded is outside our
        // guarantees (on truncation the OS may deliver SIGBUS).
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| format!("cannot map `{}`: {e}", real.display()))?;
        let map = Arc::new(map);
        files.maps.insert(real, map.clone());
        Ok(map)
    }
}

/// Decodes a tensor into a weight: inline data is copied (once), external data is mapped.
pub fn decode_tensor(t: &TensorProto, ctx: &TensorSource) -> Result<Weight, Error> {
    let err = |m: String| ctx.tensor_error(&t.name, m);
    let dtype = onnx_dtype(t.data_type).map_err(err)?;
    let shape = tensor_dims(&t.dims).map_err(err)?;
    let (numel, nbytes) = sizes(&shape, dtype).map_err(err)?;
    if t.segment.is_some() {
        return Err(err("segmented tensors are not supported".to_string()));
    }
    match DataLocation::try_from(t.data_location) {
        Ok(DataLocation::External) => return decode_external(t, ctx, dtype, shape, nbytes),
        Ok(DataLocation::Default) => {}
        Err(_) => return Err(err(format!("unknown data_location {}", t.data_location))),
    }
    let bytes = inline_bytes(t, dtype, &shape, numel, nbytes).map_err(err)?;
    Weight::from_bytes(t.name.clone(), dtype, shape, bytes).map_err(|e| err(e.to_string()))
}

/// Decodes a tensor into a host tensor (always a copy): for `Constant` values and test data.
pub fn decode_tensor_value(t: &TensorProto, ctx: &TensorSource) -> Result<Tensor, Error> {
    decode_tensor(t, ctx)?
        .to_tensor()
        .map_err(|e| ctx.tensor_error(&t.name, e.to_string()))
}

/// Reads a file holding one serialized `TensorProto` (the ONNX test-data `input_0.pb` form):
/// its name and value.
pub fn read_tensor_file(path: impl AsRef<Path>) -> Result<(String, Tensor), Error> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let t = TensorProto::decode(bytes.as_slice()).map_err(|e| Error::Decode {
        path: path.to_path_buf(),
        message: format!("not a TensorProto: {e}"),
    })?;
    let value = decode_tensor_value(&t, &TensorSource::new(path))?;
    Ok((t.name, value))
}

/// Element count and byte size of a shape, or a message when they overflow.
fn sizes(shape: &[usize], dtype: DType) -> Result<(usize, usize), String> {
    let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match numel.and_then(|n| Some((n, n.checked_mul(dtype.size())?))) {
        Some(s) => Ok(s),
        None => Err(format!(
            "{dtype} {} is too large (size overflows)",
            fmt_dims(shape)
        )),
    }
}

/// The little-endian bytes of a tensor stored in the message itself (copied once).
fn inline_bytes(
    t: &TensorProto,
    dtype: DType,
    shape: &[usize],
    numel: usize,
    nbytes: usize,
) -> Result<Arc<[u8]>, String> {
    let typed = [
        ("float_data", t.float_data.len()),
        ("int32_data", t.int32_data.len()),
        ("int64_data", t.int64_data.len()),
        ("double_data", t.double_data.len()),
        ("uint64_data", t.uint64_data.len()),
        ("string_data", t.string_data.len()),
    ];
    let shown = || format!("{dtype} {}", fmt_dims(shape));
    if !t.raw_data.is_empty() {
        if let Some((field, _)) = typed.iter().find(|(_, n)| *n > 0) {
            return Err(format!("has both raw_data and {field}"));
        }
        if t.raw_data.len() != nbytes {
            return Err(format!(
                "raw_data has {} bytes, but {} needs {nbytes}",
                t.raw_data.len(),
                shown()
            ));
        }
        if dtype == DType::Bool {
            return Ok(t.raw_data.iter().map(|&b| u8::from(b != 0)).collect());
        }
        return Ok(Arc::from(t.raw_data.as_slice()));
    }
    let (field, count) = match dtype {
        DType::F32 => typed[0],
        DType::I64 => typed[2],
        DType::F64 => typed[3],
        DType::U32 | DType::U64 => typed[4],
        _ => typed[1],
    };
    if count != numel {
        if typed.iter().all(|(_, n)| *n == 0) {
            return Err(format!("has no data ({} needs {numel} elements)", shown()));
        }
        return Err(format!(
            "{field} has {count} values, but {} needs {numel}",
            shown()
        ));
    }
    let mut out = Vec::with_capacity(nbytes);
    match dtype {
        DType::F32 => t
            .float_data
            .iter()
            .for_each(|x| out.extend(x.to_le_bytes())),
        DType::F64 => t
            .double_data
            .iter()
            .for_each(|x| out.extend(x.to_le_bytes())),
        DType::I64 => t
            .int64_data
            .iter()
            .for_each(|x| out.extend(x.to_le_bytes())),
        DType::I32 => t
            .int32_data
            .iter()
            .for_each(|x| out.extend(x.to_le_bytes())),
        DType::I8 => {
            for &x in &t.int32_data {
                let v = i8::try_from(x).map_err(|_| out_of_range(x, "INT8"))?;
                out.extend(v.to_le_bytes());
            }
        }
        DType::U8 => {
            for &x in &t.int32_data {
                out.push(u8::try_from(x).map_err(|_| out_of_range(x, "UINT8"))?);
            }
        }
        DType::I16 => {
            for &x in &t.int32_data {
                let v = i16::try_from(x).map_err(|_| out_of_range(x, "INT16"))?;
                out.extend(v.to_le_bytes());
            }
        }
        DType::U16 => {
            for &x in &t.int32_data {
                let v = u16::try_from(x).map_err(|_| out_of_range(x, "UINT16"))?;
                out.extend(v.to_le_bytes());
            }
        }
        DType::U32 => {
            for &x in &t.uint64_data {
                let v = u32::try_from(x)
                    .map_err(|_| format!("uint64_data value {x} is out of range for UINT32"))?;
                out.extend(v.to_le_bytes());
            }
        }
        DType::U64 => t
            .uint64_data
            .iter()
            .for_each(|x| out.extend(x.to_le_bytes())),
        DType::Bool => {
            for &x in &t.int32_data {
                match x {
                    0 | 1 => out.push(x as u8),
                    _ => return Err(out_of_range(x, "BOOL")),
                }
            }
        }
        DType::F16 | DType::BF16 => {
            for &x in &t.int32_data {
                let bits = u16::try_from(x).map_err(|_| out_of_range(x, "16-bit float bits"))?;
                out.extend(bits.to_le_bytes());
            }
        }
    }
    Ok(out.into())
}

fn out_of_range(x: i32, what: &str) -> String {
    format!("int32_data value {x} is out of range for {what}")
}

/// A weight over a region of an external file.
fn decode_external(
    t: &TensorProto,
    ctx: &TensorSource,
    dtype: DType,
    shape: Vec<usize>,
    nbytes: usize,
) -> Result<Weight, Error> {
    let info = ExternalInfo::parse(&t.external_data).map_err(|m| ctx.tensor_error(&t.name, m))?;
    let err = |message: String| Error::ExternalData {
        path: ctx.path.clone(),
        tensor: t.name.clone(),
        location: info.location.clone(),
        message,
    };
    let (offset, length) = (info.offset.map_err(err)?, info.length.map_err(err)?);
    let want = u64::try_from(nbytes).map_err(|_| err("size overflows".to_string()))?;
    if let Some(len) = length.filter(|&l| l != want) {
        return Err(err(format!(
            "length {len} does not match {dtype} {} ({nbytes} bytes)",
            fmt_dims(&shape)
        )));
    }
    let map = ctx.map_file(&info.location).map_err(err)?;
    let file_len = map.len() as u64;
    if offset > file_len {
        return Err(err(format!(
            "offset {offset} is past the end of the {file_len}-byte file"
        )));
    }
    if offset.checked_add(want).is_none_or(|end| end > file_len) {
        return Err(err(format!(
            "offset {offset} + length {want} runs past the end of the {file_len}-byte file"
        )));
    }
    let offset = usize::try_from(offset).map_err(|_| err("offset overflows".to_string()))?;
    Weight::mapped(t.name.clone(), dtype, shape, map, offset, nbytes)
        .map_err(|e| err(e.to_string()))
}
