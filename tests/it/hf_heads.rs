//! Hugging Face task heads (`tests/models/hf/heads/NAME/` with `NAME.npz`, written by
//! `tools/export_hf_heads.py`): every head Kiln builds matches transformers' outputs, under their
//! names, on the reference interpreter and on the compiled CPU backend; the masked-LM decoder is
//! the word embeddings when the checkpoint stores none (tied) and the stored one otherwise;
//! heads Kiln does not build are refused by name; a config without `architectures` builds the
//! family's base model; RoBERTa's position ids bound the sequence length; an empty sequence is
//! an error for a head that reads the first token.

use crate::common;

use kiln::backend::{compile_model, CompileOptions};
use kiln::kiln_compiler::interp;
use kiln::kiln_compiler::ir::Graph;
use kiln::kiln_frontends::hf::load_folder;
use kiln::kiln_frontends::Error;
use kiln::kiln_runtime::{LoadOptions, Model, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-4;

type Feeds = BTreeMap<String, Tensor>;

/// The folder holding the head folders and their `.npz` files.
fn heads_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/hf/heads")
}

/// The graph's input names, in order.
fn input_names(g: &Graph) -> Vec<String> {
    g.inputs()
        .iter()
        .map(|&v| g.value(v).name.clone().unwrap_or_default())
        .collect()
}

/// Checks one folder on both engines; returns a summary line or the reason it fails.
fn check(name: &str) -> Result<String, String> {
    let dir = heads_dir().join(name);
    let npz =
        kiln::read_npz(&heads_dir().join(format!("{name}.npz"))).map_err(|e| e.to_string())?;
    let g = load_folder(&dir).map_err(|e| format!("import fails: {e}"))?;
    let inputs = input_names(&g);
    let feeds: Feeds = inputs
        .iter()
        .map(|n| match npz.get(n) {
            Some(t) => Ok((n.clone(), t.clone())),
            None => Err(format!("the graph input `{n}` is not in the .npz")),
        })
        .collect::<Result<_, String>>()?;
    let outputs: Vec<String> = g.outputs().iter().map(|(n, _)| n.clone()).collect();
    // The `.npz` keys are sorted; the graph declares its outputs in transformers' order.
    let expected: Vec<&String> = npz.keys().filter(|k| !inputs.contains(k)).collect();
    let mut declared: Vec<&String> = outputs.iter().collect();
    declared.sort();
    if declared != expected {
        return Err(format!(
            "outputs {outputs:?}, transformers gives {expected:?}"
        ));
    }
    let compare = |engine: &str, got: Vec<(String, Tensor)>| -> Result<String, String> {
        let mut worst = 0.0f64;
        for (n, t) in &got {
            let want = &npz[n];
            if t.shape() != want.shape() {
                return Err(format!(
                    "{engine}: `{n}` has shape {:?}, transformers {:?}",
                    t.shape(),
                    want.shape()
                ));
            }
            let d = common::allclose(t, want, RTOL, ATOL)
                .map_err(|e| format!("{engine}: `{n}` vs transformers: {e}"))?;
            worst = worst.max(d);
        }
        Ok(format!("{engine} {worst:.2e}"))
    };
    let got = interp::run(&g, &feeds).map_err(|e| format!("the interpreter fails: {e}"))?;
    let a = compare("interpreter", got)?;
    let bytes = compile_model(&dir, &CompileOptions::default())
        .map_err(|e| format!("compile fails: {e}"))?;
    let model = Model::from_bytes(bytes, &LoadOptions::default()).map_err(|e| e.to_string())?;
    let got = model
        .session()
        .run(&feeds)
        .map_err(|e| format!("the CPU backend fails: {e}"))?;
    let c = compare("cpu", got)?;
    let shapes: Vec<String> = outputs
        .iter()
        .map(|n| format!("{n} {:?}", npz[n].shape()))
        .collect();
    Ok(format!("{}: max |diff| {a}, {c}", shapes.join(", ")))
}

