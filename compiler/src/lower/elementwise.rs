//! Elementwise fusion: chains of f32 unary/binary/GELU nodes whose intermediate results have a
//! single consumer become one generated kernel over a `rows × cols` iteration space, each
//! outside operand read in full, as a row vector, per row, or as a scalar. The rows are the
//! output's leading dims up to a split chosen so that broadcast operands fit: `[B, S, N] +
//! [1, S, N]` splits after `B` (a row operand), `[N, C, H, W] · [1, C, 1, 1]` after `C` (a
//! per-row operand repeating every `C` rows).

use super::{Choice, PendingKernel, PendingStep, Uses};
use crate::codegen::{Access as GAccess, ElementwiseKernel, EwBinary, EwNode, EwUnary, GenKernel};
use crate::error::Result;
use crate::ir::{BinaryOp, DType, Dim, GeluApprox, Graph, NodeId, Op, UnaryOp, ValueId};
use kiln_runtime::plan::{Access, GeneratedStep, Kernel};
use std::collections::{BTreeMap, HashMap};

enum EwOp {
    Unary(EwUnary),
    Binary(EwBinary),
}

fn ew_op(op: &Op) -> Option<EwOp> {
    Some(match op {
        Op::Unary(u) => EwOp::Unary(match u {
            UnaryOp::Neg => EwUnary::Neg,
            UnaryOp::Abs => EwUnary::Abs,
            UnaryOp::Exp => EwUnary::Exp,
            UnaryOp::Log => EwUnary::Log,
            UnaryOp::Sqrt => EwUnary::Sqrt,
            UnaryOp::Rsqrt => EwUnary::Rsqrt,
            UnaryOp::Reciprocal => EwUnary::Recip,
            UnaryOp::Tanh => EwUnary::Tanh,
            UnaryOp::Erf => EwUnary::Erf,
            UnaryOp::Sigmoid => EwUnary::Sigmoid,
            UnaryOp::Relu => EwUnary::Relu,
            UnaryOp::Floor => EwUnary::Floor,
            UnaryOp::Ceil => EwUnary::Ceil,
            UnaryOp::Sin => EwUnary::Sin,
            UnaryOp::Cos => EwUnary::Cos,
            _ => return None,
        }),
        Op::Binary(b) => EwOp::Binary(match b {
            BinaryOp::Add => EwBinary::Add,
            BinaryOp::Sub => EwBinary::Sub,
            BinaryOp::Mul => EwBinary::Mul,
            BinaryOp::Div => EwBinary::Div,
            BinaryOp::Max => EwBinary::Max,
            BinaryOp::Min => EwBinary::Min,
            BinaryOp::Pow => EwBinary::Pow,
            _ => return None,
        }),
        Op::Gelu {
            approx: GeluApprox::None,
        } => EwOp::Unary(EwUnary::GeluErf),
        Op::Gelu {
            approx: GeluApprox::Tanh,
        } => EwOp::Unary(EwUnary::GeluTanh),
        _ => return None,
    })
}

/// How an operand of shape `s` is read over an output of shape `out` whose first `split` dims
/// are the rows (numpy broadcasting: `s` is right-aligned, missing dims are 1).
fn access(s: &[Dim], out: &[Dim], split: usize) -> Option<Access> {
    let pad = out.len().checked_sub(s.len())?;
    let one = |i: usize| i < pad || s[i - pad].as_known() == Some(1);
    // Dim i of the operand equals the output's (a size-1 dim of both counts as equal).
    let same =
        |i: usize| (i >= pad && s[i - pad] == out[i]) || (one(i) && out[i].as_known() == Some(1));
    let n = out.len();
    if (0..n).all(same) {
        return Some(Access::Full);
    }
    if (0..n).all(one) {
        return Some(Access::Scalar);
    }
    if (0..split).all(one) && (split..n).all(same) {
        return Some(Access::Row);
    }
    if (split..n).all(one) {
        // `[1.., out[j..split], 1..]`: element r reads r % len.
        let j = (0..split).rev().find(|&i| !same(i)).map_or(0, |i| i + 1);
        if (0..j).all(one) {
            return Some(Access::Col);
        }
    }
    None
}

/// The splits (bit `k`: the first `k` output dims are rows) under which every input of `node`
/// has an access pattern; rank-0 outputs split at 0, others before their last dim at the latest.
fn valid_splits(g: &Graph, inputs: &[ValueId], out: &[Dim]) -> u64 {
    let n = out.len().min(63);
    let candidates = if n == 0 { 0..1 } else { 0..n };
    candidates
        .filter(|&k| {
            inputs
                .iter()
                .all(|&v| access(g.value(v).ty.shape.dims(), out, k).is_some())
        })
        .fold(0u64, |m, k| m | 1 << k)
}

