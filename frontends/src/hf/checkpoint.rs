//! Safetensors checkpoints of a Hugging Face folder: `model.safetensors` or a sharded set named by
//! `model.safetensors.index.json`, memory-mapped once per file; weights are found with or without
//! the architecture prefix (`bert.`, `model.`, `transformer.`) and converted only when the graph
//! asks for another dtype. A checkpoint can also hold owned in-memory tensors
//! ([`Checkpoint::from_tensors`]): what a GGUF file gives after dequantization, so the same
//! architecture builders serve both.

use crate::error::Error;
use kiln_compiler::ir::{DType, Weight};
use kiln_runtime::kernels::blocks::BlockFormat;
use kiln_runtime::Tensor;
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Prefixes that Hugging Face heads put in front of the base model's weight names.
pub const PREFIXES: &[&str] = &[
    "bert.",
    "model.",
    "transformer.",
    "vit.",
    "distilbert.",
    "roberta.",
];

#[derive(Debug, Clone)]
struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    data: Data,
    /// Owned bytes that are blocks of this format (a GGUF tensor kept quantized), `dtype` F32.
    blocks: Option<BlockFormat>,
}

/// Where an entry's bytes are.
#[derive(Clone)]
enum Data {
    /// A range of a mapped file: its index and absolute byte range.
    Mapped {
        file: usize,
        start: usize,
        len: usize,
    },
    /// Owned little-endian bytes (their length checked against dtype and shape).
    Owned(Arc<[u8]>),
}

impl std::fmt::Debug for Data {
    /// The location only: owned tensors can be hundreds of megabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Data::Mapped { file, start, len } => {
                write!(f, "Mapped {{ file: {file}, start: {start}, len: {len} }}")
            }
            Data::Owned(bytes) => write!(f, "Owned({} bytes)", bytes.len()),
        }
    }
}

/// An in-memory tensor for [`Checkpoint::from_tensors`].
#[derive(Debug, Clone)]
pub struct OwnedTensor {
    /// Its name.
    pub name: String,
    /// Element type (F32 for block-quantized bytes).
    pub dtype: DType,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Little-endian values, or for `blocks` the rows as blocks of that format.
    pub bytes: Arc<[u8]>,
    /// The block format when `bytes` is a `[rows, k]` matrix kept block-quantized.
    pub blocks: Option<BlockFormat>,
}

/// The tensors of a folder's safetensors files.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    files: Vec<(PathBuf, Arc<Mmap>)>,
    entries: BTreeMap<String, Entry>,
}

fn kiln_dtype(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::F64 => DType::F64,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}

