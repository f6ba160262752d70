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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Shape, TensorType};
    use crate::DType;

    fn ty(dims: &[&str]) -> TensorType {
        TensorType::new(
            DType::I64,
            Shape(dims.iter().map(|d| Dim::parse(d).unwrap()).collect()),
        )
    }

    fn t(shape: &[usize]) -> Tensor {
        Tensor::from_i64(shape.to_vec(), vec![0; shape.iter().product()]).unwrap()
    }

    #[test]
    fn a_dim_with_one_unbound_symbol_binds_it() {
        let (ids, mask) = (ty(&["batch", "seq"]), ty(&["batch", "past+seq"]));
        let expected = [("ids", &ids), ("mask", &mask)];
        let inputs = BTreeMap::from([
            ("ids".to_string(), t(&[2, 3])),
            ("mask".to_string(), t(&[2, 10])),
        ]);
        let b = bind_inputs(&expected, &inputs).unwrap();
        assert_eq!((b["batch"], b["seq"], b["past"]), (2, 3, 7));
        // Shorter than `seq`: `past` would be negative.
        let short = BTreeMap::from([
            ("ids".to_string(), t(&[2, 3])),
            ("mask".to_string(), t(&[2, 2])),
        ]);
        let err = bind_inputs(&expected, &short).unwrap_err();
        assert!(err.message.contains("less than"), "{err}");
        // Two unbound symbols in one dim stay unbound: an error naming the dim.
        let two = ty(&["a+b"]);
        let err = bind_inputs(
            &[("x", &two)],
            &BTreeMap::from([("x".to_string(), t(&[4]))]),
        );
        assert!(err.is_err());
        // A symbol with a coefficient is not solved for (`2*n` is not `n + rest`).
        let twice = ty(&["2*n"]);
        let err = bind_inputs(
            &[("x", &twice)],
            &BTreeMap::from([("x".to_string(), t(&[4]))]),
        );
        assert!(err.is_err());
    }
}
