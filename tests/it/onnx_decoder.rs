//! ONNX decoders exported with `past_key_values` (optimum's `text-generation-with-past`
//! interface, `tools/export_onnx_decoders.py`: the tiny Llama and GPT-2 fixtures, and the Llama
//! as optimum's merged decoder with `use_cache_branch` and an `If`) generate through Kiln's
//! cached decoding: `kiln::load_decoder` turns their caches into states
//! (`kiln_compiler::passes::kv_states`; the merged one specialised to its with-past branch),
//! `CausalLm` drives them, and the greedy ids equal ONNX Runtime's (a loop feeding `present`
//! back as `past`, `refs.json`) for 16 steps after prompts of 1 and 5 tokens. The plan keeps
//! the caches as states written in place; a left-padded batch decodes each row as alone; a
//! model without the pattern is refused saying so; `kiln generate` on the `.onnx` reads the
//! `tokenizer.json` beside it (and refuses in one line when there is none), and an artifact
//! from `kiln compile --decoder` carries it.

use crate::common::{kiln, stdout_ok};
use kiln::kiln_compiler::pipeline::{self, Options};
use kiln::kiln_compiler::Target;
use kiln::kiln_runtime::plan::Kernel;
use kiln::kiln_runtime::{LoadOptions, Model};
use kiln_pipelines::generation::{argmax, CausalLm};
use std::path::{Path, PathBuf};

const MODELS: [&str; 3] = ["llama-h48-llama3", "gpt2-h48", "llama-h48-llama3-merged"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/onnx-decoders")
}

/// `(prompt, ONNX Runtime's greedy ids)` per prompt of `model`.
fn refs(model: &str) -> Vec<(Vec<u32>, Vec<u32>)> {
    let text = std::fs::read_to_string(dir().join("refs.json")).unwrap();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    j[model]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (ids(&r["prompt"]), ids(&r["ids"])))
        .collect()
}

fn compile(path: &Path) -> Model {
    let g = kiln::load_decoder(path).expect("the export becomes a decoder");
    let c = pipeline::compile(&g, &Target::host(), &Options::default()).expect("compiles");
    Model::from_bytes(c.to_bytes(), &LoadOptions::default()).expect("loads")
}

fn greedy(model: &Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut lm = CausalLm::new(model, 1, prompt.len() + n).unwrap();
    let mut logits = lm.prefill(&[prompt.to_vec()]).unwrap();
    let mut ids = Vec::new();
    loop {
        let id = argmax(&logits[0]).unwrap() as u32;
        ids.push(id);
        if ids.len() == n {
            return ids;
        }
        logits = lm.step(&[id]).unwrap();
    }
}

#[test]
fn greedy_ids_equal_onnxruntime_with_the_cache_as_states() {
    for name in MODELS {
        let model = compile(&dir().join(format!("{name}.onnx")));
        let plan = model.plan();
        assert_eq!(plan.states.len(), 6, "{name}: 3 layers × key, value");
        assert!(
            !plan
                .inputs
                .iter()
                .any(|io| io.name.starts_with("past_key_values")),
            "{name}: the caches are states, not inputs"
        );
        let writes = plan
            .steps
            .iter()
            .filter(|s| matches!(s.kernel, Kernel::CacheWrite { .. }))
            .count();
        assert_eq!(writes, 6, "{name}: every cache is written in place");
        for (prompt, want) in refs(name) {
            assert!(want.len() >= 16);
            let got = greedy(&model, &prompt, want.len());
            assert_eq!(got, want, "{name}, prompt {prompt:?}");
        }
    }
}

