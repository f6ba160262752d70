//! Symbolic folding of shape computations: ops applied to integer tensors whose elements are
//! dims (`Shape → Gather → Concat → Reshape` chains) are evaluated at import time, so exported
//! models keep `batch` and `seq` symbolic instead of failing or freezing them.

use super::ctx::{Ctx, NResult, Operand, SymTensor};
use kiln_compiler::interp::eval_op;
use kiln_compiler::interp::util::{broadcast_indices, broadcast_shapes};
use kiln_compiler::ir::{BinaryOp, Bindings, DType, Dim, Op};
use kiln_runtime::Tensor;

/// Folds `op` when its inputs are symbolic or constant integer tensors; `None` when the op (or
/// this use of it) has no symbolic meaning, in which case the caller emits a node.
pub fn fold_symbolic(ctx: &mut Ctx, op: &Op, inputs: &[Operand]) -> NResult<Option<Vec<Operand>>> {
    match op {
        Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Expand { .. }
        | Op::Slice { .. }
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Tile { .. }
        | Op::Gather { .. } => fold_movement(ctx, op, inputs),
        Op::Cast { to } if to.is_int() => {
            let Some(mut s) = as_sym(ctx, &inputs[0]) else {
                return Ok(None);
            };
            s.dtype = *to;
            Ok(Some(vec![ctx.sym(s)?]))
        }
        Op::Binary(b) => fold_binary(ctx, *b, inputs),
        Op::Where => fold_where(ctx, inputs),
        Op::ShapeOf { .. } => Ok(None),
        Op::Reduce { op: r, axes, .. } if axes.is_empty() || axes == &[0] || axes == &[-1] => {
            let Some(s) = as_sym(ctx, &inputs[0]) else {
                return Ok(None);
            };
            if s.shape.len() != 1 {
                return Ok(None);
            }
            use kiln_compiler::ir::ReduceOp::*;
            let mut it = s.elems.iter();
            let first = match r {
                Sum => Dim::known(0),
                Prod => Dim::known(1),
                Max | Min => match it.next() {
                    Some(d) => d.clone(),
                    None => return Ok(None),
                },
                _ => return Ok(None),
            };
            let d = it.fold(first, |a, d| match r {
                Sum => a.add(d),
                Prod => a.mul(d),
                Max => a.maximum(d),
                _ => a.minimum(d),
            });
            let keep = matches!(op, Op::Reduce { keepdims: true, .. });
            let shape = if keep { vec![1] } else { vec![] };
            Ok(Some(vec![ctx.sym(SymTensor {
                shape,
                elems: vec![d],
                dtype: s.dtype,
            })?]))
        }
        _ => Ok(None),
    }
}

/// The operand as a symbolic integer tensor (constants included).
fn as_sym(ctx: &mut Ctx, o: &Operand) -> Option<SymTensor> {
    if let Operand::Sym(s) = o {
        return Some(s.clone());
    }
    let t = ctx.const_tensor(o)?;
    if !t.dtype().is_int() {
        return None;
    }
    Some(SymTensor {
        shape: t.shape().to_vec(),
        elems: t.to_i64_vec().into_iter().map(Dim::known).collect(),
        dtype: t.dtype(),
    })
}

/// Movement ops: run the real op on tensors of element ids and map the ids back to dims.
fn fold_movement(ctx: &mut Ctx, op: &Op, inputs: &[Operand]) -> NResult<Option<Vec<Operand>>> {
    let data_inputs = if matches!(op, Op::Concat { .. }) {
        inputs.len()
    } else {
        1
    };
    let mut pool: Vec<Dim> = Vec::new();
    let mut args: Vec<Tensor> = Vec::new();
    let mut dtype = DType::I64;
    for (i, o) in inputs.iter().enumerate() {
        if i < data_inputs {
            let Some(s) = as_sym(ctx, o) else {
                return Ok(None);
            };
            dtype = s.dtype;
            let ids: Vec<i64> = (pool.len()..pool.len() + s.elems.len())
                .map(|x| x as i64)
                .collect();
            pool.extend(s.elems);
            args.push(Tensor::from_i64(s.shape, ids)?);
        } else {
            let Some(t) = ctx.const_tensor(o) else {
                return Ok(None);
            };
            args.push(t);
        }
    }
    let refs: Vec<&Tensor> = args.iter().collect();
    let Ok(outs) = eval_op(op, &refs, &Bindings::new()) else {
        return Ok(None);
    };
    let mut result = Vec::with_capacity(outs.len());
    for t in outs {
        let elems: Option<Vec<Dim>> = t
            .to_i64_vec()
            .into_iter()
            .map(|i| pool.get(i as usize).cloned())
            .collect();
        let Some(elems) = elems else { return Ok(None) };
        result.push(ctx.sym(SymTensor {
            shape: t.shape().to_vec(),
            elems,
            dtype,
        })?);
    }
    Ok(Some(result))
}

