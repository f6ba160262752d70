//! Inference for ops that work along axes: reductions, arg-reductions, softmax / log-softmax
//! and cumulative sums.

use super::super::types::{DType, Shape, TensorType};
use super::{k, Ctx};
use crate::error::Result;

/// Reductions accept floats and integers; empty `axes` reduces every axis; an axis listed
/// twice (after normalisation) is an error.
pub(super) fn reduce(cx: &Ctx, axes: &[i64], keepdims: bool) -> Result<TensorType> {
    let x = cx.numeric(0)?;
    let rank = x.rank();
    let mut reduced = vec![axes.is_empty(); rank];
    for &a in axes {
        let ax = cx.axis(a, rank)?;
        match reduced.get_mut(ax) {
            Some(r) if !*r => *r = true,
            _ => return cx.err(format!("axes {axes:?} list axis {ax} more than once")),
        }
    }
    let mut dims = Vec::with_capacity(rank);
    for (d, r) in x.shape.0.iter().zip(&reduced) {
        match (r, keepdims) {
            (false, _) => dims.push(d.clone()),
            (true, true) => dims.push(k(1)),
            (true, false) => {}
        }
    }
    Ok(TensorType::new(x.dtype, Shape(dims)))
}

/// ArgMax / ArgMin give i64 indices along one axis.
pub(super) fn arg_reduce(cx: &Ctx, axis: i64, keepdims: bool) -> Result<TensorType> {
    let x = cx.numeric(0)?;
    let ax = cx.axis(axis, x.rank())?;
    let mut dims = x.shape.0.clone();
    if keepdims {
        dims[ax] = k(1);
    } else {
        dims.remove(ax);
    }
    Ok(TensorType::new(DType::I64, Shape(dims)))
}

/// Softmax and LogSoftmax: floats, the axis must exist, same type out.
pub(super) fn softmax(cx: &Ctx, axis: i64) -> Result<TensorType> {
    let x = cx.float(0)?;
    cx.axis(axis, x.rank())?;
    Ok(x.clone())
}

/// CumSum: floats or integers, the axis must exist, same type out.
pub(super) fn cumsum(cx: &Ctx, axis: i64) -> Result<TensorType> {
    let x = cx.numeric(0)?;
    cx.axis(axis, x.rank())?;
    Ok(x.clone())
}

#[cfg(test)]
mod tests {
    use super::super::super::op::{ArgOp, Op, ReduceOp};
    use super::super::testing::{err, ok};

    fn reduce(axes: &[i64], keepdims: bool) -> Op {
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: axes.to_vec(),
            keepdims,
        }
    }

    fn arg(axis: i64, keepdims: bool) -> Op {
        Op::ArgReduce {
            op: ArgOp::ArgMax,
            axis,
            keepdims,
            select_last: false,
        }
    }

    #[test]
    fn reduce_axes_and_keepdims() {
        let x = "f32[batch, seq+1, 384]";
        assert_eq!(ok(&reduce(&[-1], false), &[x]), "f32[batch, seq+1]");
        assert_eq!(ok(&reduce(&[-1], true), &[x]), "f32[batch, seq+1, 1]");
        assert_eq!(ok(&reduce(&[0, 2], false), &[x]), "f32[seq+1]");
        assert_eq!(ok(&reduce(&[], false), &[x]), "f32[]");
        assert_eq!(ok(&reduce(&[], true), &[x]), "f32[1, 1, 1]");
        assert_eq!(ok(&reduce(&[], false), &["i64[]"]), "i64[]");
        let mean = Op::Reduce {
            op: ReduceOp::Mean,
            axes: vec![1],
            keepdims: true,
        };
        assert_eq!(ok(&mean, &["i32[n, m]"]), "i32[n, 1]");
    }

    #[test]
    fn reduce_errors() {
        assert_eq!(
            err(&reduce(&[3], false), &["f32[2, 3]"]),
            "reduce_sum: axis 3 is out of range for rank 2"
        );
        assert_eq!(
            err(&reduce(&[1, -1], false), &["f32[2, 3]"]),
            "reduce_sum: axes [1, -1] list axis 1 more than once"
        );
        assert_eq!(
            err(&reduce(&[0], false), &["bool[2]"]),
            "reduce_sum: input 0 has dtype bool, expected a float or integer dtype"
        );
        assert!(err(&reduce(&[0], false), &["f32[]"]).contains("out of range for rank 0"));
    }

    #[test]
    fn arg_reduce_gives_i64() {
        assert_eq!(ok(&arg(1, false), &["f16[batch, seq, 4]"]), "i64[batch, 4]");
        assert_eq!(
            ok(&arg(-1, true), &["f16[batch, seq, 4]"]),
            "i64[batch, seq, 1]"
        );
        assert_eq!(
            err(&arg(-3, true), &["f32[2, 2]"]),
            "argmax: axis -3 is out of range for rank 2"
        );
        assert!(err(&arg(0, true), &["bool[2]"]).contains("dtype bool"));
    }

    #[test]
    fn softmax_and_cumsum() {
        let sm = Op::Softmax { axis: -1 };
        assert_eq!(
            ok(&sm, &["f32[batch, heads, seq, seq]"]),
            "f32[batch, heads, seq, seq]"
        );
        assert_eq!(
            err(&sm, &["i32[4]"]),
            "softmax: input 0 has dtype i32, expected a float dtype"
        );
        let lsm = Op::LogSoftmax { axis: 1 };
        assert_eq!(ok(&lsm, &["f64[batch, vocab]"]), "f64[batch, vocab]");
        let lsm = Op::LogSoftmax { axis: 2 };
        assert_eq!(
            err(&lsm, &["f32[batch, 4]"]),
            "log_softmax: axis 2 is out of range for rank 2"
        );
        let cs = Op::CumSum {
            axis: 0,
            exclusive: false,
            reverse: true,
        };
        assert_eq!(ok(&cs, &["i64[seq+1]"]), "i64[seq+1]");
        assert!(err(&cs, &["bool[seq]"]).contains("dtype bool"));
        assert!(err(&cs, &["i64[]"]).contains("out of range for rank 0"));
    }
}
