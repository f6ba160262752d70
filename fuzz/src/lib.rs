//! Helpers shared by Kiln's fuzz targets: a scratch folder per process, the split of a
//! `hf_folder` input, small feeds for a plan's inputs, output comparison and the random-graph
//! generator of the `differential` target ([`graphs`]).

pub mod graphs;

use kiln_runtime::ops::Bindings;
use kiln_runtime::plan::Plan;
use kiln_runtime::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// A fresh empty folder for this process (removed at exit only by the OS's temp cleaning: a
/// fuzzer process ends by `exit`, which runs no destructors).
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("kiln-fuzz-")
            .tempdir()
            .expect("a scratch folder")
    })
    .path()
}

/// Splits a `hf_folder` input `u16 LE n ‖ config.json (n bytes) ‖ model.safetensors`; `None`
/// when it is too short for its length prefix.
pub fn split_hf(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_first_chunk::<2>()?;
    let n = u16::from_le_bytes(*len) as usize;
    (n <= rest.len()).then(|| rest.split_at(n))
}

/// The inverse of [`split_hf`] (what `seed.sh` writes).
pub fn join_hf(config: &[u8], weights: &[u8]) -> Vec<u8> {
    let n = u16::try_from(config.len()).expect("config.json under 64 KiB");
    let mut out = n.to_le_bytes().to_vec();
    out.extend_from_slice(config);
    out.extend_from_slice(weights);
    out
}

/// The most elements of any value a fuzz run lets a plan hold (so a valid plan with huge static
/// dims is skipped, not run into an out-of-memory abort).
pub const MAX_RUN_ELEMENTS: usize = 1 << 20;

/// Small feeds for every input of `plan`, every symbol bound to `sym`: floats in [-2, 2),
/// integers in 0..3, bools alternating. `None` when some value of the plan would have more than
/// [`MAX_RUN_ELEMENTS`] elements or a shape does not evaluate.
pub fn plan_inputs(plan: &Plan, sym: i64) -> Option<BTreeMap<String, Tensor>> {
    let mut b = Bindings::new();
    for v in &plan.values {
        for d in &v.ty.shape.0 {
            for s in d.symbols() {
                b.insert(s, sym);
            }
        }
    }
    for v in &plan.values {
        let shape = v.ty.shape.eval(&b).ok()?;
        let n = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
        if n > MAX_RUN_ELEMENTS {
            return None;
        }
    }
    let mut feeds = BTreeMap::new();
    for io in &plan.inputs {
        let ty = &plan.values.get(io.value.index())?.ty;
        let shape = ty.shape.eval(&b).ok()?;
        let n: usize = shape.iter().product();
        let t = match ty.dtype {
            DType::Bool => Tensor::from_bools(shape, (0..n).map(|i| i % 3 != 1).collect()),
            dt if dt.is_float() => {
                let v: Vec<f64> = (0..n)
                    .map(|i| ((i * 37) % 64) as f64 / 16.0 - 2.0)
                    .collect();
                Tensor::from_f64_values(dt, shape, &v)
            }
            dt => {
                let v: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
                Tensor::from_i64_values(dt, shape, &v)
            }
        };
        feeds.insert(io.name.clone(), t.ok()?);
    }
    Some(feeds)
}

/// `Err` names the first output of `got` whose name, dtype or shape differs from `want`'s, or the
/// first element outside `atol + rtol·|want|` (NaN matches NaN, equal infinities match).
pub fn compare_outputs(
    want: &[(String, Tensor)],
    got: &[(String, Tensor)],
    rtol: f64,
    atol: f64,
) -> Result<(), String> {
    if want.len() != got.len() {
        return Err(format!("{} outputs, expected {}", got.len(), want.len()));
    }
    for ((wn, w), (gn, o)) in want.iter().zip(got) {
        if wn != gn || w.shape() != o.shape() || w.dtype() != o.dtype() {
            return Err(format!(
                "output `{gn}` is {}{:?}, expected `{wn}` {}{:?}",
                o.dtype(),
                o.shape(),
                w.dtype(),
                w.shape()
            ));
        }
        for (i, (a, b)) in w.to_f64_vec().iter().zip(o.to_f64_vec()).enumerate() {
            let ok =
                (a.is_nan() && b.is_nan()) || *a == b || (a - b).abs() <= atol + rtol * a.abs();
            if !ok {
                return Err(format!("output `{wn}` element {i}: got {b}, expected {a}"));
            }
        }
    }
    Ok(())
}
