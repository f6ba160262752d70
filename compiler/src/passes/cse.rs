//! Common-subexpression elimination: a node with the same op (attributes included) and the
//! same inputs as an earlier node is merged into it; the first one in topological order stays.

use super::replace_node;
use crate::error::Result;
use crate::ir::{Graph, NodeId, ValueId};
use std::collections::HashMap;

/// Merges duplicate nodes; returns how many were removed.
pub fn run(g: &mut Graph) -> Result<usize> {
    // Keyed by op name and inputs; inside a bucket ops are compared with IEEE float semantics
    // (`Op::same_values`: a NaN attribute never matches), not with `==` (floats by bits).
    let mut seen: HashMap<(&'static str, Vec<ValueId>), Vec<NodeId>> = HashMap::new();
    let mut merged = 0;
    for n in g.topo_order()? {
        // Inputs are read now: earlier merges in this loop have already redirected them.
        let node = g.node(n);
        let key = (node.op.name(), node.inputs.clone());
        let bucket = seen.entry(key).or_default();
        let earlier = bucket
            .iter()
            .copied()
            .find(|&m| g.node(m).op.same_values(&node.op));
        match earlier {
            Some(m) => {
                let with = g.node(m).outputs.clone();
                replace_node(g, n, &with);
                merged += 1;
            }
            None => bucket.push(n),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DType, Dim, Op, PadMode, Shape, TensorType};

    fn input(g: &mut Graph, dims: &[i64]) -> ValueId {
        g.add_input("x", TensorType::new(DType::F32, Shape::known(dims)))
    }

    #[test]
    fn multi_output_nodes_merge_output_by_output() {
        let mut g = Graph::new();
        let x = input(&mut g, &[4]);
        let split = Op::Split {
            axis: 0,
            sizes: vec![Dim::known(1), Dim::known(3)],
        };
        let a = g.add_node(split.clone(), &[x]).unwrap();
        let b = g.add_node(split, &[x]).unwrap();
        g.add_output("a1", a[1]);
        g.add_output("b0", b[0]);
        g.add_output("b1", b[1]);
        assert_eq!(run(&mut g).unwrap(), 1);
        let outs: Vec<ValueId> = g.outputs().iter().map(|o| o.1).collect();
        assert_eq!(outs, vec![a[1], a[0], a[1]]);
        crate::verify(&g).unwrap();
    }

    #[test]
    fn nodes_without_inputs_merge_when_their_attributes_agree() {
        let mut g = Graph::new();
        input(&mut g, &[1]);
        let dims = |v: i64| Op::Dims {
            values: vec![Dim::known(v)],
        };
        let a = g.add_node(dims(2), &[]).unwrap()[0];
        let b = g.add_node(dims(2), &[]).unwrap()[0];
        let c = g.add_node(dims(3), &[]).unwrap()[0];
        g.add_output("a", a);
        g.add_output("b", b);
        g.add_output("c", c);
        assert_eq!(run(&mut g).unwrap(), 1);
        assert_eq!(g.num_nodes(), 2);
    }

    #[test]
    fn float_attributes_that_are_nan_never_match() {
        let mut g = Graph::new();
        let x = input(&mut g, &[2]);
        let pad = Op::Pad {
            pads: vec![1, 1],
            mode: PadMode::Constant,
            value: f64::NAN,
        };
        let a = g.add_node(pad.clone(), &[x]).unwrap()[0];
        let b = g.add_node(pad, &[x]).unwrap()[0];
        g.add_output("a", a);
        g.add_output("b", b);
        assert_eq!(run(&mut g).unwrap(), 0);
        assert_eq!(g.num_nodes(), 2);
    }
}
