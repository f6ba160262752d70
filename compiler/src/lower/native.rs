//! Native kernel selection: ops the runtime runs with its own kernels (`Kernel::Native`) instead
//! of the f64 reference kernel — data movement of any dtype (transpose, expand, concat, split,
//! where), f32 2-D pooling, reductions over a contiguous block of axes, softmax on any axis and
//! the rotary embedding.

use super::{Choice, PendingKernel, PendingStep};
use crate::ir::{DType, Graph, NodeId, Op, ValueId};
use kiln_runtime::kernels::native::supports;
use kiln_runtime::plan::Kernel;

/// The native step for node `n`, if the runtime has a kernel for its op and operands.
pub(crate) fn native(g: &Graph, n: NodeId) -> Option<Choice> {
    let node = g.node(n);
    let op: &Op = &node.op;
    if !supports(op) {
        return None;
    }
    let dtype = |v: ValueId| g.value(v).ty.dtype;
    let rank = |v: ValueId| g.value(v).ty.shape.dims().len();
    let all_f32 = node
        .inputs
        .iter()
        .chain(&node.outputs)
        .all(|&v| dtype(v) == DType::F32);
    let out = *node.outputs.first()?;
    let ok = match op {
        Op::Transpose { .. } | Op::Expand { .. } | Op::Concat { .. } | Op::Split { .. } => node
            .inputs
            .iter()
            .chain(&node.outputs)
            .all(|&v| dtype(v) == dtype(out)),
        Op::Where => {
            node.inputs.len() == 3
                && dtype(node.inputs[0]) == DType::Bool
                && dtype(node.inputs[1]) == dtype(out)
                && dtype(node.inputs[2]) == dtype(out)
        }
        Op::Pool { .. } => all_f32 && rank(node.inputs[0]) == 4,
        Op::Reduce { axes, .. } => all_f32 && contiguous(axes, rank(node.inputs[0])),
        Op::Softmax { .. } | Op::LogSoftmax { .. } => all_f32,
        Op::Rotary => all_f32 && rank(node.inputs[0]) == 4,
        Op::Slice { .. } => dtype(node.inputs[0]) == dtype(out),
        Op::Cast { to } => {
            *to == DType::F32 && matches!(dtype(node.inputs[0]), DType::I64 | DType::I32)
        }
        _ => false,
    };
    ok.then(|| {
        Choice::Step(Box::new(PendingStep {
            kernel: PendingKernel::Ready(Kernel::Native(op.clone())),
            inputs: node.inputs.clone(),
            outputs: node.outputs.clone(),
            origin: super::select::origin(g, n),
        }))
    })
}

/// Whether `axes` (empty = all) normalise to one contiguous block of a rank-`rank` tensor.
fn contiguous(axes: &[i64], rank: usize) -> bool {
    let r = rank as i64;
    let mut ax: Vec<i64> = axes
        .iter()
        .map(|&a| if a < 0 { a + r } else { a })
        .collect();
    if ax.iter().any(|&a| !(0..r).contains(&a)) {
        return false;
    }
    ax.sort_unstable();
    ax.dedup();
    match (ax.first(), ax.last()) {
        (Some(&lo), Some(&hi)) => hi - lo + 1 == ax.len() as i64,
        _ => true,
    }
}