/// A broadcast shape and the element pairs that meet at each of its positions.
type Broadcast = (Vec<usize>, Vec<(Dim, Dim)>);

fn broadcast2(a: &SymTensor, b: &SymTensor) -> Option<Broadcast> {
    let shape = broadcast_shapes(&[&a.shape, &b.shape]).ok()?;
    let ia = broadcast_indices(&a.shape, &shape);
    let ib = broadcast_indices(&b.shape, &shape);
    let pairs = ia
        .into_iter()
        .zip(ib)
        .map(|(i, j)| (a.elems[i].clone(), b.elems[j].clone()))
        .collect();
    Some((shape, pairs))
}

/// Dims are sizes, so a symbolic dim is never negative: `seq == -1` is false.
fn compare(b: BinaryOp, x: &Dim, y: &Dim) -> Option<bool> {
    let diff = x.sub(y);
    if let Some(d) = diff.as_known() {
        return Some(match b {
            BinaryOp::Eq => d == 0,
            BinaryOp::Lt => d < 0,
            BinaryOp::Le => d <= 0,
            BinaryOp::Gt => d > 0,
            _ => d >= 0,
        });
    }
    let (sym_side_first, k) = match (x.as_known(), y.as_known()) {
        (None, Some(k)) => (true, k),
        (Some(k), None) => (false, k),
        _ => return None,
    };
    if k >= 0 {
        return None;
    }
    // sym ≥ 0 > k
    Some(match (b, sym_side_first) {
        (BinaryOp::Eq, _) => false,
        (BinaryOp::Gt | BinaryOp::Ge, true) | (BinaryOp::Lt | BinaryOp::Le, false) => true,
        _ => false,
    })
}

fn fold_binary(ctx: &mut Ctx, b: BinaryOp, inputs: &[Operand]) -> NResult<Option<Vec<Operand>>> {
    let (Some(x), Some(y)) = (as_sym(ctx, &inputs[0]), as_sym(ctx, &inputs[1])) else {
        return Ok(None);
    };
    let Some((shape, pairs)) = broadcast2(&x, &y) else {
        return Ok(None);
    };
    if matches!(
        b,
        BinaryOp::Eq | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
    ) {
        let bools: Option<Vec<bool>> = pairs.iter().map(|(p, q)| compare(b, p, q)).collect();
        let Some(bools) = bools else { return Ok(None) };
        let t = Tensor::from_bools(shape, bools)?;
        return Ok(Some(vec![ctx.constant(t)]));
    }
    let mut elems = Vec::with_capacity(pairs.len());
    for (p, q) in pairs {
        let d = match b {
            BinaryOp::Add => p.add(&q),
            BinaryOp::Sub => p.sub(&q),
            BinaryOp::Mul => p.mul(&q),
            BinaryOp::Div => match (p.as_known(), q.as_known()) {
                (Some(_), Some(0)) => return Ok(None),
                // ONNX integer division truncates toward zero.
                (Some(m), Some(n)) => Dim::known(m.wrapping_div(n)),
                (_, Some(n)) if n <= 0 => return Ok(None),
                _ => p.floor_div(&q),
            },
            BinaryOp::Mod => match q.as_known() {
                Some(0) => return Ok(None),
                _ => p.rem(&q),
            },
            BinaryOp::Max => p.maximum(&q),
            BinaryOp::Min => p.minimum(&q),
            _ => return Ok(None),
        };
        elems.push(d);
    }
    Ok(Some(vec![ctx.sym(SymTensor {
        shape,
        elems,
        dtype: x.dtype,
    })?]))
}

fn fold_where(ctx: &mut Ctx, inputs: &[Operand]) -> NResult<Option<Vec<Operand>>> {
    let Some(cond) = ctx.const_tensor(&inputs[0]) else {
        return Ok(None);
    };
    let (Some(x), Some(y)) = (as_sym(ctx, &inputs[1]), as_sym(ctx, &inputs[2])) else {
        return Ok(None);
    };
    let Ok(shape) = broadcast_shapes(&[cond.shape(), &x.shape, &y.shape]) else {
        return Ok(None);
    };
    let c = cond.to_bool_vec();
    let (ic, ix, iy) = (
        broadcast_indices(cond.shape(), &shape),
        broadcast_indices(&x.shape, &shape),
        broadcast_indices(&y.shape, &shape),
    );
    let elems = (0..ic.len())
        .map(|k| {
            if c[ic[k]] {
                x.elems[ix[k]].clone()
            } else {
                y.elems[iy[k]].clone()
            }
        })
        .collect();
    Ok(Some(vec![ctx.sym(SymTensor {
        shape,
        elems,
        dtype: x.dtype,
    })?]))
}
