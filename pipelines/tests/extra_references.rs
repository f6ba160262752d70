//! Paths the shared fixtures' references do not take, against transformers' own pipeline() on
//! the same fixtures (`tests/data/extra_references.json`, made by
//! `tests/data/make_extra_references.py`): several mask tokens in one text, token
//! classification's `first` / `average` / `max` aggregations, text classification with `top_k`
//! and over a list. Also the bad inputs of each text task on real task models.

mod common;

use common::{assemble, assert_json_close, fixture_dir};
use kiln_pipelines::tasks::{Aggregation, QaOptions};
use kiln_pipelines::{Error, Folder, Inputs, Options, Pipeline, Task};
use serde_json::Value;
use std::path::Path;

fn pipeline(task: Task, fixture: &str) -> Option<(Pipeline, tempfile::TempDir)> {
    let minilm = common::minilm_dir()?;
    let dir = assemble(&minilm, &fixture_dir(fixture));
    let model = common::compile(dir.path());
    let p = Pipeline::new(task, model, &Folder::new(dir.path())).unwrap();
    Some((p, dir))
}

fn cases(task: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/extra_references.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["task"] == task)
        .cloned()
        .collect()
}

/// The case's inputs as texts, and whether it was one text (not a list).
fn texts(case: &Value) -> (Vec<String>, bool) {
    match &case["inputs"] {
        Value::String(s) => (vec![s.clone()], true),
        Value::Array(a) => (
            a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
            false,
        ),
        other => panic!("inputs {other}"),
    }
}

#[test]
fn several_masks_give_a_list_per_mask() {
    let Some((p, _dir)) = pipeline(Task::FillMask, "minilm-fill-mask") else {
        return;
    };
    for (i, case) in cases("fill-mask").iter().enumerate() {
        let (t, single) = texts(case);
        let opts = Options {
            top_k: case["kwargs"]["top_k"].as_u64().map(|k| k as usize),
            ..Options::default()
        };
        let got = p.run(&Inputs::Texts(&t), &opts).unwrap();
        let at = format!("fill-mask case {i} ({})", t[0]);
        assert_json_close(&got.results.json(single), &case["output"], 1e-4, &at);
    }
    let texts = vec!["No mask in this one.".to_string()];
    let e = p
        .run(&Inputs::Texts(&texts), &Options::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "input 1 has no mask token `[MASK]`");
    // A mask that truncation cut off says so.
    let texts = vec![format!("{} [MASK].", "word ".repeat(600))];
    let e = p
        .run(&Inputs::Texts(&texts), &Options::default())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "input 1 has no mask token `[MASK]` left after truncation to the model's longest input"
    );
}

#[test]
fn word_aggregations_match_transformers() {
    let Some((p, _dir)) = pipeline(Task::TokenClassification, "minilm-token-classification") else {
        return;
    };
    let all = cases("token-classification");
    assert_eq!(all.len(), 12);
    for (i, case) in all.iter().enumerate() {
        let (t, single) = texts(case);
        let how = case["kwargs"]["aggregation_strategy"].as_str().unwrap();
        let opts = Options {
            aggregation: Aggregation::parse(how).unwrap(),
            ..Options::default()
        };
        let got = p.run(&Inputs::Texts(&t), &opts).unwrap();
        let at = format!("token-classification case {i} ({}, {how})", t[0]);
        assert_json_close(&got.results.json(single), &case["output"], 1e-4, &at);
    }
}

#[test]
fn text_classification_top_k_and_lists_match_transformers() {
    let Some((p, _dir)) = pipeline(Task::TextClassification, "minilm-text-classification") else {
        return;
    };
    for (i, case) in cases("text-classification").iter().enumerate() {
        let (t, single) = texts(case);
        let opts = Options {
            top_k: case["kwargs"]["top_k"].as_u64().map(|k| k as usize),
            ..Options::default()
        };
        let got = p.run(&Inputs::Texts(&t), &opts).unwrap();
        let at = format!("text-classification case {i}");
        assert_json_close(&got.results.json(single), &case["output"], 1e-4, &at);
    }
    let texts = vec!["fine".to_string(), String::new()];
    let e = p
        .run(&Inputs::Texts(&texts), &Options::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "input 2 is empty");
}

#[test]
fn question_answering_refuses_what_has_no_answer() {
    let Some((p, _dir)) = pipeline(Task::QuestionAnswering, "minilm-question-answering") else {
        return;
    };
    let run = |question: &str, context: &str, qa: QaOptions| {
        let contexts = vec![context.to_string()];
        let inputs = Inputs::Question {
            question,
            contexts: &contexts,
        };
        p.run(
            &inputs,
            &Options {
                qa,
                ..Options::default()
            },
        )
    };
    let d = QaOptions::default();
    // A context of characters the tokenizer drops has no token that can be an answer.
    let e = run("Who?", "\u{200b}\u{200b}", d).unwrap_err();
    assert!(matches!(e, Error::NoAnswer { input: 0 }), "{e}");
    assert_eq!(
        e.to_string(),
        "context 1 has no answer: no span of it can be an answer"
    );
    // With handle_impossible_answer the empty answer is a result instead.
    let qa = QaOptions {
        handle_impossible_answer: true,
        ..d
    };
    let got = run("Who?", "\u{200b}\u{200b}", qa).unwrap();
    let v = got.results.json(true);
    assert_eq!(
        (&v["answer"], &v["start"], &v["end"]),
        (&Value::from(""), &Value::from(0), &Value::from(0))
    );
    assert_eq!(
        run("", "A context.", d).unwrap_err().to_string(),
        "the question is empty"
    );
    assert_eq!(
        run("Who?", " ", d).unwrap_err().to_string(),
        "input 1 is empty"
    );
    // A question that leaves no room for the stride is refused (the tokenizer would panic).
    let long_question = "why ".repeat(300);
    let e = run(&long_question, &"word ".repeat(500), d).unwrap_err();
    assert!(matches!(e, Error::QuestionTooLong { .. }), "{e}");
    let qa = QaOptions {
        doc_stride: Some(400),
        ..d
    };
    let e = run("Who?", "A context.", qa).unwrap_err();
    assert_eq!(
        e.to_string(),
        "doc_stride (400) must be less than max_seq_len (384)"
    );
    // Texts are not what question answering takes.
    let texts = vec!["x".to_string()];
    let e = p
        .run(&Inputs::Texts(&texts), &Options::default())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "question-answering takes a question and contexts"
    );
}