impl Checkpoint {
    /// Opens `model.safetensors` in `dir`, or every shard listed by
    /// `model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<Checkpoint, Error> {
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index.is_file() {
            let text = read(&index)?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config {
                path: index.clone(),
                message: format!("not valid JSON: {e}"),
            })?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::Config {
                    path: index.clone(),
                    message: "has no `weight_map` object".to_string(),
                })?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect();
            shards.sort();
            shards.dedup();
            for s in &shards {
                if Path::new(s).components().count() != 1 || s.starts_with('.') {
                    return Err(Error::Config {
                        path: index.clone(),
                        message: format!("shard `{s}` must be a file name inside the folder"),
                    });
                }
            }
            shards.into_iter().map(|s| dir.join(s)).collect()
        } else {
            vec![dir.join("model.safetensors")]
        };
        let mut ck = Checkpoint {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            entries: BTreeMap::new(),
        };
        for path in files {
            ck.add_file(path)?;
        }
        Ok(ck)
    }

    fn add_file(&mut self, path: PathBuf) -> Result<(), Error> {
        let file = open_regular(&path)?;
        // SAFETY: the mapping is only read. As with every mmap-based loader, a checkpoint that
        // another process modifies while it is mapped is outside our guarantees; every offset
        // read from it is validated against the mapping's length first.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let (header, meta) = SafeTensors::read_metadata(&map).map_err(|e| Error::Safetensors {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let base = 8usize
            .checked_add(header)
            .ok_or_else(|| Error::Safetensors {
                path: path.clone(),
                message: "header size overflows".into(),
            })?;
        let idx = self.files.len();
        for (name, info) in meta.tensors() {
            let dtype = kiln_dtype(info.dtype).ok_or_else(|| Error::Safetensors {
                path: path.clone(),
                message: format!(
                    "tensor `{name}` has dtype {:?}, which Kiln does not support",
                    info.dtype
                ),
            })?;
            let (s, e) = info.data_offsets;
            let start = base
                .checked_add(s)
                .filter(|&a| e >= s && a + (e - s) <= map.len())
                .ok_or_else(|| Error::Safetensors {
                    path: path.clone(),
                    message: format!("tensor `{name}` lies outside the file"),
                })?;
            let entry = Entry {
                dtype,
                shape: info.shape.clone(),
                data: Data::Mapped {
                    file: idx,
                    start,
                    len: e - s,
                },
                blocks: None,
            };
            if self.entries.insert(name.clone(), entry).is_some() {
                return Err(Error::Safetensors {
                    path: path.clone(),
                    message: format!("tensor `{name}` appears in two shards"),
                });
            }
        }
        self.files.push((path, Arc::new(map)));
        Ok(())
    }

    /// A checkpoint of owned tensors that came from `origin` (the file named in errors, and
    /// what [`Checkpoint::dir`] returns). Each tensor's byte length must match its dtype and
    /// shape, and names must be unique.
    pub fn from_tensors(origin: &Path, tensors: Vec<OwnedTensor>) -> Result<Checkpoint, Error> {
        let mut entries = BTreeMap::new();
        for t in tensors {
            let OwnedTensor {
                name,
                dtype,
                shape,
                bytes,
                blocks,
            } = t;
            let want = match (blocks, &shape[..]) {
                (Some(f), [rows, k]) => f.row_bytes(*k).and_then(|r| r.checked_mul(*rows)),
                (Some(_), _) => None,
                (None, _) => shape
                    .iter()
                    .try_fold(dtype.size(), |a, &d| a.checked_mul(d)),
            };
            let bad = |message: String| Error::Tensor {
                path: origin.to_path_buf(),
                tensor: name.clone(),
                message,
            };
            if want != Some(bytes.len()) {
                return Err(bad(format!(
                    "{} bytes do not hold a {} tensor of shape {shape:?}",
                    bytes.len(),
                    dtype.name()
                )));
            }
            let entry = Entry {
                dtype,
                shape,
                data: Data::Owned(bytes),
                blocks,
            };
            if entries.insert(name.clone(), entry).is_some() {
                return Err(bad("appears twice".to_string()));
            }
        }
        Ok(Checkpoint {
            dir: origin.to_path_buf(),
            files: Vec::new(),
            entries,
        })
    }

    /// The folder (or, for [`Checkpoint::from_tensors`], the file the tensors came from).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every tensor name in the checkpoint.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The stored name for `name`: itself, or with an architecture prefix added or removed.
    pub fn resolve(&self, name: &str) -> Option<String> {
        if self.entries.contains_key(name) {
            return Some(name.to_string());
        }
        for p in PREFIXES {
            let with = format!("{p}{name}");
            if self.entries.contains_key(&with) {
                return Some(with);
            }
            if let Some(without) = name.strip_prefix(p) {
                if self.entries.contains_key(without) {
                    return Some(without.to_string());
                }
            }
        }
        None
    }

    /// Whether a tensor exists (with or without prefix).
    pub fn has(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    /// The stored shape of a tensor.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.resolve(name)
            .and_then(|n| self.entries.get(&n).map(|e| e.shape.clone()))
    }

    /// The weight `name` as `dtype` with shape `expected`: mapped in place when the stored dtype
    /// matches, converted (copied) otherwise. Missing or mis-shaped tensors are errors that name
    /// the tensor and both shapes.
    pub fn weight(&self, name: &str, expected: &[usize], dtype: DType) -> Result<Weight, Error> {
        let stored = self.resolve(name).ok_or_else(|| Error::MissingWeight {
            path: self.dir.clone(),
            tensor: name.to_string(),
            expected: expected.to_vec(),
        })?;
        let Some(e) = self.entries.get(&stored) else {
            return Err(Error::MissingWeight {
                path: self.dir.clone(),
                tensor: stored,
                expected: expected.to_vec(),
            });
        };
        let file = match e.data {
            Data::Mapped { file, .. } => self.files.get(file),
            Data::Owned(_) => None,
        };
        if e.shape != expected {
            return Err(Error::WeightShape {
                path: file.map_or_else(|| self.dir.clone(), |f| f.0.clone()),
                tensor: stored,
                expected: expected.to_vec(),
                found: e.shape.clone(),
            });
        }
        let w = match (&e.data, file) {
            (Data::Mapped { start, len, .. }, Some((_, map))) => Weight::mapped(
                stored.clone(),
                e.dtype,
                e.shape.clone(),
                map.clone(),
                *start,
                *len,
            )?,
            (Data::Owned(bytes), _) => match e.blocks {
                Some(format) => {
                    Weight::blocked(stored.clone(), format, e.shape.clone(), bytes.clone())?
                }
                None => {
                    Weight::from_bytes(stored.clone(), e.dtype, e.shape.clone(), bytes.clone())?
                }
            },
            (Data::Mapped { .. }, None) => {
                return Err(Error::MissingWeight {
                    path: self.dir.clone(),
                    tensor: stored,
                    expected: expected.to_vec(),
                })
            }
        };
        if e.dtype == dtype {
            return Ok(w);
        }
        let t: Tensor = w.to_tensor()?.cast(dtype);
        Ok(Weight::from_tensor(stored, &t))
    }
}

/// The largest JSON file of a model folder Kiln reads (configs and index files are kilobytes).
const MAX_TEXT_BYTES: u64 = 256 << 20;

/// Opens a file of a model folder, refusing devices, FIFOs and folders before opening (a link to
/// `/dev/zero` would be read forever; opening a FIFO blocks).
pub(crate) fn open_regular(path: &Path) -> Result<std::fs::File, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_regular = || {
        io(std::io::Error::other(
            "not a regular file (a device, FIFO or folder)",
        ))
    };
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Reads a text file of a model folder (a regular file of at most 256 MiB), naming it on
/// failure.
pub fn read(path: &Path) -> Result<String, Error> {
    use std::io::Read;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    open_regular(path)?
        .take(MAX_TEXT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_TEXT_BYTES {
        return Err(io(std::io::Error::other(format!(
            "larger than {MAX_TEXT_BYTES} bytes, which no model folder's JSON file needs"
        ))));
    }
    Ok(text)
}
