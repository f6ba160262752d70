//! `kiln pipeline`: feature extraction on all-MiniLM-L6-v2 from arguments, `@FILE` and standard
//! input prints transformers-shaped JSON that matches sentence-transformers (cosine ≥ 0.9999),
//! truncation is noted on stderr, bad input is one `error:` line (exit 1; usage errors 2), and a
//! `.kiln` artifact carries the settings it needs (runs with its folder deleted).

use crate::common;

use common::{kiln, shared_dir, stdout_ok};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub(crate) fn minilm() -> Option<PathBuf> {
    Some(shared_dir()?.join("models").join("all-MiniLM-L6-v2"))
}

/// Runs `kiln` with `args` and `input` on standard input.
fn kiln_stdin(args: &[&dyn AsRef<std::ffi::OsStr>], input: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    for a in args {
        c.arg(a);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the kiln binary runs");
    child
        .stdin
        .take()
        .expect("a stdin pipe")
        .write_all(input.as_bytes())
        .expect("stdin takes the input");
    child.wait_with_output().expect("kiln finishes")
}

/// The one-line message of a user error (exit 1), without `error: `.
pub(crate) fn user_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "status {:?}: {err}", o.status);
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err.trim_end()
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("no `error: ` prefix: {err}"))
        .to_string()
}

