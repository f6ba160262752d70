//! T5 (`T5ForConditionalGeneration`, tiny random weights of `tools/export_t5.py`: `t5-tiny`
//! with a ReLU feed-forward, tied embeddings and `d_kv ≠ d_model / heads`, `t5-tiny-gated`
//! with gated-GELU and an untied head) against transformers (`reference.json`):
//!
//! 1. the relative-position buckets of the frontend are transformers' (this config's and
//!    t5-small's, encoder and decoder);
//! 2. the encoder on a right-padded batch of three gives `last_hidden_state`, and the cached
//!    decoder's first step (the start token) gives the first logits, within 1e-4;
//! 3. greedy decoding with the caches (encoder once, the cross-attention keys and values
//!    written into the decoder's read-only states, one `run_with_state` per token) gives
//!    `model.generate`'s ids for three single sources and the padded batch;
//! 4. every cached step's logits equal the full-recompute decoder's last position within 1e-4
//!    over the 20 steps of the padded batch;
//! 5. an unsupported `feed_forward_proj`, bad sizes and a config that disagrees with the
//!    checkpoint are errors naming the field or the tensor.
//!
//! Each prints its maximum difference; see them with `-- --nocapture`.

use crate::hf_whisper::compile;

use kiln::kiln_frontends::hf::checkpoint::{read, Checkpoint};
use kiln::kiln_frontends::hf::t5::{
    bucket, build_cached_decoder, build_decoder, build_encoder_with_cross_kv,
};
use kiln::kiln_frontends::Error;
use kiln_runtime::{Model, State, Tensor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A folder's compiled graphs and references.
struct T5 {
    encoder: Model,
    decoder: Model,
    full: Model,
    reference: Value,
    generation: Value,
}

const NAMES: [&str; 2] = ["t5-tiny", "t5-tiny-gated"];

fn folder(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/models/hf")
        .join(name)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&read(path).expect("readable")).expect("valid JSON")
}

/// The folder `name`'s models, compiled once per test binary.
fn t5(name: &str) -> &'static T5 {
    static M: [OnceLock<T5>; 2] = [OnceLock::new(), OnceLock::new()];
    let i = NAMES.iter().position(|n| *n == name).expect("a fixture");
    M[i].get_or_init(|| {
        let dir = folder(name);
        let cfg = json(&dir.join("config.json"));
        let ck = Checkpoint::open(&dir).expect("the checkpoint opens");
        T5 {
            encoder: compile(&build_encoder_with_cross_kv(&cfg, &ck).expect("encoder builds")),
            decoder: compile(&build_cached_decoder(&cfg, &ck).expect("decoder builds")),
            full: compile(&build_decoder(&cfg, &ck).expect("full decoder builds")),
            reference: json(&dir.join("reference.json")),
            generation: json(&dir.join("generation_config.json")),
        }
    })
}

fn int(v: &Value) -> i64 {
    v.as_i64().expect("an integer")
}

fn rows(v: &Value) -> Vec<Vec<i64>> {
    let rows = v.as_array().expect("rows");
    rows.iter()
        .map(|r| r.as_array().expect("a row").iter().map(int).collect())
        .collect()
}

fn floats(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| floats(x, out)),
        x => out.push(x.as_f64().expect("a number")),
    }
}

