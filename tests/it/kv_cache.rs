//! Key/value-cached decoding is exact: a decoder compiled with its cache as states
//! (`hf::load_decoder`), run as one prefill and then one token per step with the cache written in
//! place, gives at every step the logits of a full recompute of the whole sequence by the
//! uncached model (within 1e-4) — for prompt lengths 1, 7 and 300, a batch of three prompts of
//! different lengths (left-padded; each row against that row run alone), until the cache is
//! full, which then stops with an error saying so.

use kiln::kiln_compiler::ir::Graph;
use kiln::kiln_compiler::pipeline::{self, Options};
use kiln::kiln_compiler::Target;
use kiln::kiln_frontends::hf;
use kiln::kiln_runtime::{LoadOptions, Model, Tensor};
use kiln_pipelines::generation::{argmax, CausalLm};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn folder(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/models/hf")
        .join(name)
}

fn compile(g: &Graph) -> Model {
    let compiled = pipeline::compile(g, &Target::host(), &Options::default()).expect("compiles");
    Model::from_bytes(compiled.to_bytes(), &LoadOptions::default()).expect("loads")
}

/// The uncached model's logits at the last position of `ids` (batch 1, no padding).
fn recompute(full: &Model, ids: &[u32]) -> Vec<f32> {
    let n = ids.len();
    let feeds = BTreeMap::from([
        (
            "input_ids".to_string(),
            Tensor::from_i64(vec![1, n], ids.iter().map(|&t| i64::from(t)).collect()).unwrap(),
        ),
        (
            "attention_mask".to_string(),
            Tensor::from_i64(vec![1, n], vec![1; n]).unwrap(),
        ),
    ]);
    let outs = full.session().run(&feeds).expect("the full model runs");
    let logits = &outs.iter().find(|(n, _)| n == "logits").unwrap().1;
    let v = logits.to_f64_vec();
    let vocab = logits.shape()[2];
    v[(n - 1) * vocab..].iter().map(|&x| x as f32).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Deterministic prompt ids in `0..vocab`.
fn prompt(len: usize, vocab: u32, seed: u32) -> Vec<u32> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 97)) % vocab)
        .collect()
}

/// Prefill `prompts`, then `steps` greedy steps, comparing every row at every step with a
/// full recompute of that row's sequence; returns the largest difference.
fn check(cached: &Model, full: &Model, prompts: &[Vec<u32>], steps: usize) -> f32 {
    let longest = prompts.iter().map(Vec::len).max().unwrap();
    let mut lm = CausalLm::new(cached, prompts.len(), longest + steps).expect("a decoder");
    let mut seqs: Vec<Vec<u32>> = prompts.to_vec();
    let mut logits = lm.prefill(prompts).expect("prefill");
    let mut worst = 0f32;
    for step in 0..=steps {
        let mut next = Vec::new();
        for (r, row) in logits.iter().enumerate() {
            let want = recompute(full, &seqs[r]);
            let d = max_diff(row, &want);
            assert!(
                d <= 1e-4,
                "row {r} step {step} (sequence length {}): cached logits differ by {d}",
                seqs[r].len()
            );
            worst = worst.max(d);
            next.push(argmax(row).unwrap() as u32);
        }
        if step == steps {
            break;
        }
        for (s, &t) in seqs.iter_mut().zip(&next) {
            s.push(t);
        }
        logits = lm.step(&next).expect("a decode step");
    }
    assert_eq!(lm.past(), longest + steps);
    // The cache is full now: one more step is refused, saying so.
    let err = lm.step(&vec![0; prompts.len()]).unwrap_err().to_string();
    assert!(err.contains("cache is full"), "{err}");
    worst
}

#[test]
fn llama_cached_decoding_equals_full_recompute() {
    let dir = folder("llama-h48-llama3");
    let cached = compile(&hf::load_decoder(&dir).expect("the cached decoder builds"));
    let full = compile(&hf::load_folder(&dir).expect("the model builds"));
    for len in [1, 7, 300] {
        let d = check(&cached, &full, &[prompt(len, 300, 1)], 64);
        println!("llama prompt {len}, 64 steps: max |diff| {d:.2e}");
    }
    let prompts = [prompt(5, 300, 2), prompt(12, 300, 3), prompt(1, 300, 4)];
    let d = check(&cached, &full, &prompts, 64);
    println!("llama batch of 3 (5, 12, 1 tokens), 64 steps: max |diff| {d:.2e}");
}

#[test]
fn gpt2_cached_decoding_equals_full_recompute() {
    // n_positions is 32: prompts and steps stay within it.
    let dir = folder("gpt2-h48");
    let cached = compile(&hf::load_decoder(&dir).expect("the cached decoder builds"));
    let full = compile(&hf::load_folder(&dir).expect("the model builds"));
    let vocab = 100;
    for len in [1, 7] {
        let d = check(&cached, &full, &[prompt(len, vocab, 5)], 32 - len);
        println!("gpt2 prompt {len}: max |diff| {d:.2e}");
    }
    let prompts = [
        prompt(3, vocab, 6),
        prompt(9, vocab, 7),
        prompt(1, vocab, 8),
    ];
    let d = check(&cached, &full, &prompts, 20);
    println!("gpt2 batch of 3: max |diff| {d:.2e}");
}

#[test]
fn the_plan_keeps_the_cache_as_states_written_in_place() {
    let dir = folder("llama-h48-llama3");
    let model = compile(&hf::load_decoder(&dir).unwrap());
    let plan = model.plan();
    // Three layers, a key and a value cache each; no cache is a plan input or output.
    assert_eq!(plan.states.len(), 6);
    assert!(plan.inputs.iter().all(|io| !io.name.starts_with("past.")));
    assert_eq!(plan.outputs.len(), 1);
    let text = plan.summary_text(true);
    assert_eq!(plan.kernel_counts().get("cache_write"), Some(&6), "{text}");
    // Attention reads the caches directly (the slices were absorbed, nothing copies them).
    assert_eq!(text.matches("kv_len=past+seq").count(), 3, "{text}");
    // The one slice left is the last position before the LM head, a native strided copy; no
    // step of a decoder runs a reference kernel (they copy through f64 tensors every token).
    let counts = plan.kernel_counts();
    assert_eq!(counts.get("native:slice"), Some(&1), "{text}");
    assert_eq!(counts.get("native:cast"), Some(&1), "{text}");
    assert!(counts.keys().all(|k| !k.starts_with("reference")), "{text}");
    assert_eq!(counts.get("native:rotary"), Some(&6), "{text}");
    // Running without a state, or with another batch than the state's, is refused.
    let mut session = model.session();
    let err = session.run(&BTreeMap::new()).unwrap_err().to_string();
    assert!(err.contains("run_with_state"), "{err}");
    let mut lm = CausalLm::new(&model, 2, 16).unwrap();
    assert!(lm.prefill(&[vec![1, 2]]).is_err());
    assert_eq!(lm.cache_bytes(), 6 * 2 * 16 * 12 * 4);
}
