//! Runner for the ONNX backend test layout (`model.onnx` + `test_data_set_*/{input,output}_N.pb`):
//! import, run on the reference interpreter or another backend, compare with the expected outputs.

use crate::error::Error;
use crate::onnx::import::import_file;
use crate::onnx::tensor::read_tensor_file;
use kiln_compiler::ir::Graph;
use kiln_runtime::{DType, Tensor};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Relative tolerance of the ONNX backend tests.
pub const RTOL: f64 = 1e-3;
/// Absolute tolerance of the ONNX backend tests.
pub const ATOL: f64 = 1e-7;

/// How one case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every output matched.
    Pass,
    /// A wrong answer, an error that is not "unsupported", or a panic.
    Fail(String),
    /// Kiln reported a clear "unsupported" error (op, attribute value, dtype).
    Skip(String),
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's folder name (`test_abs`).
    pub name: String,
    /// What happened.
    pub outcome: Outcome,
}

/// Whether an error means "Kiln does not support this" rather than "this went wrong".
pub fn is_unsupported(e: &Error) -> bool {
    match e {
        Error::Unsupported { .. } | Error::UnsupportedInput { .. } => true,
        Error::Tensor { message, .. } => {
            message.contains("unsupported") || message.contains("not supported")
        }
        _ => false,
    }
}

fn classify(e: Error) -> Outcome {
    if is_unsupported(&e) {
        Outcome::Skip(e.to_string())
    } else {
        Outcome::Fail(e.to_string())
    }
}

/// Every case folder under `dir` whose name contains `filter`, sorted.
pub fn case_dirs(dir: &Path, filter: Option<&str>) -> Result<Vec<PathBuf>, Error> {
    let rd = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .filter(|p| {
            filter.is_none_or(|f| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(f))
            })
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Runs a graph on named inputs and returns its named outputs: the backend under test.
pub type Executor<'a> =
    &'a (dyn Fn(&Graph, &BTreeMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, String> + Sync);

/// Runs one case on the reference interpreter, catching panics (which count as failures).
pub fn run_case(dir: &Path) -> Outcome {
    run_case_with(dir, &|g, inputs| {
        kiln_compiler::interp::run(g, inputs).map_err(|e| e.to_string())
    })
}

/// Runs one case on the given backend, catching panics (which count as failures).
pub fn run_case_with(dir: &Path, exec: Executor) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| run_case_inner(dir, exec))) {
        Ok(o) => o,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Outcome::Fail(format!("panic: {msg}"))
        }
    }
}

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.pb")))
        .take_while(|p| p.is_file())
        .collect()
}

fn run_case_inner(dir: &Path, exec: Executor) -> Outcome {
    let graph = match import_file(&dir.join("model.onnx")) {
        Ok(g) => g,
        Err(e) => return classify(e),
    };
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    sets.sort();
    if sets.is_empty() {
        return Outcome::Fail("no test_data_set_* folder".to_string());
    }
    for set in sets {
        if let Err(o) = run_set(&graph, &set, exec) {
            return o;
        }
    }
    Outcome::Pass
}

fn run_set(graph: &Graph, set: &Path, exec: Executor) -> Result<(), Outcome> {
    let names: Vec<String> = graph
        .inputs()
        .iter()
        .map(|&v| graph.value(v).name.clone().unwrap_or_default())
        .collect();
    let mut inputs = BTreeMap::new();
    for (i, p) in numbered(set, "input").into_iter().enumerate() {
        let (name, t) = read_tensor_file(&p).map_err(classify)?;
        let key = if names.contains(&name) {
            name
        } else {
            names.get(i).cloned().ok_or_else(|| {
                Outcome::Fail(format!("{} has no matching graph input", p.display()))
            })?
        };
        inputs.insert(key, t);
    }
    let outs = exec(graph, &inputs).map_err(Outcome::Fail)?;
    let expected = numbered(set, "output");
    if expected.len() != outs.len() {
        return Err(Outcome::Fail(format!(
            "graph has {} outputs, the case expects {}",
            outs.len(),
            expected.len()
        )));
    }
    for ((name, got), p) in outs.iter().zip(expected) {
        let (_, want) = read_tensor_file(&p).map_err(classify)?;
        compare(got, &want).map_err(|m| Outcome::Fail(format!("output `{name}`: {m}")))?;
    }
    Ok(())
}

/// The relative tolerance for an output dtype: the suite's `RTOL`, widened to two machine
/// epsilons for the half-precision types, whose expected values the ONNX reference computes with
/// rounding after every step (Kiln's interpreter rounds once), so they differ by an ulp or two.
pub fn rtol_for(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => RTOL.max(2.0 * f64::powi(2.0, -10)),
        DType::BF16 => RTOL.max(2.0 * f64::powi(2.0, -7)),
        _ => RTOL,
    }
}

/// Compares a result with the expected tensor: same dtype and shape; floats within
/// `ATOL + rtol·|expected|` with [`rtol_for`] (NaN matches NaN), everything else exactly.
pub fn compare(got: &Tensor, want: &Tensor) -> Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!(
            "dtype {} but expected {}",
            got.dtype(),
            want.dtype()
        ));
    }
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?} but expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    if got.dtype().is_float() {
        let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
        let rtol = rtol_for(want.dtype());
        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
            let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= ATOL + rtol * b.abs();
            if !ok {
                return Err(format!("element {i} is {a}, expected {b}"));
            }
        }
    } else {
        let (g, w) = (got.to_i64_vec(), want.to_i64_vec());
        if let Some(i) = (0..g.len()).find(|&i| g[i] != w[i]) {
            return Err(format!("element {i} is {}, expected {}", g[i], w[i]));
        }
    }
    Ok(())
}

/// Runs every case under `dir` (optionally filtered by a substring of the name).
pub fn run_suite(dir: &Path, filter: Option<&str>) -> Result<Vec<CaseResult>, Error> {
    Ok(case_dirs(dir, filter)?
        .into_iter()
        .map(|d| {
            let name = d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            CaseResult {
                name,
                outcome: run_case(&d),
            }
        })
        .collect())
}
