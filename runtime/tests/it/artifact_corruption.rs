//! Corruption tests of the `.kiln` loader through the public API: every header field, truncation
//! at many offsets, random bit flips in every section, missing CPU features and a wrong arch each
//! give a specific typed error naming the file, and never a panic.

use std::env::consts::ARCH;
use std::path::{Path, PathBuf};

use kiln_runtime::artifact::{
    payload_checksum, Artifact, ArtifactError, ArtifactWriter, Header, SectionEntry, SectionKind,
    Target, CHECKSUM_OFFSET,
};
use kiln_runtime::test_util::Rng;
use kiln_runtime::{CpuFeature, CpuFeatures};

/// The features the test artifact is built for, and the host it is opened on.
fn built_for() -> CpuFeatures {
    [CpuFeature::Sse41, CpuFeature::Avx2].into_iter().collect()
}

fn host() -> CpuFeatures {
    built_for().with(CpuFeature::Fma)
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// An artifact with plan, weights and code sections of random content.
fn sample() -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let target = Target::new(ARCH, built_for());
    let mut w = ArtifactWriter::new("kiln 0.1.0 (corruption test)", target).unwrap();
    for (kind, len, align) in [
        (SectionKind::Plan, 3001, 8),
        (SectionKind::Weights, 50_000, 64),
        (SectionKind::Code, 4999, 16),
    ] {
        w.add_section(kind, random_bytes(&mut rng, len), align)
            .unwrap();
    }
    w.to_bytes()
}

/// The header of valid artifact bytes.
fn layout(bytes: &[u8]) -> Header {
    let artifact = Artifact::from_bytes(bytes.to_vec(), host()).unwrap();
    artifact.header().clone()
}

/// Recomputes the checksum so that a corruption reaches the checks after it.
fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
    let sum = payload_checksum(&bytes).to_le_bytes();
    bytes[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&sum);
    bytes
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let name = format!("kiln-artifact-corruption-{}-{tag}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens `bytes` in memory and from a file named after `case`; both must fail, with the same
/// message apart from the file name, which each message must start with.
fn open_both(dir: &Path, case: &str, bytes: &[u8]) -> ArtifactError {
    let mem = Artifact::from_bytes(bytes.to_vec(), host()).expect_err(case);
    let path = dir.join(format!("{case}.kiln"));
    std::fs::write(&path, bytes).unwrap();
    let file = Artifact::open_for(&path, host()).expect_err(case);
    let (mem_msg, file_msg) = (mem.to_string(), file.to_string());
    let mem_rest = mem_msg.strip_prefix("<memory>: ");
    let file_rest = file_msg.strip_prefix(&format!("{}: ", path.display()));
    let same = mem_rest.is_some() && mem_rest == file_rest;
    assert!(same, "{case}: {mem_msg} / {file_msg}");
    assert_eq!(file.path(), path.as_path());
    std::fs::remove_file(&path).unwrap();
    file
}

/// Opens `bytes` both ways and checks that the error is one of the `expected` variants (named
/// as in its `Debug` form: `ChecksumMismatch`).
fn expect(dir: &Path, case: &str, bytes: &[u8], expected: &[&str]) -> ArtifactError {
    let err = open_both(dir, case, bytes);
    let debug = format!("{err:?}");
    let variant = debug.split([' ', '{']).next().unwrap_or("");
    assert!(expected.contains(&variant), "{case}: {err}");
    err
}

/// One damage to the header: a little-endian value written at an offset, or one byte changed.
#[derive(Clone, Copy)]
enum Edit {
    U32(usize, u32),
    U64(usize, u64),
    Xor(usize, u8),
    Set(usize, u8),
}
use Edit::{Set, Xor, U32, U64};

/// Whether a damaged copy keeps the old checksum (`RAW`: the checksum check or one before it
/// fires) or gets a recomputed one (`SEALED`: the damage reaches the checks after the checksum).
const RAW: bool = false;
const SEALED: bool = true;
const CHECKSUM: &[&str] = &["ChecksumMismatch"];

/// The error variants a case allows.
type Want = &'static [&'static str];

/// Damaged copies of one artifact: a case name, the bytes, and the error variants allowed.
struct Cases {
    good: Vec<u8>,
    list: Vec<(String, Vec<u8>, Want)>,
}

impl Cases {
    fn add(&mut self, name: impl Into<String>, seal: bool, edit: Edit, want: Want) {
        let mut b = self.good.clone();
        match edit {
            U32(at, v) => b[at..at + 4].copy_from_slice(&v.to_le_bytes()),
            U64(at, v) => b[at..at + 8].copy_from_slice(&v.to_le_bytes()),
            Xor(at, v) => b[at] ^= v,
            Set(at, v) => b[at] = v,
        }
        let b = if seal { reseal(b) } else { b };
        self.list.push((name.into(), b, want));
    }
}

