//! Regressions of the CLI friction a new user met (issue 18): `inspect` starts with a summary,
//! kernel lines are words rather than `Debug` structs, the optimizer report separates what it
//! fused from what was imported fused, `.npz` files with extra keys are accepted with a note,
//! model kinds are recognised by content, unwritable outputs are refused before any work, a task
//! head Kiln does not build is a warning, and the runtime-embedding example runs MiniLM.

use crate::common::{self, example, kiln};
use std::process::{Command, Output};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn inspect_text_starts_with_a_summary_and_stays_parseable() {
    let o = kiln(&[&"inspect", &example("tiny_classifier.kir")]);
    let text = common::stdout_ok(&o);
    let head: Vec<&str> = text.lines().take(6).collect();
    assert!(
        head[0].starts_with("# ") && head[0].contains("(imported stage)"),
        "{text}"
    );
    assert_eq!(head[1], "# inputs: tokens: i64[batch, seq]");
    assert_eq!(head[2], "# outputs: logits: f32[batch, 4]");
    assert!(head[3].starts_with("# weights: 9 ("), "{text}");
    assert!(
        head[4].starts_with("# nodes: ") && head[4].contains("gelu"),
        "{text}"
    );
    assert!(
        head[5].starts_with("# fused ops: Attention 0, LayerNorm 1"),
        "{text}"
    );
    kiln_compiler::text::parse(&text).expect("the printed text parses");
}

#[test]
fn kernel_lines_are_words_and_the_arena_is_evaluated() {
    let o = kiln(&[
        &"inspect",
        &example("tiny_classifier.kir"),
        &"--stage",
        &"kernels",
    ]);
    let text = common::stdout_ok(&o);
    assert!(!text.contains('{') && !text.contains("Packed"), "{text}");
    assert!(
        text.contains("gemm k=8 n=16 packed@") && text.contains("+bias gelu_erf"),
        "{text}"
    );
    assert!(
        text.contains("with every symbol = 1: 128 bytes, = 128: 2.1 MB"),
        "{text}"
    );
}

#[test]
fn the_optimizer_report_counts_what_it_fused_not_what_was_imported_fused() {
    let o = kiln(&[
        &"inspect",
        &example("tiny_classifier.kir"),
        &"--stage",
        &"optimized",
    ]);
    let text = common::stdout_ok(&o);
    // The example's text already holds its layer_norm and gelu: the optimizer made neither.
    assert!(
        text.contains("# fused: 0 by the optimizer (2 fused ops in all, 2 already imported fused)"),
        "{text}"
    );
    // A model folder is built with fused ops too.
    let dir = tempfile::tempdir().unwrap();
    crate::hf_bert::write_folder(dir.path(), "BertModel", "", &crate::hf_bert::tiny_weights());
    let o = kiln(&[&"inspect", &dir.path(), &"--stage", &"optimized"]);
    let text = common::stdout_ok(&o);
    assert!(text.contains("# fused: 0 by the optimizer ("), "{text}");
    // An exported ONNX BERT spells LayerNorm, GELU and attention out: the optimizer fuses them.
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let onnx = shared.join("fixtures").join("bert-tiny.onnx");
    let o = kiln(&[&"inspect", &onnx, &"--stage", &"optimized"]);
    let text = common::stdout_ok(&o);
    let line = text.lines().find(|l| l.starts_with("# fused: ")).unwrap();
    assert!(line.ends_with(", 0 already imported fused)"), "{line}");
    assert!(!line.starts_with("# fused: 0 "), "{line}");
}

