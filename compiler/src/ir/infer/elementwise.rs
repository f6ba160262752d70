//! Inference for elementwise ops (unary, binary, where, cast) and the symbolic numpy
//! broadcasting rule that they and several other ops share.

use super::super::dim::Dim;
use super::super::op::{BinaryOp, UnaryOp};
use super::super::types::{DType, Shape, TensorType};
use super::{is_numeric, Ctx};
use crate::error::Result;

/// Broadcasts two dims: equal dims give that dim, a known 1 gives the other, two different
/// known dims (neither 1) do not broadcast (`None`), a symbolic dim against a known `n` gives
/// `n`, and two different symbolic dims give their maximum.
pub fn broadcast_dim(a: &Dim, b: &Dim) -> Option<Dim> {
    if a == b {
        return Some(a.clone());
    }
    match (a.as_known(), b.as_known()) {
        (Some(1), _) => Some(b.clone()),
        (_, Some(1)) => Some(a.clone()),
        (Some(_), Some(_)) => None,
        (None, Some(_)) => Some(b.clone()),
        (Some(_), None) => Some(a.clone()),
        (None, None) => Some(a.maximum(b)),
    }
}

/// Broadcasts two shapes numpy-style (right-aligned), dim by dim with [`broadcast_dim`].
pub fn broadcast_shapes(a: &Shape, b: &Shape) -> Option<Shape> {
    let one = Dim::known(1);
    let ra: Vec<&Dim> = a.0.iter().rev().collect();
    let rb: Vec<&Dim> = b.0.iter().rev().collect();
    let n = ra.len().max(rb.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let da = ra.get(i).copied().unwrap_or(&one);
        let db = rb.get(i).copied().unwrap_or(&one);
        out.push(broadcast_dim(da, db)?);
    }
    out.reverse();
    Some(Shape(out))
}

/// True when `from` broadcasts to exactly `to` (no more dims, and every dim stretches to
/// `to`'s dim under [`broadcast_dim`]).
pub fn broadcasts_to(from: &Shape, to: &Shape) -> bool {
    from.rank() <= to.rank() && broadcast_shapes(from, to).as_ref() == Some(to)
}

pub(super) fn unary(cx: &Ctx, u: UnaryOp) -> Result<TensorType> {
    let (ok, expected): (fn(DType) -> bool, &str) = match u {
        UnaryOp::Not => (|d| d == DType::Bool, "bool"),
        UnaryOp::BitNot => (DType::is_int, "an integer dtype"),
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Relu => {
            (is_numeric, "a float or integer dtype")
        }
        _ => (DType::is_float, "a float dtype"),
    };
    let x = cx.dtype(0, ok, expected)?;
    let dtype = match u {
        UnaryOp::IsNan | UnaryOp::IsInf => DType::Bool,
        _ => x.dtype,
    };
    Ok(TensorType::new(dtype, x.shape.clone()))
}

pub(super) fn binary(cx: &Ctx, b: BinaryOp) -> Result<TensorType> {
    use BinaryOp::*;
    let (ok, expected): (fn(DType) -> bool, &str) = match b {
        Eq | Lt | Le | Gt | Ge => (|_| true, "any dtype"),
        And | Or | Xor => (|d| d == DType::Bool, "bool"),
        BitAnd | BitOr | BitXor | Shl | Shr => (DType::is_int, "an integer dtype"),
        Add | Sub | Mul | Div | Pow | Max | Min | Mod | FMod => {
            (is_numeric, "a float or integer dtype")
        }
    };
    let a = cx.dtype(0, ok, expected)?;
    let y = cx.same_dtype(1, 0)?;
    let shape = broadcast_shapes(&a.shape, &y.shape)
        .ok_or_else(|| cx.error(format!("cannot broadcast {} with {}", a.shape, y.shape)))?;
    let dtype = match b {
        Eq | Lt | Le | Gt | Ge => DType::Bool,
        _ => a.dtype,
    };
    Ok(TensorType::new(dtype, shape))
}

pub(super) fn where_(cx: &Ctx) -> Result<TensorType> {
    let c = cx.dtype(0, |d| d == DType::Bool, "bool")?;
    let x = cx.input(1)?;
    let y = cx.same_dtype(2, 1)?;
    let fail = || {
        cx.error(format!(
            "cannot broadcast condition {}, x {} and y {}",
            c.shape, x.shape, y.shape
        ))
    };
    let cx_shape = broadcast_shapes(&c.shape, &x.shape).ok_or_else(fail)?;
    let shape = broadcast_shapes(&cx_shape, &y.shape).ok_or_else(fail)?;
    Ok(TensorType::new(x.dtype, shape))
}

pub(super) fn cast(cx: &Ctx, to: DType) -> Result<TensorType> {
    let x = cx.input(0)?;
    Ok(TensorType::new(to, x.shape.clone()))
}

#[cfg(test)]
mod tests {
    use super::super::super::op::Op;
    use super::super::testing::{dims, err, ok, ty};
    use super::*;

    fn shape(text: &str) -> Shape {
        Shape(dims(text))
    }

