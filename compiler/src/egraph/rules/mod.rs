//! Fusion rules, one file per fused op. Each rule is a named egg [`Rewrite`] whose searcher
//! and applier are one [`Fusion`]: a matcher function that, given an e-class, returns the
//! fused e-nodes equal to it (after checking its guards against the analysis). The searcher
//! reports a class when the matcher finds something; the applier re-runs the matcher, checks
//! that each fused node type-checks to the class's own type, adds it and unions it in.
//!
//! Matching helpers below follow canonical ids (`find`) so they work between rebuilds.

pub mod gelu;
pub mod layer_norm;

use super::analysis::KAnalysis;
use super::lang::{ops_in, KEGraph, KNode};
use crate::ir::infer::infer_types;
use crate::ir::{BinaryOp, Op, ReduceOp, TensorType, UnaryOp};
use egg::{Applier, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};

/// A matcher: the fused nodes equal to class `id`.
pub type Matcher = fn(&KEGraph, Id) -> Vec<KNode>;

/// A fusion rule's searcher and applier.
#[derive(Debug, Clone, Copy)]
pub struct Fusion {
    matcher: Matcher,
}

impl Searcher<KNode, KAnalysis> for Fusion {
    fn search_eclass_with_limit(
        &self,
        egraph: &KEGraph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, KNode>> {
        if limit == 0 || (self.matcher)(egraph, eclass).is_empty() {
            return None;
        }
        Some(SearchMatches {
            eclass,
            substs: vec![Subst::default()],
            ast: None,
        })
    }

    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
}

impl Applier<KNode, KAnalysis> for Fusion {
    fn apply_one(
        &self,
        egraph: &mut KEGraph,
        eclass: Id,
        _subst: &Subst,
        _ast: Option<&PatternAst<KNode>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let want = egraph[eclass].data.ty().cloned();
        let mut changed = Vec::new();
        for node in (self.matcher)(egraph, eclass) {
            if want.is_none() || node_type(egraph, &node) != want {
                continue;
            }
            let id = egraph.add(node);
            if egraph.union(eclass, id) {
                changed.push(id);
            }
        }
        changed
    }
}

/// Every fusion rule, by name.
pub fn all() -> Vec<Rewrite<KNode, KAnalysis>> {
    let named: [(&str, Matcher); 3] = [
        ("ln-fuse", layer_norm::ln_fuse),
        ("gelu-erf-fuse", gelu::gelu_erf_fuse),
        ("gelu-tanh-fuse", gelu::gelu_tanh_fuse),
    ];
    named
        .into_iter()
        .filter_map(|(name, matcher)| {
            let f = Fusion { matcher };
            Rewrite::new(name, f, f).ok()
        })
        .collect()
}

/// The single output type of a would-be node, when its operands' types are known and check.
pub fn node_type(eg: &KEGraph, n: &KNode) -> Option<TensorType> {
    let op = n.as_op()?;
    let ins: Option<Vec<TensorType>> = n
        .children
        .iter()
        .map(|&c| eg[c].data.ty().cloned())
        .collect();
    let mut out = infer_types(op, &ins?).ok()?;
    (out.len() == 1).then(|| out.remove(0))
}

/// The type of class `id`.
pub fn ty(eg: &KEGraph, id: Id) -> Option<&TensorType> {
    eg[id].data.ty()
}

/// Operand pairs of the `op` nodes in class `id`.
pub fn bin(eg: &KEGraph, id: Id, op: BinaryOp) -> Vec<(Id, Id)> {
    ops_in(eg, id, move |o| *o == Op::Binary(op))
        .filter_map(|(_, c)| match c {
            [a, b] => Some((eg.find(*a), eg.find(*b))),
            _ => None,
        })
        .collect()
}

/// Like [`bin`], with each pair also in swapped order (for commutative ops).
pub fn comm(eg: &KEGraph, id: Id, op: BinaryOp) -> Vec<(Id, Id)> {
    bin(eg, id, op)
        .into_iter()
        .flat_map(|(a, b)| [(a, b), (b, a)])
        .collect()
}

/// Operands of the `op` nodes in class `id`.
pub fn un(eg: &KEGraph, id: Id, op: UnaryOp) -> Vec<Id> {
    ops_in(eg, id, move |o| *o == Op::Unary(op))
        .filter_map(|(_, c)| match c {
            [a] => Some(eg.find(*a)),
            _ => None,
        })
        .collect()
}

/// Operands of the mean reductions in class `id` over exactly the last axis with keepdims.
pub fn mean_last(eg: &KEGraph, id: Id) -> Vec<Id> {
    ops_in(
        eg,
        id,
        |o| matches!(o, Op::Reduce { op: ReduceOp::Mean, keepdims: true, axes } if axes.len() == 1),
    )
    .filter_map(|(op, c)| {
        let (Op::Reduce { axes, .. }, [x]) = (op, c) else {
            return None;
        };
        let rank = ty(eg, *x)?.rank() as i64;
        let last = axes[0] == -1 || (rank > 0 && axes[0] == rank - 1);
        last.then(|| eg.find(*x))
    })
    .collect()
}

/// True when `a` and `b` are the same e-class.
pub fn same(eg: &KEGraph, a: Id, b: Id) -> bool {
    eg.find(a) == eg.find(b)
}
