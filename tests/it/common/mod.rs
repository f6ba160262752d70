//! Helpers shared by the root package's integration tests: where the shared test data lives
//! (`KILN_SHARED`, default `../shared`), running the `kiln` binary, and comparing tensors
//! within a tolerance.

// Each test crate uses only some of these helpers.
#![allow(dead_code)]

use kiln_runtime::Tensor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shared test-data folder: the environment variable `KILN_SHARED`, else `../shared` beside
/// the workspace root. When it is missing: with `KILN_REQUIRE_SHARED=1` (as in CI) this panics
/// saying where it looked; otherwise it prints `skipped: ../shared not found` and returns `None`,
/// and the calling test returns early.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("KILN_SHARED") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("KILN_REQUIRE_SHARED").is_ok_and(|v| v == "1") {
        panic!(
            "the shared test data is required (KILN_REQUIRE_SHARED=1) but {} is not a directory; \
             set KILN_SHARED to the shared folder",
            dir.display()
        );
    }
    println!(
        "skipped: ../shared not found (looked for {})",
        dir.display()
    );
    None
}

/// The ONNX node-test cases folder (`<shared>/onnx-node-tests/node`), or `None` (with the
/// message of [`shared_dir`]) when the shared folder is missing.
pub fn node_tests_dir() -> Option<PathBuf> {
    Some(shared_dir()?.join("onnx-node-tests").join("node"))
}

/// A file of the shipped `examples/` folder.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Runs the `kiln` binary with `args`.
pub fn kiln(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    for a in args {
        c.arg(a);
    }
    c.output().expect("the kiln binary runs")
}

/// Runs an example through `cargo run --quiet {package_args} --example {name} -- {args}` with the
/// cargo that runs the tests, in the tests' own profile and target folder, so the example and
/// its dependencies are already built (examples cannot be imported by tests, and Cargo exposes
/// no `CARGO_BIN_EXE_` path for them).
pub fn cargo_example(
    package_args: &[&str],
    name: &str,
    args: &[&dyn AsRef<std::ffi::OsStr>],
) -> Output {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet"])
        .args(package_args)
        .args(["--example", name]);
    if !cfg!(debug_assertions) {
        c.arg("--release");
    }
    c.arg("--");
    for a in args {
        c.arg(a);
    }
    c.output().expect("cargo runs")
}

/// Standard output of a run that must have succeeded.
pub fn stdout_ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// How far `got` is from `want`: the largest `|got - want|` and whether every element is
/// within `atol + rtol·|want|`. Shapes must agree.
#[derive(Debug, Clone, Copy)]
pub struct Closeness {
    /// The largest absolute difference.
    pub max_abs: f64,
    /// The element with the largest excess over the tolerance, if any is outside it.
    pub worst: Option<(usize, f64, f64)>,
}

/// Compares two float tensors elementwise (`|a - b| <= atol + rtol·|b|`, NaN never matches).
pub fn closeness(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<Closeness, String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?} but expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let mut max_abs = 0.0f64;
    let mut worst: Option<(usize, f64, f64)> = None;
    let mut worst_excess = 0.0f64;
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let d = (a - b).abs();
        if d.is_nan() {
            max_abs = f64::NAN;
        } else {
            max_abs = max_abs.max(d);
        }
        let excess = if d.is_nan() {
            f64::INFINITY
        } else {
            d - (atol + rtol * b.abs())
        };
        if excess > 0.0 && (worst.is_none() || excess > worst_excess) {
            worst = Some((i, a, b));
            worst_excess = excess;
        }
    }
    Ok(Closeness { max_abs, worst })
}