macro_rules! head_tests {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                match check($name) {
                    Ok(summary) => println!("{}: {summary}", $name),
                    Err(e) => panic!("{}: {e}", $name),
                }
            }
        )*

        /// Every folder in `tests/models/hf/heads` has a test above (and the reverse).
        #[test]
        fn every_head_folder_is_tested() {
            let mut listed: Vec<&str> = vec![$($name),*];
            listed.sort();
            let mut found: Vec<String> = std::fs::read_dir(heads_dir())
                .expect("the heads folder lists")
                .map(|e| e.expect("a folder entry").file_name().to_string_lossy().into_owned())
                .filter_map(|n| n.strip_suffix(".npz").map(str::to_string))
                .collect();
            found.sort();
            assert_eq!(found, listed);
        }
    };
}

head_tests! {
    bert_masked_lm => "bert-mlm",
    bert_sequence_classification => "bert-seqcls",
    bert_token_classification => "bert-tokcls",
    bert_question_answering => "bert-qa",
    roberta_base => "roberta-base",
    roberta_masked_lm => "roberta-mlm",
    roberta_sequence_classification => "roberta-seqcls",
    roberta_token_classification => "roberta-tokcls",
    roberta_question_answering => "roberta-qa",
    xlm_roberta_base => "xlmr-base",
    xlm_roberta_masked_lm => "xlmr-mlm",
    xlm_roberta_token_classification => "xlmr-tokcls",
    distilbert_base => "distilbert-base",
    distilbert_masked_lm => "distilbert-mlm",
    distilbert_sequence_classification => "distilbert-seqcls",
    distilbert_token_classification => "distilbert-tokcls",
    distilbert_question_answering => "distilbert-qa",
    vit_image_classification => "vit-imgcls",
    gpt2_base => "gpt2-base",
    llama_base => "llama-base",
}

