//! The optimizer pipeline (`kiln_compiler::optimize::optimize`: canonicalize, e-graph fusion,
//! clean-up) on every ONNX model we have: the shared fixtures (`<shared>/fixtures/*.onnx`, both
//! the legacy TorchScript and the dynamo exports) and the family models (`tests/models/*.onnx`:
//! DistilBERT, OPT, BLOOM, BERT and GPT-2 at other sizes). For each model:
//!
//! 1. the optimized graph holds exactly the expected fused ops (counted in the graph, so ops
//!    the importer made directly — the dynamo exports' `LayerNormalization` — count too);
//! 2. it verifies, and gives the imported graph's outputs under the reference interpreter on the
//!    model's `.npz` inputs (rtol 1e-4, atol 1e-5) and PyTorch's `out` (rtol 1e-3, atol 1e-4);
//! 3. for the shared fixtures, its IR (weights over 16 elements elided) is snapshot-tested
//!    (`it/snapshots/it__optimizer_fixtures__<model>.snap`).
//!
//! A model missing from the expectation table fails (add it). Each model prints one summary
//! line; see them with `cargo test --test optimizer_fixtures -- --nocapture`.

use crate::common;

use kiln_compiler::ir::Graph;
use kiln_compiler::text::{print_with, PrintOptions};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Optimized graph vs imported graph.
const SELF_RTOL: f64 = 1e-4;
const SELF_ATOL: f64 = 1e-5;
/// Optimized graph vs PyTorch.
const REF_RTOL: f64 = 1e-3;
const REF_ATOL: f64 = 1e-4;

/// Fused ops in a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Fused {
    attention: usize,
    layer_norm: usize,
    rms_norm: usize,
    gelu: usize,
}

/// `Fused` from `(attention, layer_norm, rms_norm, gelu)`.
const fn f(attention: usize, layer_norm: usize, rms_norm: usize, gelu: usize) -> Fused {
    Fused {
        attention,
        layer_norm,
        rms_norm,
        gelu,
    }
}

/// The fused ops each model must end with, by name without the `-dynamo` suffix (both exports
/// of a model must agree).
fn expected(name: &str) -> Option<Fused> {
    Some(match name {
        "bert-tiny" | "vit-tiny" | "gpt2-tiny" => f(2, 5, 0, 2),
        "llama-tiny" => f(2, 0, 5, 0),
        "resnet-tiny" => f(0, 0, 0, 0),
        "bert-h48" | "gpt2-h48" => f(3, 7, 0, 3),
        "bloom-h48" => f(3, 8, 0, 3),
        "distilbert-h32" => f(2, 5, 0, 2),
        "opt-h32" => f(2, 5, 0, 0),
        "opt-postln-h64" => f(2, 4, 0, 0),
        _ => return None,
    })
}

fn count(g: &Graph) -> Fused {
    let mut c = Fused::default();
    for n in g.node_ids() {
        match g.node(n).op.name() {
            "attention" => c.attention += 1,
            "layer_norm" | "skip_layer_norm" => c.layer_norm += 1,
            "rms_norm" => c.rms_norm += 1,
            "gelu" => c.gelu += 1,
            _ => {}
        }
    }
    c
}

/// One model's result: the summary line and the elided optimized IR.
struct Checked {
    summary: String,
    ir: String,
}

