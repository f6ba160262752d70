//! Extraction with a DAG cost: each chosen e-node is paid once, however many consumers it has.
//!
//! Approximation (greedy, as extraction-gym's "greedy-dag" family): per e-class the best node
//! is chosen bottom-up by `node cost + Σ best child cost` (a fixpoint over all classes, so a
//! class is costed only once all children of one of its nodes are). That choice is a tree
//! cost; the result is then built by sharing every chosen class (see `convert::to_graph`), and
//! [`dag_cost`] reports what it really costs: the sum over reachable chosen classes, each
//! once. A fused node replaces a chain of kernels, so it wins under both measures unless an
//! intermediate of the chain has another consumer — in which case the tree cost may still
//! pick the fused node and the DAG keeps the shared intermediate too (never worse than one
//! extra kernel per shared intermediate).
//!
//! Node cost: one kernel launch (1.0) per op node; leaves, projections and the root are free.

use super::lang::{KEGraph, KNode, Key};
use crate::error::{Error, Result};
use egg::Id;
use std::collections::{HashMap, HashSet};

/// The cost of one e-node on its own.
pub fn node_cost(n: &KNode) -> f64 {
    match n.key {
        Key::Op(_) => 1.0,
        Key::Input(_) | Key::Weight(_) | Key::Proj(_) | Key::Outputs => 0.0,
    }
}

/// Chooses one e-node per canonical e-class (classes that cannot be costed are left out).
pub fn choose(eg: &KEGraph) -> HashMap<Id, KNode> {
    let mut best: HashMap<Id, (f64, KNode)> = HashMap::new();
    let mut changed = true;
    while changed {
        changed = false;
        for class in eg.classes() {
            for n in &class.nodes {
                let mut total = node_cost(n);
                let mut ok = true;
                for &c in &n.children {
                    match best.get(&eg.find(c)) {
                        Some((cc, _)) => total += cc,
                        None => {
                            ok = false;
                            break;
                        }
                    }
                }
                if !ok {
                    continue;
                }
                let better = match best.get(&class.id) {
                    Some((old, _)) => total < *old - 1e-9,
                    None => true,
                };
                if better {
                    best.insert(class.id, (total, n.clone()));
                    changed = true;
                }
            }
        }
    }
    best.into_iter().map(|(id, (_, n))| (id, n)).collect()
}

/// The DAG cost of the choice under `root`: every reachable chosen node paid once.
pub fn dag_cost(eg: &KEGraph, choice: &HashMap<Id, KNode>, root: Id) -> Result<f64> {
    let mut seen = HashSet::new();
    let mut stack = vec![eg.find(root)];
    let mut total = 0.0;
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let n = choice.get(&id).ok_or_else(|| Error::Graph {
            rule: "egraph",
            message: format!("e-class {id} has no extracted node"),
        })?;
        total += node_cost(n);
        stack.extend(n.children.iter().map(|&c| eg.find(c)));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egraph::convert::to_egraph;
    use crate::text::parse;

    const SHARED: &str = r#"kir 1
graph {
  input %x: f32[4]
  %0 = exp(%x) : f32[4]
  %1 = neg(%0) : f32[4]
  %2 = abs(%0) : f32[4]
  %3 = add(%1, %2) : f32[4]
  output "y" = %3
}
"#;

    #[test]
    fn shared_subexpression_is_paid_once() {
        let g = parse(SHARED).unwrap();
        let (eg, root) = to_egraph(&g).unwrap();
        let choice = choose(&eg);
        // exp, neg, abs, add: four kernels, exp counted once although used twice (the
        // tree cost would count it twice: 5).
        assert_eq!(dag_cost(&eg, &choice, root).unwrap(), 4.0);
    }

    #[test]
    fn cheaper_node_of_a_class_is_chosen() {
        let g = parse(SHARED).unwrap();
        let (mut eg, root) = to_egraph(&g).unwrap();
        // Claim y = exp(x) directly (not sound; only to test the choice).
        let x = eg.lookup(KNode::new(Key::Input(0), vec![])).unwrap();
        let e = eg.add(KNode::op(
            crate::ir::Op::Unary(crate::ir::UnaryOp::Exp),
            vec![x],
        ));
        let y = eg[root].nodes[0].children[0];
        eg.union(y, e);
        eg.rebuild();
        let choice = choose(&eg);
        assert_eq!(dag_cost(&eg, &choice, root).unwrap(), 1.0);
        let missing = dag_cost(&eg, &HashMap::new(), root);
        assert!(missing.is_err());
    }
}