/// Rows of different lengths in one batch (left-padded, the pads masked through the export's
/// own mask handling) decode as each row alone.
#[test]
fn a_left_padded_batch_decodes_each_row_as_alone() {
    for name in MODELS {
        let model = compile(&dir().join(format!("{name}.onnx")));
        let cases = refs(name);
        let prompts: Vec<Vec<u32>> = cases.iter().map(|(p, _)| p.clone()).collect();
        let n = cases[0].1.len();
        let mut lm = CausalLm::new(&model, prompts.len(), 5 + n).unwrap();
        let mut logits = lm.prefill(&prompts).unwrap();
        let mut got = vec![Vec::new(); prompts.len()];
        for _ in 0..n {
            let ids: Vec<u32> = logits
                .iter()
                .map(|row| argmax(row).unwrap() as u32)
                .collect();
            for (g, &id) in got.iter_mut().zip(&ids) {
                g.push(id);
            }
            if got[0].len() < n {
                logits = lm.step(&ids).unwrap();
            }
        }
        let want: Vec<Vec<u32>> = cases.into_iter().map(|(_, w)| w).collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_model_without_past_key_values_is_refused() {
    let plain = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/gpt2-h48.onnx");
    let msg = kiln::load_decoder(&plain).unwrap_err().to_string();
    assert!(
        msg.contains("gpt2-h48.onnx")
            && msg.contains("no `past_key_values.N.key|value` inputs")
            && msg.contains("`input_ids`"),
        "{msg}"
    );
}

#[test]
fn kiln_generate_reads_the_tokenizer_beside_the_onnx_file() {
    let tmp = tempfile::tempdir().unwrap();
    let onnx = tmp.path().join("model.onnx");
    std::fs::copy(dir().join("llama-h48-llama3.onnx"), &onnx).unwrap();
    let out = kiln(&[&"generate", &onnx, &"--prompt", &"t5", &"--json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("an ONNX decoder carries no tokenizer") && err.trim().lines().count() == 1,
        "{err}"
    );
    // A word-level tokenizer of the 300 ids (`t0` … `t299`).
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..300).map(|i| (format!("t{i}"), i.into())).collect();
    let tok = serde_json::json!({
        "version": "1.0",
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"},
    });
    std::fs::write(tmp.path().join("tokenizer.json"), tok.to_string()).unwrap();
    let (prompt, want) = refs("llama-h48-llama3").remove(1);
    let words: Vec<String> = prompt.iter().map(|i| format!("t{i}")).collect();
    let out = stdout_ok(&kiln(&[
        &"generate",
        &onnx,
        &"--prompt",
        &words.join(" "),
        &"--max-new-tokens",
        &"16",
        &"--json",
    ]));
    let j: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let ids: Vec<u32> = j["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(ids, want, "{j}");

    // An artifact from `compile --decoder` carries the tokenizer beside the ONNX file.
    let art = tmp.path().join("model.kiln");
    stdout_ok(&kiln(&[&"compile", &onnx, &"--decoder", &"-o", &art]));
    std::fs::remove_file(tmp.path().join("tokenizer.json")).unwrap();
    let out = stdout_ok(&kiln(&[
        &"generate",
        &art,
        &"--prompt",
        &words.join(" "),
        &"--max-new-tokens",
        &"16",
        &"--json",
    ]));
    let k: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(k["ids"], j["ids"], "{k}");
}

/// `If(c)` with `then: neg(x)`, `else: abs(x)` takes the branch of a known `c`; a known name that
/// is no input is refused.
#[test]
fn an_if_on_a_known_input_is_replaced_by_its_branch() {
    use crate::common::onnx::{model, node, value_f32, value_i64};
    use kiln::kiln_frontends::onnx::decoder::specialize_if;
    use kiln::kiln_frontends::onnx::proto::{AttributeProto, GraphProto};
    use kiln::kiln_frontends::onnx::OnnxModel;
    use std::collections::BTreeMap;
    let branch = |name: &str, op: &str| AttributeProto {
        name: name.into(),
        r#type: 5,
        g: Some(GraphProto {
            name: name.into(),
            node: vec![node(op, "", op, &["x"], &[op])],
            output: vec![value_f32(op, &["2"])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut iff = node("if", "", "If", &["c"], &["y"]);
    iff.attribute = vec![branch("then_branch", "Neg"), branch("else_branch", "Abs")];
    let mut c = value_i64("c", &["1"]);
    if let Some(kiln::kiln_frontends::onnx::proto::type_proto::Value::TensorType(t)) =
        c.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = 9; // BOOL
    }
    let bytes = model(
        vec![iff],
        vec![],
        vec![c, value_f32("x", &["2"])],
        vec![value_f32("y", &["2"])],
        &[("", 17)],
    );
    let m = OnnxModel::from_bytes(Path::new("if.onnx"), &bytes).unwrap();
    for (cond, op) in [(true, "neg"), (false, "abs")] {
        let known = BTreeMap::from([("c".to_string(), cond)]);
        let g =
            kiln::kiln_frontends::onnx::import::import_model(&specialize_if(&m, &known).unwrap())
                .unwrap();
        let ops: Vec<&str> = g.node_ids().map(|n| g.node(n).op.name()).collect();
        assert!(ops.contains(&op), "{cond}: {ops:?}");
        assert_eq!(g.inputs().len(), 1, "`c` is no input any more");
    }
    let known = BTreeMap::from([("d".to_string(), true)]);
    let msg = specialize_if(&m, &known).unwrap_err().to_string();
    assert!(msg.contains("`d` is no input of the graph"), "{msg}");
}
