//! Binding a run's input tensors to the symbols of the declared input types: names, dtypes,
//! ranks and dims checked, with errors that say what was expected.

use super::{Bindings, Dim, TensorType};
use crate::Tensor;
use std::collections::BTreeMap;

/// An input that does not match its declaration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("input `{name}` {message}")]
pub struct InputError {
    /// The input's name.
    pub name: String,
    /// What is wrong, including what was expected.
    pub message: String,
}

/// Binds the symbols in the graph's input shapes from the given tensors, checking names,
/// dtypes, ranks and known dims. Extra or missing inputs are errors that list the expected ones.
pub fn bind_inputs(
    expected_inputs: &[(&str, &TensorType)],
    inputs: &BTreeMap<String, Tensor>,
) -> Result<Bindings, InputError> {
    let expected: Vec<String> = expected_inputs.iter().map(|(n, _)| n.to_string()).collect();
    let list = || {
        expected
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for name in inputs.keys() {
        if !expected.contains(name) {
            return Err(InputError {
                name: name.clone(),
                message: format!("is not a graph input (expected {})", list()),
            });
        }
    }
    let mut b = Bindings::new();
    let mut compound = Vec::new();
    for (name, &(_, ty)) in expected.iter().zip(expected_inputs) {
        let t = inputs.get(name).ok_or_else(|| InputError {
            name: name.clone(),
            message: format!("is missing (expected {})", list()),
        })?;
        if t.dtype() != ty.dtype {
            return Err(InputError {
                name: name.clone(),
                message: format!("has dtype {}, expected {}", t.dtype(), ty.dtype),
            });
        }
        if t.rank() != ty.rank() {
            return Err(InputError {
                name: name.clone(),
                message: format!(
                    "has shape {:?} (rank {}), expected {} (rank {})",
                    t.shape(),
                    t.rank(),
                    ty.shape,
                    ty.rank()
                ),
            });
        }
        for (axis, (d, &actual)) in ty.shape.0.iter().zip(t.shape()).enumerate() {
            if let Some(s) = d.as_sym() {
                match b.get(s) {
                    Some(&prev) if prev != actual as i64 => {
                        return Err(InputError {
                            name: name.clone(),
                            message: format!("dim {axis} is {actual}, but `{s}` is already {prev} from an earlier input"),
                        })
                    }
                    _ => {
                        b.insert(s.to_string(), actual as i64);
                    }
                }
            } else {
                compound.push((name, axis, d, actual));
            }
        }
    }
    // A compound dim with exactly one unbound symbol `s` of the form `s + rest` (`past + seq`
    // of a decoder's attention mask) binds `s = actual - rest`.
    for (name, axis, d, actual) in &compound {
        let unbound: Vec<String> = d
            .symbols()
            .into_iter()
            .filter(|s| !b.contains_key(s))
            .collect();
        let [s] = unbound.as_slice() else { continue };
        let rest = d.sub(&Dim::sym(s));
        if rest.symbols().contains(s) {
            continue;
        }
        let Ok(r) = rest.eval(&b) else { continue };
        let v = (*actual as i64)
            .checked_sub(r)
            .filter(|v| *v >= 0)
            .ok_or_else(|| InputError {
                name: (*name).clone(),
                message: format!(
                    "dim {axis} is {actual}, less than the {r} that {d} needs with `{s}` = 0"
                ),
            })?;
        b.insert(s.clone(), v);
    }
    for (name, axis, d, actual) in compound {
        let want = d.eval(&b).map_err(|e| InputError {
            name: name.clone(),
            message: format!("dim {axis} ({d}): {e}"),
        })?;
        if want != actual as i64 {
            return Err(InputError {
                name: name.clone(),
                message: if d.as_known().is_some() {
                    format!("dim {axis} is {actual}, expected {want}")
                } else {
                    format!("dim {axis} is {actual}, expected {d} = {want}")
                },
            });
        }
    }
    Ok(b)
}
