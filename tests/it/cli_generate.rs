//! `kiln generate` end to end on a tiny LLaMA folder (the `llama-h48-llama3` fixture with a
//! word-level tokenizer of its 300 ids): greedy ids equal a full recompute's argmax chain, an
//! artifact from `kiln compile --decoder` generates the same ids and `kiln inspect` reports its
//! key/value cache, sampling is reproducible by seed, and models without a decoder are refused
//! in one line.

use crate::common::{kiln, stdout_ok};
use kiln::kiln_compiler::pipeline::{self, Options};
use kiln::kiln_frontends::hf;
use kiln_runtime::{LoadOptions, Model, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The fixture folder plus `tokenizer.json` (word level: `t0` … `t299`, split on spaces).
fn folder(tmp: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/hf/llama-h48-llama3");
    let dir = tmp.join("llama");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "generation_config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
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
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    dir
}

/// The greedy continuation of `prompt` by full recompute with the uncached model.
fn recompute_greedy(dir: &Path, prompt: &[i64], n: usize) -> Vec<i64> {
    let g = hf::load_folder(dir).unwrap();
    let c = pipeline::compile(&g, &kiln_compiler::Target::host(), &Options::default()).unwrap();
    let model = Model::from_bytes(c.to_bytes(), &LoadOptions::default()).unwrap();
    let mut seq = prompt.to_vec();
    for _ in 0..n {
        let len = seq.len();
        let feeds = BTreeMap::from([
            (
                "input_ids".into(),
                Tensor::from_i64(vec![1, len], seq.clone()).unwrap(),
            ),
            (
                "attention_mask".into(),
                Tensor::from_i64(vec![1, len], vec![1; len]).unwrap(),
            ),
        ]);
        let outs = model.session().run(&feeds).unwrap();
        let v = outs[0].1.to_f64_vec();
        let row = &v[(len - 1) * 300..];
        let best = (0..300).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        seq.push(best as i64);
    }
    seq[prompt.len()..].to_vec()
}

fn json_line(out: &std::process::Output) -> serde_json::Value {
    let text = stdout_ok(out);
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn generate_folder_and_artifact_greedily() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(tmp.path());
    let want = recompute_greedy(&dir, &[5, 17, 3, 250], 6);
    let args = [
        "--prompt",
        "t5 t17 t3 t250",
        "--max-new-tokens",
        "6",
        "--json",
    ];
    let mut argv: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"generate", &dir];
    argv.extend(args.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
    let j = json_line(&kiln(&argv));
    let ids: Vec<i64> = j["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(ids, want, "{j}");
    assert_eq!(j["prompt_tokens"], 4);
    assert_eq!(j["stop"], "max_new_tokens");
    let text: Vec<String> = want.iter().map(|i| format!("t{i}")).collect();
    assert_eq!(
        j["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        text
    );
    assert!(j["prefill_ms"].as_f64().unwrap() > 0.0);
    assert!(j["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
    // 3 layers × key and value × 1 kv head × (4 + 6) positions × 12 × 4 bytes.
    assert_eq!(j["kv_cache_bytes"], 3 * 2 * 10 * 12 * 4);

    // The same from an artifact compiled with --decoder; inspect reports the cache.
    let art = tmp.path().join("llama.kiln");
    stdout_ok(&kiln(&[&"compile", &dir, &"--decoder", &"-o", &art]));
    let info = stdout_ok(&kiln(&[&"inspect", &art]));
    assert!(
        info.contains("states: past.0.key: f32[batch, 1, capacity, 12]"),
        "{info}"
    );
    assert!(info.contains("288*batch*capacity"), "{info}");
    let mut argv: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"generate", &art];
    argv.extend(args.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
    assert_eq!(json_line(&kiln(&argv))["ids"], j["ids"]);

    // Streaming prints the text and a newline.
    let out = stdout_ok(&kiln(&[
        &"generate",
        &art,
        &"--prompt",
        &"t5 t17 t3 t250",
        &"--max-new-tokens",
        &"6",
    ]));
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), text);
}

#[test]
fn sampling_is_reproducible_by_seed_and_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(tmp.path());
    let run = |seed: &str| {
        json_line(&kiln(&[
            &"generate",
            &dir,
            &"--prompt",
            &"t1 t2",
            &"--max-new-tokens",
            &"12",
            &"--temperature",
            &"1.5",
            &"--seed",
            &seed,
            &"--json",
        ]))["ids"]
            .clone()
    };
    let (a, b, c) = (run("7"), run("7"), run("8"));
    assert_eq!(a, b);
    assert_ne!(a, c, "seeds 7 and 8 drew the same 12 tokens");
    // --ignore-eos: exactly the token limit, whatever the model's eos id (2) is drawn.
    let j = json_line(&kiln(&[
        &"generate",
        &dir,
        &"--prompt",
        &"t1",
        &"--max-new-tokens",
        &"40",
        &"--ignore-eos",
        &"--json",
    ]));
    assert_eq!(j["new_tokens"], 40, "{j}");
    assert_eq!(j["stop"], "max_new_tokens");
    // A model kind without a decoder, an ONNX model without a key/value cache, and a bad
    // setting: exit 1, one paragraph.
    let kir = tmp.path().join("m.kir");
    std::fs::write(&kir, "kir 1\n").unwrap();
    let onnx = tmp.path().join("m.onnx");
    std::fs::write(&onnx, crate::common::onnx::add_bias_model()).unwrap();
    for (argv, needle) in [
        (
            vec![
                &"generate" as &dyn AsRef<std::ffi::OsStr>,
                &kir,
                &"--prompt",
                &"x",
            ],
            "text generation needs",
        ),
        (
            vec![&"generate", &onnx, &"--prompt", &"x"],
            "no `past_key_values.N.key|value` inputs",
        ),
        (
            vec![&"generate", &dir, &"--prompt", &"t1", &"--top-p", &"1.5"],
            "top_p",
        ),
    ] {
        let out = kiln(&argv);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