/// The split a group uses: the last dim as columns when allowed (rows parallelise), else the
/// latest split its broadcast operands allow.
fn pick_split(mask: u64) -> usize {
    63 - mask.leading_zeros() as usize
}

struct Group {
    nodes: Vec<NodeId>,
    out: ValueId,
    splits: u64,
}

pub(crate) fn fuse(
    g: &Graph,
    order: &[NodeId],
    uses: &Uses,
    choices: &mut BTreeMap<NodeId, Choice>,
    kernels: &mut Vec<GenKernel>,
) -> Result<()> {
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of_value: HashMap<ValueId, usize> = HashMap::new();
    for &n in order {
        let node = g.node(n);
        let is_ref = matches!(
            choices.get(&n),
            Some(Choice::Step(s)) if matches!(s.kernel, PendingKernel::Ready(Kernel::Reference(_)))
        );
        let f32_all = node
            .inputs
            .iter()
            .chain(&node.outputs)
            .all(|&v| g.value(v).ty.dtype == DType::F32);
        if !is_ref || !f32_all || ew_op(&node.op).is_none() {
            continue;
        }
        let out = node.outputs[0];
        let shape = g.value(out).ty.shape.dims();
        let splits = valid_splits(g, &node.inputs, shape);
        if splits == 0 {
            continue;
        }
        let join = node.inputs.iter().find_map(|&v| {
            let gi = *group_of_value.get(&v)?;
            (groups[gi].out == v
                && uses.sole_consumer(v) == Some(n)
                && g.value(v).ty.shape.dims() == shape
                && groups[gi].splits & splits != 0)
                .then_some(gi)
        });
        match join {
            Some(gi) => {
                group_of_value.remove(&groups[gi].out);
                groups[gi].nodes.push(n);
                groups[gi].out = out;
                groups[gi].splits &= splits;
                group_of_value.insert(out, gi);
            }
            None => {
                group_of_value.insert(out, groups.len());
                groups.push(Group {
                    nodes: vec![n],
                    out,
                    splits,
                });
            }
        }
    }
    for grp in groups {
        emit(g, &grp, choices, kernels);
    }
    Ok(())
}

fn emit(
    g: &Graph,
    grp: &Group,
    choices: &mut BTreeMap<NodeId, Choice>,
    kernels: &mut Vec<GenKernel>,
) {
    let shape = g.value(grp.out).ty.shape.dims().to_vec();
    let split = pick_split(grp.splits);
    let mut inputs: Vec<ValueId> = Vec::new();
    let mut acc: Vec<Access> = Vec::new();
    let mut nodes: Vec<EwNode> = Vec::new();
    let mut node_of: HashMap<ValueId, u32> = HashMap::new();
    for &n in &grp.nodes {
        let node = g.node(n);
        let mut args = Vec::new();
        for &v in &node.inputs {
            let id = match node_of.get(&v) {
                Some(&id) => id,
                None => {
                    let i = inputs.len() as u32;
                    inputs.push(v);
                    acc.push(
                        access(g.value(v).ty.shape.dims(), &shape, split)
                            .expect("checked when grouping"),
                    );
                    nodes.push(EwNode::Input(i));
                    let id = nodes.len() as u32 - 1;
                    node_of.insert(v, id);
                    id
                }
            };
            args.push(id);
        }
        let e = match ew_op(&node.op).expect("checked when grouping") {
            EwOp::Unary(u) => EwNode::Unary(u, args[0]),
            EwOp::Binary(b) => EwNode::Binary(b, args[0], args[1]),
        };
        nodes.push(e);
        node_of.insert(node.outputs[0], nodes.len() as u32 - 1);
    }
    let gaccess = acc
        .iter()
        .map(|a| match a {
            Access::Full => GAccess::Full,
            Access::Row => GAccess::Row,
            Access::Col => GAccess::Col,
            Access::Scalar => GAccess::Scalar,
        })
        .collect();
    let name = GeneratedStep::symbol_for(&format!("kiln_ew{}", kernels.len()), &acc, 1);
    kernels.push(GenKernel::Elementwise(ElementwiseKernel {
        name: name.clone(),
        inputs: gaccess,
        nodes,
        outputs: vec![node_of[&grp.out]],
    }));
    let last = *grp.nodes.last().expect("a group has a node");
    for &n in &grp.nodes {
        choices.insert(n, Choice::Absorbed);
    }
    choices.insert(
        last,
        Choice::Step(Box::new(PendingStep {
            kernel: PendingKernel::Ready(Kernel::Generated(GeneratedStep {
                symbol: name,
                access: acc,
                in_place: true,
                split: split as u32,
            })),
            inputs,
            outputs: vec![grp.out],
            origin: super::select::origin(g, last),
        })),
    );
}
