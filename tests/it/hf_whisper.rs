//! Whisper (whisper-tiny.en, fp16 weights computed in f32) on the CPU backend against
//! transformers (`reference.npz`, `reference.json` of the shared folder):
//!
//! 1. the encoder on the reference `input_features` gives `encoder_last_hidden_state`;
//! 2. the full-recompute decoder on `[50257, 50362]` with the reference encoder states gives
//!    `first_step_logits`, at batch 2 too, and its one-token prefix gives the first row;
//! 3. end to end — `speech_16k.wav` → Rust log-mel features → encoder → greedy decoding with
//!    `generation_config.json`'s suppress lists (`begin_suppress_tokens` at the first generated
//!    position only) until EOS — gives transformers' `greedy_ids` and, decoded by
//!    `tokenizer.json` without special tokens, its `text`.
//!
//! Each prints its maximum difference; see them with `-- --nocapture`.

use crate::common;

use kiln::kiln_compiler::pipeline::{self, Options};
use kiln::kiln_compiler::Target;
use kiln::kiln_frontends::hf::checkpoint::{read, Checkpoint};
use kiln::kiln_frontends::hf::whisper::{build_decoder, build_encoder};
use kiln_pipelines::audio::{read_wav, WhisperFeatureExtractor};
use kiln_pipelines::{Folder, TextTokenizer};
use kiln_runtime::{LoadOptions, Model, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The model folder, the encoder and decoder compiled for this machine, and the references.
pub(crate) struct Whisper {
    pub(crate) dir: PathBuf,
    encoder: Model,
    decoder: Model,
    pub(crate) npz: BTreeMap<String, Tensor>,
}

/// Compiles a graph in memory for the host.
pub(crate) fn compile(g: &kiln::kiln_compiler::ir::Graph) -> Model {
    let compiled = pipeline::compile(g, &Target::host(), &Options::default()).expect("compiles");
    Model::from_bytes(compiled.to_bytes(), &LoadOptions::default()).expect("loads")
}

/// Built once per test binary: compiling the decoder (its 51864-row head) is the slow part.
pub(crate) fn whisper() -> Option<&'static Whisper> {
    static W: OnceLock<Option<Whisper>> = OnceLock::new();
    W.get_or_init(|| {
        let dir = common::shared_dir()?.join("models").join("whisper-tiny.en");
        let cfg: serde_json::Value =
            serde_json::from_str(&read(&dir.join("config.json")).expect("config.json"))
                .expect("valid JSON");
        let ck = Checkpoint::open(&dir).expect("the checkpoint opens");
        let encoder = compile(&build_encoder(&cfg, &ck).expect("the encoder builds"));
        let decoder = compile(&build_decoder(&cfg, &ck).expect("the decoder builds"));
        let npz = kiln::read_npz(&dir.join("reference.npz")).expect("reference.npz");
        Some(Whisper {
            dir,
            encoder,
            decoder,
            npz,
        })
    })
    .as_ref()
}

/// Runs `model` and returns its one output `name`.
fn run(model: &Model, feeds: Vec<(&str, Tensor)>, name: &str) -> Tensor {
    let feeds: BTreeMap<String, Tensor> =
        feeds.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    let outs = model.session().run(&feeds).expect("the model runs");
    outs.into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no output `{name}`"))
}

fn encode(w: &Whisper, features: Tensor) -> Tensor {
    run(
        &w.encoder,
        vec![("input_features", features)],
        "last_hidden_state",
    )
}

pub(crate) fn decode(w: &Whisper, ids: &[i64], enc: &Tensor) -> Tensor {
    decode_batch(w, 1, ids, enc)
}

/// The decoder on `batch` rows of ids (`ids` holds them row after row).
fn decode_batch(w: &Whisper, batch: usize, ids: &[i64], enc: &Tensor) -> Tensor {
    let ids = Tensor::from_i64(vec![batch, ids.len() / batch], ids.to_vec()).expect("ids");
    run(
        &w.decoder,
        vec![
            ("decoder_input_ids", ids),
            ("encoder_hidden_states", enc.clone()),
        ],
        "logits",
    )
}