/// Every header field damaged in turn, with the error variants each damage may give.
#[rustfmt::skip]
fn header_cases(good: Vec<u8>, lay: &Header) -> Cases {
    let file_len = good.len() as u64;
    let (hl, n_sec) = (lay.header_len as u32, lay.sections.len() as u32);
    let arch_len = ARCH.len();
    let cv_len = hl - 48 - 24 * n_sec - arch_len as u32;
    let (cv_at, arch_at) = (48 + 24 * n_sec as usize, hl as usize - arch_len);
    let mut c = Cases { good, list: Vec::new() };
    c.add("magic", RAW, Set(0, b'X'), &["NotKiln"]);
    c.add("magic-last", RAW, Xor(7, 0x80), &["NotKiln"]);
    c.add("version", RAW, U32(8, 7), &["UnsupportedVersion"]);
    c.add("version-0", RAW, U32(8, 0), &["UnsupportedVersion"]);
    for v in [0, 47, hl - 1, hl + 1, u32::MAX] {
        c.add(format!("header-len-{v}"), RAW, U32(12, v), &["HeaderLength"]);
    }
    c.add("checksum", RAW, Xor(CHECKSUM_OFFSET + 3, 4), CHECKSUM);
    c.add("features", RAW, Xor(24, 1), CHECKSUM);
    c.add("features-unknown", SEALED, Set(29, 1), &["UnknownFeatures"]);
    let fp16 = built_for().with(CpuFeature::Avx512fp16).bits();
    c.add("features-missing", SEALED, U64(24, fp16), &["MissingFeatures"]);
    c.add("cv-len", RAW, U32(32, cv_len + 1), &["HeaderLength"]);
    c.add("cv-len-0", RAW, U32(32, 0), &["HeaderLength"]);
    c.add("cv-len-huge", RAW, U32(32, u32::MAX), &["FieldTooLong"]);
    c.add("arch-len", RAW, U32(36, 3), &["HeaderLength"]);
    c.add("arch-len-huge", RAW, U32(36, 65), &["FieldTooLong"]);
    c.add("count+1", RAW, U32(40, n_sec + 1), &["HeaderLength"]);
    c.add("count-0", RAW, U32(40, 0), &["HeaderLength"]);
    c.add("count-huge", RAW, U32(40, 17), &["TooManySections"]);
    c.add("reserved", RAW, Set(45, 1), &["ReservedNonZero"]);
    c.add("cv-text", RAW, Xor(cv_at, 1), CHECKSUM);
    c.add("cv-text-utf8", SEALED, Set(cv_at, 0xff), &["InvalidUtf8"]);
    c.add("arch-text", RAW, Xor(arch_at, 1), CHECKSUM);
    c.add("arch-text-utf8", SEALED, Set(arch_at, 0xc0), &["InvalidUtf8"]);
    c.add("arch-text-case", SEALED, Xor(arch_at, 0x20), &["WrongArch"]);
    // Each field of each section-table entry.
    for (i, &SectionEntry { kind, offset, .. }) in lay.sections.iter().enumerate() {
        let (at, n) = (48 + 24 * i, kind.name());
        let other = if i == 0 { SectionKind::Code } else { SectionKind::Plan } as u32;
        c.add(format!("{n}-kind"), RAW, Xor(at, 0x10), CHECKSUM);
        c.add(format!("{n}-kind-9"), SEALED, U32(at, 9), &["UnknownSectionKind"]);
        c.add(format!("{n}-kind-dup"), SEALED, U32(at, other), &["DuplicateSection"]);
        c.add(format!("{n}-align"), RAW, Xor(at + 4, 2), CHECKSUM);
        for bad in [0u32, 3, 8192, 1 << 31] {
            c.add(format!("{n}-align-{bad}"), SEALED, U32(at + 4, bad), &["BadAlignment"]);
        }
        if kind == SectionKind::Weights {
            c.add("weights-align-32", SEALED, U32(at + 4, 32), &["BadAlignment"]);
        }
        if let Some(bad) = (0..=12).map(|p| 1u32 << p).find(|&a| offset % u64::from(a) != 0) {
            c.add(format!("{n}-misaligned"), SEALED, U32(at + 4, bad), &["Misaligned"]);
        }
        let any = &["ChecksumMismatch", "Truncated"];
        c.add(format!("{n}-offset"), RAW, Xor(at + 8, 0x40), any);
        c.add(format!("{n}-offset-odd"), SEALED, U64(at + 8, offset - 1), &["Misaligned"]);
        c.add(format!("{n}-offset-0"), SEALED, U64(at + 8, 0), &["SectionInHeader"]);
        c.add(format!("{n}-offset-past"), RAW, U64(at + 8, file_len), &["Truncated"]);
        c.add(format!("{n}-offset-max"), RAW, U64(at + 8, u64::MAX), &["SectionOverflow"]);
        if i > 0 {
            // Moved back one 64-byte step: into the section before it.
            c.add(format!("{n}-offset-overlap"), SEALED, U64(at + 8, offset - 64), &["Overlap"]);
        }
        c.add(format!("{n}-len"), RAW, Xor(at + 16, 1), any);
        c.add(format!("{n}-len-past"), RAW, U64(at + 16, file_len), &["Truncated"]);
        c.add(format!("{n}-len-max"), RAW, U64(at + 16, u64::MAX), &["SectionOverflow"]);
    }
    // The plan grown into the weights.
    let grown = lay.sections[1].offset - lay.sections[0].offset + 1;
    c.add("plan-len-overlap", SEALED, U64(48 + 16, grown), &["Overlap"]);
    c
}

