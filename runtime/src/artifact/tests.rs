//! Unit tests of the artifact format: round trips, alignment in the mapped file, writer checks,
//! atomic writes, and the load time of a 90 MB artifact.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::cpu::{CpuFeature, CpuFeatures};

/// A fresh directory under the system temp dir, removed (with its contents) when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "kiln-artifact-unit-{}-{n}-{tag}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn target() -> Target {
    Target::new(
        std::env::consts::ARCH,
        CpuFeatures::NONE.with(CpuFeature::Avx2),
    )
}

fn host() -> CpuFeatures {
    CpuFeatures::NONE
        .with(CpuFeature::Avx2)
        .with(CpuFeature::Fma)
}

fn sample() -> ArtifactWriter {
    let mut w = ArtifactWriter::new("kiln 0.1.0-test", target()).unwrap();
    w.add_section(SectionKind::Plan, pattern(1001, 1), 8)
        .unwrap();
    w.add_section(SectionKind::Weights, pattern(10_000, 2), 64)
        .unwrap();
    w.add_section(SectionKind::Code, pattern(333, 3), 16)
        .unwrap();
    w.add_section(SectionKind::Ptx, Vec::new(), 1).unwrap();
    w
}

fn check_round_trip(a: &Artifact, w: &ArtifactWriter) {
    let h = a.header();
    assert_eq!(h.format_version, FORMAT_VERSION);
    assert_eq!(h.compiler_version, "kiln 0.1.0-test");
    assert_eq!(h.target, target());
    assert_eq!(h.sections, w.sections());
    for (kind, seed, len) in [
        (SectionKind::Plan, 1, 1001),
        (SectionKind::Weights, 2, 10_000),
        (SectionKind::Code, 3, 333),
    ] {
        assert_eq!(a.section(kind).unwrap(), &pattern(len, seed)[..], "{kind}");
    }
    assert_eq!(a.section(SectionKind::Ptx), Some(&[][..]));
    for s in &h.sections {
        let bytes = a.section(s.kind).unwrap();
        assert_eq!(s.offset % s.align, 0);
        if !bytes.is_empty() {
            assert_eq!(bytes.as_ptr() as usize % s.align as usize, 0, "{}", s.kind);
        }
    }
    let weights = a.section(SectionKind::Weights).unwrap();
    assert_eq!(weights.as_ptr() as usize % 64, 0);
    assert_eq!(h.checksum, payload_checksum(a.bytes()));
}

#[test]
fn round_trip_in_memory() {
    let w = sample();
    let bytes = w.to_bytes();
    assert_eq!(&bytes[..8], &MAGIC);
    let a = Artifact::from_bytes(bytes.clone(), host()).unwrap();
    check_round_trip(&a, &w);
    assert_eq!(a.file_len(), bytes.len() as u64);
    assert_eq!(a.bytes(), &bytes[..]);
    assert_eq!(a.path(), None);
    assert!(!a.is_mapped());
}

#[test]
#[cfg_attr(miri, ignore = "Miri does not support file-backed memory maps")]
fn round_trip_through_a_mapped_file_keeps_alignment() {
    let dir = TempDir::new("round-trip");
    let path = dir.0.join("model.kiln");
    let w = sample();
    // A page-aligned section: the mapping itself is page-aligned.
    let mut big = ArtifactWriter::new("kiln 0.1.0-test", target()).unwrap();
    big.add_section(SectionKind::Code, pattern(7, 4), 4096)
        .unwrap();
    big.add_section(SectionKind::Weights, pattern(100, 5), 8)
        .unwrap();
    assert_eq!(
        big.sections()[1].align,
        64,
        "weights alignment is raised to 64"
    );
    w.write_file(&path).unwrap();
    let a = Artifact::open_for(&path, host()).unwrap();
    check_round_trip(&a, &w);
    assert!(a.is_mapped());
    assert_eq!(a.path(), Some(path.as_path()));
    assert_eq!(a.file_len(), std::fs::metadata(&path).unwrap().len());
    assert_eq!(dir.entries(), vec!["model.kiln".to_string()]);

    big.write_file(&path).unwrap();
    let b = Artifact::open_for(&path, host()).unwrap();
    let code = b.section(SectionKind::Code).unwrap();
    assert_eq!(code.as_ptr() as usize % 4096, 0);
    assert_eq!(code, &pattern(7, 4)[..]);
    // The old artifact was replaced by a rename, so its mapping still shows the old bytes.
    check_round_trip(&a, &w);
}

#[test]
#[cfg_attr(miri, ignore = "Miri does not support file-backed memory maps")]
fn open_uses_this_machines_arch_and_features() {
    let mut w = ArtifactWriter::new("kiln", Target::host()).unwrap();
    w.add_section(SectionKind::Plan, b"plan".to_vec(), 1)
        .unwrap();
    let dir = TempDir::new("host");
    let path = dir.0.join("host.kiln");
    w.write_file(&path).unwrap();
    let a = Artifact::open(&path).unwrap();
    assert_eq!(a.header().target, Target::host());
    assert_eq!(a.section(SectionKind::Plan), Some(&b"plan"[..]));
    assert_eq!(a.section(SectionKind::Weights), None);
}

