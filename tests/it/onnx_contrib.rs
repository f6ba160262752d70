//! ONNX Runtime's `com.microsoft` contrib ops against ONNX Runtime itself: every
//! `tests/models/contrib/NAME.onnx` (written by `tools/export_ort_contrib.py`) is imported, run
//! by the reference interpreter and by the compiled CPU backend on the inputs of `NAME.npz`, and
//! every graph output is compared with ONNX Runtime's output of the same name in the `.npz`
//! (rtol 1e-3, atol 1e-4).
//!
//! - The single-op models (one contrib op on random inputs) always run.
//! - `ort-FIXTURE*.onnx` are shared fixtures after ONNX Runtime's transformer optimizer. They
//!   hold only the initializers the optimizer changed; their metadata `kiln.base` names the
//!   fixture under `../shared` that the others are copied from, so they are skipped (with a
//!   message) when `../shared` is missing; they also run at another shape (batch 3, three
//!   tokens fewer) against Kiln's run of the unoptimized fixture. `ort-llama-tiny-q4` (4-bit
//!   MatMulNBits) is stored whole.
//! - The contrib ops must import as Kiln's fused IR ops (`attention`, `skip_layer_norm`,
//!   `rms_norm`, `gelu`, a plain `matmul` for MatMulNBits), and the optimizer must keep them.
//!
//! Each model prints one line; see them with `cargo test --test it onnx_contrib -- --nocapture`.

use crate::common;

use kiln_compiler::ir::Graph;
use kiln_frontends::onnx::proto::{ModelProto, TensorProto};
use kiln_runtime::Tensor;
use prost::Message;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-4;

fn contrib_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/contrib")
}

/// The `.onnx` files of the contrib set, sorted; `optimized` picks the `ort-*` ones.
fn models(optimized: bool) -> Vec<PathBuf> {
    common::onnx_files(&contrib_dir())
        .into_iter()
        .filter(|p| common::model_name(p).is_ok_and(|n| n.starts_with("ort-") == optimized))
        .collect()
}

/// A model file to import and, for an `ort-*` model, the fixture it was optimized from.
struct Materialized {
    file: PathBuf,
    base: Option<PathBuf>,
}

/// The file to import: the model itself, or, for a model whose metadata names a `kiln.base`
/// fixture, a copy in `tmp` with the fixture's initializers added (`None` when `../shared` is
/// missing).
fn materialize(path: &Path, tmp: &Path) -> Result<Option<Materialized>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut m = ModelProto::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
    let Some(base) = m.metadata_props.iter().find(|p| p.key == "kiln.base") else {
        return Ok(Some(Materialized {
            file: path.to_path_buf(),
            base: None,
        }));
    };
    let Some(shared) = common::shared_dir() else {
        return Ok(None);
    };
    let base_path = shared.join(&base.value);
    let base_bytes =
        std::fs::read(&base_path).map_err(|e| format!("{}: {e}", base_path.display()))?;
    let base = ModelProto::decode(base_bytes.as_slice()).map_err(|e| e.to_string())?;
    let graph = m.graph.as_mut().ok_or("the model has no graph")?;
    let have: HashSet<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let used: HashSet<&String> = graph.node.iter().flat_map(|n| &n.input).collect();
    let missing: Vec<TensorProto> = base
        .graph
        .iter()
        .flat_map(|g| &g.initializer)
        .filter(|t| used.contains(&t.name) && !have.contains(&t.name))
        .cloned()
        .collect();
    graph.initializer.extend(missing);
    let out = tmp.join(path.file_name().ok_or("no file name")?);
    std::fs::write(&out, m.encode_to_vec()).map_err(|e| e.to_string())?;
    Ok(Some(Materialized {
        file: out,
        base: Some(base_path),
    }))
}

