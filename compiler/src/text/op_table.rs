//! The per-op attribute table, one function per direction: op → `(name, value)` list in a fixed
//! order (every field, no defaults), and op name + attribute fields → op. Field names and order
//! follow the variants in `ir/op.rs`.

use super::attrs::{AttrValue as A, Fields};
use crate::ir::{
    ArgOp, BinaryOp, DType, Dim, GeluApprox, Op, PadMode, ReduceOp, ScatterReduction, UnaryOp,
};

fn ints(v: &[i64]) -> A {
    A::List(v.iter().map(|&x| A::Int(x)).collect())
}

fn dims(v: &[Dim]) -> A {
    A::List(v.iter().cloned().map(A::Dim).collect())
}

/// Every attribute of `op`, in print order.
pub(crate) fn op_attrs(op: &Op) -> Vec<(&'static str, A)> {
    match op {
        Op::Unary(_) | Op::Binary(_) | Op::Where | Op::MatMul | Op::MatMulBias => vec![],
        Op::Cast { to } => vec![("to", A::Ident(to.name()))],
        Op::Reduce { axes, keepdims, .. } => {
            vec![("axes", ints(axes)), ("keepdims", A::Bool(*keepdims))]
        }
        Op::ArgReduce {
            axis,
            keepdims,
            select_last,
            ..
        } => vec![
            ("axis", A::Int(*axis)),
            ("keepdims", A::Bool(*keepdims)),
            ("select_last", A::Bool(*select_last)),
        ],
        Op::Softmax { axis }
        | Op::LogSoftmax { axis }
        | Op::Concat { axis }
        | Op::Gather { axis }
        | Op::GatherElements { axis } => vec![("axis", A::Int(*axis))],
        Op::Conv {
            strides,
            pads,
            dilations,
            group,
        } => vec![
            ("strides", ints(strides)),
            ("pads", ints(pads)),
            ("dilations", ints(dilations)),
            ("group", A::Int(*group)),
        ],
        Op::ConvTranspose {
            strides,
            pads,
            dilations,
            group,
            output_padding,
        } => vec![
            ("strides", ints(strides)),
            ("pads", ints(pads)),
            ("dilations", ints(dilations)),
            ("group", A::Int(*group)),
            ("output_padding", ints(output_padding)),
        ],
        Op::Pool {
            kernel,
            strides,
            pads,
            dilations,
            ceil_mode,
            count_include_pad,
            ..
        } => vec![
            ("kernel", ints(kernel)),
            ("strides", ints(strides)),
            ("pads", ints(pads)),
            ("dilations", ints(dilations)),
            ("ceil_mode", A::Bool(*ceil_mode)),
            ("count_include_pad", A::Bool(*count_include_pad)),
        ],
        Op::Reshape { shape } | Op::Expand { shape } => vec![("shape", dims(shape))],
        Op::Transpose { perm } => vec![("perm", ints(perm))],
        Op::Slice {
            axes,
            starts,
            ends,
            steps,
        } => vec![
            ("axes", ints(axes)),
            ("starts", dims(starts)),
            ("ends", dims(ends)),
            ("steps", ints(steps)),
        ],
        Op::Split { axis, sizes } => vec![("axis", A::Int(*axis)), ("sizes", dims(sizes))],
        Op::Pad { pads, mode, value } => vec![
            ("pads", ints(pads)),
            ("mode", A::Ident(mode.name())),
            ("value", A::Float(*value)),
        ],
        Op::Range {
            start,
            limit,
            delta,
            dtype,
        } => vec![
            ("start", A::Dim(start.clone())),
            ("limit", A::Dim(limit.clone())),
            ("delta", A::Dim(delta.clone())),
            ("dtype", A::Ident(dtype.name())),
        ],
        Op::Dims { values } => vec![("values", dims(values))],
        Op::Tile { repeats } => vec![("repeats", ints(repeats))],
        Op::Trilu { upper, k } => vec![("upper", A::Bool(*upper)), ("k", A::Int(*k))],
        Op::CumSum {
            axis,
            exclusive,
            reverse,
        }
        | Op::CumProd {
            axis,
            exclusive,
            reverse,
        } => vec![
            ("axis", A::Int(*axis)),
            ("exclusive", A::Bool(*exclusive)),
            ("reverse", A::Bool(*reverse)),
        ],
        Op::TopK {
            k,
            axis,
            largest,
            sorted,
        } => vec![
            ("k", A::Int(*k)),
            ("axis", A::Int(*axis)),
            ("largest", A::Bool(*largest)),
            ("sorted", A::Bool(*sorted)),
        ],
        Op::ScatterElements { axis, reduction } => vec![
            ("axis", A::Int(*axis)),
            ("reduction", A::Ident(reduction.name())),
        ],
        Op::ScatterND { reduction } => vec![("reduction", A::Ident(reduction.name()))],
        Op::ShapeOf { start, end } => vec![
            ("start", A::Int(*start)),
            ("end", end.map_or(A::None, A::Int)),
        ],
        Op::LayerNorm { axis, eps } | Op::SkipLayerNorm { axis, eps } => {
            vec![("axis", A::Int(*axis)), ("eps", A::Float(*eps))]
        }
        Op::RmsNorm { eps } => vec![("eps", A::Float(*eps))],
        Op::Gelu { approx } => vec![("approx", A::Ident(approx.name()))],
        Op::Attention {
            heads,
            kv_heads,
            scale,
            causal,
            bias,
            mask,
            rotary,
        } => vec![
            ("heads", A::Int(i64::from(*heads))),
            ("kv_heads", A::Int(i64::from(*kv_heads))),
            ("scale", A::Float(*scale)),
            ("causal", A::Bool(*causal)),
            ("bias", A::Bool(*bias)),
            ("mask", A::Bool(*mask)),
            ("rotary", A::Bool(*rotary)),
        ],
    }
}

