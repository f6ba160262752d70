//! Helpers shared by the pipeline tests: where the shared test data lives (`KILN_SHARED`,
//! default `../shared` beside the workspace), compiling a model folder in memory, assembling a
//! task model folder from MiniLM's files and a reference fixture, and comparing results.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use kiln_runtime::{LoadOptions, Model};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The shared test-data folder, or `None` (the test then returns early) when it is missing;
/// with `KILN_REQUIRE_SHARED=1` a missing folder fails the test instead.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("KILN_SHARED") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("KILN_REQUIRE_SHARED").is_ok_and(|v| v == "1") {
        panic!(
            "the shared test data is required (KILN_REQUIRE_SHARED=1) but {} is not a directory; \
             set KILN_SHARED to the shared folder",
            dir.display()
        );
    }
    println!(
        "skipped: ../shared not found (looked for {})",
        dir.display()
    );
    None
}

/// all-MiniLM-L6-v2 in the shared folder.
pub fn minilm_dir() -> Option<PathBuf> {
    Some(shared_dir()?.join("models").join("all-MiniLM-L6-v2"))
}

/// The reference fixtures of the pipelines (`tests/models/pipelines/NAME` of the workspace).
pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/models/pipelines")
        .join(name)
}

/// The artifact bytes of a model folder, compiled once per test binary.
pub fn artifact(dir: &Path) -> Vec<u8> {
    static CACHE: Mutex<BTreeMap<PathBuf, Vec<u8>>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(dir.to_path_buf())
        .or_insert_with(|| {
            kiln::backend::compile_model(dir, &kiln::backend::CompileOptions::default())
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        })
        .clone()
}

/// Compiles a model folder in memory (once per test binary) and loads it on two threads, as
/// the tests share the machine.
pub fn compile(dir: &Path) -> Model {
    Model::from_bytes(
        artifact(dir),
        &LoadOptions {
            threads: Some(2),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// MiniLM's files that a task fixture shares (weights of the encoder and the tokenizer).
pub const MINILM_FILES: [&str; 5] = [
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
];

/// Links `from` to `to` (hard link; a copy where links cannot be made).
fn link_or_copy(from: &Path, to: &Path) {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
    }
}

/// A temporary model folder holding MiniLM's shared files and every file of the fixture (its
/// `config.json`, `head.safetensors`, `model.safetensors.index.json`, ...).
pub fn assemble(minilm: &Path, fixture: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    for name in MINILM_FILES {
        let from = minilm.join(name);
        if from.exists() {
            link_or_copy(&from, &tmp.path().join(name));
        }
    }
    let entries =
        std::fs::read_dir(fixture).unwrap_or_else(|e| panic!("{}: {e}", fixture.display()));
    for entry in entries {
        let entry = entry.expect("a folder entry");
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            link_or_copy(&entry.path(), &tmp.path().join(entry.file_name()));
        }
    }
    tmp
}

/// The sentences of MiniLM's `sentences.json`.
pub fn minilm_sentences(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("sentences.json")).expect("sentences.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("sentences.json is JSON");
    v["sentences"]
        .as_array()
        .expect("a sentences array")
        .iter()
        .map(|s| s.as_str().expect("a sentence").to_string())
        .collect()
}

/// The cosine of two vectors.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// A reference file's cases (`reference.json` of a fixture).
pub fn reference_cases(fixture: &Path) -> Vec<serde_json::Value> {
    let path = fixture.join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("reference.json is JSON");
    v["cases"].as_array().expect("a cases array").clone()
}

/// Asserts that `got` is `want`: the same structure, keys, strings and integers, and every
/// `score` within `tol`. `at` names the place in messages.
pub fn assert_json_close(got: &serde_json::Value, want: &serde_json::Value, tol: f64, at: &str) {
    use serde_json::Value;
    match (got, want) {
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{at}: {got} vs {want}");
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                assert_json_close(g, w, tol, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(g), Value::Object(w)) => {
            let gk: Vec<&String> = g.keys().collect();
            let wk: Vec<&String> = w.keys().collect();
            assert_eq!(gk, wk, "{at}: keys of {got} vs {want}");
            for (k, wv) in w {
                let gv = &g[k];
                if k == "score" {
                    let (a, b) = (gv.as_f64(), wv.as_f64());
                    let (Some(a), Some(b)) = (a, b) else {
                        panic!("{at}.score: {gv} vs {wv}")
                    };
                    assert!((a - b).abs() <= tol, "{at}.score: {a} vs {b}");
                } else {
                    assert_json_close(gv, wv, tol, &format!("{at}.{k}"));
                }
            }
        }
        (Value::Number(g), Value::Number(w)) => {
            assert_eq!(g.as_f64(), w.as_f64(), "{at}: {g} vs {w}");
        }
        _ => assert_eq!(got, want, "{at}"),
    }
}
