//! The artifact error type: every way reading or writing a `.kiln` file can fail, each message
//! naming the file and the cause.

use std::path::PathBuf;

use super::SectionKind;
use crate::cpu::{CpuFeature, CpuFeatures};

/// Everything that can go wrong while writing or loading a `.kiln` artifact.
///
/// Every variant carries the `path` of the file it concerns (`<memory>` for
/// [`Artifact::from_bytes`](super::Artifact::from_bytes), `<writer>` for mistakes caught while an
/// [`ArtifactWriter`](super::ArtifactWriter) is assembling an artifact), and every message starts
/// with that path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// An operating-system call failed (open, stat, map, write, rename).
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What was being done, e.g. `open the file`, `memory-map the file`.
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The path names something that is not a regular file (a directory, a device).
    #[error("{}: not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// An output path that exists and is not a regular file: writing through a temporary file
    /// and a rename would replace the device, FIFO, directory or symbolic link.
    #[error(
        "{}: exists and is not a regular file; Kiln does not replace a device, FIFO, directory or \
         symbolic link with its output (name a regular file or a new path)",
        path.display()
    )]
    NotReplaceable {
        /// The path.
        path: PathBuf,
    },
    /// A path the writer cannot place a temporary file beside (no file name).
    #[error("{}: not a file path (it has no file name)", path.display())]
    InvalidPath {
        /// The path.
        path: PathBuf,
    },
    /// The header or a section ends past the end of the file.
    #[error("{}: truncated: {what} ends at byte {end} but the file has {file_len} bytes", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// `header` or ``section `weights` ``.
        what: String,
        /// The byte offset where it ends.
        end: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The file does not start with [`MAGIC`](super::MAGIC).
    #[error("{}: not a kiln artifact (it starts with {found:02x?}, not the kiln magic bytes)", path.display())]
    NotKiln {
        /// The file.
        path: PathBuf,
        /// The first eight bytes of the file.
        found: [u8; 8],
    },
    /// A format version this runtime cannot read.
    #[error("{}: format version {found}; this runtime reads version {supported}", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// [`FORMAT_VERSION`](super::FORMAT_VERSION).
        supported: u32,
    },
    /// A length-prefixed header string longer than the format allows.
    #[error("{}: header field `{field}` is {len} bytes long; at most {max} are allowed", path.display())]
    FieldTooLong {
        /// The file.
        path: PathBuf,
        /// `compiler version` or `target arch`.
        field: &'static str,
        /// The declared length.
        len: u64,
        /// The largest length allowed.
        max: u64,
    },
    /// More section-table entries than the format allows.
    #[error("{}: the header declares {count} sections; at most {max} are allowed", path.display())]
    TooManySections {
        /// The file.
        path: PathBuf,
        /// The declared count.
        count: u64,
        /// The largest count allowed.
        max: u64,
    },
    /// The reserved header word is not zero.
    #[error("{}: reserved header field at byte {offset} holds {value:#x}; it must be zero", path.display())]
    ReservedNonZero {
        /// The file.
        path: PathBuf,
        /// The field's byte offset.
        offset: u64,
        /// The value found.
        value: u32,
    },
    /// The header-length field disagrees with the lengths of the header's parts.
    #[error("{}: the header length field says {declared} bytes but the header's fields take {expected}", path.display())]
    HeaderLength {
        /// The file.
        path: PathBuf,
        /// The header-length field.
        declared: u64,
        /// 48 + 24 × section count + compiler-version length + arch length.
        expected: u64,
    },
    /// A section's offset plus length overflows a 64-bit integer.
    #[error("{}: {what} has offset {offset} and length {len}, which overflow a 64-bit file offset", path.display())]
    SectionOverflow {
        /// The file.
        path: PathBuf,
        /// ``section `weights` ``.
        what: String,
        /// The declared offset.
        offset: u64,
        /// The declared length.
        len: u64,
    },
    /// The stored checksum does not match the file's contents.
    #[error("{}: checksum mismatch: the header says {stored:#018x} but the contents hash to {computed:#018x} (the file is corrupt)", path.display())]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// The checksum stored in the header.
        stored: u64,
        /// The checksum of the contents.
        computed: u64,
    },
    /// A header string is not valid UTF-8.
    #[error("{}: header field `{field}` is not valid UTF-8", path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// `compiler version` or `target arch`.
        field: &'static str,
    },
    /// A section-table entry with a kind this runtime does not know.
    #[error("{}: section table entry {index} has unknown kind {kind}", path.display())]
    UnknownSectionKind {
        /// The file.
        path: PathBuf,
        /// The entry's position in the table.
        index: usize,
        /// The raw kind.
        kind: u32,
    },
    /// Two section-table entries of the same kind.
    #[error("{}: section `{}` appears more than once", path.display(), kind.name())]
    DuplicateSection {
        /// The file.
        path: PathBuf,
        /// The repeated kind.
        kind: SectionKind,
    },
    /// An alignment that is not a power of two in the allowed range.
    #[error("{}: section `{}` declares alignment {align}; it must be a power of two from {min} to {max}", path.display(), kind.name())]
    BadAlignment {
        /// The file.
        path: PathBuf,
        /// The section.
        kind: SectionKind,
        /// The declared alignment.
        align: u64,
        /// The smallest alignment allowed for this kind (64 for weights).
        min: u64,
        /// [`MAX_ALIGN`](super::MAX_ALIGN).
        max: u64,
    },
    /// A section whose offset is not a multiple of its alignment.
    #[error("{}: section `{}` starts at byte {offset}, which is not a multiple of its alignment {align}", path.display(), kind.name())]
    Misaligned {
        /// The file.
        path: PathBuf,
        /// The section.
        kind: SectionKind,
        /// Its offset.
        offset: u64,
        /// Its alignment.
        align: u64,
    },
    /// A section that starts inside the header.
    #[error("{}: section `{}` starts at byte {offset}, inside the header (which ends at byte {header_len})", path.display(), kind.name())]
    SectionInHeader {
        /// The file.
        path: PathBuf,
        /// The section.
        kind: SectionKind,
        /// Its offset.
        offset: u64,
        /// The header length.
        header_len: u64,
    },
    /// Two sections that share bytes.
    #[error("{}: sections `{}` and `{}` overlap: the first ends at byte {first_end} but the second starts at byte {second_offset}", path.display(), first.name(), second.name())]
    Overlap {
        /// The file.
        path: PathBuf,
        /// The section that starts first.
        first: SectionKind,
        /// The section that starts inside it.
        second: SectionKind,
        /// Where `first` ends.
        first_end: u64,
        /// Where `second` starts.
        second_offset: u64,
    },
    /// Built for another instruction-set architecture.
    #[error("{}: built for {built_for}; this machine is {host}", path.display())]
    WrongArch {
        /// The file.
        path: PathBuf,
        /// The artifact's target arch.
        built_for: String,
        /// This machine's arch (`std::env::consts::ARCH`).
        host: String,
    },
    /// The target feature bits include bits that name no feature this runtime knows.
    #[error("{}: built for CPU feature bits {bits:#x} that this runtime does not know (made by a newer compiler?)", path.display())]
    UnknownFeatures {
        /// The file.
        path: PathBuf,
        /// The unknown bits.
        bits: u64,
    },
    /// Built for CPU features this CPU lacks.
    #[error("{}: built for a CPU with {required}; this CPU lacks {}", path.display(), feature_list(missing))]
    MissingFeatures {
        /// The file.
        path: PathBuf,
        /// Every feature the artifact requires.
        required: CpuFeatures,
        /// The required features the host lacks (never empty).
        missing: Vec<CpuFeature>,
    },
    /// The artifact being written would not fit in a 64-bit file.
    #[error("{}: the artifact would be larger than a 64-bit file offset can address", path.display())]
    TooLarge {
        /// The file (`<writer>`).
        path: PathBuf,
    },
}

