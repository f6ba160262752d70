//! Validation of a whole artifact: the checks that follow the structural decoding of the header
//! (checksum, strings, section kinds, alignment, overlap, target arch and CPU features).

use std::path::Path;

use super::header::{parse_raw, RawHeader};
use super::{
    payload_checksum, ArtifactError, Header, SectionEntry, SectionKind, Target, FORMAT_VERSION,
    MAX_ALIGN,
};
use crate::cpu::CpuFeatures;

/// Validates `bytes` as a complete artifact for a machine of architecture `host_arch` with the
/// features `host`, in the order the module documentation lists.
pub(crate) fn validate(
    bytes: &[u8],
    path: &Path,
    host_arch: &str,
    host: CpuFeatures,
) -> Result<Header, ArtifactError> {
    let raw = parse_raw(bytes, path)?;
    let computed = payload_checksum(bytes);
    if computed != raw.checksum {
        return Err(ArtifactError::ChecksumMismatch {
            path: path.to_path_buf(),
            stored: raw.checksum,
            computed,
        });
    }
    let header = decode(&raw, path)?;
    check_target(&header, raw.feature_bits, path, host_arch, host)?;
    Ok(header)
}

fn utf8(bytes: &[u8], field: &'static str, path: &Path) -> Result<String, ArtifactError> {
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|_| ArtifactError::InvalidUtf8 {
            path: path.to_path_buf(),
            field,
        })
}

/// Turns a checksum-verified raw header into a [`Header`], checking the strings and the section
/// table (unknown feature bits are reported afterwards by [`check_target`]).
fn decode(raw: &RawHeader<'_>, path: &Path) -> Result<Header, ArtifactError> {
    let compiler_version = utf8(raw.compiler_version, "compiler version", path)?;
    let arch = utf8(raw.arch, "target arch", path)?;
    let mut sections: Vec<SectionEntry> = Vec::with_capacity(raw.entries.len());
    for (index, e) in raw.entries.iter().enumerate() {
        let kind =
            SectionKind::from_u32(e.kind).ok_or_else(|| ArtifactError::UnknownSectionKind {
                path: path.to_path_buf(),
                index,
                kind: e.kind,
            })?;
        if sections.iter().any(|s| s.kind == kind) {
            return Err(ArtifactError::DuplicateSection {
                path: path.to_path_buf(),
                kind,
            });
        }
        let align = u64::from(e.align);
        if !align.is_power_of_two() || align < kind.min_align() || align > MAX_ALIGN {
            return Err(ArtifactError::BadAlignment {
                path: path.to_path_buf(),
                kind,
                align,
                min: kind.min_align(),
                max: MAX_ALIGN,
            });
        }
        if e.offset % align != 0 {
            return Err(ArtifactError::Misaligned {
                path: path.to_path_buf(),
                kind,
                offset: e.offset,
                align,
            });
        }
        if e.offset < raw.header_len {
            return Err(ArtifactError::SectionInHeader {
                path: path.to_path_buf(),
                kind,
                offset: e.offset,
                header_len: raw.header_len,
            });
        }
        sections.push(SectionEntry {
            kind,
            offset: e.offset,
            len: e.len,
            align,
        });
    }
    check_overlap(&sections, path)?;
    // Unknown feature bits are refused by `check_target`; keep the known ones here.
    let features = CpuFeatures::from_bits(raw.feature_bits).unwrap_or(CpuFeatures::NONE);
    Ok(Header {
        format_version: FORMAT_VERSION,
        header_len: raw.header_len,
        compiler_version,
        target: Target { arch, features },
        sections,
        checksum: raw.checksum,
    })
}

/// Refuses sections that share a byte. Empty sections occupy no bytes and overlap nothing.
fn check_overlap(sections: &[SectionEntry], path: &Path) -> Result<(), ArtifactError> {
    let mut by_offset: Vec<&SectionEntry> = sections.iter().filter(|s| s.len > 0).collect();
    by_offset.sort_by_key(|s| (s.offset, s.kind));
    for pair in by_offset.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.end() > b.offset {
            return Err(ArtifactError::Overlap {
                path: path.to_path_buf(),
                first: a.kind,
                second: b.kind,
                first_end: a.end(),
                second_offset: b.offset,
            });
        }
    }
    Ok(())
}

/// Checks the target arch, then that every required CPU feature is known and present.
fn check_target(
    header: &Header,
    feature_bits: u64,
    path: &Path,
    host_arch: &str,
    host: CpuFeatures,
) -> Result<(), ArtifactError> {
    if header.target.arch != host_arch {
        return Err(ArtifactError::WrongArch {
            path: path.to_path_buf(),
            built_for: header.target.arch.clone(),
            host: host_arch.to_string(),
        });
    }
    let required =
        CpuFeatures::from_bits(feature_bits).map_err(|bits| ArtifactError::UnknownFeatures {
            path: path.to_path_buf(),
            bits,
        })?;
    let missing = required.missing_from(host);
    if !missing.is_empty() {
        return Err(ArtifactError::MissingFeatures {
            path: path.to_path_buf(),
            required,
            missing,
        });
    }
    Ok(())
}
