//! Greedy generation from SmolLM2-135M-Instruct's GGUF with the key/value-cached decoder
//! (`hf::build_decoder` over `gguf::open`, compiled for the CPU, driven by `CausalLm`): for each
//! prompt of `reference.json`, 32 new tokens equal transformers' greedy ids up to the first
//! position whose recorded top-1/top-2 margin is below 0.01 (where fp32 rounding may pick
//! either token), and the prompt's last-position logits match `reference.npz` within 1e-3. The
//! three prompts also run as one left-padded batch with the same result.
//!
//! The reference was computed with rotary base 10000 (transformers 4.57.6's GGUF loader drops
//! the file's `llama.rope.freq_base` = 100000; see `gguf_smollm2.rs`), so these tests build the
//! decoder with that base; `kiln generate` on the file itself uses the file's 100000.

use crate::common;
use kiln::kiln_frontends::{gguf, hf};
use kiln_pipelines::generation::{argmax, CausalLm};
use kiln_runtime::{LoadOptions, Model};

struct Case {
    prompt: Vec<u32>,
    greedy: Vec<u32>,
    margins: Vec<f64>,
}

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Checks `got` against the case: equal up to the first low-margin position; returns where the
/// ids first differ (`None`: all 32 equal).
fn compare(i: usize, case: &Case, got: &[u32]) -> Option<usize> {
    assert_eq!(got.len(), case.greedy.len(), "prompt {i}: generated length");
    let tie = case.margins.iter().position(|&m| m < 0.01);
    let differ = got.iter().zip(&case.greedy).position(|(a, b)| a != b);
    if let Some(d) = differ {
        assert!(
            tie.is_some_and(|t| d >= t),
            "prompt {i}: ids differ at {d} ({} vs {}), before any position with margin < 0.01 \
             (first such: {tie:?})\n got {got:?}\nwant {:?}",
            got[d],
            case.greedy[d],
            case.greedy
        );
    }
    println!(
        "prompt {i}: {} of {} ids equal transformers' (first margin < 0.01 at {tie:?})",
        differ.unwrap_or(got.len()),
        got.len()
    );
    differ
}

/// The GGUF file, the reference folder and its `reference.json`, when the shared data is here.
fn smollm2() -> Option<(std::path::PathBuf, std::path::PathBuf, serde_json::Value)> {
    let path = common::smollm2_gguf()?;
    let dir = common::shared_dir()?.join("models/smollm2-135m-instruct");
    let reference =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    Some((path, dir, reference))
}

/// `g` compiled for this machine and loaded.
fn compile(g: &kiln_compiler::ir::Graph) -> Model {
    let compiled = kiln_compiler::pipeline::compile(
        g,
        &kiln_compiler::Target::host(),
        &kiln_compiler::pipeline::Options::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Model::from_bytes(compiled.to_bytes(), &LoadOptions::default()).unwrap()
}

#[test]
fn smollm2_cached_greedy_generation_matches_transformers() {
    let Some((path, dir, reference)) = smollm2() else {
        return;
    };
    let npz = kiln::read_npz(&dir.join("reference.npz")).unwrap();
    let cases: Vec<Case> = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            prompt: u32s(&c["prompt_ids"]),
            greedy: u32s(&c["greedy_ids"]),
            margins: c["top2_margins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_f64().unwrap())
                .collect(),
        })
        .collect();
    let mut m = gguf::open(&path).unwrap_or_else(|e| panic!("{e}"));
    m.config["rope_parameters"]["rope_theta"] = 10000.0.into();
    let g = hf::build_decoder(&m.config, &m.checkpoint).unwrap_or_else(|e| panic!("{e}"));
    let model = compile(&g);
    let new = 32;

    // One prompt at a time.
    for (i, case) in cases.iter().enumerate() {
        let mut lm = CausalLm::new(&model, 1, case.prompt.len() + new).unwrap();
        let mut logits = lm.prefill(std::slice::from_ref(&case.prompt)).unwrap();
        let want = npz[&format!("prompt{i}_last_logits")].to_f64_vec();
        let d = logits[0]
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .fold(0.0, f64::max);
        println!("prompt {i}: last-position logits max |diff| {d:.2e}");
        assert!(d <= 1e-3, "prompt {i}: logits differ by {d}");
        let mut got = Vec::new();
        for step in 0..new {
            let t = argmax(&logits[0]).unwrap() as u32;
            got.push(t);
            if step + 1 < new {
                logits = lm.step(&[t]).unwrap();
            }
        }
        compare(i, case, &got);
    }

    // The three prompts as one left-padded batch.
    let prompts: Vec<Vec<u32>> = cases.iter().map(|c| c.prompt.clone()).collect();
    let longest = prompts.iter().map(Vec::len).max().unwrap();
    let mut lm = CausalLm::new(&model, prompts.len(), longest + new).unwrap();
    let mut logits = lm.prefill(&prompts).unwrap();
    let mut got = vec![Vec::new(); prompts.len()];
    for step in 0..new {
        let next: Vec<u32> = logits.iter().map(|r| argmax(r).unwrap() as u32).collect();
        for (g, &t) in got.iter_mut().zip(&next) {
            g.push(t);
        }
        if step + 1 < new {
            logits = lm.step(&next).unwrap();
        }
    }
    for (i, (case, ids)) in cases.iter().zip(&got).enumerate() {
        compare(i, case, ids);
    }
}