fn sentences(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("sentences.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Checks JSON embeddings against the first ones of MiniLM's `reference.npz`.
fn check_embeddings(dir: &std::path::Path, got: &[Vec<f64>]) {
    let npz = kiln::read_npz(&dir.join("reference.npz")).unwrap();
    let want = &npz["sentence_embedding"];
    let h = want.shape()[1];
    let want = want.to_f64_vec();
    assert!(!got.is_empty() && got.len() * h <= want.len());
    for (i, g) in got.iter().enumerate() {
        let dot: f64 = g.iter().zip(&want[i * h..][..h]).map(|(a, b)| a * b).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let c = dot / (norm(g) * norm(&want[i * h..][..h]));
        assert!(c >= 0.9999, "sentence {i}: cosine {c}");
    }
}

#[test]
fn feature_extraction_from_stdin_prints_one_embedding_per_line() {
    let Some(dir) = minilm() else { return };
    let lines = sentences(&dir).join("\n") + "\n";
    let o = kiln_stdin(
        &[&"pipeline", &"feature-extraction", &dir, &"--json"],
        &lines,
    );
    let got: Vec<Vec<f64>> = serde_json::from_str(&stdout_ok(&o)).unwrap();
    check_embeddings(&dir, &got);
}

#[test]
fn inputs_come_from_arguments_and_files() {
    let Some(dir) = minilm() else { return };
    let s = sentences(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("inputs.txt");
    std::fs::write(&file, format!("{}\n\n{}\n", s[1], s[2])).unwrap();
    let at = format!("@{}", file.display());
    let o = kiln(&[
        &"pipeline",
        &"sentence-embeddings",
        &dir,
        &s[0],
        &at,
        &"--json",
    ]);
    let got: Vec<Vec<f64>> = serde_json::from_str(&stdout_ok(&o)).unwrap();
    check_embeddings(&dir, &got);
    // One input given as an argument prints what transformers returns for one input.
    let o = kiln(&[&"pipeline", &"sentence-embeddings", &dir, &s[0], &"--json"]);
    let one: Vec<f64> = serde_json::from_str(&stdout_ok(&o)).unwrap();
    check_embeddings(&dir, &[one]);
    // Without --json, a table.
    let o = kiln(&[&"pipeline", &"feature-extraction", &dir, &s[0]]);
    let text = stdout_ok(&o);
    assert!(
        text.starts_with("input 1: ") && text.contains("embedding of 384 values"),
        "{text}"
    );
}

#[test]
fn truncation_is_noted_on_stderr() {
    let Some(dir) = minilm() else { return };
    let long = "word ".repeat(300);
    let o = kiln(&[
        &"pipeline",
        &"feature-extraction",
        &dir,
        &"short",
        &long,
        &"--json",
    ]);
    stdout_ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim(),
        "note: input 2 was truncated from 302 to 256 tokens"
    );
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let Some(dir) = minilm() else { return };
    let run = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"pipeline"];
        all.extend_from_slice(args);
        user_error(&kiln(&all))
    };
    assert_eq!(
        run(&[&"feature-extraction", &dir, &"fine", &" "]),
        "input 2 is empty"
    );
    let e = run(&[&"fill-mask", &dir, &"Paris is the [MASK] of France."]);
    assert_eq!(
        e,
        "fill-mask needs a model output `logits`; this model's outputs are `last_hidden_state`"
    );
    let e = run(&[&"image-classification", &dir, &"cat.png"]);
    assert!(
        e.starts_with("image-classification cannot run this model"),
        "{e}"
    );
    let e = run(&[&"question-answering", &dir, &"a context"]);
    assert_eq!(e, "question-answering needs a question: --question Q");
    let e = run(&[&"token-classification", &dir, &"x", &"--top-k", &"2"]);
    assert_eq!(e, "--top-k does not apply to token-classification");
    let e = run(&[&"text-classification", &dir, &"@/nonexistent/inputs.txt"]);
    assert!(
        e.starts_with("/nonexistent/inputs.txt: cannot read the inputs"),
        "{e}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let e = run(&[&"feature-extraction", &tmp.path(), &"x"]);
    assert!(e.starts_with(&tmp.path().display().to_string()), "{e}");
}

#[test]
fn an_unknown_task_is_a_usage_error_listing_the_tasks() {
    let Some(dir) = minilm() else { return };
    let o = kiln(&[&"pipeline", &"summarization", &dir, &"x"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.contains("unknown task `summarization`")
            && first.contains("fill-mask")
            && first.contains("question-answering")
            && first.contains("image-classification"),
        "{err}"
    );
}

#[test]
fn an_artifact_carries_its_settings_and_runs_without_the_folder() {
    let Some(dir) = minilm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("minilm");
    std::fs::create_dir_all(copy.join("1_Pooling")).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
    ] {
        std::fs::copy(dir.join(f), copy.join(f)).unwrap();
    }
    let artifact = tmp.path().join("minilm.kiln");
    stdout_ok(&kiln(&[&"compile", &copy, &"-o", &artifact]));
    std::fs::remove_dir_all(&copy).unwrap();
    let lines = sentences(&dir).join("\n");
    let o = kiln_stdin(
        &[&"pipeline", &"feature-extraction", &artifact, &"--json"],
        &lines,
    );
    let got: Vec<Vec<f64>> = serde_json::from_str(&stdout_ok(&o)).unwrap();
    check_embeddings(&dir, &got);
    // Truncation follows the artifact's sentence-transformers settings too.
    let long = "word ".repeat(300);
    let o = kiln(&[
        &"pipeline",
        &"feature-extraction",
        &artifact,
        &long,
        &"--json",
    ]);
    stdout_ok(&o);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "note: input 1 was truncated from 302 to 256 tokens"
    );
}

#[test]
fn an_artifact_without_a_tokenizer_names_the_missing_file() {
    let Some(dir) = minilm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("bare");
    std::fs::create_dir(&copy).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(dir.join(f), copy.join(f)).unwrap();
    }
    let artifact = tmp.path().join("bare.kiln");
    stdout_ok(&kiln(&[&"compile", &copy, &"-o", &artifact]));
    let e = user_error(&kiln(&[
        &"pipeline",
        &"feature-extraction",
        &artifact,
        &"x",
    ]));
    assert_eq!(
        e,
        format!(
            "{}: tokenizer.json is missing (needed for the tokenizer of text pipelines)",
            artifact.display()
        )
    );
    // Models that are not Hugging Face folders (or artifacts of them) are refused by kind.
    let kir = common::example("tiny_classifier.kir");
    let e = user_error(&kiln(&[&"pipeline", &"fill-mask", &kir, &"x"]));
    assert!(
        e.contains("pipelines run Hugging Face folders and artifacts"),
        "{e}"
    );
}
