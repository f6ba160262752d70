//! The loader: opens a `.kiln` file (memory-mapped read-only) or an in-memory copy, validates
//! everything, and hands out the header and the section bytes.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::storage::{AlignedBytes, Storage};
use super::validate::validate;
use super::{ArtifactError, Header, SectionKind, FIXED_HEADER_LEN};
use crate::cpu::CpuFeatures;

/// The name messages use for an artifact loaded with [`Artifact::from_bytes`].
const MEMORY_NAME: &str = "<memory>";

/// A validated artifact: its header and its bytes (a read-only memory map of the file, or a
/// page-aligned copy). `Send + Sync`: share it between threads behind an `Arc`.
pub struct Artifact {
    storage: Storage,
    header: Header,
    path: Option<PathBuf>,
}

impl Artifact {
    /// Opens and validates the artifact at `path` for this machine (its architecture and
    /// [`CpuFeatures::host`]).
    pub fn open(path: &Path) -> Result<Artifact, ArtifactError> {
        Artifact::open_for(path, CpuFeatures::host())
    }

    /// Opens and validates the artifact at `path` for a machine of this architecture with the
    /// features `host`.
    pub fn open_for(path: &Path, host: CpuFeatures) -> Result<Artifact, ArtifactError> {
        let io = |action: &'static str| {
            move |source: std::io::Error| ArtifactError::Io {
                path: path.to_path_buf(),
                action,
                source,
            }
        };
        let file = File::open(path).map_err(io("open the file"))?;
        let meta = file.metadata().map_err(io("read the file's metadata"))?;
        if !meta.is_file() {
            return Err(ArtifactError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        // Refuse tiny files before mapping (an empty file cannot be mapped on every platform);
        // the mapped length is authoritative below.
        if meta.len() < FIXED_HEADER_LEN {
            return Err(ArtifactError::Truncated {
                path: path.to_path_buf(),
                what: "header".to_string(),
                end: FIXED_HEADER_LEN,
                file_len: meta.len(),
            });
        }
        let storage = Storage::map(&file).map_err(io("memory-map the file"))?;
        let header = validate(storage.bytes(), path, std::env::consts::ARCH, host)?;
        Ok(Artifact {
            storage,
            header,
            path: Some(path.to_path_buf()),
        })
    }

    /// Validates an artifact held in memory for a machine of this architecture with the features
    /// `host`. The bytes are copied into a page-aligned buffer so that section alignment holds;
    /// messages name the file `<memory>`.
    pub fn from_bytes(bytes: Vec<u8>, host: CpuFeatures) -> Result<Artifact, ArtifactError> {
        let storage = Storage::Memory(AlignedBytes::copy_of(&bytes));
        drop(bytes);
        let header = validate(
            storage.bytes(),
            Path::new(MEMORY_NAME),
            std::env::consts::ARCH,
            host,
        )?;
        Ok(Artifact {
            storage,
            header,
            path: None,
        })
    }

    /// The validated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The bytes of the section of `kind`, if the artifact has one. The slice starts at an
    /// address that is a multiple of the section's alignment.
    pub fn section(&self, kind: SectionKind) -> Option<&[u8]> {
        let entry = self.header.section(kind)?;
        let start = usize::try_from(entry.offset).ok()?;
        let len = usize::try_from(entry.len).ok()?;
        self.storage.bytes().get(start..start.checked_add(len)?)
    }

    /// The whole file, header included.
    pub fn bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// The file's length in bytes.
    pub fn file_len(&self) -> u64 {
        self.storage.bytes().len() as u64
    }

    /// The file the artifact was opened from (`None` for [`Artifact::from_bytes`]).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// True when the bytes are a memory map of the file rather than a copy.
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Artifact")
            .field("path", &self.path)
            .field("file_len", &self.file_len())
            .field("mapped", &self.is_mapped())
            .field("header", &self.header)
            .finish()
    }
}
