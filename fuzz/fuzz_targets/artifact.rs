//! Fuzz target `artifact`: the `.kiln` loader. The fuzzer mutates valid artifacts (the seeds,
//! compiled from `examples/tiny_classifier.kir`, `compiler/tests/{lower,fusion}_cases/*.kir` and
//! `fuzz/seeds/*.kir` by this target when `KILN_FUZZ_WRITE_SEEDS=<dir>` is set, see
//! `fuzz/seed.sh`); the target rewrites the checksum field after mutation, so the checks behind
//! it (header, sections, plan decoding, plan validation, object parsing and relocation) are what
//! gets fuzzed. A model that loads is run on small inputs, but only when its code section is one
//! the compiler produced for a seed: an artifact is trusted to hold the machine code it was
//! compiled with, and running arbitrary bytes as code crashes by design.

#![no_main]

use kiln_compiler::{compile, Options, Target};
use kiln_runtime::artifact::{payload_checksum, Artifact, SectionKind, CHECKSUM_OFFSET};
use kiln_runtime::{CpuFeatures, LoadOptions, Model};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::sync::OnceLock;

/// The `.kir` sources of the seeds, by name.
fn seed_sources() -> Vec<(String, String)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut paths = vec![format!("{root}/examples/tiny_classifier.kir")];
    for dir in [
        "compiler/tests/lower_cases",
        "compiler/tests/fusion_cases",
        "fuzz/seeds",
    ] {
        let Ok(dir) = std::fs::read_dir(format!("{root}/{dir}")) else {
            continue;
        };
        let mut more: Vec<String> = dir
            .filter_map(|e| Some(e.ok()?.path().to_str()?.to_string()))
            .filter(|p| p.ends_with(".kir"))
            .collect();
        more.sort();
        paths.extend(more);
    }
    paths
        .into_iter()
        .filter_map(|p| {
            let src = std::fs::read_to_string(&p).ok()?;
            let name = std::path::Path::new(&p).file_stem()?.to_str()?.to_string();
            Some((name, src))
        })
        .collect()
}

/// The seeds' artifact bytes by name (compiled for this machine), and their code sections.
type Seeds = (Vec<(String, Vec<u8>)>, HashSet<Vec<u8>>);

/// The seeds, compiled once per process.
fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut arts = Vec::new();
        let mut codes = HashSet::new();
        for (name, src) in seed_sources() {
            let g = kiln_compiler::text::parse(&src)
                .unwrap_or_else(|e| panic!("seed {name} does not parse: {e}"));
            let bytes = compile(&g, &Target::host(), &Options::default())
                .unwrap_or_else(|e| panic!("seed {name} does not compile: {e}"))
                .to_bytes();
            let art = Artifact::from_bytes(bytes.clone(), CpuFeatures::host())
                .unwrap_or_else(|e| panic!("seed {name} does not load: {e}"));
            codes.insert(art.section(SectionKind::Code).unwrap_or(&[]).to_vec());
            arts.push((name, bytes));
        }
        (arts, codes)
    })
}

fuzz_target!(
    init: {
        if let Some(dir) = std::env::var_os("KILN_FUZZ_WRITE_SEEDS") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("seed folder");
            for (name, bytes) in &seeds().0 {
                std::fs::write(dir.join(format!("{name}.kiln")), bytes).expect("write a seed");
            }
        }
    },
    |data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= CHECKSUM_OFFSET + 8 {
        let sum = payload_checksum(&bytes);
        bytes[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&sum.to_le_bytes());
    }
    let Ok(model) = Model::from_bytes(bytes, &LoadOptions {
        threads: Some(1),
        // A mutated plan may ask for any size: runs over 256 MiB are refused, not attempted.
        max_memory: Some(256 << 20),
    }) else {
        return;
    };
    let code = model.artifact().section(SectionKind::Code).unwrap_or(&[]);
    if !seeds().1.contains(code) {
        return;
    }
    let mut session = model.session();
    for sym in [1, 2] {
        if let Some(feeds) = kiln_fuzz::plan_inputs(model.plan(), sym) {
            let _ = session.run(&feeds);
        }
    }
});
