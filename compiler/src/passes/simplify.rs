//! No-op removal and chain collapsing: Reshape/Expand/Slice whose output type equals the input
//! type, identity Transposes, same-dtype Casts; Cast→Cast through an exact widening,
//! Reshape→Reshape and Transpose→Transpose (perms composed); single-input Concat/Tile that
//! change nothing. Operand order of commutative binary ops is normalised — the computed value
//! first, the weight second — so CSE sees `add(@b, %x)` and `add(%x, @b)` as one node and the
//! e-graph rules see one spelling more often (they still try both orders).

use super::{replace_node, rewrite_node};
use crate::error::Result;
use crate::ir::{Graph, NodeId, Op, ValueDef, ValueId};
use kiln_runtime::DType;

/// Applies every simplification it can; returns how many nodes were removed or rewritten.
pub fn run(g: &mut Graph) -> Result<usize> {
    let mut changed = 0;
    for n in g.topo_order()? {
        if simplify_node(g, n) || normalize_operands(g, n) {
            changed += 1;
        }
    }
    Ok(changed)
}

/// Puts a weight operand of a commutative binary op second; true when it swapped.
fn normalize_operands(g: &mut Graph, n: NodeId) -> bool {
    use crate::ir::BinaryOp::*;
    let node = g.node(n);
    let Op::Binary(op) = node.op else {
        return false;
    };
    let commutative = matches!(
        op,
        Add | Mul | Max | Min | Eq | And | Or | Xor | BitAnd | BitOr | BitXor
    );
    let [a, b] = node.inputs[..] else {
        return false;
    };
    let is_weight = |v: ValueId| matches!(g.value(v).def, ValueDef::Weight(_));
    if !commutative || !is_weight(a) || is_weight(b) {
        return false;
    }
    g.set_input(n, 0, b);
    g.set_input(n, 1, a);
    true
}

/// What to do with one node.
enum Action {
    /// Replace its output by this value.
    Forward(ValueId),
    /// Replace it by this op applied to this input.
    Rewrite(Op, ValueId),
}

fn simplify_node(g: &mut Graph, n: NodeId) -> bool {
    match plan(g, n) {
        Some(Action::Forward(v)) => {
            replace_node(g, n, &[v]);
            true
        }
        Some(Action::Rewrite(op, x)) => rewrite_node(g, n, op, &[x]),
        None => false,
    }
}

fn plan(g: &Graph, n: NodeId) -> Option<Action> {
    let node = g.node(n);
    if node.inputs.len() != 1 || node.outputs.len() != 1 {
        return None;
    }
    let x = node.inputs[0];
    let same_type = g.value(x).ty == g.value(node.outputs[0]).ty;
    let rank = g.value(x).ty.rank();
    // The single-input node that produces `x`, if any.
    let producer = match g.value(x).def {
        ValueDef::Node { node: p, .. } if g.node(p).inputs.len() == 1 => Some(g.node(p)),
        _ => None,
    };
    match &node.op {
        Op::Reshape { .. } | Op::Expand { .. } if same_type => Some(Action::Forward(x)),
        Op::Slice { steps, .. } if same_type && steps.iter().all(|&s| s == 1) => {
            Some(Action::Forward(x))
        }
        Op::Cast { to } if *to == g.value(x).ty.dtype => Some(Action::Forward(x)),
        Op::Concat { .. } | Op::Tile { .. } if same_type => Some(Action::Forward(x)),
        Op::Transpose { perm } => {
            let p = normalize_perm(perm, rank)?;
            if is_identity(&p) {
                return Some(Action::Forward(x));
            }
            let inner = producer?;
            let Op::Transpose { perm: q } = &inner.op else {
                return None;
            };
            let src = inner.inputs[0];
            let q = normalize_perm(q, g.value(src).ty.rank())?;
            // y[i] = t[p[i]] = x[q[p[i]]].
            let composed: Vec<i64> = p.iter().map(|&i| q[i as usize]).collect();
            Some(if is_identity(&composed) {
                Action::Forward(src)
            } else {
                Action::Rewrite(Op::Transpose { perm: composed }, src)
            })
        }
        Op::Reshape { shape } => {
            let inner = producer?;
            let Op::Reshape { .. } = &inner.op else {
                return None;
            };
            Some(Action::Rewrite(
                Op::Reshape {
                    shape: shape.clone(),
                },
                inner.inputs[0],
            ))
        }
        Op::Cast { to } => {
            let inner = producer?;
            let Op::Cast { to: mid } = &inner.op else {
                return None;
            };
            let src = inner.inputs[0];
            let from = g.value(src).ty.dtype;
            if !exact_widening(from, *mid) {
                return None;
            }
            Some(if *to == from {
                Action::Forward(src)
            } else {
                Action::Rewrite(Op::Cast { to: *to }, src)
            })
        }
        _ => None,
    }
}

/// The perm with negative entries counted from the end, when it is a permutation of `rank` axes.
fn normalize_perm(perm: &[i64], rank: usize) -> Option<Vec<i64>> {
    if perm.len() != rank {
        return None;
    }
    let r = rank as i64;
    let p: Vec<i64> = perm
        .iter()
        .map(|&a| if a < 0 { a + r } else { a })
        .collect();
    let mut seen = vec![false; rank];
    for &a in &p {
        let slot = seen.get_mut(usize::try_from(a).ok()?)?;
        if *slot {
            return None;
        }
        *slot = true;
    }
    Some(p)
}

fn is_identity(p: &[i64]) -> bool {
    p.iter().enumerate().all(|(i, &a)| a == i as i64)
}

/// True when every value of `from` is held exactly by `mid` and a cast from `mid` takes the same
/// path as one from `from` (floats through f64, integers and bool through i64), so that
/// `cast(cast(x, mid), to) == cast(x, to)` for every `to`. Crossing between floats and integers
/// never qualifies (out-of-range conversions saturate on one path and wrap on the other).
pub fn exact_widening(from: DType, mid: DType) -> bool {
    use DType::*;
    if from == mid {
        return true;
    }
    matches!(
        (from, mid),
        (F16 | BF16, F32 | F64)
            | (F32, F64)
            | (Bool, I8 | U8 | I32 | I64)
            | (I8 | U8, I32 | I64)
            | (I32, I64)
    )
}
