//! The CPU backend end to end (compile → `.kiln` file → `Model::load` → sessions):
//!
//! 1. every shared fixture (legacy TorchScript export, dynamo export, Hugging Face folder) matches
//!    PyTorch's `out` on its own inputs, and the same artifact at another batch size and sequence
//!    length matches the reference interpreter on the optimized graph (static-shape exports must
//!    refuse the other shape, naming the input);
//! 2. all-MiniLM-L6-v2 (real weights) matches PyTorch's `last_hidden_state` where the mask is set,
//!    and the interpreter at batch 2 × 40 tokens;
//! 3. one `Model` shared by four threads, and two sessions interleaved on one thread, give results
//!    bit-identical to single-threaded runs;
//! 4. one and two kernel worker threads give bit-identical results (the GEMM driver splits the
//!    output rows and column panels between tasks, never `k`, so no summation order changes).
//!
//! Each fixture prints one summary line; see them with `cargo test --test cpu_backend -- --nocapture`.

use crate::common;

use common::{allclose, resize_axis1, take_rows, Kind};
use kiln::backend::{compile_model, compile_model_to, input_names, CompileOptions};
use kiln_runtime::{LoadOptions, Model, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-4;

type Feeds = BTreeMap<String, Tensor>;

/// Which form of a fixture.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Export {
    Legacy,
    Dynamo,
    Folder,
}

fn model_path(fixtures: &Path, name: &str, export: Export) -> PathBuf {
    match export {
        Export::Legacy => fixtures.join(format!("{name}.onnx")),
        Export::Dynamo => fixtures.join(format!("{name}-dynamo.onnx")),
        Export::Folder => fixtures.join(name),
    }
}

/// Runs `model` on `feeds` in a fresh session.
fn run(model: &Model, feeds: &Feeds) -> Result<Vec<(String, Tensor)>, String> {
    model.session().run(feeds).map_err(|e| e.to_string())
}

/// The model's inputs taken from the `.npz`; a model input the file lacks is an error.
fn feeds_for(model: &Model, npz: &Feeds) -> Result<Feeds, String> {
    input_names(model)
        .into_iter()
        .map(|n| match npz.get(&n) {
            Some(t) => Ok((n, t.clone())),
            None => Err(format!("the .npz has no input `{n}`")),
        })
        .collect()
}

/// The inputs at the other shape (as `tests/onnx_fixtures.rs` chooses it) and a label.
fn other_shape(kind: Kind, feeds: &Feeds) -> (Feeds, String) {
    let rows: &[usize] = if kind == Kind::Vision {
        &[1, 0, 1]
    } else {
        &[0, 1, 0]
    };
    let seq = feeds.values().next().map_or(0, |t| t.shape()[1]);
    let len = match kind {
        Kind::Vision => seq,
        Kind::Causal => seq / 2,
        // Padding tokens: id 0, token type 0, attention mask 0.
        Kind::Encoder => seq + 3,
    };
    let new = feeds
        .iter()
        .map(|(k, t)| {
            let t = take_rows(t, rows);
            let t = if kind == Kind::Vision {
                t
            } else {
                resize_axis1(&t, len, 0.0)
            };
            (k.clone(), t)
        })
        .collect();
    let label = match kind {
        Kind::Vision => format!("batch {}", rows.len()),
        _ => format!("batch {} × seq {len}", rows.len()),
    };
    (new, label)
}