fn feature_list(features: &[CpuFeature]) -> String {
    let names: Vec<&str> = features.iter().map(|f| f.name()).collect();
    names.join(",")
}

impl ArtifactError {
    /// The file the error concerns.
    pub fn path(&self) -> &std::path::Path {
        match self {
            ArtifactError::Io { path, .. }
            | ArtifactError::NotAFile { path }
            | ArtifactError::NotReplaceable { path }
            | ArtifactError::InvalidPath { path }
            | ArtifactError::Truncated { path, .. }
            | ArtifactError::NotKiln { path, .. }
            | ArtifactError::UnsupportedVersion { path, .. }
            | ArtifactError::FieldTooLong { path, .. }
            | ArtifactError::TooManySections { path, .. }
            | ArtifactError::ReservedNonZero { path, .. }
            | ArtifactError::HeaderLength { path, .. }
            | ArtifactError::SectionOverflow { path, .. }
            | ArtifactError::ChecksumMismatch { path, .. }
            | ArtifactError::InvalidUtf8 { path, .. }
            | ArtifactError::UnknownSectionKind { path, .. }
            | ArtifactError::DuplicateSection { path, .. }
            | ArtifactError::BadAlignment { path, .. }
            | ArtifactError::Misaligned { path, .. }
            | ArtifactError::SectionInHeader { path, .. }
            | ArtifactError::Overlap { path, .. }
            | ArtifactError::WrongArch { path, .. }
            | ArtifactError::UnknownFeatures { path, .. }
            | ArtifactError::MissingFeatures { path, .. }
            | ArtifactError::TooLarge { path } => path,
        }
    }
}