#[test]
fn extra_npz_keys_are_ignored_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = kiln::read_npz(&example("tiny_classifier_inputs.npz")).unwrap();
    inputs.insert("out".into(), kiln_runtime::Tensor::scalar_f32(1.0));
    let npz = dir.path().join("in.npz");
    kiln::write_npz(&npz, &inputs, kiln::npz::Compression::Stored).unwrap();
    for backend in ["cpu", "reference"] {
        let out = dir.path().join("out.npz");
        let o = kiln(&[
            &"run",
            &example("tiny_classifier.kir"),
            &"--inputs",
            &npz,
            &"--outputs",
            &out,
            &"--backend",
            &backend,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("note: ") && err.contains("ignoring `out`") && err.contains("`tokens`"),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn model_kinds_are_recognised_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let kir = dir.path().join("model.txt");
    std::fs::copy(example("tiny_classifier.kir"), &kir).unwrap();
    let art = dir.path().join("model.bin");
    let o = kiln(&[&"compile", &kir, &"-o", &art]);
    assert!(o.status.success(), "{}", stderr(&o));
    let onnx = dir.path().join("model.pb");
    std::fs::write(&onnx, common::onnx::add_bias_model()).unwrap();
    for (model, word) in [
        (&kir, "imported stage"),
        (&art, "artifact:"),
        (&onnx, "imported stage"),
    ] {
        let o = kiln(&[&"inspect", model]);
        let text = common::stdout_ok(&o);
        assert!(text.contains(word), "{}: {text}", model.display());
    }
}

#[test]
fn an_unwritable_output_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("missing").join("m.kiln");
    // A model that cannot even be read: the output is checked first.
    let o = kiln(&[&"compile", &dir.path().join("absent.onnx"), &"-o", &out]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: cannot write outputs to ") && err.contains("missing/m.kiln"),
        "{err}"
    );
}

#[test]
fn a_task_head_kiln_does_not_build_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    crate::hf_bert::write_folder(
        dir.path(),
        "BertForNextSentencePrediction",
        "",
        &crate::hf_bert::tiny_weights(),
    );
    let art = dir.path().join("m.kiln");
    let o = kiln(&[&"compile", &dir.path(), &"-o", &art]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: ")
            && err.contains("unsupported architecture `BertForNextSentencePrediction`")
            && err.contains("BertForSequenceClassification"),
        "{err}"
    );
    assert!(!art.exists());
    // A folder naming an architecture Kiln builds compiles without a word on stderr.
    let plain = tempfile::tempdir().unwrap();
    crate::hf_bert::write_folder(
        plain.path(),
        "BertModel",
        "",
        &crate::hf_bert::tiny_weights(),
    );
    let o = kiln(&[
        &"compile",
        &plain.path(),
        &"-o",
        &plain.path().join("m.kiln"),
    ]);
    assert!(
        o.status.success() && stderr(&o).is_empty(),
        "{}",
        stderr(&o)
    );
}

/// Runs the runtime crate's `embed_runtime` example with `args` through cargo (with the feature
/// set the workspace tests build `kiln-runtime` with, so nothing is rebuilt twice).
fn embed_runtime(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let package = ["-p", "kiln-runtime", "--features", "test-util"];
    common::cargo_example(&package, "embed_runtime", args)
}

#[test]
fn the_embedding_example_runs_the_flagship_model_and_prints_errors_as_lines() {
    let dir = tempfile::tempdir().unwrap();
    let o = embed_runtime(&[&dir.path().join("absent.kiln")]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: ") && err.contains("absent.kiln"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let Some(shared) = common::shared_dir() else {
        return;
    };
    // MiniLM with batch 2 and seq 5: its token type ids must stay inside [0, 2).
    let art = dir.path().join("minilm.kiln");
    let o = kiln(&[
        &"compile",
        &shared.join("models").join("all-MiniLM-L6-v2"),
        &"-o",
        &art,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = embed_runtime(&[&art, &"batch=2", &"seq=5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("output last_hidden_state: f32 [2, 5, 384]")
            && text.contains("4 threads agree: true"),
        "{text}"
    );
}

#[test]
fn an_svg_picture_of_minilm_is_well_formed_and_shows_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.svg");
    let o = kiln(&[
        &"inspect",
        &example("tiny_classifier.kir"),
        &"--stage",
        &"optimized",
        &"--format",
        &"svg",
        &"-o",
        &tiny,
    ]);
    assert!(o.status.success() && o.stdout.is_empty(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&tiny).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    for label in ["layer_norm", "matmul_bias", "mlp.w1", "f32[batch, seq, 16]"] {
        assert!(text.contains(label), "{label} missing");
    }
    // Kernels and artifacts are not graphs.
    let o = kiln(&[
        &"inspect",
        &example("tiny_classifier.kir"),
        &"--stage",
        &"kernels",
        &"--format",
        &"svg",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let svg = dir.path().join("g.svg");
    let minilm = shared.join("models").join("all-MiniLM-L6-v2");
    let o = kiln(&[
        &"inspect",
        &minilm,
        &"--stage",
        &"optimized",
        &"--format",
        &"svg",
        &"-o",
        &svg,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("tspan"))
        .filter_map(|n| n.text())
        .collect();
    let attention = texts.iter().filter(|t| t.trim() == "attention").count();
    assert_eq!(attention, 6, "one attention per layer");
}

#[test]
fn progress_goes_to_stderr_only_when_asked_or_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let art = dir.path().join("m.kiln");
    // Not a terminal (the test captures stderr): quiet.
    let o = kiln(&[&"compile", &example("tiny_classifier.kir"), &"-o", &art]);
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    // `KILN_PROGRESS=all` announces every step (on a terminal, steps over a second are).
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["compile", "examples/tiny_classifier.kir", "-o"])
        .arg(&art)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("KILN_PROGRESS", "all")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let steps: Vec<&str> = err.lines().collect();
    assert_eq!(
        steps,
        [
            "kiln: loading the model…",
            "kiln: optimizing…",
            "kiln: lowering…",
            "kiln: generating code…",
            "kiln: assembling the artifact…"
        ],
        "{err}"
    );
}