#[test]
fn writer_refuses_bad_input() {
    let long = "x".repeat(MAX_COMPILER_VERSION_LEN as usize + 1);
    let err = ArtifactWriter::new(&long, target()).unwrap_err();
    assert!(matches!(
        err,
        ArtifactError::FieldTooLong {
            field: "compiler version",
            ..
        }
    ));
    let arch = "a".repeat(MAX_ARCH_LEN as usize + 1);
    let err = ArtifactWriter::new("kiln", Target::new(arch, CpuFeatures::NONE)).unwrap_err();
    assert!(matches!(
        err,
        ArtifactError::FieldTooLong {
            field: "target arch",
            ..
        }
    ));

    let mut w = sample();
    let err = w.add_section(SectionKind::Plan, vec![1], 1).unwrap_err();
    assert!(matches!(
        err,
        ArtifactError::DuplicateSection {
            kind: SectionKind::Plan,
            ..
        }
    ));
    assert!(
        err.to_string().starts_with("<writer>: section `plan`"),
        "{err}"
    );
    let mut w = ArtifactWriter::new("kiln", target()).unwrap();
    for align in [0, 3, 48, 8192] {
        let err = w
            .add_section(SectionKind::Weights, vec![1], align)
            .unwrap_err();
        assert!(
            matches!(err, ArtifactError::BadAlignment { .. }),
            "{align}: {err}"
        );
    }
    assert!(w.sections().is_empty());
}

#[test]
fn write_file_leaves_nothing_behind_on_error() {
    let dir = TempDir::new("errors");
    let w = sample();
    // A directory that does not exist: the temporary file cannot be created.
    let missing = dir.0.join("no-such-dir").join("model.kiln");
    let err = w.write_file(&missing).unwrap_err();
    assert!(matches!(err, ArtifactError::Io { .. }), "{err}");
    assert!(err.to_string().contains("model.kiln"), "{err}");
    assert!(!missing.exists());
    // The target is an existing directory: refused before any temporary file is written (a
    // rename would replace an empty one), and left as it was.
    let occupied = dir.0.join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("keep"), b"x").unwrap();
    let err = w.write_file(&occupied).unwrap_err();
    assert!(matches!(err, ArtifactError::NotReplaceable { .. }), "{err}");
    assert!(occupied.is_dir());
    assert_eq!(dir.entries(), vec!["occupied".to_string()]);
    // A path without a file name.
    let err = w.write_file(Path::new("/")).unwrap_err();
    assert!(matches!(err, ArtifactError::InvalidPath { .. }), "{err}");
}

#[test]
fn open_reports_file_problems() {
    let dir = TempDir::new("open");
    let err = Artifact::open(&dir.0.join("absent.kiln")).unwrap_err();
    assert!(
        matches!(
            err,
            ArtifactError::Io {
                action: "open the file",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("absent.kiln"), "{err}");
    let err = Artifact::open(&dir.0).unwrap_err();
    assert!(matches!(err, ArtifactError::NotAFile { .. }), "{err}");
    let tiny = dir.0.join("tiny.kiln");
    std::fs::write(&tiny, MAGIC).unwrap();
    let err = Artifact::open(&tiny).unwrap_err();
    assert!(
        matches!(
            err,
            ArtifactError::Truncated {
                end: 48,
                file_len: 8,
                ..
            }
        ),
        "{err}"
    );
    let empty = dir.0.join("empty.kiln");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        Artifact::open(&empty),
        Err(ArtifactError::Truncated { .. })
    ));
}

#[test]
fn artifact_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Artifact>();
    check::<ArtifactWriter>();
    check::<ArtifactError>();
}

/// Builds a 90 MB artifact, opens it five times from the page cache (map + full validation,
/// checksum included) and prints the median time. Prints only: timings vary between machines.
#[test]
#[cfg_attr(miri, ignore = "Miri has no file-backed memory maps")]
fn open_time_of_a_90_mb_artifact() {
    const WEIGHTS: usize = 90 * 1000 * 1000;
    let dir = TempDir::new("timing");
    let path = dir.0.join("big.kiln");
    let mut w = ArtifactWriter::new("kiln timing", Target::host()).unwrap();
    w.add_section(SectionKind::Plan, pattern(64 * 1024, 9), 8)
        .unwrap();
    w.add_section(SectionKind::Weights, pattern(WEIGHTS, 10), 64)
        .unwrap();
    w.add_section(SectionKind::Code, pattern(256 * 1024, 11), 16)
        .unwrap();
    w.write_file(&path).unwrap();
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let a = Artifact::open(&path).unwrap();
        times.push(start.elapsed());
        assert_eq!(a.section(SectionKind::Weights).unwrap().len(), WEIGHTS);
    }
    let bytes = std::fs::read(&path).unwrap();
    let start = Instant::now();
    let sum = payload_checksum(&bytes);
    let checksum_only = start.elapsed();
    assert_eq!(sum, Artifact::open(&path).unwrap().header().checksum);
    times.sort();
    println!(
        "open of a {} byte artifact: median {:.2} ms (min {:.2}, max {:.2}); checksum of the \
         bytes in memory {:.2} ms",
        bytes.len(),
        times[2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[4].as_secs_f64() * 1e3,
        checksum_only.as_secs_f64() * 1e3,
    );
}
