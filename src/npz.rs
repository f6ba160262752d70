//! Reading and writing `.npz` files (numpy's zip of `.npy` arrays) as named host tensors.
//!
//! Keys are the member names without `.npy`. Supported arrays are little-endian and C-ordered,
//! of dtypes `<f4 <f2 <f8 <i8 <i4 <i2 <u2 <u4 <u8 |i1 |u1 |b1`; bf16, which numpy lacks, is
//! stored as its raw bits under `<u2`, read back as u16 and reinterpreted as bf16 where a model
//! input expects bf16 ([`bits_as_bf16`]). Members may be
//! stored or deflated. Every malformed input is an [`NpzError`] naming the file and the array.

use crate::npy::{self, NpyFault};
use kiln_runtime::{DType, Tensor};
use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

/// Everything that can go wrong reading or writing an `.npz` file.
#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path is not a regular file (a device such as `/dev/zero`, a FIFO, a folder).
    #[error("{}: not a regular file (inputs are read from .npz files only)", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a readable zip archive.
    #[error("{}: not a valid .npz (zip) file: {message}", path.display())]
    NotZip {
        /// The file.
        path: PathBuf,
        /// What the zip reader said.
        message: String,
    },
    /// A zip member could not be read (bad compression data, encryption, bad CRC, ...).
    #[error("{}: array `{key}`: cannot read the zip member: {message}", path.display())]
    Member {
        /// The file.
        path: PathBuf,
        /// The member's key.
        key: String,
        /// What the zip reader said.
        message: String,
    },
    /// A zip member whose name does not end in `.npy`.
    #[error("{}: member `{key}` is not an .npy array (its name must end in `.npy`)", path.display())]
    NotNpy {
        /// The file.
        path: PathBuf,
        /// The member's full name.
        key: String,
    },
    /// Two members with the same name (the zip reader would silently keep only one).
    #[error("{}: the archive holds two arrays with the same name", path.display())]
    DuplicateKey {
        /// The file.
        path: PathBuf,
    },
    /// A member that does not start with the `.npy` magic bytes.
    #[error("{}: array `{key}`: not an .npy array (bad magic bytes)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// An `.npy` format version other than 1.0, 2.0 and 3.0.
    #[error("{}: array `{key}`: unsupported .npy version {major}.{minor}", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// An `.npy` header that is truncated or not the dict numpy writes.
    #[error("{}: array `{key}`: malformed .npy header: {message}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A dtype Kiln does not handle (complex, object, string, structured, ...).
    #[error(
        "{}: array `{key}`: unsupported dtype `{descr}` (supported: <f4 <f2 <f8 <i8 <i4 <i2 <u2 <u4 <u8 |i1 |u1 |b1)",
        path.display()
    )]
    UnsupportedDType {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The numpy `descr`.
        descr: String,
    },
    /// A big-endian array.
    #[error("{}: array `{key}`: dtype `{descr}` is big-endian; only little-endian arrays are supported", path.display())]
    BigEndian {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The numpy `descr`.
        descr: String,
    },
    /// A Fortran-ordered array.
    #[error("{}: array `{key}`: Fortran-ordered arrays are not supported (save a C-ordered copy)", path.display())]
    FortranOrder {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A shape whose size overflows.
    #[error("{}: array `{key}`: shape {shape:?} is too large", path.display())]
    ShapeOverflow {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The shape.
        shape: Vec<usize>,
    },
    /// Data whose length does not match the header's shape and dtype.
    #[error(
        "{}: array `{key}`: shape {shape:?} of {dtype} needs {expected} data bytes, found {found}",
        path.display()
    )]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The declared shape.
        shape: Vec<usize>,
        /// The declared dtype.
        dtype: DType,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The output file cannot be written (it names the path and the cause).
    #[error("{source}")]
    Output {
        /// What went wrong, with the path.
        source: Box<kiln_runtime::artifact::ArtifactError>,
    },
    /// The zip writer failed.
    #[error("{}: cannot write the .npz: {message}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the zip writer said.
        message: String,
    },
}

fn member_error(path: &Path, key: &str, fault: NpyFault) -> NpzError {
    let (path, key) = (path.to_path_buf(), key.to_string());
    match fault {
        NpyFault::BadMagic => NpzError::BadMagic { path, key },
        NpyFault::UnsupportedVersion { major, minor } => NpzError::UnsupportedVersion {
            path,
            key,
            major,
            minor,
        },
        NpyFault::BadHeader(message) => NpzError::BadHeader { path, key, message },
        NpyFault::UnsupportedDType(descr) => NpzError::UnsupportedDType { path, key, descr },
        NpyFault::BigEndian(descr) => NpzError::BigEndian { path, key, descr },
        NpyFault::FortranOrder => NpzError::FortranOrder { path, key },
        NpyFault::ShapeOverflow(shape) => NpzError::ShapeOverflow { path, key, shape },
        NpyFault::SizeMismatch {
            shape,
            dtype,
            expected,
            found,
        } => NpzError::SizeMismatch {
            path,
            key,
            shape,
            dtype,
            expected,
            found,
        },
    }
}

