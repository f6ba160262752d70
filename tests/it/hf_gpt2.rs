//! GPT-2 from a Hugging Face folder: the `gpt2-tiny` fixture's logits against PyTorch's, other
//! batch sizes and sequence lengths (causal prefixes), and a mis-sized config.

use crate::common;

use common::{causal_lm_logits, pick_f32, pick_i64};

use kiln::kiln_frontends::{hf, Error};
use kiln::kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture() -> Option<(PathBuf, BTreeMap<String, Tensor>)> {
    common::hf_fixture("gpt2-tiny")
}

#[test]
fn gpt2_tiny_logits_match_pytorch() {
    let Some((dir, npz)) = fixture() else { return };
    let got = causal_lm_logits(
        &dir,
        npz["input_ids"].clone(),
        npz["attention_mask"].clone(),
    );
    let want = &npz["out"];
    assert_eq!(got.shape(), &[2, 10, 1000]);
    let max = common::allclose(&got, want, 1e-3, 1e-4).expect("logits match PyTorch");
    println!("gpt2-tiny logits: max |diff| {max:.3e}");
}

#[test]
fn gpt2_tiny_other_batch_and_shorter_prefix() {
    let Some((dir, npz)) = fixture() else { return };
    let (ids, mask) = (&npz["input_ids"], &npz["attention_mask"]);
    let full = causal_lm_logits(&dir, ids.clone(), mask.clone());
    // Batch 3 (rows duplicated) over the first 8 positions: row 1 keeps one padded position.
    let rows = [1, 0, 1];
    let len = 8;
    let got = causal_lm_logits(&dir, pick_i64(ids, &rows, len), pick_i64(mask, &rows, len));
    assert_eq!(got.shape(), &[3, len, 1000]);
    let same_run = pick_f32(&full, &rows, len);
    let max = common::allclose(&got, &same_run, 1e-5, 1e-5).expect("prefix equals the full run");
    println!("batch 3, seq {len} vs the full run: max |diff| {max:.3e}");
    let reference = pick_f32(&npz["out"], &rows, len);
    let max = common::allclose(&got, &reference, 1e-3, 1e-4).expect("prefix matches PyTorch");
    println!("batch 3, seq {len} vs PyTorch: max |diff| {max:.3e}");
    // A single row of length 1.
    let got = causal_lm_logits(&dir, pick_i64(ids, &[0], 1), pick_i64(mask, &[0], 1));
    let reference = pick_f32(&npz["out"], &[0], 1);
    common::allclose(&got, &reference, 1e-3, 1e-4).expect("one token matches PyTorch");
}

/// A copy of the fixture folder with `config.json` edited by `edit`.
fn edited_copy(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config.json reads");
    let mut cfg: serde_json::Value = serde_json::from_str(&text).expect("config.json parses");
    edit(&mut cfg);
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).expect("config writes");
    std::fs::copy(
        dir.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .expect("the checkpoint copies");
    tmp
}

#[test]
fn gpt2_mis_sized_config_names_the_tensor() {
    let Some((dir, _)) = fixture() else { return };
    let tmp = edited_copy(&dir, |c| c["n_embd"] = 32.into());
    match hf::load_folder(tmp.path()) {
        Err(Error::WeightShape {
            tensor,
            expected,
            found,
            ..
        }) => {
            assert_eq!(tensor, "transformer.wte.weight");
            assert_eq!(expected, vec![1000, 32]);
            assert_eq!(found, vec![1000, 64]);
        }
        other => panic!("expected a WeightShape error, got {other:?}"),
    }
    let tmp = edited_copy(&dir, |c| c["n_inner"] = 128.into());
    let err = hf::load_folder(tmp.path()).expect_err("a wrong n_inner fails");
    assert!(
        matches!(&err, Error::WeightShape { tensor, .. } if tensor.ends_with("mlp.c_fc.weight")),
        "{err:?}"
    );
}

#[test]
fn gpt2_bad_configs_are_config_errors() {
    let Some((dir, _)) = fixture() else { return };
    let cases: [(&str, serde_json::Value); 5] = [
        ("n_head", u64::MAX.into()),
        ("n_embd", (1u64 << 62).into()),
        ("activation_function", "swishy".into()),
        ("n_head", 5.into()),
        ("n_embd", (-4).into()),
    ];
    for (key, value) in cases {
        let tmp = edited_copy(&dir, |c| c[key] = value.clone());
        let err = hf::load_folder(tmp.path()).expect_err("a bad config fails");
        assert!(matches!(err, Error::Config { .. }), "{key}: {err:?}");
    }
}
