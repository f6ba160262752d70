//! Inference for matrix multiplication (numpy `matmul`: rank-1 promotion, broadcast batch dims,
//! contracted dims that must be provably equal).

use super::super::dim::Dim;
use super::super::types::{Shape, TensorType};
use super::elementwise::broadcast_shapes;
use super::{k, Ctx};
use crate::error::Result;

/// Splits a (promoted) operand of rank ≥ 2 into its batch dims and its last two dims.
fn split_matrix(dims: &[Dim]) -> Option<(&[Dim], &Dim, &Dim)> {
    match dims {
        [batch @ .., rows, cols] => Some((batch, rows, cols)),
        _ => None,
    }
}

pub(super) fn matmul(cx: &Ctx) -> Result<TensorType> {
    let a = cx.float(0)?;
    let b = cx.same_dtype(1, 0)?;
    for (i, t) in [a, b].iter().enumerate() {
        if t.rank() == 0 {
            return cx.err(format!("input {i} is a scalar; matmul needs rank ≥ 1"));
        }
    }
    // numpy promotion: a [k] → [1, k], b [k] → [k, 1]; the promoted dim is dropped afterwards.
    let a_dims = if a.rank() == 1 {
        let mut v = vec![k(1)];
        v.extend(a.shape.0.iter().cloned());
        v
    } else {
        a.shape.0.clone()
    };
    let b_dims = if b.rank() == 1 {
        let mut v = b.shape.0.clone();
        v.push(k(1));
        v
    } else {
        b.shape.0.clone()
    };
    let (Some((a_batch, m, ka)), Some((b_batch, kb, n))) =
        (split_matrix(&a_dims), split_matrix(&b_dims))
    else {
        return cx.err("operands have rank < 2 after promotion");
    };
    if ka != kb {
        return cx.err(format!(
            "cannot multiply {} by {}: contracted dims {ka} and {kb} differ",
            a.shape, b.shape
        ));
    }
    let (sa, sb) = (Shape(a_batch.to_vec()), Shape(b_batch.to_vec()));
    let batch = broadcast_shapes(&sa, &sb).ok_or_else(|| {
        cx.error(format!(
            "cannot broadcast batch dims {sa} with {sb} (of {} and {})",
            a.shape, b.shape
        ))
    })?;
    let mut dims = batch.0;
    if a.rank() > 1 {
        dims.push(m.clone());
    }
    if b.rank() > 1 {
        dims.push(n.clone());
    }
    Ok(TensorType::new(a.dtype, Shape(dims)))
}

#[cfg(test)]
mod tests {
    use super::super::super::op::Op;
    use super::super::testing::{err, ok};

    #[test]
    fn matmul_shapes() {
        let mm = Op::MatMul;
        assert_eq!(
            ok(&mm, &["f32[batch, seq, 384]", "f32[384, 1536]"]),
            "f32[batch, seq, 1536]"
        );
        assert_eq!(
            ok(&mm, &["f32[batch, 1, seq, d]", "f32[heads, d, seq+1]"]),
            "f32[batch, heads, seq, seq+1]"
        );
        assert_eq!(ok(&mm, &["f16[k]", "f16[k]"]), "f16[]");
        assert_eq!(ok(&mm, &["f16[k]", "f16[batch, k, n]"]), "f16[batch, n]");
        assert_eq!(ok(&mm, &["f16[batch, m, k]", "f16[k]"]), "f16[batch, m]");
        assert_eq!(ok(&mm, &["f64[2, 3]", "f64[3, 4]"]), "f64[2, 4]");
    }

    #[test]
    fn matmul_errors() {
        let mm = Op::MatMul;
        assert_eq!(
            err(&mm, &["f32[2, 3]", "f32[4, 5]"]),
            "matmul: cannot multiply [2, 3] by [4, 5]: contracted dims 3 and 4 differ"
        );
        assert_eq!(
            err(&mm, &["f32[batch, a]", "f32[b, 5]"]),
            "matmul: cannot multiply [batch, a] by [b, 5]: contracted dims a and b differ"
        );
        assert_eq!(
            err(&mm, &["f32[2, 4, 3]", "f32[5, 3, 4]"]),
            "matmul: cannot broadcast batch dims [2] with [5] (of [2, 4, 3] and [5, 3, 4])"
        );
        assert_eq!(
            err(&mm, &["f32[]", "f32[3]"]),
            "matmul: input 0 is a scalar; matmul needs rank ≥ 1"
        );
        assert_eq!(
            err(&mm, &["i64[2, 2]", "i64[2, 2]"]),
            "matmul: input 0 has dtype i64, expected a float dtype"
        );
        assert_eq!(
            err(&mm, &["f32[2, 2]", "f16[2, 2]"]),
            "matmul: input 1 has dtype f16, expected the dtype of input 0 (f32)"
        );
    }
}