/// Reads an `.npz` file.
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, Tensor>, NpzError> {
    let meta = std::fs::metadata(path).map_err(|source| NpzError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(NpzError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| NpzError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_npz_bytes(&bytes, path)
}

/// Decodes the bytes of an `.npz` file; `path` is used only in error messages.
pub fn read_npz_bytes(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, Tensor>, NpzError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| NpzError::NotZip {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if zip.has_duplicate_names() {
        return Err(NpzError::DuplicateKey {
            path: path.to_path_buf(),
        });
    }
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let listed = match zip.name_for_index(i) {
            Some(Ok(n)) => n.trim_end_matches(".npy").to_string(),
            _ => format!("#{i}"),
        };
        let mut member = zip.by_index(i).map_err(|e| NpzError::Member {
            path: path.to_path_buf(),
            key: listed,
            message: e.to_string(),
        })?;
        if member.is_dir() {
            continue;
        }
        let name = match member.name() {
            Ok(n) => n.into_owned(),
            Err(_) => String::from_utf8_lossy(member.name_raw()).into_owned(),
        };
        let Some(key) = name.strip_suffix(".npy").map(str::to_string) else {
            return Err(NpzError::NotNpy {
                path: path.to_path_buf(),
                key: name,
            });
        };
        // Inflate no further than the declared size (a zip bomb declares a few bytes and
        // inflates to gigabytes); the `.npy` header then says how many bytes the array needs.
        let declared = member.size();
        let mut data = Vec::new();
        let read = (&mut member)
            .take(declared.saturating_add(1))
            .read_to_end(&mut data);
        let unreadable = |message: String| NpzError::Member {
            path: path.to_path_buf(),
            key: key.clone(),
            message,
        };
        if data.len() as u64 > declared {
            return Err(unreadable(format!(
                "it inflates to more than the {declared} bytes its zip header declares"
            )));
        }
        read.map_err(|e| unreadable(format!("{e} (its zip header declares {declared} bytes)")))?;
        let t = npy::decode(&data).map_err(|f| member_error(path, &key, f))?;
        out.insert(key, t);
    }
    Ok(out)
}

/// How to store the members of a written `.npz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Uncompressed, like `numpy.savez`.
    #[default]
    Stored,
    /// Deflated, like `numpy.savez_compressed`.
    Deflated,
}

/// Encodes named tensors as the bytes of an `.npz` file; `path` is used only in error messages.
pub fn write_npz_bytes(
    tensors: &BTreeMap<String, Tensor>,
    compression: Compression,
    path: &Path,
) -> Result<Vec<u8>, NpzError> {
    let fail = |e: &dyn std::fmt::Display| NpzError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let method = match compression {
        Compression::Stored => zip::CompressionMethod::Stored,
        Compression::Deflated => zip::CompressionMethod::Deflated,
    };
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (key, t) in tensors {
        let data = npy::encode(t);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(data.len() >= u32::MAX as usize);
        w.start_file(format!("{key}.npy"), options)
            .map_err(|e| fail(&e))?;
        w.write_all(&data).map_err(|e| fail(&e))?;
    }
    Ok(w.finish().map_err(|e| fail(&e))?.into_inner())
}

/// Writes named tensors to an `.npz` file atomically: the bytes go to a temporary file in the
/// same directory, which is then renamed over `path`, so a failure never leaves a partial file.
pub fn write_npz(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    compression: Compression,
) -> Result<(), NpzError> {
    let bytes = write_npz_bytes(tensors, compression, path)?;
    kiln_runtime::artifact::write_atomically(path, &bytes).map_err(|e| NpzError::Output {
        source: Box::new(e),
    })
}

/// Inputs read from an `.npz` file, with each u16 array whose model input (by `dtypes`, name →
/// expected dtype) is bf16 reinterpreted as bf16 bits: Kiln writes bf16 as `<u2`.
pub fn bits_as_bf16(
    mut inputs: BTreeMap<String, Tensor>,
    dtypes: &[(String, DType)],
) -> BTreeMap<String, Tensor> {
    use kiln_runtime::TensorData;
    for (name, dtype) in dtypes {
        let Some(t) = inputs.get_mut(name) else {
            continue;
        };
        if let (DType::BF16, TensorData::U16(bits)) = (*dtype, t.data()) {
            let data = TensorData::BF16(
                bits.iter()
                    .map(|&b| kiln_runtime::bf16::from_bits(b))
                    .collect(),
            );
            if let Ok(v) = Tensor::new(t.shape().to_vec(), data) {
                *t = v;
            }
        }
    }
    inputs
}
