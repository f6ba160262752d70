//! The Hugging Face BERT frontend: the bert-tiny fixture folder and all-MiniLM-L6-v2 match
//! PyTorch's `last_hidden_state` (also at other batch sizes and with padding), the CLI runs a
//! folder, and broken folders give errors that name the architecture, weight or shapes.

use crate::common;

use common::{allclose, kiln, resize_axis1, shared_dir, stdout_ok, take_rows};
use kiln_frontends::hf::load_folder;
use kiln_frontends::Error;
use kiln_runtime::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-4;
const INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];

fn run(dir: &Path, inputs: &BTreeMap<String, Tensor>) -> Tensor {
    let g = load_folder(dir).unwrap_or_else(|e| panic!("{e}"));
    let out = kiln_compiler::interp::run(&g, inputs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "last_hidden_state");
    out[0].1.clone()
}

fn inputs_of(npz: &BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    INPUTS
        .iter()
        .map(|k| (k.to_string(), npz[*k].clone()))
        .collect()
}

#[test]
fn bert_tiny_matches_pytorch_at_other_batches_and_lengths() {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("fixtures/bert-tiny");
    let npz = kiln::read_npz(&shared.join("fixtures/bert-tiny.npz")).unwrap();
    let want = &npz["out"];
    let inputs = inputs_of(&npz);
    let got = run(&dir, &inputs);
    let d = allclose(&got, want, RTOL, ATOL).unwrap_or_else(|e| panic!("bert-tiny: {e}"));
    println!("bert-tiny max |diff| {d:.3e}");

    // Batch 3: rows 0, 1, 0.
    let rows = [0, 1, 0];
    let batched: BTreeMap<_, _> = inputs
        .iter()
        .map(|(k, t)| (k.clone(), take_rows(t, &rows)))
        .collect();
    let got = run(&dir, &batched);
    let d = allclose(&got, &take_rows(want, &rows), RTOL, ATOL)
        .unwrap_or_else(|e| panic!("batch 3: {e}"));
    println!("bert-tiny batch 3 max |diff| {d:.3e}");

    // Three masked padding tokens appended: the original positions are unchanged.
    let s = want.shape()[1];
    let padded: BTreeMap<_, _> = inputs
        .iter()
        .map(|(k, t)| (k.clone(), resize_axis1(t, s + 3, 0.0)))
        .collect();
    let got = run(&dir, &padded);
    assert_eq!(got.shape(), &[2, s + 3, 64]);
    let d = allclose(&resize_axis1(&got, s, 0.0), want, RTOL, ATOL)
        .unwrap_or_else(|e| panic!("padded: {e}"));
    println!("bert-tiny padded max |diff| {d:.3e}");
}

#[test]
fn minilm_matches_pytorch_where_the_mask_is_set() {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("models/all-MiniLM-L6-v2");
    let npz = kiln::read_npz(&dir.join("reference.npz")).unwrap();
    let want = &npz["last_hidden_state"];
    let got = run(&dir, &inputs_of(&npz));
    assert_eq!(got.shape(), want.shape());
    // The reference pads its sentences: compare the positions the mask keeps.
    let mask = npz["attention_mask"].to_i64_vec();
    let h = want.shape()[2];
    let keep = |t: &Tensor| -> Tensor {
        let v: Vec<f64> = t
            .to_f64_vec()
            .chunks(h)
            .zip(&mask)
            .filter(|(_, &m)| m != 0)
            .flat_map(|(row, _)| row.to_vec())
            .collect();
        let n = v.len() / h;
        Tensor::from_f64_values(DType::F32, vec![n, h], &v).unwrap()
    };
    let d = allclose(&keep(&got), &keep(want), RTOL, ATOL)
        .unwrap_or_else(|e| panic!("all-MiniLM-L6-v2: {e}"));
    println!("all-MiniLM-L6-v2 max |diff| (masked positions) {d:.3e}");
}

