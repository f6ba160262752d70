//! Constant folding: a node whose inputs are all weights (at most [`MAX_FOLD_ELEMENTS`] elements
//! in all, and as many in its outputs) is evaluated with the reference interpreter's `eval_op`
//! and replaced by new weights. Ops whose attributes hold symbols fold only when they evaluate
//! with no symbol bindings (the symbols are bound per run, so such nodes usually stay).

use super::replace_node;
use crate::error::Result;
use crate::interp::eval_op;
use crate::ir::{Bindings, Graph, NodeId, ValueDef, ValueId, Weight};
use kiln_runtime::Tensor;
use std::collections::BTreeSet;

/// The most elements a folded node may read, and the most it may produce.
pub const MAX_FOLD_ELEMENTS: usize = 1 << 20;

/// Folds every foldable node; returns how many were replaced by weights.
pub fn run(g: &mut Graph) -> Result<usize> {
    let mut names: BTreeSet<String> = g.weights().iter().map(|(_, w)| w.name.clone()).collect();
    let mut folded = 0;
    for n in g.topo_order()? {
        let Some(outs) = evaluate(g, n) else {
            continue;
        };
        // Named after the node, else after the op and the weight it was computed from
        // (`transpose(mlp.w1)`), so the artifact's weights say where they came from.
        let node = g.node(n);
        let source = node.inputs.iter().find_map(|&v| match g.value(v).def {
            ValueDef::Weight(w) => Some(g.weights().get(w).name.clone()),
            _ => None,
        });
        let base = match (&node.name, source) {
            (Some(name), _) => format!("{name}.folded"),
            (None, Some(w)) => format!("{}({w})", node.op.name()),
            (None, None) => format!("{}.folded.{}", node.op.name(), n.0),
        };
        let values: Vec<ValueId> = outs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let stem = if outs.len() == 1 {
                    base.clone()
                } else {
                    format!("{base}.{i}")
                };
                let mut name = stem.clone();
                let mut k = 1;
                while names.contains(&name) {
                    name = format!("{stem}.{k}");
                    k += 1;
                }
                names.insert(name.clone());
                g.add_weight(Weight::from_tensor(name, t))
            })
            .collect();
        replace_node(g, n, &values);
        folded += 1;
    }
    Ok(folded)
}

/// The outputs of node `n` when every input is a weight with data, the sizes are small, the
/// op evaluates with empty bindings and the results match the declared (concrete) types.
fn evaluate(g: &Graph, n: NodeId) -> Option<Vec<Tensor>> {
    let node = g.node(n);
    let mut total = 0usize;
    let mut args = Vec::with_capacity(node.inputs.len());
    for &v in &node.inputs {
        let ValueDef::Weight(w) = g.value(v).def else {
            return None;
        };
        let w = g.weights().get(w);
        if w.blocks().is_some() {
            // Folding would store the result as f32: a block-quantized weight stays as it is
            // for the GEMM that reads it.
            return None;
        }
        total = total.checked_add(w.numel())?;
        if total > MAX_FOLD_ELEMENTS {
            return None;
        }
        args.push(w.to_tensor().ok()?);
    }
    let none = Bindings::new();
    let mut produced = 0usize;
    for &v in &node.outputs {
        let shape = g.value(v).ty.shape.eval(&none).ok()?;
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        produced = produced.checked_add(n)?;
    }
    if produced > MAX_FOLD_ELEMENTS {
        return None;
    }
    let refs: Vec<&Tensor> = args.iter().collect();
    let outs = eval_op(&node.op, &refs, &none).ok()?;
    if outs.len() != node.outputs.len() {
        return None;
    }
    for (t, &v) in outs.iter().zip(&node.outputs) {
        let ty = &g.value(v).ty;
        let want = ty.shape.eval(&none).ok()?;
        if t.dtype() != ty.dtype || t.shape() != want.as_slice() {
            return None;
        }
    }
    Some(outs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{BinaryOp, DType, Dim, Op, Shape, TensorType, UnaryOp};

    fn weight(g: &mut Graph, name: &str, n: usize) -> ValueId {
        let t = Tensor::from_f32(vec![n], (0..n).map(|i| i as f32).collect()).unwrap();
        g.add_weight(Weight::from_tensor(name, &t))
    }

    #[test]
    fn multi_output_nodes_fold_to_one_weight_per_output() {
        let mut g = Graph::new();
        g.add_input("x", TensorType::new(DType::F32, Shape::known(&[1])));
        let w = weight(&mut g, "w", 4);
        let split = Op::Split {
            axis: 0,
            sizes: vec![Dim::known(1), Dim::known(3)],
        };
        let parts = g.add_node(split, &[w]).unwrap();
        g.add_output("head", parts[0]);
        g.add_output("tail", parts[1]);
        assert_eq!(run(&mut g).unwrap(), 1);
        assert_eq!(g.num_nodes(), 0);
        let names: Vec<&str> = g.weights().iter().map(|(_, w)| w.name.as_str()).collect();
        assert_eq!(names, ["w", "split(w).0", "split(w).1"]);
        crate::verify(&g).unwrap();
    }

    #[test]
    fn folded_names_do_not_collide() {
        let mut g = Graph::new();
        g.add_input("x", TensorType::new(DType::F32, Shape::known(&[1])));
        let w = weight(&mut g, "neg(w)", 2);
        let y = g.add_node(Op::Unary(UnaryOp::Neg), &[w]).unwrap()[0];
        let w2 = weight(&mut g, "w", 2);
        let z = g.add_node(Op::Unary(UnaryOp::Neg), &[w2]).unwrap()[0];
        g.add_output("y", y);
        g.add_output("z", z);
        assert_eq!(run(&mut g).unwrap(), 2);
        let names: Vec<&str> = g.weights().iter().map(|(_, w)| w.name.as_str()).collect();
        assert_eq!(names, ["neg(w)", "w", "neg(neg(w))", "neg(w).1"]);
    }

    #[test]
    fn large_or_opaque_weights_are_not_folded() {
        let mut g = Graph::new();
        g.add_input("x", TensorType::new(DType::F32, Shape::known(&[1])));
        let big = weight(&mut g, "big", MAX_FOLD_ELEMENTS / 2 + 1);
        let sum = g.add_node(Op::Binary(BinaryOp::Add), &[big, big]).unwrap()[0];
        let opaque = g.add_weight(Weight::opaque("o", DType::F32, vec![2]));
        let neg = g.add_node(Op::Unary(UnaryOp::Neg), &[opaque]).unwrap()[0];
        g.add_output("sum", sum);
        g.add_output("neg", neg);
        assert_eq!(run(&mut g).unwrap(), 0);
        assert_eq!(g.num_nodes(), 2);
    }
}