/// The op called `name` with its fields read from `f`; `None` for an unknown op name.
/// Problems with the fields are recorded in `f` (see [`Fields::finish`]).
pub(crate) fn build_op(name: &str, f: &mut Fields<'_>) -> Option<Op> {
    if let Some(u) = UnaryOp::from_name(name) {
        return Some(Op::Unary(u));
    }
    if let Some(b) = BinaryOp::from_name(name) {
        return Some(Op::Binary(b));
    }
    if let Some(op) = name.strip_prefix("reduce_").and_then(ReduceOp::from_name) {
        return Some(Op::Reduce {
            op,
            axes: f.ints("axes"),
            keepdims: f.boolean("keepdims"),
        });
    }
    if let Some(op) = ArgOp::from_name(name) {
        return Some(Op::ArgReduce {
            op,
            axis: f.int("axis"),
            keepdims: f.boolean("keepdims"),
            select_last: f.boolean("select_last"),
        });
    }
    Some(match name {
        "where" => Op::Where,
        "matmul" => Op::MatMul,
        "matmul_bias" => Op::MatMulBias,
        "cast" => Op::Cast {
            to: f.word("to", &DType::ALL, DType::name),
        },
        "softmax" => Op::Softmax {
            axis: f.int("axis"),
        },
        "log_softmax" => Op::LogSoftmax {
            axis: f.int("axis"),
        },
        "concat" => Op::Concat {
            axis: f.int("axis"),
        },
        "gather" => Op::Gather {
            axis: f.int("axis"),
        },
        "gather_elements" => Op::GatherElements {
            axis: f.int("axis"),
        },
        "conv" => Op::Conv {
            strides: f.ints("strides"),
            pads: f.ints("pads"),
            dilations: f.ints("dilations"),
            group: f.int("group"),
        },
        "conv_transpose" => Op::ConvTranspose {
            strides: f.ints("strides"),
            pads: f.ints("pads"),
            dilations: f.ints("dilations"),
            group: f.int("group"),
            output_padding: f.ints("output_padding"),
        },
        "max_pool" | "avg_pool" => Op::Pool {
            kind: if name == "max_pool" {
                crate::ir::PoolKind::Max
            } else {
                crate::ir::PoolKind::Avg
            },
            kernel: f.ints("kernel"),
            strides: f.ints("strides"),
            pads: f.ints("pads"),
            dilations: f.ints("dilations"),
            ceil_mode: f.boolean("ceil_mode"),
            count_include_pad: f.boolean("count_include_pad"),
        },
        "reshape" => Op::Reshape {
            shape: f.dims("shape"),
        },
        "expand" => Op::Expand {
            shape: f.dims("shape"),
        },
        "transpose" => Op::Transpose {
            perm: f.ints("perm"),
        },
        "slice" => Op::Slice {
            axes: f.ints("axes"),
            starts: f.dims("starts"),
            ends: f.dims("ends"),
            steps: f.ints("steps"),
        },
        "split" => Op::Split {
            axis: f.int("axis"),
            sizes: f.dims("sizes"),
        },
        "pad" => Op::Pad {
            pads: f.ints("pads"),
            mode: f.word("mode", PadMode::ALL, PadMode::name),
            value: f.float("value"),
        },
        "range" => Op::Range {
            start: f.dim("start"),
            limit: f.dim("limit"),
            delta: f.dim("delta"),
            dtype: f.word("dtype", &DType::ALL, DType::name),
        },
        "dims" => Op::Dims {
            values: f.dims("values"),
        },
        "tile" => Op::Tile {
            repeats: f.ints("repeats"),
        },
        "trilu" => Op::Trilu {
            upper: f.boolean("upper"),
            k: f.int("k"),
        },
        "cumsum" => Op::CumSum {
            axis: f.int("axis"),
            exclusive: f.boolean("exclusive"),
            reverse: f.boolean("reverse"),
        },
        "cumprod" => Op::CumProd {
            axis: f.int("axis"),
            exclusive: f.boolean("exclusive"),
            reverse: f.boolean("reverse"),
        },
        "topk" => Op::TopK {
            k: f.int("k"),
            axis: f.int("axis"),
            largest: f.boolean("largest"),
            sorted: f.boolean("sorted"),
        },
        "scatter_elements" => Op::ScatterElements {
            axis: f.int("axis"),
            reduction: f.word("reduction", ScatterReduction::ALL, ScatterReduction::name),
        },
        "scatter_nd" => Op::ScatterND {
            reduction: f.word("reduction", ScatterReduction::ALL, ScatterReduction::name),
        },
        "shape_of" => Op::ShapeOf {
            start: f.int("start"),
            end: f.opt_int("end"),
        },
        "layer_norm" => Op::LayerNorm {
            axis: f.int("axis"),
            eps: f.float("eps"),
        },
        "skip_layer_norm" => Op::SkipLayerNorm {
            axis: f.int("axis"),
            eps: f.float("eps"),
        },
        "rms_norm" => Op::RmsNorm {
            eps: f.float("eps"),
        },
        "gelu" => Op::Gelu {
            approx: f.word("approx", GeluApprox::ALL, GeluApprox::name),
        },
        "attention" => Op::Attention {
            heads: f.uint32("heads"),
            kv_heads: f.uint32("kv_heads"),
            scale: f.float("scale"),
            causal: f.boolean("causal"),
            bias: f.boolean("bias"),
            mask: f.boolean("mask"),
            rotary: f.boolean("rotary"),
        },
        _ => return None,
    })
}