#[test]
fn the_cli_inspects_and_runs_a_folder() {
    let Some(shared) = shared_dir() else { return };
    let model = shared.join("fixtures/bert-tiny");
    let npz = kiln::read_npz(&shared.join("fixtures/bert-tiny.npz")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ins = tmp.path().join("in.npz");
    let outs = tmp.path().join("out.npz");
    kiln::write_npz(&ins, &inputs_of(&npz), kiln::npz::Compression::Stored).unwrap();
    let text = stdout_ok(&kiln(&[&"inspect", &model]));
    assert!(text.contains("input_ids"), "{text}");
    stdout_ok(&kiln(&[
        &"run",
        &model,
        &"--inputs",
        &ins,
        &"--outputs",
        &outs,
    ]));
    let got = kiln::read_npz(&outs).unwrap();
    allclose(&got["last_hidden_state"], &npz["out"], RTOL, ATOL).unwrap();
}

// ---- tiny synthetic folders -------------------------------------------------------------

const KEY_WEIGHT: &str = "encoder.layer.0.attention.self.key.weight";
const FFN_WEIGHT: &str = "encoder.layer.0.intermediate.dense.weight";

/// The weights of a 1-layer BERT with hidden 4, 2 heads, intermediate 8, vocab 10.
pub(crate) fn tiny_weights() -> Vec<(String, Vec<usize>)> {
    let mut w: Vec<(String, Vec<usize>)> = vec![
        ("bert.embeddings.word_embeddings.weight".into(), vec![10, 4]),
        (
            "bert.embeddings.position_embeddings.weight".into(),
            vec![8, 4],
        ),
        (
            "bert.embeddings.token_type_embeddings.weight".into(),
            vec![2, 4],
        ),
        ("bert.embeddings.LayerNorm.weight".into(), vec![4]),
        ("bert.embeddings.LayerNorm.bias".into(), vec![4]),
        ("bert.pooler.dense.weight".into(), vec![4, 4]),
    ];
    let l = "bert.encoder.layer.0";
    for (part, shape) in [
        ("attention.self.query", [4, 4]),
        ("attention.self.key", [4, 4]),
        ("attention.self.value", [4, 4]),
        ("attention.output.dense", [4, 4]),
        ("intermediate.dense", [8, 4]),
        ("output.dense", [4, 8]),
    ] {
        w.push((format!("{l}.{part}.weight"), shape.to_vec()));
        w.push((format!("{l}.{part}.bias"), vec![shape[0]]));
    }
    for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
        w.push((format!("{l}.{ln}.weight"), vec![4]));
        w.push((format!("{l}.{ln}.bias"), vec![4]));
    }
    w
}

/// Writes `config.json` (`arch`, `extra` fields; `model_type` is `bert` unless the architecture
/// is a `Foo…` one) and `model.safetensors` with `weights`.
pub(crate) fn write_folder(dir: &Path, arch: &str, extra: &str, weights: &[(String, Vec<usize>)]) {
    let model_type = if arch.starts_with("Foo") {
        "foo"
    } else {
        "bert"
    };
    let config = format!(
        r#"{{"architectures": ["{arch}"], "model_type": "{model_type}", "hidden_size": 4,
            "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8,
            "vocab_size": 10, "max_position_embeddings": 8{extra}}}"#
    );
    std::fs::write(dir.join("config.json"), config).unwrap();
    let bytes: Vec<Vec<u8>> = weights
        .iter()
        .map(|(_, s)| {
            let n: usize = s.iter().product();
            (0..n)
                .flat_map(|i| (((i * 7 % 11) as f32 - 5.0) / 10.0).to_le_bytes())
                .collect()
        })
        .collect();
    let views = weights.iter().zip(&bytes).map(|((name, shape), b)| {
        let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b);
        (name.clone(), v.unwrap())
    });
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

fn ids(v: &[i64]) -> Tensor {
    Tensor::from_i64(vec![1, v.len()], v.to_vec()).unwrap()
}

