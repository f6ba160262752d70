//! The `sentence_embeddings` example end to end: run on all-MiniLM-L6-v2 with the three
//! reference sentences, its embeddings match sentence-transformers' (cosine ≥ 0.9999 each), and a
//! folder that is not a model folder is refused with a clear message.
//!
//! Examples cannot be imported by tests and Cargo exposes no `CARGO_BIN_EXE_` path for them, so
//! the test runs the example through `cargo run --example` with the cargo that runs the tests,
//! in the tests' own profile and target directory (inherited from the environment): the example
//! and its dependencies are then already built by `cargo test`, and the run costs no rebuild.

use crate::common;

use common::shared_dir;
use std::process::Output;

/// Runs the example with `args` through cargo, in the profile this test was built with.
fn run_example(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    common::cargo_example(&[], "sentence_embeddings", args)
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn minilm_embeddings_match_sentence_transformers() {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("models").join("all-MiniLM-L6-v2");
    let text = std::fs::read_to_string(dir.join("sentences.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sentences: Vec<String> = v["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(sentences.len(), 3);

    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&dir];
    args.extend(sentences.iter().map(|s| s as &dyn AsRef<std::ffi::OsStr>));
    let out = run_example(&args);
    assert!(
        out.status.success(),
        "status {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON array of arrays ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    let npz = kiln::read_npz(&dir.join("reference.npz")).unwrap();
    let want = &npz["sentence_embedding"];
    let &[n, h] = want.shape() else {
        panic!("sentence_embedding has shape {:?}", want.shape())
    };
    assert_eq!(got.len(), n);
    let want = want.to_f64_vec();
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.len(), h, "sentence {i}");
        let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "sentence {i}: norm {norm}");
        let c = cosine(g, &want[i * h..][..h]);
        println!("sentence {i}: cosine {c:.10}");
        assert!(c >= 0.9999, "sentence {i} ({:?}): cosine {c}", sentences[i]);
    }
}

#[test]
fn a_folder_without_config_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_example(&[&tmp.path(), &"a sentence"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a Hugging Face model folder"),
        "stderr: {err}"
    );
    assert!(
        err.contains(&*tmp.path().to_string_lossy()),
        "stderr: {err}"
    );
}