/// Parts of the messages some of the header cases must give.
#[rustfmt::skip]
const MESSAGES: &[(&str, &str)] = &[
    ("version", "format version 7; this runtime reads version 1"),
    ("magic", "not a kiln artifact"),
    ("features-unknown", "CPU feature bits 0x10000000000 that this runtime does not know"),
    ("features-missing", "built for a CPU with sse4.1,avx2,avx512fp16; this CPU lacks avx512fp16"),
    ("cv-len-huge", "`compiler version` is 4294967295 bytes long; at most 256"),
    ("arch-len-huge", "`target arch` is 65 bytes long; at most 64"),
    ("reserved", "reserved header field at byte 44"),
    ("weights-align-32", "`weights` declares alignment 32; it must be a power of two from 64 to"),
    ("plan-len-overlap", "sections `plan` and `weights` overlap"),
    ("code-kind-9", "section table entry 2 has unknown kind 9"),
    ("header-len-0", "the header length field says 0 bytes but the header's fields take"),
];

#[test]
fn every_header_field_corrupted_gives_its_error() {
    let dir = TempDir::new("fields");
    let good = sample();
    let lay = layout(&good);
    let file_len = good.len() as u64;
    let c = header_cases(good, &lay);
    let mut messages = std::collections::BTreeMap::new();
    for (name, bytes, expected) in &c.list {
        let msg = expect(&dir.0, name, bytes, expected).to_string();
        let rest = msg.split_once(".kiln: ").map(|(_, rest)| rest.to_string());
        messages.insert(name.as_str(), rest.unwrap_or(msg));
    }
    assert!(messages.len() > 75, "{}", messages.len());
    let plan_end = file_len + lay.sections[0].len;
    let past = format!("section `plan` ends at byte {plan_end} but the file has {file_len} bytes");
    let mut flipped = ARCH.as_bytes().to_vec();
    flipped[0] ^= 0x20;
    let flipped = String::from_utf8(flipped).unwrap();
    let arch = format!("built for {flipped}; this machine");
    let dynamic = [
        ("plan-offset-past", past.as_str()),
        ("arch-text-case", &arch),
    ];
    for &(case, want) in MESSAGES.iter().chain(&dynamic) {
        assert!(messages[case].contains(want), "{case}: {}", messages[case]);
    }
}

#[test]
fn truncation_at_any_offset_is_reported() {
    let good = sample();
    let lay = layout(&good);
    let len = good.len();
    let mut cuts: Vec<usize> = (0..=lay.header_len as usize + 8).collect();
    cuts.extend((0..200).map(|i| i * len / 200));
    cuts.extend([len - 1, len - 64]);
    for s in &lay.sections {
        cuts.extend([s.offset as usize, s.end() as usize - 1]);
    }
    for cut in cuts {
        let err = Artifact::from_bytes(good[..cut].to_vec(), host()).unwrap_err();
        let ok = matches!(err, ArtifactError::Truncated { file_len, end, .. }
            if file_len == cut as u64 && end > file_len);
        assert!(ok, "cut at {cut}: {err}");
        let msg = err.to_string();
        assert!(msg.starts_with("<memory>: truncated: "), "{msg}");
    }
    let dir = TempDir::new("truncate");
    let cut = lay.sections[1].offset as usize + 10;
    let msg = open_both(&dir.0, "cut-weights", &good[..cut]).to_string();
    let want = "cut-weights.kiln: truncated: section `weights` ends at byte";
    assert!(msg.contains(want), "{msg}");
}

