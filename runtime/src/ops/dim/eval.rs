//! Evaluating symbolic dims against run-time symbol bindings, fully or partially.

use super::arith::{floor_div, floor_mod};
use super::{Atom, Bindings, Dim};
use std::fmt;

/// Why a dim could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimEvalError {
    /// A symbol has no binding.
    Unbound(String),
    /// Division or modulo by zero.
    DivByZero,
    /// The value does not fit in an i64.
    Overflow,
}

impl fmt::Display for DimEvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimEvalError::Unbound(s) => write!(f, "symbol `{s}` has no value"),
            DimEvalError::DivByZero => f.write_str("division by zero in a dimension"),
            DimEvalError::Overflow => f.write_str("dimension overflows i64"),
        }
    }
}

impl Dim {
    /// Replaces symbols that have a binding by their value (others stay symbolic).
    pub fn substitute(&self, b: &Bindings) -> Dim {
        let mut out = Dim::known(0);
        for (m, c) in &self.terms {
            let mut term = Dim::known(*c);
            for (a, p) in &m.0 {
                let v = match a {
                    Atom::Sym(s) => b
                        .get(&**s)
                        .map(|&v| Dim::known(v))
                        .unwrap_or_else(|| Dim::sym(s)),
                    Atom::Div(x, y) => x.substitute(b).floor_div(&y.substitute(b)),
                    Atom::Mod(x, y) => x.substitute(b).rem(&y.substitute(b)),
                    Atom::Max(x, y) => x.substitute(b).maximum(&y.substitute(b)),
                    Atom::Min(x, y) => x.substitute(b).minimum(&y.substitute(b)),
                    Atom::WideAdd(x, y) => x.substitute(b).add(&y.substitute(b)),
                    Atom::WideMul(x, y) => x.substitute(b).mul(&y.substitute(b)),
                };
                term = term.mul(&v.pow(*p));
            }
            out = out.add(&term);
        }
        out
    }

    /// Replaces symbols by dims (`past_sequence_length` → `past`, `total` → `past + seq`);
    /// symbols without an entry stay.
    pub fn substitute_dims(&self, map: &std::collections::BTreeMap<String, Dim>) -> Dim {
        let mut out = Dim::known(0);
        for (m, c) in &self.terms {
            let mut term = Dim::known(*c);
            for (a, p) in &m.0 {
                let v = match a {
                    Atom::Sym(s) => map.get(&**s).cloned().unwrap_or_else(|| Dim::sym(s)),
                    Atom::Div(x, y) => x.substitute_dims(map).floor_div(&y.substitute_dims(map)),
                    Atom::Mod(x, y) => x.substitute_dims(map).rem(&y.substitute_dims(map)),
                    Atom::Max(x, y) => x.substitute_dims(map).maximum(&y.substitute_dims(map)),
                    Atom::Min(x, y) => x.substitute_dims(map).minimum(&y.substitute_dims(map)),
                    Atom::WideAdd(x, y) => x.substitute_dims(map).add(&y.substitute_dims(map)),
                    Atom::WideMul(x, y) => x.substitute_dims(map).mul(&y.substitute_dims(map)),
                };
                term = term.mul(&v.pow(*p));
            }
            out = out.add(&term);
        }
        out
    }

    /// Evaluates against bindings; every symbol must be bound.
    pub fn eval(&self, b: &Bindings) -> Result<i64, DimEvalError> {
        self.eval_with(&|s| b.get(s).copied())
    }

    /// Evaluates with each symbol's value from `lookup` (`None`: unbound). Allocates nothing
    /// unless it fails.
    pub fn eval_with(&self, lookup: &dyn Fn(&str) -> Option<i64>) -> Result<i64, DimEvalError> {
        let mut total: i64 = 0;
        for (m, c) in &self.terms {
            let mut term = *c;
            for (a, p) in &m.0 {
                let v = eval_atom(a, lookup)?.checked_pow(*p);
                term = v
                    .and_then(|v| term.checked_mul(v))
                    .ok_or(DimEvalError::Overflow)?;
            }
            total = total.checked_add(term).ok_or(DimEvalError::Overflow)?;
        }
        Ok(total)
    }
}

fn eval_atom(a: &Atom, b: &dyn Fn(&str) -> Option<i64>) -> Result<i64, DimEvalError> {
    Ok(match a {
        Atom::Sym(s) => b(s).ok_or_else(|| DimEvalError::Unbound(s.to_string()))?,
        Atom::Div(x, y) | Atom::Mod(x, y) => {
            let (x, y) = (x.eval_with(b)?, y.eval_with(b)?);
            if y == 0 {
                return Err(DimEvalError::DivByZero);
            }
            if matches!(a, Atom::Div(..)) {
                floor_div(x, y)
            } else {
                floor_mod(x, y)
            }
            .ok_or(DimEvalError::Overflow)?
        }
        Atom::WideAdd(x, y) => x
            .eval_with(b)?
            .checked_add(y.eval_with(b)?)
            .ok_or(DimEvalError::Overflow)?,
        Atom::WideMul(x, y) => x
            .eval_with(b)?
            .checked_mul(y.eval_with(b)?)
            .ok_or(DimEvalError::Overflow)?,
        Atom::Max(x, y) => x.eval_with(b)?.max(y.eval_with(b)?),
        Atom::Min(x, y) => x.eval_with(b)?.min(y.eval_with(b)?),
    })
}