#[test]
fn a_tiny_prefixed_folder_builds_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    write_folder(
        tmp.path(),
        "BertModel",
        r#", "hidden_act": "gelu_new""#,
        &tiny_weights(),
    );
    let mut inputs = BTreeMap::from([
        ("input_ids".to_string(), ids(&[1, 2, 3])),
        ("attention_mask".to_string(), ids(&[1, 1, 0])),
        ("token_type_ids".to_string(), ids(&[0, 0, 1])),
    ]);
    let got = run(tmp.path(), &inputs);
    assert_eq!(got.shape(), &[1, 3, 4]);
    assert!(got.to_f64_vec().iter().all(|x| x.is_finite()));
    // Out-of-range token ids are a run error, not a panic.
    inputs.insert("input_ids".to_string(), ids(&[1, 2, 99]));
    let g = load_folder(tmp.path()).unwrap();
    assert!(kiln_compiler::interp::run(&g, &inputs).is_err());
}

#[test]
fn a_sequence_classification_folder_builds_its_head() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = tiny_weights();
    w.push(("classifier.weight".to_string(), vec![3, 4]));
    w.push(("classifier.bias".to_string(), vec![3]));
    write_folder(
        tmp.path(),
        "BertForSequenceClassification",
        r#", "num_labels": 3"#,
        &w,
    );
    let g = load_folder(tmp.path()).unwrap();
    assert_eq!(g.outputs().len(), 1);
    assert_eq!(g.outputs()[0].0, "logits");
    let inputs = BTreeMap::from([
        ("input_ids".to_string(), ids(&[1, 2, 3])),
        ("attention_mask".to_string(), ids(&[1, 1, 0])),
        ("token_type_ids".to_string(), ids(&[0, 0, 1])),
    ]);
    let out = kiln_compiler::interp::run(&g, &inputs).unwrap();
    assert_eq!(out[0].1.shape(), &[1, 3]);
}

#[test]
fn unsupported_architectures_list_the_supported_ones() {
    let tmp = tempfile::tempdir().unwrap();
    write_folder(tmp.path(), "FooModel", "", &tiny_weights());
    match load_folder(tmp.path()) {
        Err(e @ Error::UnsupportedArchitecture { .. }) => {
            let msg = e.to_string();
            let Error::UnsupportedArchitecture {
                found, supported, ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(found, "FooModel");
            assert!(supported.contains(&"BertModel"), "{supported:?}");
            assert!(msg.contains("BertModel"), "{msg}");
        }
        other => panic!("expected UnsupportedArchitecture, got {other:?}"),
    }
}

#[test]
fn missing_and_misshaped_weights_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = tiny_weights();
    w.retain(|(n, _)| !n.ends_with(KEY_WEIGHT));
    write_folder(tmp.path(), "BertModel", "", &w);
    match load_folder(tmp.path()) {
        Err(Error::MissingWeight {
            tensor, expected, ..
        }) => {
            assert_eq!(tensor, KEY_WEIGHT);
            assert_eq!(expected, vec![4, 4]);
        }
        other => panic!("expected MissingWeight, got {other:?}"),
    }

    let mut w = tiny_weights();
    for (n, s) in &mut w {
        if n.ends_with(FFN_WEIGHT) {
            *s = vec![8, 5];
        }
    }
    write_folder(tmp.path(), "BertModel", "", &w);
    match load_folder(tmp.path()) {
        Err(e @ Error::WeightShape { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("[8, 5]") && msg.contains("[8, 4]"), "{msg}");
            let Error::WeightShape {
                tensor,
                expected,
                found,
                ..
            } = e
            else {
                unreachable!()
            };
            assert!(tensor.ends_with(FFN_WEIGHT), "{tensor}");
            assert_eq!((expected, found), (vec![8, 4], vec![8, 5]));
        }
        other => panic!("expected WeightShape, got {other:?}"),
    }
}

#[test]
fn unsupported_config_values_are_config_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for (extra, want) in [
        (
            r#", "position_embedding_type": "relative_key""#,
            "relative_key",
        ),
        (r#", "hidden_act": "mish""#, "hidden_act `mish`"),
        (r#", "num_attention_heads": 3"#, "not a multiple"),
        (r#", "hidden_size": "four""#, "not a valid BERT config"),
    ] {
        write_folder(tmp.path(), "BertModel", extra, &tiny_weights());
        match load_folder(tmp.path()) {
            Err(e @ Error::Config { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(want) && msg.contains("config.json"), "{msg}");
            }
            other => panic!("{extra}: expected a config error, got {other:?}"),
        }
    }
}