/// Every graph output of `got` against the expected tensor of the same name.
fn compare(got: &[(String, Tensor)], want: &BTreeMap<String, Tensor>) -> Result<f64, String> {
    let mut max = 0.0f64;
    for (name, t) in got {
        let w = want
            .get(name)
            .ok_or_else(|| format!("the .npz has no output `{name}`"))?;
        let d = common::allclose(t, w, RTOL, ATOL).map_err(|e| format!("output `{name}`: {e}"))?;
        max = max.max(d);
    }
    Ok(max)
}

/// Imports one model, runs it with both backends and compares; `Ok` is the summary line.
fn check(path: &Path) -> Result<String, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let Some(Materialized { file, base }) = materialize(path, tmp.path())? else {
        return Ok("skipped: its base fixture needs ../shared".into());
    };
    let mut npz = kiln::read_npz(&path.with_extension("npz")).map_err(|e| e.to_string())?;
    let g = kiln::load_model(&file).map_err(|e| format!("import: {e}"))?;
    let mut inputs = BTreeMap::new();
    for &v in g.inputs() {
        let name = g.value(v).name.clone().unwrap_or_default();
        let t = npz
            .remove(&name)
            .ok_or_else(|| format!("the .npz has no input `{name}`"))?;
        inputs.insert(name, t);
    }
    let interp = kiln_compiler::interp::run(&g, &inputs).map_err(|e| format!("interp: {e}"))?;
    let d_interp = compare(&interp, &npz).map_err(|e| format!("interpreter: {e}"))?;
    let cpu = kiln::backend::run_graph_cpu(&g, &inputs).map_err(|e| format!("cpu: {e}"))?;
    let d_cpu = compare(&cpu, &npz).map_err(|e| format!("cpu backend: {e}"))?;
    let mut summary = format!(
        "{} nodes, {} outputs; max |diff| vs ONNX Runtime: interpreter {d_interp:.2e}, cpu \
         {d_cpu:.2e}",
        g.num_nodes(),
        interp.len()
    );
    if let Some(base) = base {
        summary.push_str(&other_shape(&g, &base, &inputs)?);
    }
    Ok(summary)
}

/// The optimized graph `g` at another shape (rows 0, 1, 0 of the inputs; token inputs cut to
/// three positions fewer) against Kiln's run of the unoptimized fixture `base` on the same
/// inputs, which the optimizer must not have changed the function of.
fn other_shape(
    g: &Graph,
    base: &Path,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<String, String> {
    let other: BTreeMap<String, Tensor> = inputs
        .iter()
        .map(|(k, t)| {
            let t = common::take_rows(t, &[0, 1, 0]);
            let t = match t.shape() {
                [_, s] => common::resize_axis1(&t, s - 3, 0.0),
                _ => t,
            };
            (k.clone(), t)
        })
        .collect();
    let bg = kiln::load_model(base).map_err(|e| format!("base import: {e}"))?;
    let want = kiln_compiler::interp::run(&bg, &other).map_err(|e| format!("base: {e}"))?;
    let label = other
        .values()
        .next()
        .map_or_else(String::new, |t| format!("{:?}", t.shape()));
    let mut max = 0.0f64;
    for (backend, got) in [
        (
            "interpreter",
            kiln_compiler::interp::run(g, &other).map_err(|e| e.to_string()),
        ),
        ("cpu", kiln::backend::run_graph_cpu(g, &other)),
    ] {
        let got = got.map_err(|e| format!("{backend} at {label}: {e}"))?;
        let d = common::allclose(&got[0].1, &want[0].1, RTOL, ATOL)
            .map_err(|e| format!("{backend} at {label} vs the unoptimized fixture: {e}"))?;
        max = max.max(d);
    }
    Ok(format!(
        "; at {label} max |diff| vs the unoptimized fixture {max:.2e}"
    ))
}

/// Checks every model of `paths`, printing one line each; fails listing the failures.
fn check_all(paths: &[PathBuf]) {
    assert!(
        !paths.is_empty(),
        "no models in {}",
        contrib_dir().display()
    );
    let mut failed = Vec::new();
    for p in paths {
        let name = common::model_name(p).unwrap_or("?").to_string();
        match check(p) {
            Ok(s) => println!("contrib {name}: PASS {s}"),
            Err(e) => {
                println!("contrib {name}: FAIL {e}");
                failed.push(format!("{name}: {e}"));
            }
        }
    }
    common::assert_none_failed(&failed);
}

#[test]
fn single_op_models_match_onnxruntime() {
    check_all(&models(false));
}

#[test]
fn ort_optimized_fixtures_match_onnxruntime() {
    check_all(&models(true));
}

/// How many nodes of each op the graph has.
fn op_counts(g: &Graph) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for id in g.node_ids() {
        *m.entry(g.node(id).op.name()).or_insert(0) += 1;
    }
    m
}

