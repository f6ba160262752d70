//! ONNX importers for the training losses `NegativeLogLikelihoodLoss` (opsets 12, 13, 22) and
//! `SoftmaxCrossEntropyLoss` (opsets 12, 13), lowered onto gathers, selects and reductions.
//!
//! For input `[N, C, d1..dk]` and integer target `[N, d1..dk]`:
//! `loss[n, d] = -input[n, target[n, d], d] · w[target[n, d]]` (w = 1 without weights), zero
//! where the target equals `ignore_index`. Reduction `none` keeps the target's shape, `sum`
//! adds everything, `mean` divides the sum by the total weight of the non-ignored positions.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{binary, cast, dims, dtype, rank, reshape, select, unary};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, ReduceOp, UnaryOp};
use kiln_runtime::Tensor;

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("NegativeLogLikelihoodLoss", nll_node);
    r.add("SoftmaxCrossEntropyLoss", sce_node);
}

/// The `reduction` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reduction {
    None,
    Sum,
    Mean,
}

/// The attributes shared by both losses.
#[derive(Debug, Clone, Copy)]
struct LossAttrs {
    reduction: Reduction,
    ignore_index: Option<i64>,
}

fn loss_attrs(n: &NodeView) -> NResult<LossAttrs> {
    let reduction = match n.string("reduction", "mean").as_str() {
        "none" => Reduction::None,
        "sum" => Reduction::Sum,
        "mean" => Reduction::Mean,
        other => {
            return invalid(format!(
                "{}: reduction must be none, sum or mean, got `{other}`",
                n.node.op_type
            ))
        }
    };
    Ok(LossAttrs {
        reduction,
        ignore_index: n.attr("ignore_index").map(|a| a.i),
    })
}

/// `NegativeLogLikelihoodLoss(input, target, [weight])`.
fn nll_node(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let attrs = loss_attrs(n)?;
    let x = n.input(0)?.clone();
    let loss = nll(ctx, n, &x, attrs)?;
    Ok(vec![loss])
}

/// `SoftmaxCrossEntropyLoss(scores, labels, [weights])`, with the optional second output
/// `log_prob`.
fn sce_node(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let attrs = loss_attrs(n)?;
    let scores = n.input(0)?.clone();
    check_float(ctx, &scores, n)?;
    if rank(ctx, &scores) < 2 {
        return invalid(format!(
            "SoftmaxCrossEntropyLoss needs scores of rank >= 2, got {}",
            ctx.ty(&scores).shape
        ));
    }
    let log_prob = ctx.emit1(Op::LogSoftmax { axis: 1 }, &[scores])?;
    let loss = nll(ctx, n, &log_prob, attrs)?;
    if n.num_outputs() >= 2 {
        return Ok(vec![loss, log_prob]);
    }
    Ok(vec![loss])
}

/// The float dtype of the loss input (f16, bf16, f32 or f64).
fn check_float(ctx: &Ctx, x: &Operand, n: &NodeView) -> NResult<DType> {
    let dt = dtype(ctx, x);
    if !dt.is_float() {
        return invalid(format!("{} takes a float input, got {dt}", n.node.op_type));
    }
    Ok(dt)
}

/// A rank-0 integer constant of `dtype`, or `None` when `v` does not fit it (then no element
/// can equal it).
fn int_scalar(ctx: &mut Ctx, v: i64, dtype: DType) -> NResult<Option<Operand>> {
    let fits = match dtype {
        DType::I64 => true,
        DType::I32 => i32::try_from(v).is_ok(),
        other => return unsupported(format!("integer targets of type {other}")),
    };
    if !fits {
        return Ok(None);
    }
    let t = Tensor::from_i64_values(dtype, vec![], &[v])?;
    Ok(Some(ctx.constant(t)))
}

