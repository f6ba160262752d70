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
    let mut b = Bindings::new();
    Binder::new(expected_inputs).bind(inputs, &mut b)?;
    Ok(b)
}

/// A dim that binds a symbol by subtraction: `solve = actual - rest`.
#[derive(Debug, Clone)]
struct Solve {
    symbol: String,
    rest: Dim,
}

/// A dim that is not a lone symbol, checked after the symbols are bound (and, when it has
/// exactly one symbol no other dim binds, of the form `s + rest`, solved for it first).
#[derive(Debug, Clone)]
struct Compound {
    input: usize,
    axis: usize,
    dim: Dim,
    solve: Option<Solve>,
}

/// How a list of declared inputs binds its symbols, worked out once from the declarations so
/// that binding a run's tensors allocates nothing (a decode loop binds every step): which
/// input dims are lone symbols, which are expressions to check, and which expression binds
/// which otherwise unbound symbol.
#[derive(Debug, Clone)]
pub struct Binder {
    /// The declared inputs: names and types, in order.
    expected: Vec<(String, TensorType)>,
    /// `(input, axis, symbol)` for every lone-symbol dim, in declaration order.
    simple: Vec<(usize, usize, String)>,
    /// Every other dim, in declaration order.
    compound: Vec<Compound>,
}

/// The value a binding holds while a [`Binder`] has not set it in the current run.
const UNSET: i64 = i64::MIN;

impl Binder {
    /// The binding recipe of `expected` (names and declared types, in order).
    pub fn new(expected: &[(&str, &TensorType)]) -> Binder {
        let mut simple = Vec::new();
        let mut compound = Vec::new();
        for (input, (_, ty)) in expected.iter().enumerate() {
            for (axis, d) in ty.shape.0.iter().enumerate() {
                match d.as_sym() {
                    Some(s) => simple.push((input, axis, s.to_string())),
                    None => compound.push(Compound {
                        input,
                        axis,
                        dim: d.clone(),
                        solve: None,
                    }),
                }
            }
        }
        // A compound dim with exactly one unbound symbol `s` of the form `s + rest` (`past +
        // seq` of a decoder's attention mask) binds `s = actual - rest`.
        let mut bound: std::collections::BTreeSet<String> =
            simple.iter().map(|(_, _, s)| s.clone()).collect();
        for c in &mut compound {
            let unbound: Vec<String> = c
                .dim
                .symbols()
                .into_iter()
                .filter(|s| !bound.contains(s))
                .collect();
            let [s] = unbound.as_slice() else { continue };
            let rest = c.dim.sub(&Dim::sym(s));
            if rest.symbols().contains(s) {
                continue;
            }
            bound.insert(s.clone());
            c.solve = Some(Solve {
                symbol: s.clone(),
                rest,
            });
        }
        Binder {
            expected: expected
                .iter()
                .map(|&(n, ty)| (n.to_string(), ty.clone()))
                .collect(),
            simple,
            compound,
        }
    }

    /// Binds `b` from `inputs`, checked against the declared inputs. `b` is reused: its entries are updated in place, so a run whose
    /// inputs have the same symbols as the last allocates nothing.
    pub fn bind(
        &self,
        inputs: &BTreeMap<String, Tensor>,
        b: &mut Bindings,
    ) -> Result<(), InputError> {
        self.bind_keeping(inputs, b)?;
        Binder::drop_unset(b);
        Ok(())
    }

    /// Names, dtypes and ranks of `inputs` against the declarations.
    fn check_inputs(&self, inputs: &BTreeMap<String, Tensor>) -> Result<(), InputError> {
        let expected = &self.expected;
        let list = || {
            expected
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for name in inputs.keys() {
            if !expected.iter().any(|(n, _)| n == name) {
                return Err(InputError {
                    name: name.clone(),
                    message: format!("is not a graph input (expected {})", list()),
                });
            }
        }
        for (name, ty) in expected {
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
        }
        Ok(())
    }

    /// [`Binder::bind`] without dropping the symbols this run did not bind: they keep the value
    /// [`Binder::is_unset`] recognises, so that the caller can bind more (a state's `capacity`)
    /// without reinserting them, then calls [`Binder::drop_unset`]. On an error the unbound
    /// symbols are already dropped.
    pub fn bind_keeping(
        &self,
        inputs: &BTreeMap<String, Tensor>,
        b: &mut Bindings,
    ) -> Result<(), InputError> {
        self.check_inputs(inputs)?;
        let expected = &self.expected;
        let actual = |input: usize, axis: usize| inputs[&expected[input].0].shape()[axis];
        b.values_mut().for_each(|v| *v = UNSET);
        let result = self.bind_symbols(&actual, b);
        if result.is_err() {
            Binder::drop_unset(b);
        }
        result
    }

    /// True for the value of a symbol not bound in the current run.
    pub fn is_unset(v: i64) -> bool {
        v == UNSET
    }

    /// Drops the symbols not bound in the current run.
    pub fn drop_unset(b: &mut Bindings) {
        b.retain(|_, v| *v != UNSET);
    }

    fn bind_symbols(
        &self,
        actual: &dyn Fn(usize, usize) -> usize,
        b: &mut Bindings,
    ) -> Result<(), InputError> {
        let err = |input: usize, message: String| InputError {
            name: self.expected[input].0.clone(),
            message,
        };
        for (input, axis, s) in &self.simple {
            let a = actual(*input, *axis) as i64;
            match b.get_mut(s.as_str()) {
                Some(prev) if *prev != UNSET && *prev != a => {
                    return Err(err(
                        *input,
                        format!(
                            "dim {axis} is {a}, but `{s}` is already {prev} from an earlier input"
                        ),
                    ))
                }
                Some(prev) => *prev = a,
                None => {
                    b.insert(s.clone(), a);
                }
            }
        }
        let set = |b: &Bindings, s: &str| b.get(s).copied().filter(|&v| v != UNSET);
        for c in &self.compound {
            let Some(solve) = &c.solve else { continue };
            let Ok(r) = solve.rest.eval_with(&|s| set(b, s)) else {
                continue;
            };
            let a = actual(c.input, c.axis);
            let v = (a as i64)
                .checked_sub(r)
                .filter(|v| *v >= 0)
                .ok_or_else(|| {
                    err(
                        c.input,
                        format!(
                            "dim {} is {a}, less than the {r} that {} needs with `{}` = 0",
                            c.axis, c.dim, solve.symbol
                        ),
                    )
                })?;
            match b.get_mut(solve.symbol.as_str()) {
                Some(prev) => *prev = v,
                None => {
                    b.insert(solve.symbol.clone(), v);
                }
            }
        }
        for c in &self.compound {
            let a = actual(c.input, c.axis) as i64;
            let want = c
                .dim
                .eval_with(&|s| set(b, s))
                .map_err(|e| err(c.input, format!("dim {} ({}): {e}", c.axis, c.dim)))?;
            if want != a {
                return Err(err(
                    c.input,
                    if c.dim.as_known().is_some() {
                        format!("dim {} is {a}, expected {want}", c.axis)
                    } else {
                        format!("dim {} is {a}, expected {} = {want}", c.axis, c.dim)
                    },
                ));
            }
        }
        Ok(())
    }
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