#[test]
fn random_bit_flips_are_refused() {
    let good = sample();
    let lay = layout(&good);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut regions: Vec<(&str, u64, u64)> = lay
        .sections
        .iter()
        .map(|s| (s.kind.name(), s.offset, s.len))
        .collect();
    regions.push(("header", 0, lay.header_len));
    // The padding between the plan and the weights is covered too.
    let pad = lay.sections[0].end();
    regions.push(("padding", pad, lay.sections[1].offset - pad));
    for (name, start, len) in regions {
        for _ in 0..100 {
            let at = start as usize + rng.below(len as usize);
            let mut bytes = good.clone();
            bytes[at] ^= 1 << rng.below(8);
            let err = Artifact::from_bytes(bytes, host()).expect_err(name);
            let checksum = matches!(err, ArtifactError::ChecksumMismatch { .. });
            assert!(checksum || name == "header", "{name} @ {at}: {err}");
            assert!(err.to_string().starts_with("<memory>: "), "{err}");
        }
    }
}

#[test]
fn resealed_random_header_damage_never_panics() {
    let good = sample();
    let lay = layout(&good);
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.below(4) {
            bytes[rng.below(lay.header_len as usize)] = rng.next_u64() as u8;
        }
        if let Ok(a) = Artifact::from_bytes(reseal(bytes), host()) {
            accepted += 1;
            for s in &a.header().sections {
                assert_eq!(a.section(s.kind).map(<[u8]>::len), Some(s.len as usize));
            }
        }
    }
    assert!(accepted < 3000);
    for len in [0, 1, 47, 48, 100, 5000] {
        let mut garbage = random_bytes(&mut rng, len);
        let magic = len.min(8);
        garbage[..magic].copy_from_slice(&good[..magic]);
        assert!(Artifact::from_bytes(garbage, host()).is_err());
    }
}

#[test]
fn missing_cpu_features_are_named() {
    const FP16: CpuFeature = CpuFeature::Avx512fp16;
    let dir = TempDir::new("features");
    let path = dir.0.join("fp16.kiln");
    let p = path.display();
    let write = |features: CpuFeatures| {
        let mut w = ArtifactWriter::new("kiln", Target::new(ARCH, features)).unwrap();
        w.add_section(SectionKind::Weights, [7u8; 64], 64).unwrap();
        w.write_file(&path).unwrap();
    };
    let required = CpuFeatures::host().with(FP16);
    write(required);
    let lacking: CpuFeatures = required.iter().filter(|f| *f != FP16).collect();
    let err = Artifact::open_for(&path, lacking).unwrap_err();
    assert!(matches!(&err, ArtifactError::MissingFeatures { missing, .. } if missing == &[FP16]));
    let want = format!("{p}: built for a CPU with {required}; this CPU lacks avx512fp16");
    assert_eq!(err.to_string(), want);
    let a = Artifact::open_for(&path, required).unwrap();
    assert_eq!(a.header().target.features, required);
    assert_eq!(a.section(SectionKind::Weights), Some(&[7u8; 64][..]));

    // The message from the design brief, exactly.
    let f_fp16: CpuFeatures = [CpuFeature::Avx512f, FP16].into_iter().collect();
    write(f_fp16);
    let only_f = CpuFeatures::NONE.with(CpuFeature::Avx512f);
    let err = Artifact::open_for(&path, only_f).unwrap_err();
    let want = format!("{p}: built for a CPU with avx512f,avx512fp16; this CPU lacks avx512fp16");
    assert_eq!(err.to_string(), want);
    let msg = Artifact::open_for(&path, CpuFeatures::NONE)
        .unwrap_err()
        .to_string();
    assert!(msg.ends_with("this CPU lacks avx512f,avx512fp16"), "{msg}");
}

#[test]
fn wrong_arch_is_named() {
    let other = ["aarch64", "x86_64"]
        .into_iter()
        .find(|a| *a != ARCH)
        .unwrap();
    let mut w = ArtifactWriter::new("kiln", Target::new(other, CpuFeatures::NONE)).unwrap();
    w.add_section(SectionKind::Code, [0xc3; 16], 16).unwrap();
    let dir = TempDir::new("arch");
    let err = expect(&dir.0, "arch", &w.to_bytes(), &["WrongArch"]);
    let want = format!("arch.kiln: built for {other}; this machine is {ARCH}");
    assert!(err.to_string().ends_with(&want), "{err}");
}