    #[test]
    fn broadcast_rules() {
        let b = |x: &str, y: &str| broadcast_shapes(&shape(x), &shape(y)).map(|s| s.to_string());
        assert_eq!(b("batch, 1", "4").as_deref(), Some("[batch, 4]"));
        assert_eq!(b("batch, 4", "3").as_deref(), None);
        assert_eq!(b("batch", "8").as_deref(), Some("[8]"));
        assert_eq!(b("1, seq", "batch, 1").as_deref(), Some("[batch, seq]"));
        assert_eq!(b("seq", "seq").as_deref(), Some("[seq]"));
        assert_eq!(b("a", "b").as_deref(), Some("[max(a,b)]"));
        assert_eq!(b("seq", "seq+1").as_deref(), Some("[seq+1]"));
        assert_eq!(b("", "2, 3").as_deref(), Some("[2, 3]"));
        assert!(broadcasts_to(&shape("1, 4"), &shape("batch, 4")));
        assert!(!broadcasts_to(&shape("2, 4"), &shape("4")));
        assert!(!broadcasts_to(&shape("3"), &shape("1")));
    }

    #[test]
    fn unary_types() {
        let exp = Op::Unary(UnaryOp::Exp);
        assert_eq!(ok(&exp, &["f16[batch, seq+1]"]), "f16[batch, seq+1]");
        assert_eq!(
            err(&exp, &["i64[batch]"]),
            "exp: input 0 has dtype i64, expected a float dtype"
        );
        assert_eq!(ok(&Op::Unary(UnaryOp::Neg), &["i32[n]"]), "i32[n]");
        assert_eq!(ok(&Op::Unary(UnaryOp::Relu), &["i8[n]"]), "i8[n]");
        assert!(err(&Op::Unary(UnaryOp::Abs), &["bool[n]"]).contains("bool"));
        assert_eq!(ok(&Op::Unary(UnaryOp::IsNan), &["f32[n, 2]"]), "bool[n, 2]");
        assert_eq!(ok(&Op::Unary(UnaryOp::IsInf), &["bf16[]"]), "bool[]");
        assert!(err(&Op::Unary(UnaryOp::IsInf), &["i32[2]"]).contains("expected a float"));
        assert_eq!(ok(&Op::Unary(UnaryOp::Not), &["bool[n]"]), "bool[n]");
        assert_eq!(
            err(&Op::Unary(UnaryOp::Not), &["f32[n]"]),
            "not: input 0 has dtype f32, expected bool"
        );
        assert_eq!(ok(&Op::Unary(UnaryOp::BitNot), &["u8[n]"]), "u8[n]");
        assert!(err(&Op::Unary(UnaryOp::BitNot), &["bool[n]"]).contains("integer"));
    }

    #[test]
    fn binary_broadcasts_symbolically() {
        let add = Op::Binary(BinaryOp::Add);
        assert_eq!(
            ok(&add, &["f32[batch, seq, 384]", "f32[384]"]),
            "f32[batch, seq, 384]"
        );
        assert_eq!(
            ok(&add, &["f32[batch, 1]", "f32[1, seq]"]),
            "f32[batch, seq]"
        );
        assert_eq!(ok(&add, &["i64[a]", "i64[b]"]), "i64[max(a,b)]");
        assert_eq!(
            err(&add, &["f32[batch, 4]", "f32[3]"]),
            "add: cannot broadcast [batch, 4] with [3]"
        );
        assert_eq!(
            err(&add, &["f32[2]", "i64[2]"]),
            "add: input 1 has dtype i64, expected the dtype of input 0 (f32)"
        );
        assert!(err(&add, &["bool[2]", "bool[2]"]).contains("expected a float or integer"));
    }

    #[test]
    fn binary_dtype_classes() {
        let lt = Op::Binary(BinaryOp::Lt);
        assert_eq!(ok(&lt, &["f32[batch, 1]", "f32[3]"]), "bool[batch, 3]");
        assert_eq!(
            ok(&Op::Binary(BinaryOp::Eq), &["bool[2]", "bool[]"]),
            "bool[2]"
        );
        assert_eq!(
            ok(&Op::Binary(BinaryOp::And), &["bool[n]", "bool[n]"]),
            "bool[n]"
        );
        assert_eq!(
            err(&Op::Binary(BinaryOp::Or), &["i32[n]", "i32[n]"]),
            "or: input 0 has dtype i32, expected bool"
        );
        assert_eq!(
            ok(&Op::Binary(BinaryOp::Shl), &["i64[n]", "i64[]"]),
            "i64[n]"
        );
        assert!(err(&Op::Binary(BinaryOp::BitXor), &["f32[n]", "f32[n]"]).contains("integer"));
        assert_eq!(
            ok(&Op::Binary(BinaryOp::Mod), &["i32[4]", "i32[4]"]),
            "i32[4]"
        );
        assert_eq!(
            ok(&Op::Binary(BinaryOp::Pow), &["f64[4]", "f64[1]"]),
            "f64[4]"
        );
    }

    #[test]
    fn where_and_cast() {
        assert_eq!(
            ok(&Op::Where, &["bool[batch, 1]", "f32[seq]", "f32[]"]),
            "f32[batch, seq]"
        );
        assert_eq!(
            err(&Op::Where, &["f32[2]", "f32[2]", "f32[2]"]),
            "where: input 0 has dtype f32, expected bool"
        );
        assert_eq!(
            err(&Op::Where, &["bool[2]", "f32[2]", "i64[2]"]),
            "where: input 2 has dtype i64, expected the dtype of input 1 (f32)"
        );
        assert_eq!(
            err(&Op::Where, &["bool[2]", "f32[3]", "f32[1]"]),
            "where: cannot broadcast condition [2], x [3] and y [1]"
        );
        let cast = Op::Cast { to: DType::I64 };
        assert_eq!(ok(&cast, &["f32[batch, seq+1]"]), "i64[batch, seq+1]");
        assert_eq!(ty("bool[]").dtype, DType::Bool);
    }
}