/// The GEMM steps of a plan that read block-quantized weights, by format name.
fn block_gemms(model: &Model) -> Vec<&'static str> {
    use kiln_runtime::plan::{GemmB, Kernel};
    model
        .plan()
        .steps_with_ids()
        .filter_map(|(_, s)| match &s.kernel {
            Kernel::Gemm(g) => match g.b {
                GemmB::Blocks { format, .. } => Some(format.name()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The file's `Q4_1` projections and `Q8_0` tied LM head are kept as their blocks by default
/// (`gguf::WeightMode::Keep`): every projection GEMM of the decoder reads blocks, and its
/// prefill logits and 16 greedy steps equal those of the same file dequantized to f32 at load
/// (the same weight values, so only the summation order differs), for one prompt and for the
/// left-padded batch of three (whose decode steps take the multi-row dot products).
#[test]
fn kept_blocks_compute_what_the_dequantized_weights_do() {
    let Some((path, _, reference)) = smollm2() else {
        return;
    };
    let prompts: Vec<Vec<u32>> = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| u32s(&c["prompt_ids"]))
        .collect();
    let model = |mode: gguf::WeightMode| {
        let m = gguf::open_with(&path, mode).unwrap_or_else(|e| panic!("{e}"));
        compile(&hf::build_decoder(&m.config, &m.checkpoint).unwrap_or_else(|e| panic!("{e}")))
    };
    let kept = model(gguf::WeightMode::Keep);
    let f32s = model(gguf::WeightMode::Dequantize);
    let formats = block_gemms(&kept);
    // 30 layers × (q, k, v, o, gate, up, down) in Q4_1, and the LM head over the Q8_0 table.
    assert_eq!(formats.iter().filter(|&&f| f == "Q4_1").count(), 210);
    assert_eq!(formats.iter().filter(|&&f| f == "Q8_0").count(), 1);
    assert!(block_gemms(&f32s).is_empty());
    // `kiln inspect` tells them.
    let summary = kept.plan().summary_text(false);
    assert!(
        summary.contains("block-quantized GEMM weights (f32 arithmetic): Q4_1 210 ("),
        "{summary}"
    );
    assert!(summary.contains(", Q8_0 1 ("), "{summary}");
    let steps = 16;
    for batch in [&prompts[..1], &prompts[..]] {
        let longest = batch.iter().map(Vec::len).max().unwrap();
        let mut a = CausalLm::new(&kept, batch.len(), longest + steps).unwrap();
        let mut b = CausalLm::new(&f32s, batch.len(), longest + steps).unwrap();
        let (mut la, mut lb) = (a.prefill(batch).unwrap(), b.prefill(batch).unwrap());
        for step in 0..steps {
            let mut worst = 0f64;
            for (ra, rb) in la.iter().zip(&lb) {
                for (&x, &y) in ra.iter().zip(rb) {
                    worst = worst.max(f64::from((x - y).abs()));
                }
            }
            assert!(
                worst <= 1e-3,
                "batch {} step {step}: kept and dequantized logits differ by {worst:.2e}",
                batch.len()
            );
            let next: Vec<u32> = lb.iter().map(|r| argmax(r).unwrap() as u32).collect();
            let mine: Vec<u32> = la.iter().map(|r| argmax(r).unwrap() as u32).collect();
            assert_eq!(mine, next, "batch {} step {step}", batch.len());
            la = a.step(&next).unwrap();
            lb = b.step(&next).unwrap();
        }
    }
}