/// The fused IR op each single-op model must contain after import (and after optimization,
/// where the embedding sum and its layer norm may fuse further into a `skip_layer_norm`).
fn fused_op(name: &str) -> Option<&'static str> {
    let table = [
        ("skip_layer_norm", "skip_layer_norm"),
        ("skip_simplified", "rms_norm"),
        ("simplified", "rms_norm"),
        ("embed_layer_norm", "layer_norm"),
        ("gelu", "gelu"),
        ("bias_gelu", "gelu"),
        ("fast_gelu", "gelu"),
        ("matmul_nbits", "matmul"),
        ("fused_matmul", "matmul"),
        ("transpose_matmul", "matmul"),
        ("fused_gemm", "matmul"),
        ("attention", "attention"),
        ("mha", "attention"),
        ("gqa", "attention"),
    ];
    table
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|&(_, op)| op)
}

#[test]
fn contrib_ops_import_as_fused_ir_ops() {
    let mut checked = 0;
    for p in models(false) {
        let name = common::model_name(&p).unwrap_or("?").to_string();
        let Some(op) = fused_op(&name) else {
            continue;
        };
        let mut g = kiln::load_model(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        let imported = op_counts(&g);
        assert!(
            imported.contains_key(op),
            "{name}: imported as {imported:?}, no `{op}`"
        );
        kiln_compiler::optimize::optimize(&mut g).unwrap_or_else(|e| panic!("{name}: {e}"));
        let optimized = op_counts(&g);
        // A matmul and its bias add become the fused matmul_bias.
        let want: &[&str] = match name.as_str() {
            "matmul_nbits_q4" => &["matmul_bias"],
            _ if name.starts_with("fused_gemm") => &["matmul", "matmul_bias"],
            _ if op == "layer_norm" => &["layer_norm", "skip_layer_norm"],
            _ => &[op],
        };
        assert!(
            want.iter().any(|w| optimized.contains_key(w)),
            "{name}: optimized to {optimized:?}, none of {want:?}"
        );
        println!("{name}: imported {imported:?}; optimized {optimized:?}");
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} single-op models checked");

    // The optimized BERT fixture: 2 attention layers, 2 GELUs, 4 skip norms and the embedding
    // norm (which the optimizer fuses with the embedding sum).
    if common::shared_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (name, attention, skip) in [("ort-bert-tiny", 2, 4), ("ort-bert-tiny-mha", 2, 4)] {
        let path = contrib_dir().join(format!("{name}.onnx"));
        let file = materialize(&path, tmp.path()).unwrap().unwrap().file;
        let mut g = kiln::load_model(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        kiln_compiler::optimize::optimize(&mut g).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ops = op_counts(&g);
        let count = |op: &str| ops.get(op).copied().unwrap_or(0);
        assert_eq!(count("attention"), attention, "{name}: {ops:?}");
        let norms = count("skip_layer_norm") + count("layer_norm");
        assert_eq!(norms, skip + 1, "{name}: {ops:?}");
        assert_eq!(count("gelu"), 2, "{name}: {ops:?}");
        println!("{name}: optimized {ops:?}");
    }
}
