//! The ONNX backend test layout (`model.onnx` + `test_data_set_*/{input,output}_N.pb`): finding
//! the case folders, loading a case (its imported graph and data sets), and comparing a result
//! with the expected tensor within the suite's tolerances.

// The frontend's `Error` is large by design (see the kiln-frontends crate root).
#![allow(clippy::result_large_err)]

use kiln_compiler::ir::Graph;
use kiln_frontends::onnx::import::import_file;
use kiln_frontends::onnx::read_tensor_file;
use kiln_frontends::Error;
use kiln_runtime::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Relative tolerance of the ONNX backend tests.
pub const RTOL: f64 = 1e-3;
/// Absolute tolerance of the ONNX backend tests.
pub const ATOL: f64 = 1e-7;

/// Every case folder under `dir` whose name contains `filter`, sorted.
pub fn case_dirs(dir: &Path, filter: Option<&str>) -> Result<Vec<PathBuf>, Error> {
    let rd = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .filter(|p| filter.is_none_or(|f| case_name(p).contains(f)))
        .collect();
    out.sort();
    Ok(out)
}

/// The folder holding the cases: `dir` itself when it holds case folders (`test_*/model.onnx`),
/// else `dir/node` when that holds them (so both `onnx-node-tests/` and `onnx-node-tests/node/`
/// work). The error is one line naming `dir`.
pub fn resolve_cases_dir(dir: &Path) -> Result<PathBuf, String> {
    let shown = dir.display();
    if !dir.is_dir() {
        return Err(match std::fs::metadata(dir) {
            Ok(_) => format!("{shown}: not a directory"),
            Err(e) => format!("{shown}: {e}"),
        });
    }
    let has_cases = |d: &Path| case_dirs(d, None).is_ok_and(|v| !v.is_empty());
    if has_cases(dir) {
        return Ok(dir.to_path_buf());
    }
    let node = dir.join("node");
    if has_cases(&node) {
        return Ok(node);
    }
    Err(format!(
        "{shown}: no ONNX test cases here or in {shown}/node (expected folders holding \
         `model.onnx` and `test_data_set_*`)"
    ))
}

/// The name of a case folder (`test_abs`).
pub fn case_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The case's model, imported.
pub(super) fn load_graph(dir: &Path) -> Result<Graph, Error> {
    import_file(&dir.join("model.onnx"))
}

/// The case's data-set folders (`test_data_set_*`), sorted.
pub(super) fn data_sets(dir: &Path) -> Vec<PathBuf> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    sets.sort();
    sets
}

/// The files `{prefix}_0.pb`, `{prefix}_1.pb`, … of a data set, up to the first missing one.
pub(super) fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.pb")))
        .take_while(|p| p.is_file())
        .collect()
}

/// Why a data set's inputs could not be read.
pub(super) enum InputError {
    /// A tensor file that does not decode.
    Read(Error),
    /// More input files than graph inputs (the message names the file).
    Unmatched(String),
}

/// A data set's inputs keyed by graph input name: a file's own tensor name when the graph has
/// such an input, else the graph input at the file's position.
pub(super) fn read_inputs(
    graph: &Graph,
    set: &Path,
) -> Result<BTreeMap<String, Tensor>, InputError> {
    let names: Vec<String> = graph
        .inputs()
        .iter()
        .map(|&v| graph.value(v).name.clone().unwrap_or_default())
        .collect();
    let mut inputs = BTreeMap::new();
    for (i, p) in numbered(set, "input").into_iter().enumerate() {
        let (name, t) = read_tensor_file(&p).map_err(InputError::Read)?;
        let key = if names.contains(&name) {
            name
        } else {
            names.get(i).cloned().ok_or_else(|| {
                InputError::Unmatched(format!("{} has no matching graph input", p.display()))
            })?
        };
        inputs.insert(key, t);
    }
    Ok(inputs)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_folder_is_named() {
        let dir = std::env::temp_dir().join(format!("kiln-conf-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("node")).unwrap();
        let msg = resolve_cases_dir(&dir).unwrap_err();
        assert!(msg.contains("no ONNX test cases"), "{msg}");
        let case = dir.join("node").join("test_x");
        std::fs::create_dir_all(&case).unwrap();
        std::fs::write(case.join("model.onnx"), b"").unwrap();
        assert_eq!(resolve_cases_dir(&dir).unwrap(), dir.join("node"));
        assert_eq!(
            resolve_cases_dir(&dir.join("node")).unwrap(),
            dir.join("node")
        );
        let msg = resolve_cases_dir(&dir.join("missing")).unwrap_err();
        assert!(msg.contains("missing"), "{msg}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn compare_uses_the_suite_tolerances() {
        let f = |v: &[f32]| Tensor::from_f32(vec![v.len()], v.to_vec()).unwrap();
        assert!(compare(&f(&[1.0, f32::NAN]), &f(&[1.0005, f32::NAN])).is_ok());
        let e = compare(&f(&[1.0, 2.0]), &f(&[1.0, 2.1])).unwrap_err();
        assert_eq!(e, "element 1 is 2, expected 2.0999999046325684");
        assert!(compare(&f(&[1.0]), &f(&[1.0, 2.0]))
            .unwrap_err()
            .starts_with("shape"));
    }
}