/// Checks one model file; `Err` is a one-line failure.
fn check(model: &Path) -> Result<Checked, String> {
    let name = common::model_name(model)?;
    let want = expected(name).ok_or_else(|| {
        format!("no expected fused counts for `{name}`: add it to `expected` in tests/optimizer_fixtures.rs")
    })?;
    let npz = model.with_file_name(format!("{name}.npz"));
    let mut inputs = kiln::read_npz(&npz).map_err(|e| format!("reading {name}.npz: {e}"))?;
    let reference = inputs.remove("out").ok_or("the .npz has no `out`")?;

    let g = kiln_frontends::onnx::import::import_file(model).map_err(|e| format!("import: {e}"))?;
    let mut opt = g.clone();
    let t0 = Instant::now();
    let report =
        kiln_compiler::optimize::optimize(&mut opt).map_err(|e| format!("optimize: {e}"))?;
    let t_opt = t0.elapsed().as_secs_f64();
    kiln_compiler::verify(&opt).map_err(|e| format!("the optimized graph: {e}"))?;
    let got = count(&opt);
    if got != want {
        return Err(format!(
            "fused {got:?}, expected {want:?} (report {:?}, misses {:?})",
            report.egraph.fused, report.egraph.misses
        ));
    }

    let t0 = Instant::now();
    let before = kiln_compiler::interp::run(&g, &inputs).map_err(|e| format!("run: {e}"))?;
    let after =
        kiln_compiler::interp::run(&opt, &inputs).map_err(|e| format!("run optimized: {e}"))?;
    let t_run = t0.elapsed().as_secs_f64();
    if before.len() != after.len() {
        return Err(format!(
            "{} outputs before, {} after",
            before.len(),
            after.len()
        ));
    }
    let mut self_max = 0.0f64;
    for ((bn, b), (an, a)) in before.iter().zip(&after) {
        if bn != an {
            return Err(format!("output `{bn}` became `{an}`"));
        }
        let m = common::allclose(a, b, SELF_RTOL, SELF_ATOL)
            .map_err(|e| format!("output `{bn}` optimized vs imported: {e}"))?;
        self_max = self_max.max(m);
    }
    let (first, out) = after.first().ok_or("the graph has no outputs")?;
    let ref_max = common::allclose(out, &reference, REF_RTOL, REF_ATOL)
        .map_err(|e| format!("output `{first}` optimized vs PyTorch: {e}"))?;

    let ir = print_with(
        &opt,
        &PrintOptions {
            inline_weight_limit: Some(16),
        },
    )
    .map_err(|e| format!("print: {e}"))?;
    Ok(Checked {
        summary: format!(
            "{} → {} nodes, fused {:?}, optimize {t_opt:.2}s ({:?}), run ×2 {t_run:.2}s, \
             max |diff| vs imported {self_max:.2e}, vs PyTorch {ref_max:.2e}",
            g.num_nodes(),
            opt.num_nodes(),
            report.egraph.fused,
            report.egraph.stop_reason,
        ),
        ir,
    })
}

/// Checks `files` on two worker threads (the interpreter is single-threaded); returns each
/// file's result in order, after printing the summaries.
fn check_all(files: &[PathBuf]) -> Vec<(String, Result<Checked, String>)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let results: Vec<_> = pool.install(|| files.par_iter().map(|f| check(f)).collect());
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let stem = files[i].file_stem().unwrap().to_string_lossy().into_owned();
            match &r {
                Ok(c) => println!("optimizer {stem}: PASS {}", c.summary),
                Err(e) => println!("optimizer {stem}: FAIL {e}"),
            }
            (stem, r)
        })
        .collect()
}

/// Panics listing every failure.
fn assert_all_passed(results: &[(String, Result<Checked, String>)]) {
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(stem, r)| r.as_ref().err().map(|e| format!("{stem}: {e}")))
        .collect();
    common::assert_none_failed(&failed);
}

#[test]
fn shared_fixtures_fuse_exactly_and_keep_their_outputs() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let files = common::onnx_files(&shared.join("fixtures"));
    assert!(
        files.len() >= 10,
        "expected both exports of the five shared fixtures, found {files:?}"
    );
    let results = check_all(&files);
    assert_all_passed(&results);
    for (stem, r) in results {
        let ir = r.map(|c| c.ir).unwrap_or_default();
        insta::assert_snapshot!(stem, ir);
    }
}

#[test]
fn family_models_fuse_exactly_and_keep_their_outputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models");
    let files = common::onnx_files(&dir);
    assert!(
        files.len() >= 10,
        "expected the exported family models in tests/models, found {files:?}"
    );
    assert_all_passed(&check_all(&files));
}

/// The expectation table is not vacuous: every model file has an entry, and the counts differ
/// between families.
#[test]
fn every_model_has_an_expectation() {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")];
    if let Some(shared) = common::shared_dir() {
        dirs.push(shared.join("fixtures"));
    }
    for dir in dirs {
        for file in common::onnx_files(&dir) {
            let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
            let name = stem.strip_suffix("-dynamo").unwrap_or(&stem);
            assert!(
                expected(name).is_some(),
                "{}: no expectation",
                file.display()
            );
        }
    }
    assert_ne!(expected("llama-tiny"), expected("gpt2-tiny"));
    assert_eq!(expected("resnet-tiny"), Some(Fused::default()));
    assert_eq!(expected("unknown-model"), None);
}
