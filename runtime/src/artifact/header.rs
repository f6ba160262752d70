//! Header types (section kinds, target, section table) and the byte-level encoding and decoding
//! of the header described in the module documentation.

use std::fmt;
use std::path::Path;

use super::{
    ArtifactError, FIXED_HEADER_LEN, FORMAT_VERSION, MAGIC, MAX_ARCH_LEN, MAX_COMPILER_VERSION_LEN,
    MAX_SECTIONS, SECTION_ENTRY_LEN, WEIGHTS_MIN_ALIGN,
};
use crate::cpu::CpuFeatures;

/// What a section holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum SectionKind {
    /// The serialized execution plan.
    Plan = 1,
    /// Weight bytes, memory-mapped and used in place (aligned to at least 64 bytes).
    Weights = 2,
    /// A relocatable object with the generated CPU kernels.
    Code = 3,
    /// PTX for the generated CUDA kernels.
    Ptx = 4,
    /// Named files the pipelines read (tokenizer, configs); see [`super::assets`].
    Assets = 5,
}

impl SectionKind {
    /// Every kind, in numeric order.
    pub const ALL: [SectionKind; 5] = [
        SectionKind::Plan,
        SectionKind::Weights,
        SectionKind::Code,
        SectionKind::Ptx,
        SectionKind::Assets,
    ];

    /// The name used in messages: `plan`, `weights`, `code`, `ptx`, `assets`.
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Plan => "plan",
            SectionKind::Weights => "weights",
            SectionKind::Code => "code",
            SectionKind::Ptx => "ptx",
            SectionKind::Assets => "assets",
        }
    }

    /// The kind with this numeric value, if any.
    pub fn from_u32(value: u32) -> Option<SectionKind> {
        SectionKind::ALL.into_iter().find(|k| *k as u32 == value)
    }

    /// The smallest alignment a section of this kind may declare.
    pub fn min_align(self) -> u64 {
        match self {
            SectionKind::Weights => WEIGHTS_MIN_ALIGN,
            _ => 1,
        }
    }
}

impl fmt::Display for SectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an artifact was compiled for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The instruction-set architecture, as `std::env::consts::ARCH` spells it (`x86_64`).
    pub arch: String,
    /// The CPU features the generated code and the chosen kernels rely on.
    pub features: CpuFeatures,
}

impl Target {
    /// A target for `arch` with `features`.
    pub fn new(arch: impl Into<String>, features: CpuFeatures) -> Target {
        Target {
            arch: arch.into(),
            features,
        }
    }

    /// This machine: its architecture and every feature it has.
    pub fn host() -> Target {
        Target::new(std::env::consts::ARCH, CpuFeatures::host())
    }
}

/// One entry of the section table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionEntry {
    /// What the section holds.
    pub kind: SectionKind,
    /// The file offset of its first byte (a multiple of `align`).
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Its alignment: a power of two, at least [`SectionKind::min_align`].
    pub align: u64,
}

impl SectionEntry {
    /// The file offset one past its last byte.
    pub fn end(&self) -> u64 {
        // A validated entry never overflows; saturate rather than panic on a hand-built one.
        self.offset.saturating_add(self.len)
    }
}

/// A decoded, validated artifact header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The header's length in bytes; sections start at or after it.
    pub header_len: u64,
    /// The version of the compiler that wrote the artifact.
    pub compiler_version: String,
    /// What the artifact was compiled for.
    pub target: Target,
    /// The section table, in file order.
    pub sections: Vec<SectionEntry>,
    /// The stored checksum (see [`payload_checksum`](super::payload_checksum)).
    pub checksum: u64,
}

impl Header {
    /// The table entry for `kind`, if the artifact has that section.
    pub fn section(&self, kind: SectionKind) -> Option<&SectionEntry> {
        self.sections.iter().find(|s| s.kind == kind)
    }
}

/// A section-table entry as stored, before its kind and alignment are checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawEntry {
    pub kind: u32,
    pub align: u32,
    pub offset: u64,
    pub len: u64,
}

/// The header as stored: every field inside the file, lengths within bounds, nothing else checked.
#[derive(Debug)]
pub(crate) struct RawHeader<'a> {
    pub header_len: u64,
    pub checksum: u64,
    pub feature_bits: u64,
    pub compiler_version: &'a [u8],
    pub arch: &'a [u8],
    pub entries: Vec<RawEntry>,
}

/// How an entry is named in messages before its kind is known to be valid.
pub(crate) fn describe_section(kind: u32) -> String {
    match SectionKind::from_u32(kind) {
        Some(k) => format!("section `{}`", k.name()),
        None => format!("section of unknown kind {kind}"),
    }
}

