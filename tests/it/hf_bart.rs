//! BART (`tests/models/hf/bart-tiny`, random weights written by `tools/export_seq2seq.py`)
//! compiled as its two generation graphs (`hf::load_seq2seq`) against transformers
//! (`reference.json`):
//!
//! 1. the encoder gives `last_hidden_state` and the decoder's first step from
//!    `decoder_start_token_id` gives `first_step_logits` within 1e-4, for each source alone and
//!    for a right-padded batch of three lengths;
//! 2. `Seq2Seq` gives transformers' greedy ids for every source alone and for the batch, and,
//!    with `forced_bos_token_id` / `forced_eos_token_id` set, its forced ids (where rows end at
//!    different steps);
//! 3. every cached decoder step equals a recompute of the whole prefix in one run;
//! 4. a BART folder is refused by the one-graph loader with a message saying why, and
//!    variants of BART by their setting.
//!
//! Each prints its maximum difference; see them with `-- --nocapture`.

use crate::hf_whisper::compile;
use kiln::kiln_frontends::hf::{load_folder, load_seq2seq};
use kiln_pipelines::generation::{CausalLm, Seq2Seq};
use kiln_pipelines::{Folder, InMemory};
use kiln_runtime::{Model, Tensor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/models/hf/bart-tiny")
}

/// The encoder and the cached decoder, compiled once.
fn models() -> &'static (Model, Model) {
    static M: OnceLock<(Model, Model)> = OnceLock::new();
    M.get_or_init(|| {
        let (enc, dec) = load_seq2seq(&dir()).expect("the BART graphs build");
        (compile(&enc), compile(&dec))
    })
}