/// [`closeness`] as a result: `Ok(max_abs)` when every element is within tolerance,
/// else a one-line description of the worst element.
pub fn allclose(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<f64, String> {
    let c = closeness(got, want, rtol, atol)?;
    match c.worst {
        None => Ok(c.max_abs),
        Some((i, a, b)) => Err(format!(
            "element {i} is {a}, expected {b} (max |diff| {:.3e}, rtol {rtol:e}, atol {atol:e})",
            c.max_abs
        )),
    }
}

/// Builders of small ONNX models and backend-test case folders, encoded with the frontend's
/// proto structs.
pub mod onnx {
    use kiln_frontends::onnx::proto::tensor_proto::DataType;
    use kiln_frontends::onnx::proto::tensor_shape_proto::{dimension, Dimension};
    use kiln_frontends::onnx::proto::*;
    use prost::Message;
    use std::path::Path;

    /// An f32 tensor stored as raw little-endian bytes.
    pub fn tensor_f32(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
        TensorProto {
            name: name.to_string(),
            data_type: DataType::Float as i32,
            dims: dims.to_vec(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        }
    }

    /// An i64 tensor stored as raw little-endian bytes.
    pub fn tensor_i64(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
        TensorProto {
            name: name.to_string(),
            data_type: DataType::Int64 as i32,
            dims: dims.to_vec(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        }
    }

    /// A typed f32 graph input or output; a dim that is not a number is symbolic.
    pub fn value_f32(name: &str, dims: &[&str]) -> ValueInfoProto {
        value(name, DataType::Float, dims)
    }

    /// A typed i64 graph input or output; a dim that is not a number is symbolic.
    pub fn value_i64(name: &str, dims: &[&str]) -> ValueInfoProto {
        value(name, DataType::Int64, dims)
    }

    fn value(name: &str, dtype: DataType, dims: &[&str]) -> ValueInfoProto {
        let dim = dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d.parse::<i64>() {
                    Ok(n) => dimension::Value::DimValue(n),
                    Err(_) => dimension::Value::DimParam(d.to_string()),
                }),
                ..Default::default()
            })
            .collect();
        ValueInfoProto {
            name: name.to_string(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: dtype as i32,
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A node (`domain` "" is the default ONNX domain).
    pub fn node(name: &str, domain: &str, op: &str, ins: &[&str], outs: &[&str]) -> NodeProto {
        NodeProto {
            name: name.to_string(),
            domain: domain.to_string(),
            op_type: op.to_string(),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: outs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// An IR-8 model with the given opset imports, encoded.
    pub fn model(
        nodes: Vec<NodeProto>,
        inits: Vec<TensorProto>,
        inputs: Vec<ValueInfoProto>,
        outputs: Vec<ValueInfoProto>,
        opsets: &[(&str, i64)],
    ) -> Vec<u8> {
        ModelProto {
            ir_version: 8,
            opset_import: opsets
                .iter()
                .map(|&(domain, version)| OperatorSetIdProto {
                    domain: domain.to_string(),
                    version,
                })
                .collect(),
            graph: Some(GraphProto {
                name: "g".to_string(),
                node: nodes,
                initializer: inits,
                input: inputs,
                output: outputs,
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// `y = x + b` for `x: f32[n, 2]` and the weight `b = [10, 20]`.
    pub fn add_bias_model() -> Vec<u8> {
        model(
            vec![node("add0", "", "Add", &["x", "b"], &["y"])],
            vec![tensor_f32("b", &[2], &[10.0, 20.0])],
            vec![value_f32("x", &["n", "2"])],
            vec![value_f32("y", &["n", "2"])],
            &[("", 17)],
        )
    }

    /// Writes a backend-test case `dir/name/` (`model.onnx`, `test_data_set_0/`).
    pub fn write_case(
        dir: &Path,
        name: &str,
        model: &[u8],
        inputs: &[TensorProto],
        outputs: &[TensorProto],
    ) {
        let set = dir.join(name).join("test_data_set_0");
        std::fs::create_dir_all(&set).unwrap();
        std::fs::write(dir.join(name).join("model.onnx"), model).unwrap();
        for (i, t) in inputs.iter().enumerate() {
            std::fs::write(set.join(format!("input_{i}.pb")), t.encode_to_vec()).unwrap();
        }
        for (i, t) in outputs.iter().enumerate() {
            std::fs::write(set.join(format!("output_{i}.pb")), t.encode_to_vec()).unwrap();
        }
    }
}

/// A fixture folder of `<shared>/fixtures` and its `.npz` (inputs and PyTorch's `out`), or `None`
/// when the shared folder is missing (see [`shared_dir`]).
pub fn hf_fixture(name: &str) -> Option<(PathBuf, std::collections::BTreeMap<String, Tensor>)> {
    let fixtures = shared_dir()?.join("fixtures");
    let npz =
        kiln::read_npz(&fixtures.join(format!("{name}.npz"))).expect("the fixture's npz reads");
    Some((fixtures.join(name), npz))
}

/// Builds the graph of a Hugging Face folder, runs it on `input_ids` and `attention_mask`, and
/// returns `logits`.
pub fn causal_lm_logits(dir: &Path, ids: Tensor, mask: Tensor) -> Tensor {
    let g = kiln_frontends::hf::load_folder(dir).expect("the folder builds");
    let feeds = std::collections::BTreeMap::from([
        ("input_ids".to_string(), ids),
        ("attention_mask".to_string(), mask),
    ]);
    let outs = kiln_compiler::interp::run(&g, &feeds).expect("the graph runs");
    outs.into_iter()
        .find(|(n, _)| n == "logits")
        .map(|(_, t)| t)
        .expect("the graph has a `logits` output")
}

/// The rows `rows` of `t` (`[B, S, ...]`), cut to the first `len` positions, as f64 values.
pub fn pick(t: &Tensor, rows: &[usize], len: usize) -> Vec<f64> {
    let shape = t.shape();
    let inner: usize = shape[2..].iter().product();
    let row = shape[1] * inner;
    let v = t.to_f64_vec();
    rows.iter()
        .flat_map(|&r| v[r * row..r * row + len * inner].iter().copied())
        .collect()
}

/// The i64 tensor `[rows.len(), len]` taken from `t` (`[B, S]`).
pub fn pick_i64(t: &Tensor, rows: &[usize], len: usize) -> Tensor {
    let v: Vec<i64> = pick(t, rows, len).into_iter().map(|x| x as i64).collect();
    Tensor::from_i64(vec![rows.len(), len], v).expect("a valid i64 tensor")
}

/// [`pick`] as an f32 tensor `[rows.len(), len, ...]`.
pub fn pick_f32(t: &Tensor, rows: &[usize], len: usize) -> Tensor {
    let mut shape = t.shape().to_vec();
    shape[0] = rows.len();
    shape[1] = len;
    let v = pick(t, rows, len).into_iter().map(|x| x as f32).collect();
    Tensor::from_f32(shape, v).expect("a valid f32 tensor")
}

/// Rows `rows` of the leading (batch) axis of `t`, same dtype.
pub fn take_rows(t: &Tensor, rows: &[usize]) -> Tensor {
    let row: usize = t.shape()[1..].iter().product();
    let v = t.to_f64_vec();
    let out: Vec<f64> = rows
        .iter()
        .flat_map(|&r| v[r * row..(r + 1) * row].iter().copied())
        .collect();
    let mut shape = t.shape().to_vec();
    shape[0] = rows.len();
    Tensor::from_f64_values(t.dtype(), shape, &out).expect("a valid tensor")
}

/// `[B, S, ...]` → `[B, len, ...]`: the first `len` positions, or extended with `fill`.
pub fn resize_axis1(t: &Tensor, len: usize, fill: f64) -> Tensor {
    let (b, s) = (t.shape()[0], t.shape()[1]);
    let inner: usize = t.shape()[2..].iter().product();
    let v = t.to_f64_vec();
    let mut out = Vec::with_capacity(b * len * inner);
    for r in 0..b {
        for i in 0..len {
            if i < s {
                out.extend_from_slice(&v[(r * s + i) * inner..(r * s + i + 1) * inner]);
            } else {
                out.extend(std::iter::repeat_n(fill, inner));
            }
        }
    }
    let mut shape = t.shape().to_vec();
    shape[1] = len;
    Tensor::from_f64_values(t.dtype(), shape, &out).expect("a valid tensor")
}

/// The `[batch, seq, ...]` entries of `t` at the rows `rows` and the positions where `mask`
/// (`[batch, seq']`, `seq' <= seq`) is 1, as a flat f32 tensor.
pub fn unmasked(t: &Tensor, mask: &Tensor, rows: &[usize]) -> Tensor {
    let s = mask.shape()[1];
    let inner: usize = t.shape()[2..].iter().product();
    let st = t.shape()[1];
    let (v, m) = (t.to_f64_vec(), mask.to_i64_vec());
    let mut out = vec![];
    for &r in rows {
        for p in (0..s).filter(|&p| m[r * s + p] != 0) {
            let at = (r * st + p) * inner;
            out.extend_from_slice(&v[at..at + inner]);
        }
    }
    let n = out.len();
    Tensor::from_f64_values(kiln_runtime::DType::F32, vec![n], &out).unwrap()
}

/// How a model family's outputs relate across input shapes, which decides how the family tests
/// compare runs at two shapes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Bidirectional text encoder with a padding mask (BERT, DistilBERT): outputs agree at the
    /// unmasked positions.
    Encoder,
    /// Causal decoder (GPT-2, OPT, BLOOM, Llama): logits of a prefix agree.
    Causal,
    /// Image model with a dynamic batch only (ViT, ResNet): rows agree.
    Vision,
}

/// Panics listing every failure (one per line) when `failed` is not empty.
pub fn assert_none_failed(failed: &[String]) {
    assert!(
        failed.is_empty(),
        "{} model(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// The family name of a model file: its stem without the `-dynamo` of the torch.export variant
/// (`gpt2-tiny-dynamo.onnx` is `gpt2-tiny`).
pub fn model_name(model: &Path) -> Result<&str, String> {
    let stem = model
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("the file name is not UTF-8")?;
    Ok(stem.strip_suffix("-dynamo").unwrap_or(stem))
}

/// Whether every input of `g` has only known dims (no `batch` or `seq` to vary).
pub fn has_static_inputs(g: &kiln_compiler::ir::Graph) -> bool {
    g.inputs().iter().all(|&v| {
        g.value(v)
            .ty
            .shape
            .dims()
            .iter()
            .all(|d| d.as_known().is_some())
    })
}

/// The `.onnx` files of `dir`, sorted.
pub fn onnx_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    files.sort();
    files
}

/// SmolLM2-135M-Instruct's Q4_1 GGUF as `fetch_models.sh` fetches it into `$KILN_MODEL_CACHE`
/// (default `~/.cache/kiln-models`), or `None` (skipped) unless `KILN_REQUIRE_SHARED=1`.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let cache = match std::env::var_os("KILN_MODEL_CACHE") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/kiln-models"),
    };
    let p = cache.join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var("KILN_REQUIRE_SHARED").as_deref() != Ok("1"),
        "KILN_REQUIRE_SHARED=1 but {} does not exist (run /work/shared/tools/fetch_models.sh)",
        p.display()
    );
    println!("skipped: {} not found", p.display());
    None
}
