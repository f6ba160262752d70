//! Kernel selection per node: GEMMs (packed weights, fused bias/activation/residual epilogue),
//! attention and cache writes (`attention.rs`), f32 recurrent layers, row
//! gathers, generated row kernels (LayerNorm, SkipLayerNorm, RmsNorm, softmax), reshapes as
//! aliases, and the reference kernel for the rest.

use super::{Choice, PendingKernel, PendingStep, Uses};
use crate::codegen::{Access as GAccess, GenKernel, RowKernel, RowOp};
use crate::error::Result;
use crate::ir::{BinaryOp, DType, Dim, GeluApprox, Graph, NodeId, Op, UnaryOp, ValueDef, ValueId};
use kiln_runtime::plan::{Access, Activation, GemmB, GemmStep, GeneratedStep, Kernel};
use std::collections::{BTreeMap, HashMap};

pub(crate) fn choose_all(
    g: &Graph,
    order: &[NodeId],
    uses: &Uses,
    choices: &mut BTreeMap<NodeId, Choice>,
    kernels: &mut Vec<GenKernel>,
) -> Result<()> {
    let pos: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    for &n in order {
        if choices.contains_key(&n) {
            continue; // absorbed by a step chosen earlier
        }
        let node = g.node(n);
        let choice = match &node.op {
            Op::Reshape { .. } => Some(Choice::Alias { of: node.inputs[0] }),
            Op::MatMul | Op::MatMulBias => gemm(g, n, uses, &pos, choices),
            Op::Attention { .. } => super::attention::attention(g, n, uses, choices),
            Op::CacheWrite { .. } => super::attention::cache_write(g, n, uses),
            Op::Conv { .. } => conv(g, n, uses, choices),
            Op::Recurrent { .. } if f32(g, node.inputs[0]) => super::recurrent::select(g, n),
            Op::Gather { axis: 0 } if is_weight(g, node.inputs[0]) => step(
                g,
                n,
                Kernel::GatherRows,
                node.inputs.clone(),
                node.outputs.clone(),
            ),
            Op::LayerNorm { .. }
            | Op::SkipLayerNorm { .. }
            | Op::RmsNorm { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. } => row_kernel(g, n, uses, kernels),
            _ => None,
        };
        let choice = choice
            .or_else(|| super::native::native(g, n))
            .unwrap_or_else(|| reference(g, n));
        choices.insert(n, choice);
    }
    Ok(())
}

/// How a step names the IR node it came from in errors and reports: `gather node #0`.
pub(crate) fn origin(g: &Graph, n: NodeId) -> String {
    format!("{} node {}", g.node(n).op.name(), g.node_label(n))
}

pub(super) fn step(
    g: &Graph,
    n: NodeId,
    kernel: Kernel,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
) -> Option<Choice> {
    Some(Choice::Step(Box::new(PendingStep {
        kernel: PendingKernel::Ready(kernel),
        inputs,
        outputs,
        origin: origin(g, n),
    })))
}

pub(crate) fn reference(g: &Graph, n: NodeId) -> Choice {
    let node = g.node(n);
    Choice::Step(Box::new(PendingStep {
        kernel: PendingKernel::Ready(Kernel::Reference(node.op.clone())),
        inputs: node.inputs.clone(),
        outputs: node.outputs.clone(),
        origin: origin(g, n),
    }))
}

pub(super) fn is_weight(g: &Graph, v: ValueId) -> bool {
    matches!(g.value(v).def, ValueDef::Weight(_))
}

pub(super) fn f32(g: &Graph, v: ValueId) -> bool {
    g.value(v).ty.dtype == DType::F32
}

pub(super) fn dims(g: &Graph, v: ValueId) -> &[Dim] {
    g.value(v).ty.shape.dims()
}

pub(super) fn producer(g: &Graph, v: ValueId) -> Option<NodeId> {
    match g.value(v).def {
        ValueDef::Node { node, .. } => Some(node),
        _ => None,
    }
}

/// A vector of the last dim `n`: shape `[n]` or `[1, .., 1, n]`.
fn is_row_vector(g: &Graph, v: ValueId, n: &Dim) -> bool {
    match dims(g, v).split_last() {
        Some((last, rest)) => last == n && rest.iter().all(|d| d.as_known() == Some(1)),
        None => false,
    }
}