fn ids_tensor(rows: &[Vec<i64>]) -> Tensor {
    let shape = vec![rows.len(), rows[0].len()];
    Tensor::from_i64(shape, rows.concat()).expect("a tensor")
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn output(outs: &[(String, Tensor)], name: &str) -> Tensor {
    let found = outs.iter().find(|(n, _)| n == name);
    found
        .unwrap_or_else(|| panic!("no output `{name}`"))
        .1
        .clone()
}

/// The encoder's outputs for `ids` and `mask`.
fn encode(m: &T5, ids: &Tensor, mask: &Tensor) -> Vec<(String, Tensor)> {
    let feeds = BTreeMap::from([
        ("input_ids".to_string(), ids.clone()),
        ("attention_mask".to_string(), mask.clone()),
    ]);
    m.encoder.session().run(&feeds).expect("the encoder runs")
}

/// A decoder state for `batch` rows of `source` tokens with the encoder's cross keys and values.
fn decoder_state(m: &T5, outs: &[(String, Tensor)], batch: usize, source: usize) -> State {
    let sym = [
        ("batch", batch as i64),
        ("capacity", 32),
        ("source", source as i64),
    ];
    let mut state = m.decoder.new_state(&sym).expect("a state");
    let mut written = 0;
    for (name, t) in outs.iter().filter(|(n, _)| n.starts_with("cross.")) {
        state.write(m.decoder.plan(), name, t).expect("fits");
        written += 1;
    }
    assert_eq!(written, 4, "2 decoder layers × key and value");
    state
}

/// One cached step: `tokens` (one per row) at position `pos`; the logits of each row.
fn step(m: &T5, state: &mut State, tokens: &[i64], pos: usize, enc_mask: &Tensor) -> Vec<f64> {
    let b = tokens.len();
    let column: Vec<Vec<i64>> = tokens.iter().map(|&t| vec![t]).collect();
    let feeds = BTreeMap::from([
        ("input_ids".to_string(), ids_tensor(&column)),
        (
            "position_ids".to_string(),
            ids_tensor(&vec![vec![pos as i64]; b]),
        ),
        (
            "attention_mask".to_string(),
            ids_tensor(&vec![vec![1; pos + 1]; b]),
        ),
        ("encoder_attention_mask".to_string(), enc_mask.clone()),
    ]);
    let outs = m.decoder.session().run_with_state(&feeds, state);
    output(&outs.expect("a decoder step"), "logits").to_f64_vec()
}

/// Greedy decoding as `generate` does it: a row that produced EOS continues with pad tokens;
/// stops when every row has, or after `max_new` tokens.
fn greedy(m: &T5, ids: &[Vec<i64>], mask: &[Vec<i64>], max_new: usize) -> Vec<Vec<i64>> {
    let (ids, enc_mask) = (ids_tensor(ids), ids_tensor(mask));
    let (b, source) = (ids.shape()[0], ids.shape()[1]);
    let mut state = decoder_state(m, &encode(m, &ids, &enc_mask), b, source);
    let start = int(&m.generation["decoder_start_token_id"]);
    let (eos, pad) = (
        int(&m.generation["eos_token_id"]),
        int(&m.generation["pad_token_id"]),
    );
    let mut out = vec![vec![start]; b];
    let mut done = vec![false; b];
    for pos in 0..max_new {
        let last: Vec<i64> = out.iter().map(|r| r[pos]).collect();
        let logits = step(m, &mut state, &last, pos, &enc_mask);
        let vocab = logits.len() / b;
        for (r, row) in logits.chunks(vocab).enumerate() {
            let best = (0..vocab).fold(0, |a, i| if row[i] > row[a] { i } else { a });
            out[r].push(if done[r] { pad } else { best as i64 });
            done[r] |= best as i64 == eos;
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    out
}

#[test]
fn t5_buckets_match_transformers() {
    let reference = &t5_reference("t5-tiny")["buckets"];
    let mut checked = 0;
    for (name, table) in reference.as_object().expect("tables") {
        let nb = int(&table["num_buckets"]) as usize;
        let md = int(&table["max_distance"]) as usize;
        let first = int(&table["first"]);
        let bidi = name.ends_with("encoder");
        for (i, want) in table["buckets"]
            .as_array()
            .expect("buckets")
            .iter()
            .enumerate()
        {
            let rel = first + i as i64;
            assert_eq!(
                bucket(rel, bidi, nb, md),
                int(want),
                "{name}: relative {rel}"
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

fn t5_reference(name: &str) -> Value {
    json(&folder(name).join("reference.json"))
}

#[test]
fn t5_encoder_and_first_step_match_transformers() {
    for name in NAMES {
        let m = t5(name);
        let case = m.reference["cases"]
            .as_array()
            .expect("cases")
            .last()
            .expect("a batch");
        let (ids, mask) = (
            ids_tensor(&rows(&case["input_ids"])),
            ids_tensor(&rows(&case["attention_mask"])),
        );
        let outs = encode(m, &ids, &mask);
        let mut want = Vec::new();
        floats(&m.reference["last_hidden_state"], &mut want);
        let got = output(&outs, "last_hidden_state").to_f64_vec();
        let d = max_diff(&got, &want);
        println!("{name}: encoder last_hidden_state max |diff| {d:.3e}");
        assert!(d < 1e-4, "{name}: {d}");

        let (b, source) = (ids.shape()[0], ids.shape()[1]);
        let mut state = decoder_state(m, &outs, b, source);
        let start = int(&m.generation["decoder_start_token_id"]);
        let got = step(m, &mut state, &vec![start; b], 0, &mask);
        let mut want = Vec::new();
        floats(&m.reference["first_logits"], &mut want);
        let d = max_diff(&got, &want);
        println!("{name}: first decoder step logits max |diff| {d:.3e}");
        assert!(d < 1e-4, "{name}: {d}");
    }
}

#[test]
fn t5_greedy_ids_match_transformers() {
    for name in NAMES {
        let m = t5(name);
        for (i, case) in m.reference["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .enumerate()
        {
            let want = rows(&case["greedy_ids"]);
            let got = greedy(
                m,
                &rows(&case["input_ids"]),
                &rows(&case["attention_mask"]),
                20,
            );
            assert_eq!(got, want, "{name}: case {i}");
            let margin = case["margins"].as_array().expect("margins").iter();
            let smallest = margin
                .map(|v| v.as_f64().expect("a margin"))
                .fold(f64::MAX, f64::min);
            println!(
                "{name}: case {i}: {} rows × {} ids equal (smallest top-2 margin {smallest:.4})",
                want.len(),
                want[0].len()
            );
        }
    }
}

#[test]
fn t5_cached_decoder_matches_full_recompute() {
    for name in NAMES {
        let m = t5(name);
        let case = m.reference["cases"]
            .as_array()
            .expect("cases")
            .last()
            .expect("a batch");
        let (ids, mask) = (
            ids_tensor(&rows(&case["input_ids"])),
            ids_tensor(&rows(&case["attention_mask"])),
        );
        let (b, source) = (ids.shape()[0], ids.shape()[1]);
        let outs = encode(m, &ids, &mask);
        let enc = output(&outs, "last_hidden_state");
        let mut state = decoder_state(m, &outs, b, source);
        let greedy = rows(&case["greedy_ids"]);
        let mut worst = 0.0f64;
        for pos in 0..greedy[0].len() - 1 {
            let last: Vec<i64> = greedy.iter().map(|r| r[pos]).collect();
            let cached = step(m, &mut state, &last, pos, &mask);
            let prefix: Vec<Vec<i64>> = greedy.iter().map(|r| r[..=pos].to_vec()).collect();
            let feeds = BTreeMap::from([
                ("decoder_input_ids".to_string(), ids_tensor(&prefix)),
                ("encoder_hidden_states".to_string(), enc.clone()),
                ("encoder_attention_mask".to_string(), mask.clone()),
            ]);
            let full = m.full.session().run(&feeds).expect("the full decoder runs");
            let full = output(&full, "logits");
            let vocab = full.shape()[2];
            let all = full.to_f64_vec();
            let last_rows: Vec<f64> = all
                .chunks(vocab * (pos + 1))
                .flat_map(|row| row[pos * vocab..].to_vec())
                .collect();
            let d = max_diff(&cached, &last_rows);
            assert!(
                d < 1e-4,
                "{name}: step {pos}: cached vs full recompute differ by {d}"
            );
            worst = worst.max(d);
        }
        println!(
            "{name}: cached vs full recompute over {} steps: max |diff| {worst:.3e}",
            greedy[0].len() - 1
        );
    }
}

#[test]
fn t5_refuses_unsupported_configs_and_mismatched_checkpoints() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let src = folder("t5-tiny");
    std::fs::copy(
        src.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .expect("copy");
    let cfg = json(&src.join("config.json"));
    // Each edit is refused by the encoder and the cached decoder, with `want` in the message.
    let edits: [(&str, Value, &str); 3] = [
        ("feed_forward_proj", "gated-silu".into(), "gated-silu"),
        // d_kv 8 makes q [32, 32]; the checkpoint's is [48, 32]: the error names the tensor.
        ("d_kv", 8.into(), "SelfAttention.q.weight"),
        ("num_heads", 0.into(), "num_heads"),
    ];
    for (field, value, want) in edits {
        let mut cfg = cfg.clone();
        cfg[field] = value;
        let ck = Checkpoint::open(tmp.path()).expect("the checkpoint opens");
        let enc = build_encoder_with_cross_kv(&cfg, &ck).map(|_| ());
        let dec = build_cached_decoder(&cfg, &ck).map(|_| ());
        for e in [enc.expect_err("refused"), dec.expect_err("refused")] {
            assert!(e.to_string().contains(want), "{field}: {e}");
            if field != "d_kv" {
                assert!(matches!(e, Error::Config { .. }), "{e:?}");
            }
        }
    }
}

#[test]
fn t5_folders_load_through_load_seq2seq() {
    // The generic encoder-decoder entry point picks T5's builders by `model_type`: the same
    // graphs as the direct builders, down to their outputs.
    for name in NAMES {
        let (enc, dec) =
            kiln::kiln_frontends::hf::load_seq2seq(&folder(name)).expect("T5 builds by model_type");
        let names = |g: &kiln::kiln_compiler::ir::Graph| -> Vec<String> {
            g.outputs().iter().map(|(n, _)| n.clone()).collect()
        };
        let ck = Checkpoint::open(&folder(name)).expect("checkpoint");
        let cfg = json(&folder(name).join("config.json"));
        let direct_enc = build_encoder_with_cross_kv(&cfg, &ck).expect("encoder");
        assert_eq!(names(&enc), names(&direct_enc), "{name}");
        assert!(names(&enc).iter().any(|n| n == "cross.0.key"), "{name}");
        assert!(names(&dec).iter().any(|n| n == "logits"), "{name}");
    }
}
