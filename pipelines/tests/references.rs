//! Every task against what transformers' own `pipeline(...)` returned on the same model
//! (`tests/models/pipelines/*/reference.json`): the same tokens, labels, entity spans and answer
//! spans, scores within 1e-4, and for images the same labels and `pixel_values` within 1e-5.

mod common;

use common::{assemble, assert_json_close, fixture_dir, reference_cases};
use kiln_pipelines::tasks::{Aggregation, ImageInput, QaOptions};
use kiln_pipelines::{Folder, Inputs, Options, Pipeline, Task};
use serde_json::Value;

const TOL: f64 = 1e-4;

/// The pipeline of `task` on the MiniLM fixture `name` (assembled and compiled), with its cases.
fn minilm_task(task: Task, name: &str) -> Option<(Pipeline, Vec<Value>, tempfile::TempDir)> {
    let minilm = common::minilm_dir()?;
    let fixture = fixture_dir(name);
    let dir = assemble(&minilm, &fixture);
    let model = common::compile(dir.path());
    let p = Pipeline::new(task, model, &Folder::new(dir.path())).unwrap();
    Some((p, reference_cases(&fixture), dir))
}

fn text_of(case: &Value) -> String {
    case["inputs"].as_str().expect("a text input").to_string()
}

#[test]
fn fill_mask_matches_transformers() {
    let Some((p, cases, _dir)) = minilm_task(Task::FillMask, "minilm-fill-mask") else {
        return;
    };
    assert!(cases.len() >= 20);
    // All sentences in one batched run, then one at a time: the same results.
    let texts: Vec<String> = cases.iter().map(text_of).collect();
    let opts = Options {
        top_k: Some(5),
        ..Options::default()
    };
    let all = p.run(&Inputs::Texts(&texts), &opts).unwrap();
    let batched = all.results.json(false);
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(case["kwargs"]["top_k"], 5);
        let one = p.run(&Inputs::Texts(&texts[i..=i]), &opts).unwrap();
        let at = format!("case {i} ({})", texts[i]);
        assert_json_close(&one.results.json(true), &case["output"], TOL, &at);
        assert_json_close(&batched[i], &case["output"], TOL, &at);
    }
}

#[test]
fn text_classification_matches_transformers() {
    let Some((p, cases, _dir)) =
        minilm_task(Task::TextClassification, "minilm-text-classification")
    else {
        return;
    };
    for (i, case) in cases.iter().enumerate() {
        let texts = vec![text_of(case)];
        let top_k = match case["kwargs"].get("top_k") {
            None => None,
            Some(Value::Null) => Some(usize::MAX),
            Some(k) => Some(k.as_u64().expect("a top_k") as usize),
        };
        let opts = Options {
            top_k,
            ..Options::default()
        };
        let got = p.run(&Inputs::Texts(&texts), &opts).unwrap();
        let at = format!("case {i} ({}, {})", texts[0], case["kwargs"]);
        assert_json_close(&got.results.json(true), &case["output"], TOL, &at);
    }
}

#[test]
fn token_classification_matches_transformers() {
    let Some((p, cases, _dir)) =
        minilm_task(Task::TokenClassification, "minilm-token-classification")
    else {
        return;
    };
    let mut simple = 0;
    for (i, case) in cases.iter().enumerate() {
        let texts = vec![text_of(case)];
        let how = case["kwargs"]["aggregation_strategy"]
            .as_str()
            .and_then(Aggregation::parse)
            .expect("an aggregation strategy");
        simple += usize::from(how == Aggregation::Simple);
        let opts = Options {
            aggregation: how,
            ..Options::default()
        };
        let got = p.run(&Inputs::Texts(&texts), &opts).unwrap();
        let at = format!("case {i} ({}, {how:?})", texts[0]);
        assert_json_close(&got.results.json(true), &case["output"], TOL, &at);
    }
    assert!(simple >= 10);
}

#[test]
fn question_answering_matches_transformers() {
    let Some((p, cases, _dir)) = minilm_task(Task::QuestionAnswering, "minilm-question-answering")
    else {
        return;
    };
    let mut windows = 0;
    for (i, case) in cases.iter().enumerate() {
        let question = case["inputs"]["question"].as_str().expect("a question");
        let contexts = vec![case["inputs"]["context"]
            .as_str()
            .expect("a context")
            .to_string()];
        let k = &case["kwargs"];
        let int = |key: &str| k[key].as_u64().map(|v| v as usize);
        let opts = Options {
            top_k: int("top_k"),
            qa: QaOptions {
                max_seq_len: int("max_seq_len"),
                doc_stride: int("doc_stride"),
                ..QaOptions::default()
            },
            ..Options::default()
        };
        let inputs = Inputs::Question {
            question,
            contexts: &contexts,
        };
        let got = p.run(&inputs, &opts).unwrap();
        let at = format!("case {i} ({question}, {k})");
        assert_json_close(&got.results.json(true), &case["output"], TOL, &at);
        let found_in = case["meta"]["best_answer_found_in_windows"].as_array();
        windows = windows.max(found_in.map_or(0, Vec::len));
    }
    assert!(windows >= 2, "no case has its answer in two windows");
}

#[test]
fn image_classification_matches_transformers() {
    let fixture = fixture_dir("vit-image-classification");
    if !fixture.is_dir() {
        panic!("{} is missing", fixture.display());
    }
    let model = common::compile(&fixture);
    let p = Pipeline::new(Task::ImageClassification, model, &Folder::new(&fixture)).unwrap();
    let Pipeline::ImageClassification(images) = &p else {
        unreachable!()
    };
    let pixels = kiln::read_npz(&fixture.join("pixel_values.npz")).expect("pixel_values.npz");
    let cases = reference_cases(&fixture);
    assert!(cases.len() >= 5);
    let mut off = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let rel = case["inputs"].as_str().expect("an image path");
        let bytes = std::fs::read(fixture.join(rel)).expect("the image");
        let input = [ImageInput {
            name: rel,
            bytes: &bytes,
        }];
        // pixel_values within 1e-5 of the image processor's for PNG. JPEG decoders other than
        // libjpeg-turbo (Pillow's) differ by a few levels (IDCT, chroma upsampling): up to 6 of
        // 255 after the resize.
        let file = rel.rsplit('/').next().unwrap_or(rel);
        let want = &pixels[file];
        let got = images.pixel_values(&input).unwrap();
        assert_eq!(&got.shape()[1..], want.shape(), "{rel}");
        let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
        let worst = g
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let tol = if rel.ends_with(".png") {
            1e-5
        } else {
            6.0 / 255.0 / 0.5
        };
        println!("{rel}: pixel values within {worst:e}");
        if worst > tol {
            off.push(format!("{rel}: pixel values differ by up to {worst}"));
        }
        let opts = Options {
            top_k: case["kwargs"]["top_k"].as_u64().map(|k| k as usize),
            ..Options::default()
        };
        let got = p.run(&Inputs::Images(&input), &opts).unwrap();
        // Scores follow the pixels: JPEG's few levels move them by up to a few percent, which
        // leaves the labels and their order as transformers has them.
        let score_tol = if rel.ends_with(".png") { TOL } else { 0.05 };
        let at = format!("case {i} ({rel})");
        assert_json_close(&got.results.json(true), &case["output"], score_tol, &at);
    }
    assert!(off.is_empty(), "{off:#?}");
}