fn gemm(
    g: &Graph,
    n: NodeId,
    uses: &Uses,
    pos: &HashMap<NodeId, usize>,
    choices: &mut BTreeMap<NodeId, Choice>,
) -> Option<Choice> {
    let node = g.node(n);
    let (a, b) = (node.inputs[0], node.inputs[1]);
    if !f32(g, a) || !f32(g, b) {
        return None;
    }
    let bias = node.inputs.get(2).copied();
    let (da, db) = (dims(g, a), dims(g, b));
    let n_dim = db.last()?.clone();
    if let Some(bv) = bias {
        if !f32(g, bv) || !is_row_vector(g, bv, &n_dim) {
            return None;
        }
    }
    let mut inputs = vec![a];
    let mut absorbed = Vec::new();
    let known2 =
        |v: ValueId| dims(g, v).len() == 2 && dims(g, v).iter().all(|d| d.as_known().is_some());
    // B = transpose(W) of a weight (a tied LM head reading the embedding table): packed
    // transposed at build time, so no run packs it again.
    let packed_t = producer(g, b).and_then(|p| match &g.node(p).op {
        Op::Transpose { perm } if perm.as_slice() == [1, 0] => {
            let w = g.node(p).inputs[0];
            (is_weight(g, w) && known2(w) && uses.sole_consumer(b) == Some(n)).then_some((p, w))
        }
        _ => None,
    });
    let mut packed_b = b;
    let mut packed_trans = false;
    let gemm_b = if is_weight(g, b) && known2(b) {
        None // packed at build time
    } else if let Some((p, w)) = packed_t {
        absorbed.push(p);
        packed_b = w;
        packed_trans = true;
        None
    } else {
        if da.len() < 2 || !(db.len() == da.len() || db.len() == 2) {
            return None;
        }
        if db.len() == da.len() && da[..da.len() - 2] != db[..db.len() - 2] {
            return None;
        }
        // B = transpose(x) swapping the last two axes, read only here: use x transposed.
        let mut trans = false;
        let mut bval = b;
        if let Some(p) = producer(g, b) {
            if let Op::Transpose { perm } = &g.node(p).op {
                let r = perm.len();
                let swap_last = r >= 2
                    && perm[..r - 2]
                        .iter()
                        .enumerate()
                        .all(|(i, &x)| x == i as i64)
                    && perm[r - 2] == r as i64 - 1
                    && perm[r - 1] == r as i64 - 2;
                if swap_last
                    && uses.sole_consumer(b) == Some(n)
                    && node.inputs.iter().filter(|&&v| v == b).count() == 1
                {
                    trans = true;
                    bval = g.node(p).inputs[0];
                    absorbed.push(p);
                }
            }
        }
        inputs.push(bval);
        Some(GemmB::Value { trans })
    };
    if let Some(bv) = bias {
        inputs.push(bv);
    }
    // Epilogue: an activation, then a residual add, each the sole consumer of what precedes it.
    let mut out = node.outputs[0];
    let mut activation = Activation::None;
    if let Some(c) = uses.sole_consumer(out) {
        let act = match g.node(c).op {
            Op::Gelu {
                approx: GeluApprox::None,
            } => Some(Activation::GeluErf),
            Op::Gelu {
                approx: GeluApprox::Tanh,
            } => Some(Activation::GeluTanh),
            Op::Unary(UnaryOp::Relu) => Some(Activation::Relu),
            _ => None,
        };
        if let Some(act) = act {
            activation = act;
            absorbed.push(c);
            out = g.node(c).outputs[0];
        }
    }
    let mut residual = false;
    if let Some(c) = uses.sole_consumer(out) {
        let cn = g.node(c);
        if cn.op == Op::Binary(BinaryOp::Add) && cn.inputs[0] != cn.inputs[1] {
            let other = if cn.inputs[0] == out {
                cn.inputs[1]
            } else {
                cn.inputs[0]
            };
            let ready =
                producer(g, other).is_none_or(|p| pos[&p] < pos[&n] && !absorbed.contains(&p));
            if ready
                && f32(g, other)
                && dims(g, other) == dims(g, out)
                && g.value(cn.outputs[0]).ty == g.value(out).ty
            {
                residual = true;
                inputs.push(other);
                absorbed.push(c);
                out = cn.outputs[0];
            }
        }
    }
    for p in absorbed {
        choices.insert(p, Choice::Absorbed);
    }
    let gs = GemmStep {
        b: gemm_b.unwrap_or(GemmB::Value { trans: false }),
        bias: bias.is_some(),
        activation,
        residual,
    };
    let kernel = match gemm_b {
        None => PendingKernel::PackedGemm {
            b: packed_b,
            trans: packed_trans,
            step: gs,
        },
        Some(_) => PendingKernel::Ready(Kernel::Gemm(gs)),
    };
    Some(Choice::Step(Box::new(PendingStep {
        kernel,
        inputs,
        outputs: vec![out],
        origin: origin(g, n),
    })))
}

