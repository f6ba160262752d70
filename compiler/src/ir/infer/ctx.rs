//! The context every category's inference works in: the op, its inputs, and the shared
//! checks (arity, dtypes, ranks, axes, attribute lengths) that turn into `Error::Type`.

use super::super::dim::Dim;
use super::super::op::Op;
use super::super::types::{DType, TensorType};
use crate::error::{Error, Result};

/// The op being typed and its input types, with the checks the categories share. Every check
/// returns an [`Error::Type`] naming the op.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx<'a> {
    op: &'a Op,
    inputs: &'a [TensorType],
}

impl<'a> Ctx<'a> {
    /// A context for `op` applied to `inputs`.
    pub(super) fn new(op: &'a Op, inputs: &'a [TensorType]) -> Ctx<'a> {
        Ctx { op, inputs }
    }

    /// The op.
    pub(super) fn op(&self) -> &'a Op {
        self.op
    }

    /// Number of inputs given.
    pub(super) fn count(&self) -> usize {
        self.inputs.len()
    }

    /// A type error for this op.
    pub(super) fn error(&self, message: impl Into<String>) -> Error {
        Error::Type {
            op: self.op.name(),
            message: message.into(),
        }
    }

    /// `Err` of a type error for this op.
    pub(super) fn err<T>(&self, message: impl Into<String>) -> Result<T> {
        Err(self.error(message))
    }

    /// Checks the number of inputs against [`Op::arity`].
    pub(super) fn check_arity(&self) -> Result<()> {
        let (min, max) = self.op.arity();
        let n = self.inputs.len();
        if n >= min && max.is_none_or(|m| n <= m) {
            return Ok(());
        }
        let want = match max {
            Some(m) if m == min => format!("{min}"),
            Some(m) => format!("{min} to {m}"),
            None => format!("at least {min}"),
        };
        self.err(format!("takes {want} inputs, got {n}"))
    }

    /// Input `i` (an error rather than a panic when missing).
    pub(super) fn input(&self, i: usize) -> Result<&'a TensorType> {
        self.inputs
            .get(i)
            .ok_or_else(|| self.error(format!("input {i} is missing")))
    }

    /// Input `i`, whose dtype must satisfy `ok`; `expected` describes the accepted dtypes.
    pub(super) fn dtype(
        &self,
        i: usize,
        ok: fn(DType) -> bool,
        expected: &str,
    ) -> Result<&'a TensorType> {
        let t = self.input(i)?;
        if ok(t.dtype) {
            Ok(t)
        } else {
            self.err(format!(
                "input {i} has dtype {}, expected {expected}",
                t.dtype
            ))
        }
    }

    /// Input `i`, which must have a float dtype.
    pub(super) fn float(&self, i: usize) -> Result<&'a TensorType> {
        self.dtype(i, DType::is_float, "a float dtype")
    }

    /// Input `i`, which must have a numeric (float or integer, not bool) dtype.
    pub(super) fn numeric(&self, i: usize) -> Result<&'a TensorType> {
        self.dtype(i, is_numeric, "a float or integer dtype")
    }

    /// Input `i`, which must have the dtype of input `j`.
    pub(super) fn same_dtype(&self, i: usize, j: usize) -> Result<&'a TensorType> {
        let (t, u) = (self.input(i)?, self.input(j)?);
        if t.dtype == u.dtype {
            Ok(t)
        } else {
            self.err(format!(
                "input {i} has dtype {}, expected the dtype of input {j} ({})",
                t.dtype, u.dtype
            ))
        }
    }

    /// Input `i`, which must have rank `rank`; `what` describes the expected layout.
    pub(super) fn rank(&self, i: usize, rank: usize, what: &str) -> Result<&'a TensorType> {
        let t = self.input(i)?;
        if t.rank() == rank {
            Ok(t)
        } else {
            self.err(format!(
                "input {i} has rank {} ({}), expected {rank} ({what})",
                t.rank(),
                t.shape
            ))
        }
    }

    /// `axis` normalised against `rank` (negative counts from the end).
    pub(super) fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        let r = i64::try_from(rank).unwrap_or(i64::MAX);
        if axis < -r || axis >= r {
            return self.err(format!("axis {axis} is out of range for rank {rank}"));
        }
        let a = if axis < 0 { axis + r } else { axis };
        usize::try_from(a).map_err(|_| self.error(format!("axis {axis} is out of range")))
    }

    /// Checks that the attribute `name` has `want` entries.
    pub(super) fn attr_len<T>(&self, name: &str, values: &[T], want: usize) -> Result<()> {
        if values.len() == want {
            Ok(())
        } else {
            self.err(format!(
                "{name} has {} entries, expected {want}",
                values.len()
            ))
        }
    }
}

/// Float or integer (not bool).
pub(super) fn is_numeric(d: DType) -> bool {
    d.is_float() || d.is_int()
}

/// Shorthand for a known dim.
pub(super) fn k(v: i64) -> Dim {
    Dim::known(v)
}

/// `ceil(n / d)` for non-negative operands, exact (no division atom) when `d` divides `n`.
pub(super) fn ceil_div_dim(n: &Dim, d: &Dim) -> Dim {
    let q = n.floor_div(d);
    if &q.mul(d) == n {
        q
    } else {
        n.ceil_div(d)
    }
}

/// True when `d` is a known value below zero.
pub(super) fn known_negative(d: &Dim) -> bool {
    d.as_known().is_some_and(|v| v < 0)
}

#[cfg(test)]
mod tests {
    use super::super::super::op::UnaryOp;
    use super::*;

    #[test]
    fn axes_normalise_and_reject_out_of_range() {
        let op = Op::Unary(UnaryOp::Exp);
        let cx = Ctx::new(&op, &[]);
        assert_eq!(cx.axis(-1, 3).unwrap(), 2);
        assert_eq!(cx.axis(2, 3).unwrap(), 2);
        assert_eq!(cx.axis(-3, 3).unwrap(), 0);
        assert_eq!(
            cx.axis(3, 2).unwrap_err().to_string(),
            "exp: axis 3 is out of range for rank 2"
        );
        assert!(cx.axis(i64::MIN, 2).is_err());
        assert!(cx.axis(i64::MAX, 2).is_err());
        assert!(cx.axis(0, 0).is_err());
    }

    #[test]
    fn missing_inputs_are_errors_not_panics() {
        let op = Op::Unary(UnaryOp::Exp);
        let cx = Ctx::new(&op, &[]);
        assert_eq!(
            cx.input(0).unwrap_err().to_string(),
            "exp: input 0 is missing"
        );
        assert!(cx.float(1).is_err());
        assert!(cx.same_dtype(0, 1).is_err());
        assert_eq!(
            cx.attr_len("pads", &[1, 2, 3], 4).unwrap_err().to_string(),
            "exp: pads has 3 entries, expected 4"
        );
    }

    #[test]
    fn ceil_division_stays_exact() {
        let seq = Dim::sym("seq");
        let two = k(2);
        assert_eq!(ceil_div_dim(&seq.mul(&two), &two), seq);
        assert_eq!(ceil_div_dim(&seq, &two).to_string(), "(seq+1)/2");
        assert_eq!(ceil_div_dim(&k(7), &two), k(4));
        assert!(known_negative(&k(-1)) && !known_negative(&seq));
        assert!(is_numeric(DType::U8) && !is_numeric(DType::Bool));
    }
}
