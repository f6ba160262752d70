//! The reference kernels: the one executable definition of every op, on host tensors, favouring
//! obviousness over speed. The compiler's interpreter walks a graph over them, the CPU executor
//! falls back to them for ops without a fast kernel, and every rewrite and backend is tested
//! against them.

mod attention;
pub(crate) mod cache;
mod conv;
mod elementwise;
mod fused;
mod linalg;
mod movement;
pub(crate) use movement::slice_axis;
mod recurrent;
mod reduce;
mod scatter;
mod special;
mod topk;
pub mod util;

use crate::ops::{Bindings, Op};
use crate::Tensor;
use util::KResult;

/// Evaluates one op on concrete tensors. Inputs have been type-checked by the verifier, but
/// kernels still return errors (never panic) on inconsistent data such as out-of-range indices.
pub fn eval_op(op: &Op, x: &[&Tensor], b: &Bindings) -> KResult<Vec<Tensor>> {
    let one = |t: KResult<Tensor>| t.map(|t| vec![t]);
    let arg = |i: usize| {
        x.get(i)
            .copied()
            .ok_or_else(|| format!("missing input {i}"))
    };
    match op {
        Op::Unary(u) => one(elementwise::unary(*u, arg(0)?)),
        Op::Binary(o) => one(elementwise::binary(*o, arg(0)?, arg(1)?)),
        Op::Where => one(elementwise::where_(arg(0)?, arg(1)?, arg(2)?)),
        Op::Cast { to } => Ok(vec![arg(0)?.cast(*to)]),
        Op::Reduce { op, axes, keepdims } => one(reduce::reduce(*op, axes, *keepdims, arg(0)?)),
        Op::ArgReduce {
            op,
            axis,
            keepdims,
            select_last,
        } => one(reduce::arg_reduce(
            *op,
            *axis,
            *keepdims,
            *select_last,
            arg(0)?,
        )),
        Op::Softmax { axis } => one(reduce::softmax(arg(0)?, *axis, false)),
        Op::LogSoftmax { axis } => one(reduce::softmax(arg(0)?, *axis, true)),
        Op::CumSum {
            axis,
            exclusive,
            reverse,
        } => one(reduce::cumsum(arg(0)?, *axis, *exclusive, *reverse)),
        Op::CumProd {
            axis,
            exclusive,
            reverse,
        } => one(reduce::cumprod(arg(0)?, *axis, *exclusive, *reverse)),
        Op::TopK {
            k, axis, largest, ..
        } => topk::topk(arg(0)?, *k, *axis, *largest),
        Op::ScatterElements { axis, reduction } => one(scatter::scatter_elements(
            arg(0)?,
            arg(1)?,
            arg(2)?,
            *axis,
            *reduction,
        )),
        Op::ScatterND { reduction } => {
            one(scatter::scatter_nd(arg(0)?, arg(1)?, arg(2)?, *reduction))
        }
        Op::MatMul => one(linalg::matmul(arg(0)?, arg(1)?)),
        Op::Conv {
            strides,
            pads,
            dilations,
            group,
        } => {
            let win = conv::Window {
                strides,
                pads,
                dilations,
            };
            one(conv::conv(arg(0)?, arg(1)?, x.get(2).copied(), win, *group))
        }
        Op::ConvTranspose {
            strides,
            pads,
            dilations,
            group,
            output_padding,
        } => {
            let win = conv::Window {
                strides,
                pads,
                dilations,
            };
            let bias = x.get(2).copied();
            one(conv::conv_transpose(
                arg(0)?,
                arg(1)?,
                bias,
                win,
                *group,
                output_padding,
            ))
        }
        Op::Pool {
            kind,
            kernel,
            strides,
            pads,
            dilations,
            ceil_mode,
            count_include_pad,
        } => {
            let win = conv::Window {
                strides,
                pads,
                dilations,
            };
            one(conv::pool(
                arg(0)?,
                *kind,
                kernel,
                win,
                *ceil_mode,
                *count_include_pad,
            ))
        }
        Op::Reshape { shape } => one(movement::reshape(arg(0)?, shape, b)),
        Op::Transpose { perm } => one(movement::transpose(arg(0)?, perm)),
        Op::Expand { shape } => one(movement::expand(arg(0)?, shape, b)),
        Op::Slice {
            axes,
            starts,
            ends,
            steps,
        } => one(movement::slice(arg(0)?, axes, starts, ends, steps, b)),
        Op::Concat { axis } => one(movement::concat(x, *axis)),
        Op::Split { axis, sizes } => movement::split(arg(0)?, *axis, sizes, b),
        Op::Gather { axis } => one(movement::gather(arg(0)?, arg(1)?, *axis)),
        Op::GatherElements { axis } => one(movement::gather_elements(arg(0)?, arg(1)?, *axis)),
        Op::Pad { pads, mode, value } => one(movement::pad(arg(0)?, pads, *mode, *value)),
        Op::Range {
            start,
            limit,
            delta,
            dtype,
        } => one(movement::range(start, limit, delta, *dtype, b)),
        Op::Dims { values } => {
            let v = values
                .iter()
                .map(|d| d.eval(b).map_err(|e| format!("{d}: {e}")))
                .collect::<KResult<Vec<i64>>>()?;
            one(Tensor::from_i64(vec![v.len()], v).map_err(|e| e.to_string()))
        }
        Op::Tile { repeats } => one(movement::tile(arg(0)?, repeats)),
        Op::Trilu { upper, k } => one(movement::trilu(arg(0)?, *upper, *k)),
        Op::ShapeOf { start, end } => one(movement::shape_of(arg(0)?, *start, *end)),
        Op::LayerNorm { axis, eps } => one(fused::layer_norm(
            arg(0)?,
            arg(1)?,
            x.get(2).copied(),
            *axis,
            *eps,
        )),
        Op::SkipLayerNorm { axis, eps } => {
            fused::skip_layer_norm(arg(0)?, arg(1)?, arg(2)?, x.get(3).copied(), *axis, *eps)
        }
        Op::MatMulBias => one(fused::matmul_bias(arg(0)?, arg(1)?, arg(2)?)),
        Op::RmsNorm { eps } => one(fused::rms_norm(arg(0)?, arg(1)?, *eps)),
        Op::Gelu { approx } => one(fused::gelu(arg(0)?, *approx)),
        Op::Attention { .. } => one(fused::attention(op, x)),
        Op::Recurrent { .. } => recurrent::recurrent(op, x),
        Op::Rotary => one(cache::rotary_op(arg(0)?, arg(1)?, arg(2)?)),
        Op::CacheWrite { axis, at } => one(cache::cache_write(arg(0)?, arg(1)?, *axis, at, b)),
    }
}