#[test]
fn whisper_encoder_matches_transformers() {
    let Some(w) = whisper() else { return };
    let got = encode(w, w.npz["input_features"].clone());
    let max = common::allclose(&got, &w.npz["encoder_last_hidden_state"], 0.0, 1e-3)
        .expect("encoder states match transformers'");
    println!("whisper encoder last_hidden_state: max |diff| {max:.3e}");
}

#[test]
fn whisper_decoder_first_step_matches_transformers() {
    let Some(w) = whisper() else { return };
    let got = decode(w, &[50257, 50362], &w.npz["encoder_last_hidden_state"]);
    let max = common::allclose(&got, &w.npz["first_step_logits"], 0.0, 1e-3)
        .expect("first-step logits match transformers'");
    println!("whisper decoder first-step logits: max |diff| {max:.3e}");
    // Batch 2 (the same row twice) and the one-token prefix (causal: its logits are the first
    // row's) give the same logits.
    let enc = &w.npz["encoder_last_hidden_state"];
    let v: Vec<f32> = enc.to_f64_vec().into_iter().map(|x| x as f32).collect();
    let enc2 = Tensor::from_f32(vec![2, v.len() / 384, 384], [&v[..], &v[..]].concat())
        .expect("batch-2 states");
    let got = decode_batch(w, 2, &[50257, 50362, 50257, 50362], &enc2);
    let want = &w.npz["first_step_logits"];
    let max = common::allclose(&got, &common::pick_f32(want, &[0, 0], 2), 0.0, 1e-3)
        .expect("batch-2 logits match");
    println!("batch 2: max |diff| {max:.3e}");
    let got = decode(w, &[50257], enc);
    let max = common::allclose(&got, &common::pick_f32(want, &[0], 1), 0.0, 1e-3)
        .expect("the prefix's logits are the first row's");
    println!("prefix of 1 token: max |diff| {max:.3e}");
}

/// The ids of a JSON array field.
pub(crate) fn ids(v: &serde_json::Value, key: &str) -> Vec<i64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is a list"))
        .iter()
        .map(|x| x.as_i64().expect("an id"))
        .collect()
}

pub(crate) fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path).expect("readable")).expect("valid JSON")
}

#[test]
fn whisper_transcribes_the_wav_file_greedily() {
    let Some(w) = whisper() else { return };
    let gen = json(&w.dir.join("generation_config.json"));
    let reference = json(&w.dir.join("reference.json"));
    let (suppress, begin) = (
        ids(&gen, "suppress_tokens"),
        ids(&gen, "begin_suppress_tokens"),
    );
    let eos = gen["eos_token_id"].as_i64().expect("eos_token_id");
    let audio = read_wav(&w.dir.join("speech_16k.wav")).expect("the WAV file decodes");
    let fe = WhisperFeatureExtractor::load(&Folder::new(&w.dir)).expect("preprocessor_config");
    let enc = encode(w, fe.features(&audio).expect("features"));
    let prompt = ids(&reference, "decoder_start_ids");
    let mut tokens = prompt.clone();
    while tokens.len() < 448 {
        let logits = decode(w, &tokens, &enc).to_f64_vec();
        let vocab = logits.len() / tokens.len();
        let mut last = logits[logits.len() - vocab..].to_vec();
        let first = tokens.len() == prompt.len();
        for &t in suppress.iter().chain(if first { &begin[..] } else { &[] }) {
            last[t as usize] = f64::NEG_INFINITY;
        }
        let next = (0..vocab).fold(0, |best, i| if last[i] > last[best] { i } else { best });
        if next as i64 == eos {
            break;
        }
        tokens.push(next as i64);
    }
    let generated = &tokens[prompt.len()..];
    assert_eq!(generated, &ids(&reference, "greedy_ids")[..]);
    let tok = TextTokenizer::load(&Folder::new(&w.dir), None).expect("tokenizer.json");
    let ids32: Vec<u32> = generated.iter().map(|&t| t as u32).collect();
    let text = tok.decode(&ids32, true).expect("decodes");
    assert_eq!(text, reference["text"].as_str().expect("text"));
    println!("whisper greedy: {} tokens, {text:?}", generated.len());
}
