//! The `.kiln` artifact format: the one definition that the compiler's writer and the runtime's
//! loader share.
//!
//! An artifact is a header followed by sections (the execution plan, the weights, generated CPU
//! code, PTX, and named [`assets`] such as a tokenizer). The file is memory-mapped read-only, so a
//! section's file offset *is* its memory
//! alignment: every section starts at a multiple of its declared alignment (weights: at least 64).
//!
//! # Byte layout (format version 1, all integers little-endian)
//!
//! | offset          | size   | field                                                        |
//! |-----------------|--------|--------------------------------------------------------------|
//! | 0               | 8      | magic [`MAGIC`] = `7f 4b 49 4c 4e 0d 0a 1a` (`\x7fKILN\r\n\x1a`) |
//! | 8               | 4      | format version, u32 = [`FORMAT_VERSION`]                     |
//! | 12              | 4      | header length `H`, u32 = 48 + 24·n + c + a                   |
//! | 16              | 8      | checksum, u64 (see below)                                    |
//! | 24              | 8      | target CPU feature bits, u64 ([`CpuFeatures::bits`](crate::CpuFeatures::bits))          |
//! | 32              | 4      | compiler version length `c`, u32, at most [`MAX_COMPILER_VERSION_LEN`] |
//! | 36              | 4      | target arch length `a`, u32, at most [`MAX_ARCH_LEN`]         |
//! | 40              | 4      | section count `n`, u32, at most [`MAX_SECTIONS`]              |
//! | 44              | 4      | reserved, u32, must be 0                                     |
//! | 48              | 24·n   | section table, `n` entries of 24 bytes (below)              |
//! | 48 + 24·n       | c      | compiler version, UTF-8                                      |
//! | 48 + 24·n + c   | a      | target arch, UTF-8 (`x86_64`, as `std::env::consts::ARCH`)   |
//! | `H` …           |        | sections, in table order, zero padding between them          |
//!
//! A section-table entry:
//!
//! | offset | size | field                                                                   |
//! |--------|------|-------------------------------------------------------------------------|
//! | 0      | 4    | kind, u32 ([`SectionKind`]: 1 plan, 2 weights, 3 code, 4 ptx, 5 assets) |
//! | 4      | 4    | alignment, u32: a power of two from 1 to [`MAX_ALIGN`] (weights ≥ 64)   |
//! | 8      | 8    | offset of the section's first byte in the file, u64                     |
//! | 16     | 8    | length in bytes, u64                                                    |
//!
//! Sections lie inside the file at or after `H`, start at a multiple of their alignment, do not
//! overlap, and each kind appears at most once.
//!
//! # Checksum
//!
//! xxh3-64 over every byte of the file except the 8 checksum bytes (16..24), header and sections
//! alike, so one flipped bit anywhere is refused. To hash a large file on every core, the bytes
//! after the checksum field are cut into pieces of [`CHECKSUM_CHUNK`] bytes (the last one may be
//! shorter), each piece is hashed on its own, and the results are combined:
//!
//! ```text
//! checksum = xxh3_64( le64(file length)
//!                  ‖ le64(xxh3_64(bytes[0..16]))
//!                  ‖ le64(xxh3_64(piece 0)) ‖ le64(xxh3_64(piece 1)) ‖ … )
//! piece i  = bytes[24 + i·CHECKSUM_CHUNK .. min(24 + (i+1)·CHECKSUM_CHUNK, file length)]
//! ```
//!
//! (all xxh3 calls with seed 0; see [`payload_checksum`]).
//!
//! # Validation order
//!
//! The loader checks, and reports the first failure of: file length ≥ 48 → magic → format
//! version → header field bounds and header length → every section lies inside the file →
//! checksum → UTF-8 strings, section kinds, duplicates, alignment, overlap → target arch → CPU
//! features. Nothing is executed or mapped executable by this module; the code loader runs on
//! bytes this module has validated.

pub mod assets;
mod checksum;
mod error;
mod header;
mod reader;
mod storage;
mod validate;
mod writer;

#[cfg(test)]
mod tests;

pub use assets::{Assets, AssetsError};
pub use checksum::payload_checksum;
pub use error::ArtifactError;
pub use header::{Header, SectionEntry, SectionKind, Target};
pub use reader::Artifact;
pub use writer::{write_atomically, ArtifactWriter};

/// The first eight bytes of every `.kiln` file (a non-ASCII first byte, the name, a CR-LF pair
/// that text-mode transfers would mangle, and DOS end-of-file, in the manner of PNG).
pub const MAGIC: [u8; 8] = *b"\x7fKILN\r\n\x1a";

/// The format version this module writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The length of the fixed part of the header (everything before the section table).
pub const FIXED_HEADER_LEN: u64 = 48;

/// The length of one section-table entry.
pub const SECTION_ENTRY_LEN: u64 = 24;

/// The byte offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 16;

/// The longest compiler-version string the header may hold, in bytes.
pub const MAX_COMPILER_VERSION_LEN: u64 = 256;

/// The longest target-arch string the header may hold, in bytes.
pub const MAX_ARCH_LEN: u64 = 64;

/// The most section-table entries a header may hold.
pub const MAX_SECTIONS: u64 = 16;

/// The largest section alignment (one 4 KiB page: a memory map is at least page-aligned, and an
/// in-memory artifact is copied into a page-aligned buffer).
pub const MAX_ALIGN: u64 = 4096;

/// The smallest alignment of the weights section.
pub const WEIGHTS_MIN_ALIGN: u64 = 64;

/// The piece size of the parallel checksum (1 MiB).
pub const CHECKSUM_CHUNK: usize = 1 << 20;
