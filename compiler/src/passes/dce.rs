//! Dead-code elimination: removes every node none of whose outputs is needed, directly or
//! through other nodes, by a graph output.

use crate::ir::{Graph, NodeId, ValueDef};
use std::collections::BTreeSet;

/// Removes the nodes that no graph output depends on; returns how many were removed.
pub fn run(g: &mut Graph) -> usize {
    let mut live: BTreeSet<NodeId> = BTreeSet::new();
    let mut stack: Vec<NodeId> = g
        .outputs()
        .iter()
        .filter_map(|&(_, v)| match g.value(v).def {
            ValueDef::Node { node, .. } => Some(node),
            _ => None,
        })
        .collect();
    while let Some(n) = stack.pop() {
        if !live.insert(n) {
            continue;
        }
        for &v in &g.node(n).inputs {
            if let ValueDef::Node { node, .. } = g.value(v).def {
                if !live.contains(&node) {
                    stack.push(node);
                }
            }
        }
    }
    let dead: Vec<NodeId> = g.node_ids().filter(|n| !live.contains(n)).collect();
    for &n in &dead {
        g.remove_node(n);
    }
    dead.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DType, Dim, Op, Shape, TensorType, UnaryOp};

    fn ty(dims: &[i64]) -> TensorType {
        TensorType::new(DType::F32, Shape::known(dims))
    }

    #[test]
    fn a_multi_output_node_stays_when_one_output_is_used() {
        let mut g = Graph::new();
        let x = g.add_input("x", ty(&[4]));
        let split = Op::Split {
            axis: 0,
            sizes: vec![Dim::known(1), Dim::known(3)],
        };
        let parts = g.add_node(split, &[x]).unwrap();
        let unused = g.add_node(Op::Unary(UnaryOp::Exp), &[parts[0]]).unwrap()[0];
        g.add_node(Op::Unary(UnaryOp::Neg), &[unused]).unwrap();
        g.add_output("tail", parts[1]);
        assert_eq!(run(&mut g), 2);
        assert_eq!(g.num_nodes(), 1);
        crate::verify(&g).unwrap();
    }

    #[test]
    fn outputs_that_are_inputs_need_no_node() {
        let mut g = Graph::new();
        let x = g.add_input("x", ty(&[2]));
        g.add_node(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
        g.add_output("x_again", x);
        assert_eq!(run(&mut g), 1);
        assert_eq!(g.num_nodes(), 0);
        crate::verify(&g).unwrap();
    }

    #[test]
    fn a_graph_with_everything_live_is_unchanged() {
        let mut g = Graph::new();
        let x = g.add_input("x", ty(&[2]));
        let a = g.add_node(Op::Unary(UnaryOp::Exp), &[x]).unwrap()[0];
        let b = g.add_node(Op::Unary(UnaryOp::Neg), &[a]).unwrap()[0];
        g.add_output("a", a);
        g.add_output("b", b);
        assert_eq!(run(&mut g), 0);
        assert_eq!(g.num_nodes(), 2);
    }
}
