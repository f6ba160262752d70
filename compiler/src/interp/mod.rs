//! The reference interpreter: the one executable definition of every op. It runs any verified
//! graph on host tensors, favouring obviousness over speed; every rewrite and backend is tested
//! against it.

mod attention;
mod conv;
mod elementwise;
mod fused;
mod linalg;
mod movement;
mod reduce;
mod scatter;
mod special;
mod topk;
pub mod util;

use crate::error::{Error, Result};
use crate::ir::{Bindings, Graph, Op, ValueDef, ValueId};
use kiln_runtime::Tensor;
use std::collections::{BTreeMap, HashMap};
use util::KResult;

/// Binds the symbols in the graph's input shapes from the given tensors, checking names,
/// dtypes, ranks and known dims. Extra or missing inputs are errors that list the expected ones.
pub fn bind_inputs(g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<Bindings> {
    let expected: Vec<String> = g
        .inputs()
        .iter()
        .map(|&v| g.value(v).name.clone().unwrap_or_default())
        .collect();
    let list = || {
        expected
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for name in inputs.keys() {
        if !expected.contains(name) {
            return Err(Error::Input {
                name: name.clone(),
                message: format!("is not a graph input (expected {})", list()),
            });
        }
    }
    let mut b = Bindings::new();
    let mut compound = Vec::new();
    for (name, &v) in expected.iter().zip(g.inputs()) {
        let t = inputs.get(name).ok_or_else(|| Error::Input {
            name: name.clone(),
            message: format!("is missing (expected {})", list()),
        })?;
        let ty = &g.value(v).ty;
        if t.dtype() != ty.dtype {
            return Err(Error::Input {
                name: name.clone(),
                message: format!("has dtype {}, expected {}", t.dtype(), ty.dtype),
            });
        }
        if t.rank() != ty.rank() {
            return Err(Error::Input {
                name: name.clone(),
                message: format!(
                    "has shape {:?} (rank {}), expected {} (rank {})",
                    t.shape(),
                    t.rank(),
                    ty.shape,
                    ty.rank()
                ),
            });
        }
        for (axis, (d, &actual)) in ty.shape.0.iter().zip(t.shape()).enumerate() {
            if let Some(s) = d.as_sym() {
                match b.get(s) {
                    Some(&prev) if prev != actual as i64 => {
                        return Err(Error::Input {
                            name: name.clone(),
                            message: format!("dim {axis} is {actual}, but `{s}` is already {prev} from an earlier input"),
                        })
                    }
                    _ => {
                        b.insert(s.to_string(), actual as i64);
                    }
                }
            } else {
                compound.push((name, axis, d, actual));
            }
        }
    }
    for (name, axis, d, actual) in compound {
        let want = d.eval(&b).map_err(|e| Error::Input {
            name: name.clone(),
            message: format!("dim {axis} ({d}): {e}"),
        })?;
        if want != actual as i64 {
            return Err(Error::Input {
                name: name.clone(),
                message: format!("dim {axis} is {actual}, expected {d} = {want}"),
            });
        }
    }
    Ok(b)
}

/// Runs a graph on named inputs and returns the named outputs in declaration order.
pub fn run(g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<Vec<(String, Tensor)>> {
    let b = bind_inputs(g, inputs)?;
    let mut env: HashMap<ValueId, Tensor> = HashMap::new();
    for &v in g.inputs() {
        let name = g.value(v).name.clone().unwrap_or_default();
        if let Some(t) = inputs.get(&name) {
            env.insert(v, t.clone());
        }
    }
    let fetch = |env: &HashMap<ValueId, Tensor>, v: ValueId| -> Result<Tensor> {
        if let Some(t) = env.get(&v) {
            return Ok(t.clone());
        }
        match g.value(v).def {
            ValueDef::Weight(w) => g.weights().get(w).to_tensor(),
            _ => Err(Error::Graph {
                rule: "def-before-use",
                message: format!("value #{} was never computed", v.0),
            }),
        }
    };
    for n in g.topo_order()? {
        let node = g.node(n);
        let args: Vec<Tensor> = node
            .inputs
            .iter()
            .map(|&v| fetch(&env, v))
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = args.iter().collect();
        let fail = |message: String| Error::Eval {
            node: g.node_label(n),
            op: node.op.name(),
            message,
        };
        let outs = eval_op(&node.op, &refs, &b).map_err(fail)?;
        if outs.len() != node.outputs.len() {
            return Err(fail(format!(
                "produced {} outputs, expected {}",
                outs.len(),
                node.outputs.len()
            )));
        }
        for (t, &v) in outs.into_iter().zip(&node.outputs) {
            let ty = &g.value(v).ty;
            let want = ty.shape.eval(&b).map_err(|e| fail(e.to_string()))?;
            if t.shape() != want.as_slice() || t.dtype() != ty.dtype {
                return Err(fail(format!(
                    "produced {}{:?}, but its type says {} = {}{:?}",
                    t.dtype(),
                    t.shape(),
                    ty,
                    ty.dtype,
                    want
                )));
            }
            env.insert(v, t);
        }
    }
    g.outputs()
        .iter()
        .map(|(name, v)| Ok((name.clone(), fetch(&env, *v)?)))
        .collect()
}

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
        } => one(conv::conv(
            arg(0)?,
            arg(1)?,
            x.get(2).copied(),
            strides,
            pads,
            dilations,
            *group,
        )),
        Op::ConvTranspose {
            strides,
            pads,
            dilations,
            group,
            output_padding,
        } => one(conv::conv_transpose(
            arg(0)?,
            arg(1)?,
            x.get(2).copied(),
            strides,
            pads,
            dilations,
            *group,
            output_padding,
        )),
        Op::Pool {
            kind,
            kernel,
            strides,
            pads,
            dilations,
            ceil_mode,
            count_include_pad,
        } => one(conv::pool(
            arg(0)?,
            *kind,
            kernel,
            strides,
            pads,
            dilations,
            *ceil_mode,
            *count_include_pad,
        )),
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
    }
}
