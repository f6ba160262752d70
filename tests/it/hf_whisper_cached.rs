//! The cached Whisper (whisper-tiny.en of the shared folder): the encoder with the
//! cross-attention keys and values as outputs, and the decoder with a key/value cache whose
//! cross-attention keys and values are read-only states written once.
//!
//! 1. Prefill of the start ids gives transformers' `first_step_logits` (last row), and every
//!    decode step along the reference ids gives the full-recompute decoder's last-position
//!    logits (`hf_whisper`'s `build_decoder` on the same prefix) within 1e-4.
//! 2. `kiln_pipelines::generation::Whisper` on `speech_16k.wav` gives transformers'
//!    `greedy_ids` and `text`.
//! 3. `kiln transcribe` prints the text, with `--json` the ids; a folder that is not Whisper
//!    and a WAV file that is not WAV are one-line errors (status 1).

use crate::common::{self, kiln};
use crate::hf_whisper::{compile, decode, ids, json, whisper};

use kiln::kiln_frontends::hf::checkpoint::{read, Checkpoint};
use kiln::kiln_frontends::hf::whisper::{build_cached_decoder, build_encoder_with_cross_kv};
use kiln_pipelines::audio::read_wav;
use kiln_pipelines::generation::{decoder_start_ids, CausalLm, Whisper};
use kiln_pipelines::Folder;
use kiln_runtime::{Model, Tensor};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The encoder with cross keys and values and the cached decoder, compiled once.
fn cached() -> Option<&'static (Model, Model)> {
    static M: OnceLock<Option<(Model, Model)>> = OnceLock::new();
    M.get_or_init(|| {
        let dir = whisper()?.dir.clone();
        let cfg: serde_json::Value =
            serde_json::from_str(&read(&dir.join("config.json")).expect("config.json"))
                .expect("valid JSON");
        let ck = Checkpoint::open(&dir).expect("the checkpoint opens");
        let enc = build_encoder_with_cross_kv(&cfg, &ck).expect("the encoder builds");
        let dec = build_cached_decoder(&cfg, &ck).expect("the cached decoder builds");
        Some((compile(&enc), compile(&dec)))
    })
    .as_ref()
}

