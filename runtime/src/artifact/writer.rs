//! The writer: assembles a header and sections into `.kiln` bytes, and writes them atomically (a
//! temporary file in the same directory, renamed over the target only once complete).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::header::{encode, header_len_for};
use super::{
    payload_checksum, ArtifactError, SectionEntry, SectionKind, Target, CHECKSUM_OFFSET, MAX_ALIGN,
    MAX_ARCH_LEN, MAX_COMPILER_VERSION_LEN,
};

/// The name messages use for mistakes caught while assembling an artifact.
const WRITER_NAME: &str = "<writer>";

/// Assembles an artifact: the compiler version, the target and up to one section of each kind,
/// laid out in the order they were added.
#[derive(Debug, Clone)]
pub struct ArtifactWriter {
    compiler_version: String,
    target: Target,
    data: Vec<Vec<u8>>,
    /// The section table with final offsets, recomputed by every `add_section`.
    layout: Vec<SectionEntry>,
    /// The file length the layout gives.
    total_len: usize,
}

fn writer_path() -> PathBuf {
    PathBuf::from(WRITER_NAME)
}

/// The section table and file length for these sections, or `None` when it overflows.
fn lay_out(
    header_len: u64,
    sections: &[(SectionKind, u64, u64)],
) -> Option<(Vec<SectionEntry>, usize)> {
    let mut at = header_len;
    let mut entries = Vec::with_capacity(sections.len());
    for &(kind, align, len) in sections {
        let offset = at.checked_next_multiple_of(align)?;
        at = offset.checked_add(len)?;
        entries.push(SectionEntry {
            kind,
            offset,
            len,
            align,
        });
    }
    Some((entries, usize::try_from(at).ok()?))
}

impl ArtifactWriter {
    /// A writer for an artifact made by compiler `compiler_version` for `target`. Fails when a
    /// string is longer than the header allows.
    pub fn new(compiler_version: &str, target: Target) -> Result<ArtifactWriter, ArtifactError> {
        for (field, len, max) in [
            (
                "compiler version",
                compiler_version.len(),
                MAX_COMPILER_VERSION_LEN,
            ),
            ("target arch", target.arch.len(), MAX_ARCH_LEN),
        ] {
            if len as u64 > max {
                return Err(ArtifactError::FieldTooLong {
                    path: writer_path(),
                    field,
                    len: len as u64,
                    max,
                });
            }
        }
        let header_len = header_len_for(compiler_version.len() as u64, target.arch.len() as u64, 0);
        Ok(ArtifactWriter {
            compiler_version: compiler_version.to_string(),
            target,
            data: Vec::new(),
            layout: Vec::new(),
            total_len: header_len as usize,
        })
    }

    /// Adds the section `kind` holding `bytes`, starting at a multiple of `align` (raised to
    /// [`SectionKind::min_align`], so weights are always at least 64-byte aligned). Fails when the
    /// kind was already added, `align` is not a power of two of at most
    /// [`MAX_ALIGN`](super::MAX_ALIGN), or the file would be too large.
    pub fn add_section(
        &mut self,
        kind: SectionKind,
        bytes: impl Into<Vec<u8>>,
        align: u64,
    ) -> Result<&mut ArtifactWriter, ArtifactError> {
        if self.layout.iter().any(|s| s.kind == kind) {
            return Err(ArtifactError::DuplicateSection {
                path: writer_path(),
                kind,
            });
        }
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(ArtifactError::BadAlignment {
                path: writer_path(),
                kind,
                align,
                // Smaller alignments are raised to the kind's minimum, so any power of two works.
                min: 1,
                max: MAX_ALIGN,
            });
        }
        let bytes = bytes.into();
        let mut planned: Vec<(SectionKind, u64, u64)> = self
            .layout
            .iter()
            .map(|s| (s.kind, s.align, s.len))
            .collect();
        planned.push((kind, align.max(kind.min_align()), bytes.len() as u64));
        let header_len = header_len_for(
            self.compiler_version.len() as u64,
            self.target.arch.len() as u64,
            planned.len() as u64,
        );
        let (layout, total_len) =
            lay_out(header_len, &planned).ok_or_else(|| ArtifactError::TooLarge {
                path: writer_path(),
            })?;
        self.data.push(bytes);
        self.layout = layout;
        self.total_len = total_len;
        Ok(self)
    }

    /// The section table the artifact will have (offsets final for the sections added so far).
    pub fn sections(&self) -> &[SectionEntry] {
        &self.layout
    }

    /// The complete artifact: header, checksum and sections, padding zeroed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = encode(&self.compiler_version, &self.target, &self.layout);
        out.reserve_exact(self.total_len.saturating_sub(out.len()));
        for (entry, data) in self.layout.iter().zip(&self.data) {
            // `lay_out` checked that every offset fits in `usize` (each is below `total_len`).
            out.resize(entry.offset as usize, 0);
            out.extend_from_slice(data);
        }
        let sum = payload_checksum(&out);
        if let Some(field) = out.get_mut(CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8) {
            field.copy_from_slice(&sum.to_le_bytes());
        }
        out
    }

    /// Writes the artifact to `path` atomically: the bytes go to a temporary file in the same
    /// directory, which is flushed to disk and then renamed over `path`. On any error the
    /// temporary file is removed and `path` is left as it was (absent, or the old artifact).
    /// A process that has the old artifact mapped keeps seeing the old bytes.
    pub fn write_file(&self, path: &Path) -> Result<(), ArtifactError> {
        write_atomically(path, &self.to_bytes())
    }
}

/// Writes `bytes` to `path` atomically: into a new temporary file beside it, flushed, then
/// renamed over `path`, so a failure never leaves a partial file. Something at `path` that is
/// not a regular file (a device such as `/dev/stdout`, a FIFO, a directory, a symbolic link) is
/// refused rather than replaced by the rename. Every file Kiln writes (artifacts, `.npz`
/// outputs) goes through here.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
    let io = |action: &'static str| {
        move |source: std::io::Error| ArtifactError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let name = path.file_name().ok_or_else(|| ArtifactError::InvalidPath {
        path: path.to_path_buf(),
    })?;
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_file() {
            return Err(ArtifactError::NotReplaceable {
                path: path.to_path_buf(),
            });
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (mut file, temp) = create_temp(dir, name).map_err(io("create a temporary file"))?;
    file.write_all(bytes)
        .map_err(io("write the temporary file"))?;
    file.sync_all().map_err(io("flush the temporary file"))?;
    drop(file);
    fs::rename(&temp.path, path).map_err(io("rename the temporary file"))?;
    temp.keep();
    Ok(())
}

/// A temporary file that is removed when dropped, unless kept.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Creates a new, uniquely named file `.NAME.PID.N.tmp` in `dir`.
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> std::io::Result<(File, TempFile)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.{n}.tmp", std::process::id()));
        let path = dir.join(temp_name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, TempFile { path, keep: false })),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}
