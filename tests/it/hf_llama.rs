//! LLaMA from a Hugging Face folder: the `llama-tiny` fixture's logits against PyTorch's, other
//! batch sizes and sequence lengths (causal prefixes), the rotary scaling kinds' inverse
//! frequencies against transformers' formulas, and refused rope kinds.

use crate::common;

use common::{causal_lm_logits, pick_f32, pick_i64};

use kiln::kiln_frontends::hf::rope::{default_inv_freq, Rope, RopeScaling};
use kiln::kiln_frontends::{hf, Error};
use kiln::kiln_runtime::Tensor;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture() -> Option<(PathBuf, BTreeMap<String, Tensor>)> {
    common::hf_fixture("llama-tiny")
}

#[test]
fn llama_tiny_matches_pytorch() {
    let Some((dir, npz)) = fixture() else { return };
    let got = causal_lm_logits(
        &dir,
        npz["input_ids"].clone(),
        npz["attention_mask"].clone(),
    );
    let max = common::allclose(&got, &npz["out"], 1e-3, 1e-4).expect("logits match PyTorch");
    println!("llama-tiny logits: max |diff| {max:.3e}");
}

#[test]
fn llama_tiny_other_batch_and_shorter_sequence() {
    let Some((dir, npz)) = fixture() else { return };
    let (ids, mask, out) = (&npz["input_ids"], &npz["attention_mask"], &npz["out"]);
    let seq = ids.shape()[1];
    // Batch 3 with rows duplicated, full length.
    let rows = [1, 0, 1];
    let got = causal_lm_logits(&dir, pick_i64(ids, &rows, seq), pick_i64(mask, &rows, seq));
    let max = common::allclose(&got, &pick_f32(out, &rows, seq), 1e-3, 1e-4)
        .expect("batch-3 logits match PyTorch's rows");
    println!("batch 3: max |diff| {max:.3e}");
    // A shorter sequence: causal, so its logits are the prefix of the original run's.
    let rows = [0, 1, 1];
    let short = 6;
    let got = causal_lm_logits(
        &dir,
        pick_i64(ids, &rows, short),
        pick_i64(mask, &rows, short),
    );
    let max = common::allclose(&got, &pick_f32(out, &rows, short), 1e-3, 1e-4)
        .expect("prefix logits match PyTorch's");
    println!("batch 3, seq {short}: max |diff| {max:.3e}");
}

/// Asserts two frequency lists agree to within a relative 1e-12.
fn assert_freqs(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs(),
            "inv_freq[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn default_and_linear_inv_freq() {
    assert_freqs(&default_inv_freq(10000.0, 8), &[1.0, 0.1, 0.01, 0.001]);
    // Old style: top-level `rope_theta`, `rope_scaling` with `type`.
    let cfg = json!({"rope_theta": 10000.0, "rope_scaling": {"type": "linear", "factor": 4.0}});
    let rope = Rope::from_config(&cfg).expect("linear scaling is supported");
    assert_eq!(rope.scaling, RopeScaling::Linear { factor: 4.0 });
    assert_freqs(&rope.inv_freq(8), &[0.25, 0.025, 0.0025, 0.00025]);
    // transformers 5 style.
    let cfg = json!({"rope_parameters": {"rope_theta": 100.0, "rope_type": "linear", "factor": 2}});
    let rope = Rope::from_config(&cfg).expect("linear scaling is supported");
    assert_freqs(&rope.inv_freq(4), &[0.5, 0.05]);
    // Nothing given: theta 10000, default.
    let rope = Rope::from_config(&json!({})).expect("defaults");
    assert_eq!(rope.scaling, RopeScaling::Default);
    assert_freqs(&rope.inv_freq(8), &[1.0, 0.1, 0.01, 0.001]);
}

#[test]
fn llama3_inv_freq() {
    // Wavelengths 2π/inv_freq: index 0 is below 64/4 (kept), 1 and 2 lie between 16 and 64
    // (smoothed), the rest are above 64 (divided by 8). Values from numpy with transformers'
    // `_compute_llama3_parameters`.
    let cfg = json!({"rope_parameters": {
        "rope_theta": 10000.0, "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 64}});
    let rope = Rope::from_config(&cfg).expect("llama3 scaling is supported");
    let want = [
        1.0,
        0.244_384_599_435_398_34,
        0.013_042_256_043_820_465,
        0.003_952_847_075_210_474,
        0.00125,
        0.000_395_284_707_521_047_5,
        0.000125,
        3.952_847_075_210_474e-5,
    ];
    assert_freqs(&rope.inv_freq(16), &want);
    // A llama3 config missing a field is refused, naming it.
    let cfg = json!({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}});
    let err = Rope::from_config(&cfg).expect_err("incomplete llama3 settings");
    assert!(err.contains("low_freq_factor"), "{err}");
}

#[test]
fn unsupported_rope_kinds_are_refused() {
    for kind in ["yarn", "dynamic", "longrope"] {
        let cfg = json!({"rope_parameters": {"rope_theta": 10000.0, "rope_type": kind}});
        let err = Rope::from_config(&cfg).expect_err("an unsupported rope type");
        assert!(err.contains(kind), "{err}");
    }
    // Through the folder: a config error naming the kind and the config file.
    let Some((dir, _)) = fixture() else { return };
    let tmp = edited_copy(&dir, |cfg| {
        cfg["rope_parameters"]["rope_type"] = json!("yarn");
        cfg["rope_parameters"]["factor"] = json!(4.0);
    });
    match hf::load_folder(tmp.path()) {
        Err(e @ Error::Config { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("yarn") && msg.contains("config.json"), "{msg}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// A temp copy of the fixture folder with its `config.json` edited by `edit`.
fn edited_copy(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config reads");
    let mut cfg: serde_json::Value = serde_json::from_str(&text).expect("config parses");
    edit(&mut cfg);
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).expect("config writes");
    std::fs::copy(
        dir.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .expect("weights copy");
    tmp
}

#[test]
fn mis_sized_configs_are_errors() {
    let Some((dir, _)) = fixture() else { return };
    // A head dim far beyond the weights: the query projection's shape is refused before any
    // rotary table is sized.
    let tmp = edited_copy(&dir, |cfg| cfg["head_dim"] = json!(1u64 << 40));
    match hf::load_folder(tmp.path()) {
        Err(e @ Error::WeightShape { .. }) => assert!(e.to_string().contains("q_proj"), "{e}"),
        other => panic!("expected a weight-shape error, got {other:?}"),
    }
    // Heads not divisible by the kv heads, and an odd head dim: config errors.
    for (key, v) in [("num_key_value_heads", 3), ("head_dim", 15)] {
        let tmp = edited_copy(&dir, |cfg| cfg[key] = json!(v));
        match hf::load_folder(tmp.path()) {
            Err(e @ Error::Config { .. }) => assert!(e.to_string().contains(key), "{e}"),
            other => panic!("expected a config error for {key}, got {other:?}"),
        }
    }
}
