//! Random feeds for a graph's inputs and the comparison of two runs' outputs: what every test
//! that checks a transformed graph against the reference interpreter needs.

use kiln_compiler::ir::{Bindings, DType, Graph};
use kiln_runtime::test_util::Rng;
use kiln_runtime::Tensor;
use std::collections::BTreeMap;

/// Deterministic feeds for every input of `g` with its symbols bound by `bindings`: floats
/// uniform in [-2, 2); integers in -6..6; bools mostly true and always true at index 0 of the
/// last axis (so a key mask leaves key 0 attended). Inputs are drawn in declaration order from
/// `Rng(seed ^ 0x5eed)`.
pub fn random_inputs(g: &Graph, bindings: &[(&str, i64)], seed: u64) -> BTreeMap<String, Tensor> {
    let b: Bindings = bindings.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let mut rng = Rng(seed ^ 0x5eed);
    g.inputs()
        .iter()
        .map(|&v| {
            let val = g.value(v);
            let shape = val
                .ty
                .shape
                .eval(&b)
                .unwrap_or_else(|e| panic!("input shape {} under {b:?}: {e}", val.ty.shape));
            let n: usize = shape.iter().product();
            let t = match val.ty.dtype {
                DType::Bool => {
                    let last = shape.last().copied().unwrap_or(1).max(1);
                    let bits = (0..n).map(|j| j % last == 0 || !rng.one_in(4)).collect();
                    Tensor::from_bools(shape, bits)
                }
                dt if dt.is_float() => {
                    let vals: Vec<f64> = (0..n).map(|_| rng.uniform(-2.0, 2.0)).collect();
                    Tensor::from_f64_values(dt, shape, &vals)
                }
                dt => {
                    let vals: Vec<i64> = (0..n).map(|_| rng.below(12) as i64 - 6).collect();
                    Tensor::from_i64_values(dt, shape, &vals)
                }
            };
            (val.name.clone().unwrap(), t.unwrap())
        })
        .collect()
}

/// `Err` names the first output of `got` whose name, dtype or shape differs from `want`'s or
/// the first element outside `atol + rtol·|want|` (NaN matches NaN).
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
