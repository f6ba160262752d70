//! Concurrency stress: one `kiln_runtime::Model` (the shipped `tiny_classifier.kir`, compiled
//! through the library into a `.kiln` file and memory-mapped) shared by [`THREADS`] threads, each
//! with its own `Session`, [`RUNS`] runs per thread, every output bit-identical to a run of the
//! same input in a fresh session on one thread, computed beforehand.
//!
//! 1. `mixed_shapes_*`: each run draws its own batch × seq (now and then a large one, so that
//!    the GEMM and the generated kernels split their work across the model's pool while 32
//!    callers queue on it) and its tokens from the shared test `Rng`; a session's cached layout
//!    changes on almost every run, so stale arena contents from another shape would show.
//! 2. `shared_shapes_*`: all threads run the same few shapes in runs of several inputs each, so
//!    sessions reuse their cached layout (and arena) while the data changes.
//!
//! Each test prints `threads × runs` and its time; see them with
//! `cargo test --test it stress -- --nocapture`.

use crate::common;

use kiln::backend::{compile_model_to, CompileOptions};
use kiln_runtime::test_util::Rng;
use kiln_runtime::{LoadOptions, Model, Tensor};
use std::collections::BTreeMap;
use std::time::Instant;

/// Threads, each with its own session.
const THREADS: usize = 32;
/// Runs per thread.
const RUNS: usize = 100;
/// Token ids of the example are `0..VOCAB` (its embedding table has 16 rows).
const VOCAB: usize = 16;

type Feeds = BTreeMap<String, Tensor>;
type Outputs = Vec<(String, Tensor)>;

/// The example compiled into a `.kiln` file and loaded from it, with a pool of `threads`
/// kernel workers (more than this machine may have cores, so that workers interleave).
fn tiny_model(dir: &std::path::Path, threads: usize) -> Model {
    let art = dir.join("tiny.kiln");
    compile_model_to(
        &common::example("tiny_classifier.kir"),
        &art,
        &CompileOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Model::load_with(
        &art,
        &LoadOptions {
            threads: Some(threads),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `tokens` of shape `[b, s]`, drawn from `rng`.
fn tokens(rng: &mut Rng, b: usize, s: usize) -> Feeds {
    let v = (0..b * s).map(|_| rng.below(VOCAB) as i64).collect();
    let t = Tensor::from_i64(vec![b, s], v).expect("a valid i64 tensor");
    BTreeMap::from([("tokens".to_string(), t)])
}

/// A batch × seq for one run of the mixed test: mostly small and different every time; one run
/// in 16 large enough (≥ 64 Ki multiply-adds in the first GEMM, ≥ 16 Ki elements in the
/// generated kernels) that the kernels split it between the pool's workers.
fn mixed_shape(rng: &mut Rng) -> (usize, usize) {
    if rng.one_in(16) {
        (4 + rng.below(5), 128 + rng.below(129))
    } else {
        (1 + rng.below(6), 1 + rng.below(24))
    }
}

/// Same names, dtypes, shapes and bytes.
fn same_bits(a: &Outputs, b: &Outputs) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((na, ta), (nb, tb))| {
            na == nb
                && ta.dtype() == tb.dtype()
                && ta.shape() == tb.shape()
                && ta.to_le_bytes() == tb.to_le_bytes()
        })
}

/// Runs `inputs[t]` on thread `t` (one session per thread, every run in order) and checks each
/// output against `want`, computed beforehand by one thread in a fresh session per input.
/// Returns the time the threads took.
fn hammer(label: &str, model: &Model, inputs: &[Vec<Feeds>]) -> f64 {
    let want: Vec<Vec<Outputs>> = inputs
        .iter()
        .map(|runs| {
            runs.iter()
                .map(|f| {
                    model
                        .session()
                        .run(f)
                        .unwrap_or_else(|e| panic!("{label}: single-threaded: {e}"))
                })
                .collect()
        })
        .collect();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for (t, (runs, want)) in inputs.iter().zip(&want).enumerate() {
            s.spawn(move || {
                let mut session = model.session();
                for (r, (feeds, want)) in runs.iter().zip(want).enumerate() {
                    let got = session
                        .run(feeds)
                        .unwrap_or_else(|e| panic!("{label}: thread {t}, run {r}: {e}"));
                    assert!(
                        same_bits(&got, want),
                        "{label}: thread {t}, run {r} (tokens {:?}): not bit-identical to the \
                         single-threaded run",
                        feeds["tokens"].shape()
                    );
                }
            });
        }
    });
    t0.elapsed().as_secs_f64()
}

#[test]
fn mixed_shapes_32_threads_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), 4);
    let inputs: Vec<Vec<Feeds>> = (0..THREADS)
        .map(|t| {
            let mut rng = Rng(0x5eed_0000 + t as u64);
            (0..RUNS)
                .map(|_| {
                    let (b, s) = mixed_shape(&mut rng);
                    tokens(&mut rng, b, s)
                })
                .collect()
        })
        .collect();
    let secs = hammer("mixed shapes", &model, &inputs);
    println!(
        "mixed shapes: {THREADS} threads × {RUNS} runs bit-identical in {:.2}s",
        secs
    );
}

#[test]
fn shared_shapes_32_threads_reuse_layouts_bit_identical() {
    const SHAPES: [(usize, usize); 3] = [(2, 7), (3, 16), (1, 5)];
    /// Consecutive runs of one shape (new tokens each time) before a thread moves on.
    const STRETCH: usize = 10;
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), 4);
    let inputs: Vec<Vec<Feeds>> = (0..THREADS)
        .map(|t| {
            let mut rng = Rng(0xcafe_0000 + t as u64);
            (0..RUNS)
                .map(|r| {
                    // Threads start at different shapes, so at any time all of them are in use.
                    let (b, s) = SHAPES[(t + r / STRETCH) % SHAPES.len()];
                    tokens(&mut rng, b, s)
                })
                .collect()
        })
        .collect();
    let secs = hammer("shared shapes", &model, &inputs);
    println!(
        "shared shapes: {THREADS} threads × {RUNS} runs ({} shapes, {STRETCH} runs each in a \
         row) bit-identical in {:.2}s",
        SHAPES.len(),
        secs
    );
}