/// Every output of `got` within tolerance of `want` (same names, same order); the largest
/// difference.
fn compare_all(
    got: &[(String, Tensor)],
    want: &[(String, Tensor)],
    rtol: f64,
    atol: f64,
) -> Result<f64, String> {
    let names = |v: &[(String, Tensor)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(got) != names(want) {
        return Err(format!(
            "outputs {:?}, expected {:?}",
            names(got),
            names(want)
        ));
    }
    let mut max = 0.0f64;
    for ((name, g), (_, w)) in got.iter().zip(want) {
        max = max.max(allclose(g, w, rtol, atol).map_err(|e| format!("output `{name}`: {e}"))?);
    }
    Ok(max)
}

/// One fixture end to end; `Ok` is the summary, `Err` the failure (both one line).
fn check(fixtures: &Path, name: &str, kind: Kind, export: Export) -> Result<String, String> {
    let path = model_path(fixtures, name, export);
    let mut npz =
        kiln::read_npz(&fixtures.join(format!("{name}.npz"))).map_err(|e| e.to_string())?;
    let reference = npz.remove("out").ok_or("the .npz has no `out`")?;

    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let art = tmp.path().join("model.kiln");
    let t0 = Instant::now();
    compile_model_to(&path, &art, &CompileOptions::default())
        .map_err(|e| format!("compile: {e}"))?;
    let t_compile = t0.elapsed().as_secs_f64();
    let size = std::fs::metadata(&art)
        .map_err(|e| format!("the artifact: {e}"))?
        .len();
    let model = Model::load(&art).map_err(|e| format!("load: {e}"))?;
    let feeds = feeds_for(&model, &npz)?;
    let t0 = Instant::now();
    let outs = run(&model, &feeds).map_err(|e| format!("run: {e}"))?;
    let t_run = t0.elapsed().as_secs_f64();
    let (out_name, first) = outs.first().ok_or("the artifact has no outputs")?;
    let max = allclose(first, &reference, RTOL, ATOL)
        .map_err(|e| format!("output `{out_name}` vs PyTorch: {e}"))?;
    let mut summary = format!(
        "{size} bytes, compile {t_compile:.2}s, run {:.1}ms, max |diff| vs PyTorch {max:.2e}",
        t_run * 1e3
    );

    let mut g = kiln::load_model(&path).map_err(|e| format!("import: {e}"))?;
    kiln_compiler::optimize::optimize(&mut g).map_err(|e| format!("optimize: {e}"))?;
    let is_static = g.inputs().iter().all(|&v| {
        let dims = g.value(v).ty.shape.dims();
        dims.iter().all(|d| d.as_known().is_some())
    });
    let (new, label) = other_shape(kind, &feeds);
    let result = run(&model, &new);
    if is_static {
        let e = match result {
            Ok(_) => {
                return Err(format!(
                    "{label}: a static-shape artifact accepted other shapes"
                ))
            }
            Err(e) => e,
        };
        if !feeds.keys().any(|k| e.contains(&format!("input `{k}`"))) {
            return Err(format!("{label}: refused without naming the input: {e}"));
        }
        summary.push_str(&format!("; static input shapes, {label} refused: {e}"));
        return Ok(summary);
    }
    let got = result.map_err(|e| format!("{label}: run: {e}"))?;
    let want = kiln_compiler::interp::run(&g, &new).map_err(|e| format!("{label}: interp: {e}"))?;
    let max = compare_all(&got, &want, RTOL, ATOL)
        .map_err(|e| format!("{label} vs the reference interpreter: {e}"))?;
    summary.push_str(&format!("; {label} vs interpreter: max |diff| {max:.2e}"));
    Ok(summary)
}

fn fixture(name: &str, kind: Kind, export: Export) {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let label = format!("{name} ({export:?})");
    let fixtures = shared.join("fixtures");
    // The Hugging Face frontend builds transformer families only; a folder of another
    // architecture must be refused by name (and is checked in full once it builds).
    if export == Export::Folder {
        if let Err(e) = kiln::load_model(&fixtures.join(name)) {
            let e = e.to_string();
            let arch = architecture(&fixtures.join(name));
            assert!(
                e.contains(&arch) && e.contains(name),
                "cpu {label}: refused without naming the folder and `{arch}`: {e}"
            );
            println!("cpu {label}: skipped: the folder is refused as unsupported: {e}");
            return;
        }
    }
    match check(&fixtures, name, kind, export) {
        Ok(s) => println!("cpu {label}: PASS {s}"),
        Err(e) => {
            println!("cpu {label}: FAIL {e}");
            panic!("cpu {label}: {e}");
        }
    }
}

/// The first `architectures` entry of a folder's `config.json`.
fn architecture(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config.json reads");
    let v: serde_json::Value = serde_json::from_str(&text).expect("config.json parses");
    v["architectures"][0].as_str().unwrap_or("").to_string()
}

macro_rules! fixture_tests {
    ($($test:ident: $name:literal, $kind:ident, $export:ident;)*) => {$(
        #[test]
        fn $test() {
            fixture($name, Kind::$kind, Export::$export);
        }
    )*};
}

fixture_tests! {
    bert_tiny_legacy: "bert-tiny", Encoder, Legacy;
    bert_tiny_dynamo: "bert-tiny", Encoder, Dynamo;
    bert_tiny_folder: "bert-tiny", Encoder, Folder;
    gpt2_tiny_legacy: "gpt2-tiny", Causal, Legacy;
    gpt2_tiny_dynamo: "gpt2-tiny", Causal, Dynamo;
    gpt2_tiny_folder: "gpt2-tiny", Causal, Folder;
    llama_tiny_legacy: "llama-tiny", Causal, Legacy;
    llama_tiny_dynamo: "llama-tiny", Causal, Dynamo;
    llama_tiny_folder: "llama-tiny", Causal, Folder;
    vit_tiny_legacy: "vit-tiny", Vision, Legacy;
    vit_tiny_dynamo: "vit-tiny", Vision, Dynamo;
    vit_tiny_folder: "vit-tiny", Vision, Folder;
    resnet_tiny_legacy: "resnet-tiny", Vision, Legacy;
    resnet_tiny_dynamo: "resnet-tiny", Vision, Dynamo;
    resnet_tiny_folder: "resnet-tiny", Vision, Folder;
}

/// Deterministic pseudo-random numbers (a 64-bit linear congruential generator).
struct Lcg(u64);

impl Lcg {
    /// A value in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// BERT-style inputs `[b, s]`: ids in `1..vocab`, token type 0 then 1 from the middle on, and
/// the last `row % 3` positions of each row masked out (never a whole row).
fn text_inputs(b: usize, s: usize, vocab: u64, seed: u64) -> Feeds {
    let mut rng = Lcg(seed);
    let ids: Vec<i64> = (0..b * s)
        .map(|_| 1 + rng.below(vocab - 1) as i64)
        .collect();
    let types: Vec<i64> = (0..b * s).map(|i| i64::from(i % s >= s / 2)).collect();
    let mask: Vec<i64> = (0..b * s)
        .map(|i| i64::from(i % s < (s - (i / s % 3)).max(1)))
        .collect();
    let t = |v| Tensor::from_i64(vec![b, s], v).expect("a valid i64 tensor");
    BTreeMap::from([
        ("input_ids".to_string(), t(ids)),
        ("token_type_ids".to_string(), t(types)),
        ("attention_mask".to_string(), t(mask)),
    ])
}

/// The `[batch, seq, ...]` entries of `t` where `mask` (`[batch, seq]`) is 1, flattened.
fn unmasked(t: &Tensor, mask: &Tensor) -> Tensor {
    let (b, s) = (mask.shape()[0], mask.shape()[1]);
    let inner: usize = t.shape()[2..].iter().product();
    let (v, m) = (t.to_f64_vec(), mask.to_i64_vec());
    let mut out = vec![];
    for r in 0..b {
        for p in (0..s).filter(|&p| m[r * s + p] != 0) {
            let at = (r * s + p) * inner;
            out.extend_from_slice(&v[at..at + inner]);
        }
    }
    let n = out.len();
    Tensor::from_f64_values(kiln_runtime::DType::F32, vec![n], &out).expect("a valid tensor")
}

#[test]
fn minilm_real_weights_match_pytorch_and_the_interpreter() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("models/all-MiniLM-L6-v2");
    let npz = kiln::read_npz(&dir.join("reference.npz")).expect("reference.npz reads");
    let t0 = Instant::now();
    let bytes = compile_model(&dir, &CompileOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let t_compile = t0.elapsed().as_secs_f64();
    let model = Model::from_bytes(bytes, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let feeds = feeds_for(&model, &npz).unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    let outs = run(&model, &feeds).unwrap_or_else(|e| panic!("{e}"));
    let t_run = t0.elapsed().as_secs_f64();
    assert_eq!(outs[0].0, "last_hidden_state");
    let (got, want) = (&outs[0].1, &npz["last_hidden_state"]);
    let everywhere = common::closeness(got, want, RTOL, ATOL)
        .unwrap_or_else(|e| panic!("{e}"))
        .max_abs;
    let mask = &feeds["attention_mask"];
    let max = allclose(&unmasked(got, mask), &unmasked(want, mask), RTOL, ATOL)
        .unwrap_or_else(|e| panic!("MiniLM vs PyTorch where the mask is 1: {e}"));
    println!(
        "MiniLM: compile {t_compile:.1}s, run {:.1}ms; max |diff| vs PyTorch {max:.2e} where \
         the mask is 1, {everywhere:.2e} everywhere",
        t_run * 1e3
    );

    let new = text_inputs(2, 40, 30522, 7);
    let got = run(&model, &new).unwrap_or_else(|e| panic!("batch 2 × 40: {e}"));
    let mut g = kiln::load_model(&dir).unwrap_or_else(|e| panic!("{e}"));
    kiln_compiler::optimize::optimize(&mut g).unwrap_or_else(|e| panic!("{e}"));
    let want = kiln_compiler::interp::run(&g, &new).unwrap_or_else(|e| panic!("{e}"));
    let max = compare_all(&got, &want, RTOL, ATOL)
        .unwrap_or_else(|e| panic!("MiniLM batch 2 × 40 vs the reference interpreter: {e}"));
    println!("MiniLM batch 2 × 40 vs interpreter: max |diff| {max:.2e}");
}

/// Same names, dtypes, shapes and bytes.
fn same_bits(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((na, ta), (nb, tb))| {
            na == nb
                && ta.dtype() == tb.dtype()
                && ta.shape() == tb.shape()
                && ta.to_le_bytes() == tb.to_le_bytes()
        })
}

/// One shared `Model`: a thread per input set, each with its own session running 5 times, and
/// two sessions interleaved on one thread (switching shapes), all bit-identical to one run each.
fn check_concurrency(label: &str, model: &Model, sets: &[Feeds]) {
    let single: Vec<_> = sets
        .iter()
        .map(|f| run(model, f).unwrap_or_else(|e| panic!("{label}: {e}")))
        .collect();
    std::thread::scope(|s| {
        for (i, (feeds, want)) in sets.iter().zip(&single).enumerate() {
            s.spawn(move || {
                let mut session = model.session();
                for it in 0..5 {
                    let got = session
                        .run(feeds)
                        .unwrap_or_else(|e| panic!("{label}: thread {i}, iteration {it}: {e}"));
                    assert!(
                        same_bits(&got, want),
                        "{label}: thread {i}, iteration {it}: not bit-identical to the \
                         single-threaded run"
                    );
                }
            });
        }
    });
    let (mut a, mut b) = (model.session(), model.session());
    for it in 0..2 * sets.len() {
        for (session, k) in [(&mut a, it % sets.len()), (&mut b, (it + 1) % sets.len())] {
            let got = session
                .run(&sets[k])
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert!(
                same_bits(&got, &single[k]),
                "{label}: interleaved sessions, round {it}, input set {k}: not bit-identical"
            );
        }
    }
    println!(
        "{label}: {} threads × 5 runs and two interleaved sessions bit-identical",
        sets.len()
    );
}

#[test]
fn one_model_shared_by_threads_is_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let art = tmp.path().join("tiny.kiln");
    compile_model_to(
        &common::example("tiny_classifier.kir"),
        &art,
        &CompileOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let model = Model::load(&art).unwrap_or_else(|e| panic!("{e}"));
    let sets: Vec<Feeds> = [(1, 3), (2, 5), (3, 9), (5, 2)]
        .iter()
        .enumerate()
        .map(|(i, &(b, s))| {
            let mut rng = Lcg(i as u64 + 1);
            let v = (0..b * s).map(|_| rng.below(16) as i64).collect();
            let t = Tensor::from_i64(vec![b, s], v).unwrap();
            BTreeMap::from([("tokens".to_string(), t)])
        })
        .collect();
    check_concurrency("tiny_classifier", &model, &sets);

    let Some(shared) = common::shared_dir() else {
        return;
    };
    let art = tmp.path().join("bert.kiln");
    let onnx = shared.join("fixtures/bert-tiny.onnx");
    compile_model_to(&onnx, &art, &CompileOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let model = Model::load(&art).unwrap_or_else(|e| panic!("{e}"));
    let sets: Vec<Feeds> = [(1, 7), (2, 10), (3, 13), (4, 24)]
        .iter()
        .enumerate()
        .map(|(i, &(b, s))| text_inputs(b, s, 1000, 11 + i as u64))
        .collect();
    check_concurrency("bert-tiny", &model, &sets);
}

/// One and two kernel threads: the GEMM driver splits the output into row blocks and column
/// panels (each task runs the whole `k` loop in the same blocks), and attention splits batch ×
/// heads × query blocks, so no summation order depends on the thread count and the results must
/// be bit-identical (a fortiori within 1e-6).
#[test]
fn one_and_two_worker_threads_agree_bitwise() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let art = tmp.path().join("bert.kiln");
    let onnx = shared.join("fixtures/bert-tiny.onnx");
    compile_model_to(&onnx, &art, &CompileOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    // Batch 4 × 48: every GEMM (m = 192, k ≥ 64) is large enough to be split between tasks.
    let feeds = text_inputs(4, 48, 1000, 5);
    let outs: Vec<_> = [1, 2]
        .into_iter()
        .map(|n| {
            let model = Model::load_with(
                &art,
                &LoadOptions {
                    threads: Some(n),
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(model.pool().current_num_threads(), n);
            run(&model, &feeds).unwrap_or_else(|e| panic!("{n} threads: {e}"))
        })
        .collect();
    let max = compare_all(&outs[1], &outs[0], 0.0, 1e-6)
        .unwrap_or_else(|e| panic!("2 threads vs 1 thread: {e}"));
    assert!(
        same_bits(&outs[1], &outs[0]),
        "2 threads vs 1 thread: within 1e-6 (max |diff| {max:.2e}) but not bit-identical, \
         although no kernel splits a reduction between threads"
    );
    println!("threads 1 vs 2: bit-identical");
}