/// A copy of the folder `name` in a temporary directory with `edit` applied to its config.
fn edited(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let src = heads_dir().join(name);
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(
        src.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    tmp
}

/// Runs a folder's graph on the interpreter with the inputs of `NAME.npz`.
fn run_folder(dir: &Path, name: &str) -> Vec<(String, Tensor)> {
    let npz = kiln::read_npz(&heads_dir().join(format!("{name}.npz"))).unwrap();
    let g = load_folder(dir).unwrap_or_else(|e| panic!("{e}"));
    let feeds: Feeds = input_names(&g)
        .into_iter()
        .map(|n| {
            let t = npz[&n].clone();
            (n, t)
        })
        .collect();
    interp::run(&g, &feeds).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_masked_lm_decoder_is_tied_unless_the_checkpoint_stores_one() {
    // The exported folder stores no decoder weight (save_pretrained leaves tied weights out) and
    // matches transformers (`bert_masked_lm`); storing the word embeddings as the decoder, as
    // older checkpoints do, changes nothing, and a stored decoder of zeros leaves only the bias.
    let dir = heads_dir().join("bert-mlm");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names = st.names();
    assert!(
        !names.iter().any(|n| n.contains("decoder")),
        "the exported MLM folder should hold no decoder weight: {names:?}"
    );
    let tied = run_folder(&dir, "bert-mlm");
    let word = st.tensor("bert.embeddings.word_embeddings.weight").unwrap();
    let bias = st.tensor("cls.predictions.bias").unwrap();
    let zeros = vec![0u8; word.data().len()];
    for (decoder, same) in [(word.data(), true), (&zeros[..], false)] {
        let tmp = edited("bert-mlm", |_| {});
        let mut all: Vec<(String, safetensors::tensor::TensorView)> = st.tensors();
        let view =
            safetensors::tensor::TensorView::new(word.dtype(), word.shape().to_vec(), decoder);
        all.push(("cls.predictions.decoder.weight".into(), view.unwrap()));
        safetensors::serialize_to_file(all, None, &tmp.path().join("model.safetensors")).unwrap();
        let got = run_folder(tmp.path(), "bert-mlm");
        let want = if same {
            tied[0].1.clone()
        } else {
            let b: Vec<f32> = bias
                .data()
                .chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let shape = tied[0].1.shape().to_vec();
            let n = shape.iter().product::<usize>() / b.len();
            Tensor::from_f32(shape, b.repeat(n)).unwrap()
        };
        common::allclose(&got[0].1, &want, 1e-5, 1e-6)
            .unwrap_or_else(|e| panic!("stored decoder (same as tied: {same}): {e}"));
    }
}

#[test]
fn heads_kiln_does_not_build_are_refused_by_name() {
    for arch in [
        "BertForNextSentencePrediction",
        "BertForMultipleChoice",
        "BertForPreTraining",
        "GPT2ForTokenClassification",
        "RobertaForCausalLM",
    ] {
        let tmp = edited("bert-mlm", |c| {
            c["architectures"] = serde_json::json!([arch])
        });
        let e = load_folder(tmp.path()).expect_err(arch);
        let msg = e.to_string();
        match e {
            Error::UnsupportedArchitecture {
                found, supported, ..
            } => {
                assert_eq!(found, arch);
                assert!(supported.contains(&"BertForMaskedLM"), "{supported:?}");
                assert!(
                    msg.contains(arch) && msg.contains("BertForQuestionAnswering"),
                    "{msg}"
                );
            }
            other => panic!("{arch}: expected UnsupportedArchitecture, got {other:?}"),
        }
    }
}

#[test]
fn a_config_without_architectures_builds_the_base_model() {
    for name in ["bert-seqcls", "roberta-mlm", "distilbert-qa", "vit-imgcls"] {
        let tmp = edited(name, |c| {
            c.as_object_mut().unwrap().remove("architectures");
        });
        let g = load_folder(tmp.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let outs: Vec<&str> = g.outputs().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(outs, ["last_hidden_state"], "{name}");
    }
}

#[test]
fn classification_labels_come_from_the_config() {
    // 4 labels in config.json against a 3-row classifier: the weight is named.
    let tmp = edited("bert-seqcls", |c| {
        c.as_object_mut().unwrap().remove("id2label");
        c["num_labels"] = serde_json::json!(4);
    });
    match load_folder(tmp.path()) {
        Err(Error::WeightShape {
            tensor,
            expected,
            found,
            ..
        }) => {
            assert_eq!(tensor, "classifier.weight");
            assert_eq!((expected, found), (vec![4, 32], vec![3, 32]));
        }
        other => panic!("expected WeightShape, got {other:?}"),
    }
    let tmp = edited("bert-seqcls", |c| c["id2label"] = serde_json::json!(3));
    match load_folder(tmp.path()) {
        Err(e @ Error::Config { .. }) => assert!(e.to_string().contains("id2label"), "{e}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn roberta_positions_bound_the_sequence_length() {
    // max_position_embeddings 20 with pad_token_id 1: 18 tokens fit, 19 do not.
    let g = load_folder(&heads_dir().join("roberta-base")).unwrap();
    for (len, fits) in [(18, true), (19, false)] {
        let feeds = Feeds::from([
            (
                "input_ids".to_string(),
                Tensor::from_i64(vec![1, len], vec![5; len]).unwrap(),
            ),
            (
                "attention_mask".to_string(),
                Tensor::from_i64(vec![1, len], vec![1; len]).unwrap(),
            ),
        ]);
        match interp::run(&g, &feeds) {
            Ok(_) => assert!(fits, "{len} tokens should be refused"),
            Err(e) => {
                assert!(!fits, "{len} tokens: {e}");
                let msg = e.to_string();
                assert!(
                    msg.contains("input_ids") && msg.contains("pad_token_id"),
                    "{msg}"
                );
            }
        }
    }
}

#[test]
fn an_empty_sequence_is_an_error_not_a_panic() {
    // The classification head reads the first token, which a zero-length sequence lacks.
    let dir = heads_dir().join("bert-seqcls");
    let g = load_folder(&dir).unwrap();
    let empty = || Tensor::from_i64(vec![2, 0], vec![]).unwrap();
    let feeds: Feeds = input_names(&g).into_iter().map(|n| (n, empty())).collect();
    let e = interp::run(&g, &feeds).expect_err("no first token");
    assert!(e.to_string().contains("out of range"), "{e}");
    let bytes = compile_model(&dir, &CompileOptions::default()).unwrap();
    let model = Model::from_bytes(bytes, &LoadOptions::default()).unwrap();
    let e = model.session().run(&feeds).expect_err("no first token");
    assert!(e.to_string().contains("out of range"), "{e}");
}
