//! Extraction with a DAG cost: each chosen e-node is paid once, however many consumers it has.
//!
//! Node cost: one kernel launch ([`KERNEL`]) per op node plus the bytes it moves (its operands
//! read and its result written, symbolic dims at [`NOMINAL_DIM`]) at [`PER_BYTE`]; leaves,
//! projections and the root are free. A fused node replaces a chain of kernels and the
//! round trips of its intermediates through memory, so it wins under both terms.
//!
//! Two steps (a greedy-DAG approximation, as in extraction-gym):
//! 1. per e-class the best node bottom-up by `node cost + Σ best child cost` (a fixpoint over
//!    all classes — a tree cost, which pays a shared child once per use);
//! 2. DAG refinement: walking the classes the choice reaches, a node is switched to an
//!    alternative that is cheaper on its own when every operand of the alternative is already
//!    computed by the choice (so it adds nothing else) and no cycle results — this is what
//!    picks a multi-output fused op's second output over recomputing it.
//!
//! [`dag_cost`] reports what a choice really costs: the sum over reachable chosen classes,
//! each once.

use super::lang::{KEGraph, KNode, Key};
use crate::error::{Error, Result};
use crate::ir::{Bindings, TensorType};
use egg::Id;
use std::collections::{HashMap, HashSet};

/// The cost of launching one kernel.
pub const KERNEL: f64 = 1.0;
/// The cost of moving one byte (one kernel ≈ moving 1 MiB).
pub const PER_BYTE: f64 = 1.0 / (1u64 << 20) as f64;
/// The value every symbolic dim takes when sizes are estimated.
pub const NOMINAL_DIM: i64 = 128;

/// The bytes of a value of type `t`, symbols at [`NOMINAL_DIM`] (0 when it cannot be sized).
fn bytes(t: &TensorType) -> f64 {
    let mut b = Bindings::new();
    for d in &t.shape.0 {
        for s in d.symbols() {
            b.insert(s, NOMINAL_DIM);
        }
    }
    let n: f64 = t
        .shape
        .0
        .iter()
        .map(|d| d.eval(&b).map_or(0.0, |v| v.max(0) as f64))
        .product();
    n * t.dtype.size() as f64
}

/// The cost of one e-node on its own: kernel launch plus bytes moved.
pub fn node_cost(eg: &KEGraph, n: &KNode) -> f64 {
    match n.key {
        Key::Op(_) => {
            let read: f64 = n
                .children
                .iter()
                .filter_map(|&c| eg[c].data.ty())
                .map(bytes)
                .sum();
            KERNEL + (read + written_bytes(eg, n)) * PER_BYTE
        }
        Key::Input(_) | Key::Weight(_) | Key::Proj(_) | Key::Outputs => 0.0,
    }
}

/// The bytes an op node writes (all its outputs).
fn written_bytes(eg: &KEGraph, n: &KNode) -> f64 {
    let Some(op) = n.as_op() else { return 0.0 };
    let ins: Option<Vec<TensorType>> = n
        .children
        .iter()
        .map(|&c| eg[c].data.ty().cloned())
        .collect();
    ins.and_then(|ins| crate::ir::infer::infer_types(op, &ins).ok())
        .map_or(0.0, |tys| tys.iter().map(bytes).sum())
}

/// Chooses one e-node per canonical e-class (classes that cannot be costed are left out).
pub fn choose(eg: &KEGraph) -> HashMap<Id, KNode> {
    let costs: HashMap<(Id, usize), f64> = eg
        .classes()
        .flat_map(|c| {
            c.nodes
                .iter()
                .enumerate()
                .map(move |(i, n)| ((c.id, i), node_cost(eg, n)))
        })
        .collect();
    let mut best: HashMap<Id, (f64, KNode)> = HashMap::new();
    let mut changed = true;
    while changed {
        changed = false;
        for class in eg.classes() {
            for (i, n) in class.nodes.iter().enumerate() {
                let mut total = costs[&(class.id, i)];
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
    let mut choice: HashMap<Id, KNode> = best.into_iter().map(|(id, (_, n))| (id, n)).collect();
    refine(eg, &mut choice);
    choice
}

/// The classes reachable from the roots of the choice (every class with an `Outputs` node).
fn reachable(eg: &KEGraph, choice: &HashMap<Id, KNode>) -> HashSet<Id> {
    let mut seen = HashSet::new();
    let mut stack: Vec<Id> = eg
        .classes()
        .filter(|c| c.nodes.iter().any(|n| n.key == Key::Outputs))
        .map(|c| c.id)
        .collect();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(n) = choice.get(&id) {
            stack.extend(n.children.iter().map(|&c| eg.find(c)));
        }
    }
    seen
}

/// True when class `from` reaches class `to` through the choice.
fn reaches(eg: &KEGraph, choice: &HashMap<Id, KNode>, from: Id, to: Id) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![from];
    while let Some(id) = stack.pop() {
        if id == to {
            return true;
        }
        if !seen.insert(id) {
            continue;
        }
        if let Some(n) = choice.get(&id) {
            stack.extend(n.children.iter().map(|&c| eg.find(c)));
        }
    }
    false
}

/// Step 2: switch reachable classes to nodes that are cheaper on their own and whose operands
/// the choice computes anyway.
fn refine(eg: &KEGraph, choice: &mut HashMap<Id, KNode>) {
    for _ in 0..4 {
        let live = reachable(eg, choice);
        let mut ids: Vec<Id> = live.iter().copied().collect();
        ids.sort();
        let mut switched = false;
        for id in ids {
            let Some(cur) = choice.get(&id) else { continue };
            let cur_cost = node_cost(eg, cur);
            let mut pick: Option<KNode> = None;
            for n in &eg[id].nodes {
                let c = node_cost(eg, n);
                if c >= cur_cost - 1e-12 || pick.as_ref().is_some_and(|p| node_cost(eg, p) <= c) {
                    continue;
                }
                let kids_live = n
                    .children
                    .iter()
                    .all(|&k| live.contains(&eg.find(k)) && choice.contains_key(&eg.find(k)));
                let acyclic = n
                    .children
                    .iter()
                    .all(|&k| !reaches(eg, choice, eg.find(k), id));
                if kids_live && acyclic {
                    pick = Some(n.clone());
                }
            }
            if let Some(n) = pick {
                choice.insert(id, n);
                switched = true;
            }
        }
        if !switched {
            break;
        }
    }
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
        total += node_cost(eg, n);
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
        assert_eq!(dag_cost(&eg, &choice, root).unwrap().floor(), 4.0);
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
        assert_eq!(dag_cost(&eg, &choice, root).unwrap().floor(), 1.0);
        let missing = dag_cost(&eg, &HashMap::new(), root);
        assert!(missing.is_err());
    }
}