fn reference() -> Value {
    let text = std::fs::read_to_string(dir().join("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn cases() -> Vec<Value> {
    reference()["cases"]
        .as_array()
        .expect("cases is a list")
        .clone()
}

fn rows(v: &Value) -> Vec<Vec<u32>> {
    let rows = v.as_array().expect("a list of rows");
    rows.iter()
        .map(|r| {
            let ids = r.as_array().expect("a row of ids");
            ids.iter()
                .map(|x| u32::try_from(x.as_u64().expect("an id")).expect("fits"))
                .collect()
        })
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    let xs = v.as_array().expect("a list of numbers");
    xs.iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The sources right-padded with `pad`, and their mask, as `[batch, longest]` tensors.
fn padded(sources: &[Vec<u32>], pad: i64) -> (Tensor, Tensor) {
    let len = sources.iter().map(Vec::len).max().expect("a source");
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for s in sources {
        for i in 0..len {
            ids.push(s.get(i).map_or(pad, |&t| i64::from(t)));
            mask.push(i64::from(i < s.len()));
        }
    }
    let shape = vec![sources.len(), len];
    (
        Tensor::from_i64(shape.clone(), ids).expect("ids"),
        Tensor::from_i64(shape, mask).expect("mask"),
    )
}

/// Runs the encoder on `sources`; returns `last_hidden_state` and a decoder over `batch`
/// rows with the cross states written and the source mask set.
fn encode<'m>(
    (encoder, decoder): &'m (Model, Model),
    sources: &[Vec<u32>],
    capacity: usize,
) -> (Vec<f64>, CausalLm<'m>) {
    let (ids, mask) = padded(sources, 1);
    let source = mask.shape()[1] as i64;
    let feeds = BTreeMap::from([
        ("input_ids".to_string(), ids),
        ("attention_mask".to_string(), mask.clone()),
    ]);
    let outs = encoder.session().run(&feeds).expect("the encoder runs");
    let mut lm = CausalLm::with_symbols(decoder, sources.len(), capacity, &[("source", source)])
        .expect("a cached decoder");
    let mut hidden = None;
    let mut written = 0;
    for (name, t) in &outs {
        if name.starts_with("cross.") {
            lm.write_state(name, t).expect("cross keys and values fit");
            written += 1;
        } else if name == "last_hidden_state" {
            hidden = Some(t.to_f64_vec());
        }
    }
    assert_eq!(written, 4, "2 decoder layers × key and value");
    lm.set_input("encoder_attention_mask", mask)
        .expect("the decoder takes the source mask");
    (hidden.expect("last_hidden_state"), lm)
}

fn flat(rows: &[Vec<f32>]) -> Vec<f64> {
    rows.iter().flatten().map(|&x| f64::from(x)).collect()
}

#[test]
fn bart_encoder_and_first_step_match_transformers() {
    let (mut worst_enc, mut worst_logits) = (0.0f64, 0.0f64);
    for case in cases() {
        let sources = rows(&case["sources"]);
        let (hidden, mut lm) = encode(models(), &sources, 4);
        let d = max_diff(&hidden, &floats(&case["last_hidden_state"]));
        assert!(d < 1e-4, "{sources:?}: encoder differs by {d}");
        worst_enc = worst_enc.max(d);
        let logits = lm
            .prefill(&vec![vec![2]; sources.len()])
            .expect("the first step");
        let d = max_diff(&flat(&logits), &floats(&case["first_step_logits"]));
        assert!(d < 1e-4, "{sources:?}: first-step logits differ by {d}");
        worst_logits = worst_logits.max(d);
    }
    println!("bart encoder max |diff| {worst_enc:.3e}, first-step logits {worst_logits:.3e}");
}

/// Asserts `got` equals transformers' `want`, except after a position where transformers' top
/// two logits were closer than 1e-3 (where rounding may pick the other).
fn assert_same_ids(got: &[Vec<u32>], want: &[Vec<u32>], margins: &Value, what: &str) {
    assert_eq!(got.len(), want.len());
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        if let Some(t) = (0..g.len().max(w.len())).find(|&t| g.get(t) != w.get(t)) {
            let m = margins[r][t].as_f64().unwrap_or(f64::INFINITY);
            assert!(
                m < 1e-3,
                "{what} row {r}: {g:?} differs from transformers' {w:?} at {t} (margin {m})"
            );
            println!("{what} row {r}: diverges at {t} where the margin is {m:.2e}");
        }
    }
}

#[test]
fn bart_greedy_ids_equal_transformers() {
    let (encoder, decoder) = models();
    let folder = Folder::new(dir());
    let s2s = Seq2Seq::new(encoder, decoder, &folder, &serde_json::Map::new()).expect("settings");
    assert_eq!(s2s.settings().decoder_start_token_id, 2);
    assert_eq!(s2s.settings().forced_bos_token_id, None);
    for case in cases() {
        let sources = rows(&case["sources"]);
        let got = s2s.generate(&sources).expect("generates");
        assert_same_ids(&got, &rows(&case["greedy_ids"]), &case["margins"], "greedy");
        println!("bart greedy {got:?}");
    }
}

#[test]
fn bart_forced_bos_and_eos_equal_transformers() {
    let (encoder, decoder) = models();
    let mut files = InMemory {
        label: "bart-tiny".into(),
        ..Default::default()
    };
    for name in ["config.json", "generation_config.json"] {
        let bytes = std::fs::read(dir().join(name)).expect("readable");
        files.files.insert(name.into(), bytes);
    }
    let mut gen: Value = serde_json::from_slice(&files.files["generation_config.json"])
        .expect("generation_config.json");
    let forced = &reference()["forced"];
    gen["forced_bos_token_id"] = forced["forced_bos_token_id"].clone();
    gen["forced_eos_token_id"] = forced["forced_eos_token_id"].clone();
    files.files.insert(
        "generation_config.json".into(),
        serde_json::to_vec(&gen).expect("JSON"),
    );
    let s2s = Seq2Seq::new(encoder, decoder, &files, &serde_json::Map::new()).expect("settings");
    assert_eq!(s2s.settings().forced_bos_token_id, Some(0));
    let mut lengths = Vec::new();
    for case in cases() {
        let got = s2s.generate(&rows(&case["sources"])).expect("generates");
        let want = rows(&case["forced_ids"]);
        assert_same_ids(&got, &want, &case["forced_margins"], "forced");
        lengths.extend(got.iter().map(Vec::len));
    }
    // The batch has rows that end at different steps: the loop must go on for the others.
    assert!(lengths.contains(&2) && lengths.iter().any(|&n| n > 2));
}

#[test]
fn bart_cached_steps_equal_a_recompute() {
    let case = cases().pop().expect("the batch case");
    let sources = rows(&case["sources"]);
    let greedy = rows(&case["greedy_ids"]);
    let steps = greedy.iter().map(Vec::len).min().expect("rows");
    let (_, mut lm) = encode(models(), &sources, steps + 1);
    let mut prefix = vec![vec![2u32]; sources.len()];
    let mut got = flat(&lm.prefill(&prefix).expect("the first step"));
    let mut worst = 0.0f64;
    for t in 0..steps {
        let (_, mut full) = encode(models(), &sources, t + 1);
        let want = flat(&full.prefill(&prefix).expect("a recompute"));
        let d = max_diff(&got, &want);
        assert!(
            d < 1e-4,
            "step {t}: cached and recomputed logits differ by {d}"
        );
        worst = worst.max(d);
        let next: Vec<u32> = greedy.iter().map(|g| g[t]).collect();
        for (p, &n) in prefix.iter_mut().zip(&next) {
            p.push(n);
        }
        got = flat(&lm.step(&next).expect("a step"));
    }
    println!("bart cached vs recompute over {steps} steps: max |diff| {worst:.3e}");
}

#[test]
fn bart_folders_and_variants_are_refused_by_name() {
    let e = load_folder(&dir())
        .expect_err("two graphs, not one")
        .to_string();
    assert!(
        e.contains("encoder-decoder") && e.contains("load_seq2seq"),
        "{e}"
    );

    let tmp = tempfile::tempdir().expect("a temporary folder");
    std::fs::copy(
        dir().join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .expect("copy");
    let config: Value =
        serde_json::from_slice(&std::fs::read(dir().join("config.json")).expect("config"))
            .expect("JSON");
    for (key, value, says) in [
        ("normalize_before", Value::Bool(true), "normalize_before"),
        (
            "add_final_layer_norm",
            Value::Bool(true),
            "add_final_layer_norm",
        ),
        ("model_type", Value::from("mbart"), "mbart"),
        (
            "architectures",
            Value::from(vec!["BartForSequenceClassification"]),
            "BartForSequenceClassification",
        ),
        ("activation_function", Value::from("swish"), "swish"),
    ] {
        let mut c = config.clone();
        c[key] = value;
        std::fs::write(
            tmp.path().join("config.json"),
            serde_json::to_vec(&c).expect("JSON"),
        )
        .expect("write");
        let e = load_seq2seq(tmp.path()).expect_err("refused").to_string();
        assert!(e.contains(says), "{key}: {e}");
    }
}
