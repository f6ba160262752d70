//! `kiln pipeline` on the task fixtures of `tests/models/pipelines` (MiniLM with a task head,
//! the tiny ViT): `--json` prints what transformers' pipeline returned for fill-mask, token
//! classification and question answering over a context of several windows; tables, the
//! bad-input lines of those tasks, and an image that does not decode named in its error.

use crate::cli_pipeline::{minilm, user_error};
use crate::common::{kiln, stdout_ok};
use std::path::PathBuf;

/// A temporary folder with MiniLM's files and those of the reference fixture `name`
/// (`tests/models/pipelines/NAME`), linked (copied where links cannot be made).
fn assemble(name: &str) -> Option<tempfile::TempDir> {
    let minilm = minilm()?;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/models/pipelines")
        .join(name);
    let tmp = tempfile::tempdir().unwrap();
    let files = [
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
    ];
    let mut sources: Vec<PathBuf> = files.iter().map(|f| minilm.join(f)).collect();
    for e in std::fs::read_dir(&fixture).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            sources.push(p);
        }
    }
    for from in sources {
        let to = tmp.path().join(from.file_name().unwrap());
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    Some(tmp)
}

/// The cases of a fixture's `reference.json`.
fn cases(name: &str) -> Vec<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/models/pipelines")
        .join(name)
        .join("reference.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

/// Asserts that two JSON results agree: the same structure and text, scores within 1e-4.
fn same(got: &serde_json::Value, want: &serde_json::Value) {
    use serde_json::Value;
    match (got, want) {
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{got} vs {want}");
            g.iter().zip(w).for_each(|(g, w)| same(g, w));
        }
        (Value::Object(g), Value::Object(w)) => {
            assert_eq!(g.keys().collect::<Vec<_>>(), w.keys().collect::<Vec<_>>());
            for (k, wv) in w {
                match (k.as_str(), g[k].as_f64(), wv.as_f64()) {
                    ("score", Some(a), Some(b)) => assert!((a - b).abs() <= 1e-4, "{a} vs {b}"),
                    _ => same(&g[k], wv),
                }
            }
        }
        _ => assert_eq!(got, want),
    }
}

#[test]
fn fill_mask_prints_what_transformers_returns() {
    let Some(dir) = assemble("minilm-fill-mask") else {
        return;
    };
    let case = &cases("minilm-fill-mask")[0];
    let text = case["inputs"].as_str().unwrap();
    let o = kiln(&[&"pipeline", &"fill-mask", &dir.path(), &text, &"--json"]);
    let got: serde_json::Value = serde_json::from_str(&stdout_ok(&o)).unwrap();
    same(&got, &case["output"]);
    // The table shows the same first token.
    let o = kiln(&[&"pipeline", &"fill-mask", &dir.path(), &text]);
    let table = stdout_ok(&o);
    let first = case["output"][0]["token_str"].as_str().unwrap();
    assert!(
        table.lines().nth(1).is_some_and(|l| l.contains(first)),
        "{table}"
    );
    let e = user_error(&kiln(&[
        &"pipeline",
        &"fill-mask",
        &dir.path(),
        &"No mask here.",
    ]));
    assert_eq!(e, "input 1 has no mask token `[MASK]`");
}

#[test]
fn question_answering_over_a_long_context_file() {
    let Some(dir) = assemble("minilm-question-answering") else {
        return;
    };
    let all = cases("minilm-question-answering");
    let case = all
        .iter()
        .find(|c| {
            c["meta"]["best_answer_found_in_windows"]
                .as_array()
                .is_some_and(|w| w.len() >= 2)
                && c["kwargs"]["top_k"] == 1
        })
        .expect("a case whose answer lies in two windows");
    let ctx = dir.path().join("context.txt");
    std::fs::write(&ctx, case["inputs"]["context"].as_str().unwrap()).unwrap();
    let q = case["inputs"]["question"].as_str().unwrap();
    let o = kiln(&[
        &"pipeline",
        &"question-answering",
        &dir.path(),
        &"--question",
        &q,
        &"--context-file",
        &ctx,
        &"--json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&stdout_ok(&o)).unwrap();
    same(&got, &case["output"]);
    let e = user_error(&kiln(&[
        &"pipeline",
        &"question-answering",
        &dir.path(),
        &"--question",
        &q,
        &"  ",
    ]));
    assert_eq!(e, "input 1 is empty");
    let e = user_error(&kiln(&[
        &"pipeline",
        &"question-answering",
        &dir.path(),
        &"--question",
        &"",
        &"ctx",
    ]));
    assert_eq!(e, "the question is empty");
}

#[test]
fn token_classification_groups_entities_by_default() {
    let Some(dir) = assemble("minilm-token-classification") else {
        return;
    };
    let case = cases("minilm-token-classification")
        .into_iter()
        .find(|c| c["kwargs"]["aggregation_strategy"] == "simple")
        .unwrap();
    let text = case["inputs"].as_str().unwrap();
    let o = kiln(&[
        &"pipeline",
        &"token-classification",
        &dir.path(),
        &text,
        &"--json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&stdout_ok(&o)).unwrap();
    same(&got, &case["output"]);
}

#[test]
fn an_image_that_does_not_decode_is_named() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/models/pipelines/vit-image-classification");
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let good = fixture.join("images/rgb_97x61.png");
    let e = user_error(&kiln(&[
        &"pipeline",
        &"image-classification",
        &fixture,
        &good,
        &bad,
    ]));
    assert!(
        e.starts_with(&format!("{}: cannot decode the image: ", bad.display())),
        "{e}"
    );
    let o = kiln(&[
        &"pipeline",
        &"image-classification",
        &fixture,
        &good,
        &"--top-k",
        &"2",
        &"--json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&stdout_ok(&o)).unwrap();
    assert_eq!(got.as_array().map(Vec::len), Some(2), "{got}");
}