fn le_u32(bytes: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn le_u64(bytes: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

fn slice(bytes: &[u8], at: u64, len: u64) -> Option<&[u8]> {
    let at = usize::try_from(at).ok()?;
    let len = usize::try_from(len).ok()?;
    bytes.get(at..at.checked_add(len)?)
}

/// The header length for these string lengths and section count (the caller bounds them).
pub(crate) fn header_len_for(compiler_version_len: u64, arch_len: u64, sections: u64) -> u64 {
    // Bounded inputs (≤ 256, ≤ 64, ≤ 16 in the reader; in-memory lengths in the writer): no
    // overflow, but saturate so that no input can panic.
    FIXED_HEADER_LEN
        .saturating_add(SECTION_ENTRY_LEN.saturating_mul(sections))
        .saturating_add(compiler_version_len)
        .saturating_add(arch_len)
}

/// Decodes the stored header: checks the length, magic, version, field bounds, header length and
/// that every section lies inside the file.
pub(crate) fn parse_raw<'a>(bytes: &'a [u8], path: &Path) -> Result<RawHeader<'a>, ArtifactError> {
    let file_len = bytes.len() as u64;
    let truncated = |what: String, end: u64| ArtifactError::Truncated {
        path: path.to_path_buf(),
        what,
        end,
        file_len,
    };
    let header_truncated = || truncated("header".to_string(), FIXED_HEADER_LEN);
    if file_len < FIXED_HEADER_LEN {
        return Err(header_truncated());
    }
    let magic: [u8; 8] = slice(bytes, 0, 8)
        .and_then(|m| m.try_into().ok())
        .ok_or_else(header_truncated)?;
    if magic != MAGIC {
        return Err(ArtifactError::NotKiln {
            path: path.to_path_buf(),
            found: magic,
        });
    }
    let field32 = |at: u64| le_u32(bytes, at).ok_or_else(header_truncated);
    let field64 = |at: u64| le_u64(bytes, at).ok_or_else(header_truncated);
    let version = field32(8)?;
    if version != FORMAT_VERSION {
        return Err(ArtifactError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let header_len = u64::from(field32(12)?);
    let checksum = field64(16)?;
    let feature_bits = field64(24)?;
    let cv_len = u64::from(field32(32)?);
    let arch_len = u64::from(field32(36)?);
    let count = u64::from(field32(40)?);
    let reserved = field32(44)?;
    for (field, len, max) in [
        ("compiler version", cv_len, MAX_COMPILER_VERSION_LEN),
        ("target arch", arch_len, MAX_ARCH_LEN),
    ] {
        if len > max {
            return Err(ArtifactError::FieldTooLong {
                path: path.to_path_buf(),
                field,
                len,
                max,
            });
        }
    }
    if count > MAX_SECTIONS {
        return Err(ArtifactError::TooManySections {
            path: path.to_path_buf(),
            count,
            max: MAX_SECTIONS,
        });
    }
    if reserved != 0 {
        return Err(ArtifactError::ReservedNonZero {
            path: path.to_path_buf(),
            offset: 44,
            value: reserved,
        });
    }
    let expected = header_len_for(cv_len, arch_len, count);
    if header_len != expected {
        return Err(ArtifactError::HeaderLength {
            path: path.to_path_buf(),
            declared: header_len,
            expected,
        });
    }
    if header_len > file_len {
        return Err(truncated("header".to_string(), header_len));
    }
    let whole_header = || truncated("header".to_string(), header_len);
    let mut entries = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = FIXED_HEADER_LEN + SECTION_ENTRY_LEN * i;
        let entry = RawEntry {
            kind: le_u32(bytes, at).ok_or_else(whole_header)?,
            align: le_u32(bytes, at + 4).ok_or_else(whole_header)?,
            offset: le_u64(bytes, at + 8).ok_or_else(whole_header)?,
            len: le_u64(bytes, at + 16).ok_or_else(whole_header)?,
        };
        let what = describe_section(entry.kind);
        let end =
            entry
                .offset
                .checked_add(entry.len)
                .ok_or_else(|| ArtifactError::SectionOverflow {
                    path: path.to_path_buf(),
                    what: what.clone(),
                    offset: entry.offset,
                    len: entry.len,
                })?;
        if end > file_len {
            return Err(truncated(what, end));
        }
        entries.push(entry);
    }
    let strings_at = header_len_for(0, 0, count);
    let compiler_version = slice(bytes, strings_at, cv_len).ok_or_else(whole_header)?;
    let arch = slice(bytes, strings_at + cv_len, arch_len).ok_or_else(whole_header)?;
    Ok(RawHeader {
        header_len,
        checksum,
        feature_bits,
        compiler_version,
        arch,
        entries,
    })
}

/// Encodes a header with a zero checksum; `sections` must already hold their final offsets.
pub(crate) fn encode(
    compiler_version: &str,
    target: &Target,
    sections: &[SectionEntry],
) -> Vec<u8> {
    let cv = compiler_version.as_bytes();
    let arch = target.arch.as_bytes();
    let header_len = header_len_for(cv.len() as u64, arch.len() as u64, sections.len() as u64);
    let mut out = Vec::with_capacity(header_len as usize);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    // The writer bounds every length, so these conversions are lossless.
    out.extend_from_slice(&(header_len as u32).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&target.features.bits().to_le_bytes());
    out.extend_from_slice(&(cv.len() as u32).to_le_bytes());
    out.extend_from_slice(&(arch.len() as u32).to_le_bytes());
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for s in sections {
        out.extend_from_slice(&(s.kind as u32).to_le_bytes());
        out.extend_from_slice(&(s.align as u32).to_le_bytes());
        out.extend_from_slice(&s.offset.to_le_bytes());
        out.extend_from_slice(&s.len.to_le_bytes());
    }
    out.extend_from_slice(cv);
    out.extend_from_slice(arch);
    debug_assert_eq!(out.len() as u64, header_len);
    out
}