/// The loss of `x` (log-probabilities `[N, C, d..]`) against the node's target (input 1) and
/// optional weights (input 2).
fn nll(ctx: &mut Ctx, n: &NodeView, x: &Operand, attrs: LossAttrs) -> NResult<Operand> {
    let dt = check_float(ctx, x, n)?;
    let target = n.input(1)?.clone();
    let tdt = dtype(ctx, &target);
    if !matches!(tdt, DType::I32 | DType::I64) {
        return invalid(format!(
            "{} takes an i32 or i64 target, got {tdt}",
            n.node.op_type
        ));
    }
    let x_dims = dims(ctx, x);
    let t_dims = dims(ctx, &target);
    if x_dims.len() < 2 || t_dims.len() + 1 != x_dims.len() {
        return invalid(format!(
            "{}: input {} needs rank >= 2 and a target of one rank less, got target {}",
            n.node.op_type,
            ctx.ty(x).shape,
            ctx.ty(&target).shape
        ));
    }

    // Ignored positions, and a target whose ignored entries are 0 so that every gather stays
    // in range (their contributions are zeroed below).
    let ignored = match attrs.ignore_index {
        Some(ii) => match int_scalar(ctx, ii, tdt)? {
            Some(s) => Some(binary(ctx, BinaryOp::Eq, &target, &s)?),
            None => None,
        },
        None => None,
    };
    let safe = match &ignored {
        Some(ign) => {
            let zero = ctx.scalar(0.0, tdt)?;
            select(ctx, ign, &zero, &target)?
        }
        None => target.clone(),
    };

    // picked[n, d] = x[n, safe[n, d], d], via GatherElements on axis 1 of [N, 1, d..].
    let mut idx_dims = t_dims.clone();
    idx_dims.insert(1, Dim::known(1));
    let idx = reshape(ctx, &safe, idx_dims)?;
    let picked = ctx.emit1(Op::GatherElements { axis: 1 }, &[x.clone(), idx])?;
    let picked = reshape(ctx, &picked, t_dims)?;
    let mut loss = unary(ctx, UnaryOp::Neg, &picked)?;

    // Per-position weights (None = all ones).
    let weight = match n.opt_input(2) {
        Some(w) => {
            if dims(ctx, w).len() != 1 {
                return invalid(format!(
                    "{}: weight must have rank 1, got {}",
                    n.node.op_type,
                    ctx.ty(w).shape
                ));
            }
            if dtype(ctx, w) != dt {
                return invalid(format!(
                    "{}: weight has type {}, the input {dt}",
                    n.node.op_type,
                    dtype(ctx, w)
                ));
            }
            let wg = ctx.emit1(Op::Gather { axis: 0 }, &[w.clone(), safe.clone()])?;
            loss = binary(ctx, BinaryOp::Mul, &loss, &wg)?;
            Some(wg)
        }
        None => None,
    };
    if let Some(ign) = &ignored {
        let zero = ctx.scalar(0.0, dt)?;
        loss = select(ctx, ign, &zero, &loss)?;
    }

    let sum = |ctx: &mut Ctx, v: &Operand| {
        let op = Op::Reduce {
            op: ReduceOp::Sum,
            axes: Vec::new(),
            keepdims: false,
        };
        ctx.emit1(op, std::slice::from_ref(v))
    };
    match attrs.reduction {
        Reduction::None => Ok(loss),
        Reduction::Sum => sum(ctx, &loss),
        Reduction::Mean => {
            // The denominator: the summed weights of the non-ignored positions.
            let denom = match (weight, &ignored) {
                (None, None) => {
                    let op = Op::Reduce {
                        op: ReduceOp::Mean,
                        axes: Vec::new(),
                        keepdims: false,
                    };
                    return ctx.emit1(op, &[loss]);
                }
                (Some(wg), None) => wg,
                (Some(wg), Some(ign)) => {
                    let zero = ctx.scalar(0.0, dt)?;
                    select(ctx, ign, &zero, &wg)?
                }
                (None, Some(ign)) => {
                    let kept = unary(ctx, UnaryOp::Not, ign)?;
                    cast(ctx, &kept, dt)?
                }
            };
            let total = sum(ctx, &loss)?;
            let denom = sum(ctx, &denom)?;
            binary(ctx, BinaryOp::Div, &total, &denom)
        }
    }
}