fn row_kernel(g: &Graph, n: NodeId, uses: &Uses, kernels: &mut Vec<GenKernel>) -> Option<Choice> {
    let node = g.node(n);
    let x = node.inputs[0];
    let shape = dims(g, x);
    let last = shape.last()?.clone();
    let last_axis = |axis: i64| axis == -1 || axis == shape.len() as i64 - 1;
    if !node.inputs.iter().all(|&v| f32(g, v)) {
        return None;
    }
    let row = |v: ValueId| is_row_vector(g, v, &last);
    let (op, access, outputs) = match node.op {
        Op::LayerNorm { axis, eps }
            if last_axis(axis) && node.inputs[1..].iter().all(|&v| row(v)) =>
        {
            let beta = node.inputs.len() == 3;
            let mut acc = vec![Access::Full, Access::Row];
            if beta {
                acc.push(Access::Row);
            }
            (
                RowOp::LayerNorm {
                    eps: eps as f32,
                    skip: None,
                    beta,
                    sum_out: false,
                },
                acc,
                vec![node.outputs[0]],
            )
        }
        Op::SkipLayerNorm { axis, eps }
            if last_axis(axis) && node.inputs[2..].iter().all(|&v| row(v)) =>
        {
            let skip = node.inputs[1];
            let skip_access = if dims(g, skip) == shape {
                Access::Full
            } else if row(skip) {
                Access::Row
            } else {
                return None;
            };
            let beta = node.inputs.len() == 4;
            let sum = node.outputs[1];
            let sum_out = uses.graph_outputs.contains(&sum)
                || uses.consumers.get(&sum).is_some_and(|c| !c.is_empty());
            let mut acc = vec![Access::Full, skip_access, Access::Row];
            if beta {
                acc.push(Access::Row);
            }
            let outs = if sum_out {
                vec![node.outputs[0], sum]
            } else {
                vec![node.outputs[0]]
            };
            let gskip = if skip_access == Access::Full {
                GAccess::Full
            } else {
                GAccess::Row
            };
            (
                RowOp::LayerNorm {
                    eps: eps as f32,
                    skip: Some(gskip),
                    beta,
                    sum_out,
                },
                acc,
                outs,
            )
        }
        Op::RmsNorm { eps } if row(node.inputs[1]) => (
            RowOp::RmsNorm { eps: eps as f32 },
            vec![Access::Full, Access::Row],
            vec![node.outputs[0]],
        ),
        Op::Softmax { axis } if last_axis(axis) => (
            RowOp::Softmax { log: false },
            vec![Access::Full],
            vec![node.outputs[0]],
        ),
        Op::LogSoftmax { axis } if last_axis(axis) => (
            RowOp::Softmax { log: true },
            vec![Access::Full],
            vec![node.outputs[0]],
        ),
        _ => return None,
    };
    let name = GeneratedStep::symbol_for(
        &format!("kiln_row{}", kernels.len()),
        &access,
        outputs.len(),
    );
    kernels.push(GenKernel::Row(RowKernel {
        name: name.clone(),
        op,
    }));
    let gen = GeneratedStep {
        symbol: name,
        access,
        in_place: false,
        split: dims(g, node.outputs[0]).len().saturating_sub(1) as u32,
    };
    step(g, n, Kernel::Generated(gen), node.inputs.clone(), outputs)
}

fn conv(
    g: &Graph,
    n: NodeId,
    uses: &Uses,
    choices: &mut BTreeMap<NodeId, Choice>,
) -> Option<Choice> {
    let node = g.node(n);
    let Op::Conv {
        strides,
        pads,
        dilations,
        group,
    } = &node.op
    else {
        return None;
    };
    let (x, w) = (node.inputs[0], node.inputs[1]);
    let bias = node.inputs.get(2).copied();
    let wd = dims(g, w);
    if !f32(g, x)
        || !f32(g, w)
        || !is_weight(g, w)
        || !(3..=4).contains(&wd.len())
        || bias.is_some_and(|b| !f32(g, b) || dims(g, b).len() != 1)
    {
        return None;
    }
    let w_shape: Vec<u64> = wd
        .iter()
        .map(|d| d.as_known().and_then(|v| u64::try_from(v).ok()))
        .collect::<Option<_>>()?;
    let mut out = node.outputs[0];
    let mut activation = Activation::None;
    if let Some(c) = uses.sole_consumer(out) {
        if g.node(c).op == Op::Unary(UnaryOp::Relu) {
            activation = Activation::Relu;
            choices.insert(c, Choice::Absorbed);
            out = g.node(c).outputs[0];
        }
    }
    let step = kiln_runtime::plan::ConvStep {
        offset: 0,
        len: 0,
        w_shape,
        strides: strides.clone(),
        pads: pads.clone(),
        dilations: dilations.clone(),
        group: *group,
        bias: bias.is_some(),
        activation,
    };
    // Refuse (fall back to the reference kernel) what the library kernel does not take.
    step.params(&step.packing_shape()).ok()?;
    let mut inputs = vec![x];
    inputs.extend(bias);
    Some(Choice::Step(Box::new(PendingStep {
        kernel: PendingKernel::PackedConv { w, step },
        inputs,
        outputs: vec![out],
        origin: origin(g, n),
    })))
}
