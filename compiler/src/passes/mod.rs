//! Canonicalization passes that run over the IR graph before the e-graph optimizer: dead-code
//! elimination, common-subexpression elimination, constant folding and no-op simplification,
//! iterated to a fixed point and verified afterwards.

pub mod cse;
pub mod dce;
pub mod fold;
pub mod kv_states;
pub mod simplify;

use crate::error::Result;
use crate::ir::{Graph, NodeId, Op, ValueId};

/// The most rounds [`canonicalize`] runs before it stops looking for a fixed point.
pub const MAX_ROUNDS: usize = 16;

/// What [`canonicalize`] did: node counts and the work of each pass, summed over the rounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Nodes before the passes.
    pub nodes_before: usize,
    /// Nodes after the passes.
    pub nodes_after: usize,
    /// Rounds run (the last one changed nothing unless [`MAX_ROUNDS`] was reached).
    pub rounds: usize,
    /// Nodes removed by dead-code elimination.
    pub dce: usize,
    /// Nodes merged into an identical earlier node.
    pub cse: usize,
    /// Nodes replaced by a new weight.
    pub fold: usize,
    /// Nodes removed or rewritten as no-ops or collapsed chains.
    pub simplify: usize,
}

impl PassStats {
    /// `(pass name, count)` for each pass, in the order they run.
    pub fn per_pass(&self) -> [(&'static str, usize); 4] {
        [
            ("simplify", self.simplify),
            ("fold", self.fold),
            ("cse", self.cse),
            ("dce", self.dce),
        ]
    }
}

/// Runs simplify, fold, CSE and DCE until a round changes nothing (at most [`MAX_ROUNDS`]),
/// then verifies the graph. Graph inputs and outputs (names, order, types) are unchanged.
pub fn canonicalize(g: &mut Graph) -> Result<PassStats> {
    let mut stats = PassStats {
        nodes_before: g.num_nodes(),
        ..PassStats::default()
    };
    for _ in 0..MAX_ROUNDS {
        stats.rounds += 1;
        let s = simplify::run(g)?;
        let f = fold::run(g)?;
        let c = cse::run(g)?;
        let d = dce::run(g);
        stats.simplify += s;
        stats.fold += f;
        stats.cse += c;
        stats.dce += d;
        if s + f + c + d == 0 {
            break;
        }
    }
    stats.nodes_after = g.num_nodes();
    crate::verify(g)?;
    Ok(stats)
}

/// Redirects every use of node `n`'s outputs to `with` (same length and types) and removes `n`.
pub(crate) fn replace_node(g: &mut Graph, n: NodeId, with: &[ValueId]) {
    let outs = g.node(n).outputs.clone();
    for (&old, &new) in outs.iter().zip(with) {
        g.replace_all_uses(old, new);
    }
    g.remove_node(n);
}

/// Adds `op(inputs)` and, when its output types equal those of node `n`, replaces `n` by it
/// (returns true); otherwise removes the new node again and leaves `n` alone.
pub(crate) fn rewrite_node(g: &mut Graph, n: NodeId, op: Op, inputs: &[ValueId]) -> bool {
    let Ok(new) = g.add_node(op, inputs) else {
        return false;
    };
    let same = {
        let old = &g.node(n).outputs;
        old.len() == new.len()
            && old
                .iter()
                .zip(&new)
                .all(|(&a, &b)| g.value(a).ty == g.value(b).ty)
    };
    if same {
        replace_node(g, n, &new);
    } else if let Some(crate::ir::ValueDef::Node { node, .. }) =
        new.first().map(|&v| g.value(v).def)
    {
        g.remove_node(node);
    }
    same
}
