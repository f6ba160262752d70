//! ONNX importers: `MatMul` and `Gemm` (the IR `matmul` takes floats; integer products are
//! lowered to broadcast multiply + sum, which is exact and wraps like the native width).

use super::ctx::{invalid, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{binary, cast, dims, dtype, flag, one, reshape, scale, transpose};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, ReduceOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("MatMul", matmul_node);
    r.add("Gemm", gemm);
}

/// numpy `matmul` of a and b (same dtype): the IR op for floats, multiply + sum for integers.
pub fn matmul(ctx: &mut Ctx, a: &Operand, b: &Operand) -> NResult<Operand> {
    let (da, db) = (dtype(ctx, a), dtype(ctx, b));
    if da != db {
        return invalid(format!("matmul of {da} by {db}: the dtypes differ"));
    }
    if da.is_float() {
        return ctx.emit1(Op::MatMul, &[a.clone(), b.clone()]);
    }
    if da == DType::Bool {
        return invalid("matmul does not take bool tensors");
    }
    let (ad, bd) = (dims(ctx, a), dims(ctx, b));
    if ad.is_empty() || bd.is_empty() {
        return invalid("matmul needs inputs of rank ≥ 1");
    }
    // Promote rank-1 operands as numpy does: a [K] → [1, K], b [K] → [K, 1].
    let one_dim = || Dim::known(1);
    let a2 = if ad.len() == 1 {
        reshape(ctx, a, vec![one_dim(), ad[0].clone()])?
    } else {
        a.clone()
    };
    let b2 = if bd.len() == 1 {
        reshape(ctx, b, vec![bd[0].clone(), one_dim()])?
    } else {
        b.clone()
    };
    // a [..., M, K, 1] · b [..., 1, K, N], summed over K.
    let mut ae = dims(ctx, &a2);
    ae.push(one_dim());
    let mut be = dims(ctx, &b2);
    be.insert(be.len() - 2, one_dim());
    let a3 = reshape(ctx, &a2, ae)?;
    let b3 = reshape(ctx, &b2, be)?;
    let prod = binary(ctx, BinaryOp::Mul, &a3, &b3)?;
    let mut y = ctx.emit1(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![-2],
            keepdims: false,
        },
        &[prod],
    )?;
    // Drop the promoted dims again.
    if ad.len() == 1 || bd.len() == 1 {
        let mut yd = dims(ctx, &y);
        let m_index = yd.len() - 2;
        if bd.len() == 1 {
            yd.pop();
        }
        if ad.len() == 1 {
            yd.remove(m_index);
        }
        y = reshape(ctx, &y, yd)?;
    }
    Ok(y)
}

fn matmul_node(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    one(matmul(ctx, n.input(0)?, n.input(1)?)?)
}

/// `Gemm`: `alpha · A' · B' + beta · C` with `A' = transA ? Aᵀ : A` (2-D), C optional (opset
/// ≥ 11) and broadcast to the result; `beta = 0` ignores C, as the reference does. Integer
/// inputs with a fractional alpha or beta are computed in f64 and truncated back.
pub(super) fn gemm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (a, b) = (n.input(0)?.clone(), n.input(1)?.clone());
    for (x, name) in [(&a, "A"), (&b, "B")] {
        if dims(ctx, x).len() != 2 {
            return invalid(format!("Gemm: {name} must be 2-D, got {}", ctx.ty(x).shape));
        }
    }
    let a = if flag(n, "transA", false) {
        transpose(ctx, &a, vec![1, 0])?
    } else {
        a
    };
    let b = if flag(n, "transB", false) {
        transpose(ctx, &b, vec![1, 0])?
    } else {
        b
    };
    let alpha = f64::from(n.float("alpha", 1.0));
    let beta = f64::from(n.float("beta", 1.0));
    let c = n.opt_input(2).filter(|_| beta != 0.0).cloned();
    let dt = dtype(ctx, &a);
    let fractional = |v: f64| v.fract() != 0.0 || !v.is_finite();
    let work = if !dt.is_float() && (fractional(alpha) || (c.is_some() && fractional(beta))) {
        DType::F64
    } else {
        dt
    };
    let ab = matmul(ctx, &a, &b)?;
    let ab = cast(ctx, &ab, work)?;
    let mut y = scale(ctx, &ab, alpha)?;
    if let Some(c) = c {
        let c = cast(ctx, &c, work)?;
        let c = scale(ctx, &c, beta)?;
        y = binary(ctx, BinaryOp::Add, &y, &c)?;
    }
    one(cast(ctx, &y, dt)?)
}