/// The last `vocab` values of `t` (its last position's logits).
fn last_row(t: &Tensor) -> Vec<f64> {
    let vocab = *t.shape().last().expect("a shape");
    let v = t.to_f64_vec();
    v[v.len() - vocab..].to_vec()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn whisper_cached_decoder_matches_full_recompute() {
    let (Some(w), Some((encoder, decoder))) = (whisper(), cached()) else {
        return;
    };
    let feeds = BTreeMap::from([(
        "input_features".to_string(),
        w.npz["input_features"].clone(),
    )]);
    let outs = encoder.session().run(&feeds).expect("the encoder runs");
    let enc = &outs
        .iter()
        .find(|(n, _)| n == "last_hidden_state")
        .expect("last_hidden_state")
        .1;
    let mut lm = CausalLm::new(decoder, 1, 448).expect("a cached decoder");
    let mut written = 0;
    for (name, t) in outs.iter().filter(|(n, _)| n.starts_with("cross.")) {
        lm.write_state(name, t)
            .expect("cross keys and values fit their states");
        written += 1;
    }
    assert_eq!(written, 8, "4 layers × key and value");
    let start = decoder_start_ids(&Folder::new(&w.dir)).expect("start ids");
    assert_eq!(start, [50257, 50362]);
    let row = |rows: Vec<Vec<f32>>| -> Vec<f64> { rows[0].iter().map(|&x| f64::from(x)).collect() };
    let mut got = row(lm.prefill(std::slice::from_ref(&start)).expect("prefill"));
    let d = max_diff(&got, &last_row(&w.npz["first_step_logits"]));
    println!("cached first step vs transformers: max |diff| {d:.3e}");
    assert!(d < 1e-3, "{d}");

    let reference = json(&w.dir.join("reference.json"));
    let greedy = ids(&reference, "greedy_ids");
    let mut prefix: Vec<i64> = start.iter().map(|&t| i64::from(t)).collect();
    let mut worst = 0.0f64;
    for (step, &next) in greedy.iter().enumerate() {
        let full = last_row(&decode(w, &prefix, enc));
        let d = max_diff(&got, &full);
        assert!(
            d < 1e-4,
            "step {step}: cached vs full recompute differ by {d}"
        );
        worst = worst.max(d);
        prefix.push(next);
        got = row(lm.step(&[next as u32]).expect("a decode step"));
    }
    println!(
        "cached vs full recompute over {} steps: max |diff| {worst:.3e}",
        greedy.len()
    );
}

#[test]
fn whisper_pipeline_transcribes_with_the_caches() {
    let (Some(w), Some((encoder, decoder))) = (whisper(), cached()) else {
        return;
    };
    let asr = Whisper::new(encoder, decoder, &Folder::new(&w.dir)).expect("the settings load");
    let audio = read_wav(&w.dir.join("speech_16k.wav")).expect("the WAV file decodes");
    let t = asr.transcribe(&audio).expect("transcribes");
    let reference = json(&w.dir.join("reference.json"));
    let want: Vec<u32> = ids(&reference, "greedy_ids")
        .into_iter()
        .map(|t| t as u32)
        .collect();
    assert_eq!(t.ids, want);
    assert_eq!(t.text, reference["text"].as_str().expect("text"));
    println!(
        "whisper cached: {:?} (encode {:.0} ms, decode {:.0} ms)",
        t.text, t.encode_ms, t.decode_ms
    );
}

#[test]
fn whisper_cli_transcribes() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("models").join("whisper-tiny.en");
    let wav = dir.join("speech_16k.wav");
    let reference = json(&dir.join("reference.json"));
    let o = kiln(&[&"transcribe", &dir, &wav]);
    let text = common::stdout_ok(&o);
    assert_eq!(
        text.trim(),
        reference["text"].as_str().expect("text").trim()
    );
    let o = kiln(&[&"transcribe", &dir, &wav, &"--json"]);
    let v: serde_json::Value = serde_json::from_str(&common::stdout_ok(&o)).expect("JSON");
    assert_eq!(ids(&v, "ids"), ids(&reference, "greedy_ids"));
    assert_eq!(v["text"], reference["text"]);
    assert!(v["encode_ms"].as_f64().is_some() && v["decode_ms"].as_f64().is_some());
}

/// Asserts a one-line user error (status 1) that starts with `file: ` and returns it.
fn user_error(o: &std::process::Output, file: &std::path::Path) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(o.stdout.is_empty());
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    let msg = err.trim_end().strip_prefix("error: ").expect("error: ");
    assert!(msg.starts_with(&format!("{}", file.display())), "{msg}");
    assert!(!msg.contains("panicked"), "{msg}");
    msg.to_string()
}

#[test]
fn whisper_cli_refuses_other_models_and_bad_wav_files() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let bert = tmp.path().join("bert");
    std::fs::create_dir(&bert).expect("mkdir");
    std::fs::write(bert.join("config.json"), r#"{"model_type": "bert"}"#).expect("write");
    let wav = tmp.path().join("speech.wav");
    std::fs::write(&wav, b"RIFF but not really a WAV file").expect("write");
    let msg = user_error(&kiln(&[&"transcribe", &bert, &wav]), &bert);
    assert!(
        msg.contains("model_type `bert`") && msg.contains("whisper"),
        "{msg}"
    );

    let whisper = tmp.path().join("whisper");
    std::fs::create_dir(&whisper).expect("mkdir");
    std::fs::write(whisper.join("config.json"), r#"{"model_type": "whisper"}"#).expect("write");
    let msg = user_error(&kiln(&[&"transcribe", &whisper, &wav]), &wav);
    println!("{msg}");
    let none = tmp.path().join("missing");
    user_error(&kiln(&[&"transcribe", &none, &wav]), &none);
}
