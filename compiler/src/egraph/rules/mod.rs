//! Fusion rules, one file per fused op. Each rule is a named egg [`Rewrite`] whose searcher
//! and applier are one [`Fusion`]: a matcher function that, given an e-class, returns the
//! [`Recipe`]s equal to it (after checking its guards against the analysis). A recipe is a
//! short list of nodes whose last one is the fused op; the others are the glue it needs
//! (a transpose of K, a reshape of a 3-D operand to 4-D, the sum of two bias terms). The
//! searcher reports a class when the matcher finds something; the applier re-runs the
//! matcher, adds each recipe's nodes checking every one type-checks, and unions the last one
//! with the class only when its type is the class's own.
//!
//! Matchers also explain themselves: a structural match that a guard rejects is recorded in
//! the [`Diag`] passed in (ignored during saturation, collected for the fusion report).
//!
//! Matching helpers below follow canonical ids (`find`) so they work between rebuilds.

pub mod attention;
pub mod attention_mask;
pub mod attention_qkv;
pub mod gelu;
pub mod layer_norm;
pub mod matmul_bias;
pub mod poly;
pub mod rms_norm;
pub mod skip_layer_norm;

use super::analysis::KAnalysis;
use super::lang::{ops_in, KEGraph, KNode};
use crate::ir::infer::infer_types;
use crate::ir::{BinaryOp, DType, Op, ReduceOp, TensorType, UnaryOp};
use egg::{Applier, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};

/// An operand of a recipe node: an existing e-class or an earlier node of the same recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// An e-class of the e-graph.
    Class(Id),
    /// The recipe's node at this index.
    Node(usize),
}

/// What a recipe node is: an op, or output `i` of a multi-output op.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// An IR op over its operands.
    Op(Op),
    /// Output `i` of the single operand (a multi-output op).
    Proj(u32),
}

/// Nodes to add in order; the last equals the matched class. `also` lists further equalities
/// (recipe node, existing class) — a multi-output fused op also replaces a value beside the
/// matched one (the residual sum of a skip layer norm).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recipe {
    nodes: Vec<(Step, Vec<Arg>)>,
    also: Vec<(usize, Id)>,
}

impl Recipe {
    /// A recipe of one node over existing classes.
    pub fn one(op: Op, children: &[Id]) -> Recipe {
        let mut r = Recipe::default();
        r.push(op, children.iter().map(|&c| Arg::Class(c)).collect());
        r
    }

    /// Appends an op node; returns it as an operand for later nodes.
    pub fn push(&mut self, op: Op, args: Vec<Arg>) -> Arg {
        self.nodes.push((Step::Op(op), args));
        Arg::Node(self.nodes.len() - 1)
    }

    /// Appends output `i` of recipe node `of`; returns it as an operand.
    pub fn proj(&mut self, of: Arg, i: u32) -> Arg {
        self.nodes.push((Step::Proj(i), vec![of]));
        Arg::Node(self.nodes.len() - 1)
    }

    /// Declares that recipe node `node` also equals class `class`.
    pub fn also(&mut self, node: Arg, class: Id) {
        if let Arg::Node(i) = node {
            self.also.push((i, class));
        }
    }

    /// The fused op: the last op node.
    pub fn root_op(&self) -> Option<&Op> {
        self.nodes.iter().rev().find_map(|(s, _)| match s {
            Step::Op(op) => Some(op),
            Step::Proj(_) => None,
        })
    }

    /// Adds the nodes; returns the class of each, or None when a node does not type-check
    /// (nothing is unioned then; added nodes stay as unused classes).
    fn add(&self, eg: &mut KEGraph) -> Option<Vec<Id>> {
        let mut ids: Vec<Id> = Vec::with_capacity(self.nodes.len());
        for (step, args) in &self.nodes {
            let children: Vec<Id> = args
                .iter()
                .map(|a| match *a {
                    Arg::Class(c) => Some(eg.find(c)),
                    Arg::Node(i) => ids.get(i).copied(),
                })
                .collect::<Option<_>>()?;
            let node = match step {
                Step::Op(op) => {
                    let node = KNode::op(op.clone(), children);
                    let ins: Option<Vec<TensorType>> = node
                        .children
                        .iter()
                        .map(|&c| eg[c].data.ty().cloned())
                        .collect();
                    infer_types(op, &ins?).ok()?;
                    node
                }
                Step::Proj(i) => {
                    let [c] = children.as_slice() else {
                        return None;
                    };
                    eg[*c].data.tys.get(*i as usize)?;
                    KNode::new(super::lang::Key::Proj(*i), children)
                }
            };
            ids.push(eg.add(node));
        }
        Some(ids)
    }
}

/// Pushes `r` unless an equal recipe is already in `out`.
pub fn push_unique(out: &mut Vec<Recipe>, r: Recipe) {
    if !out.contains(&r) {
        out.push(r);
    }
}

/// A structural match that a guard rejected: the class and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    /// The class that would have been fused.
    pub class: Id,
    /// The failed guard, in words.
    pub reason: String,
}

/// Where matchers record rejected candidates.
#[derive(Debug, Default)]
pub struct Diag {
    enabled: bool,
    /// The rejected candidates, in the order found.
    pub misses: Vec<Miss>,
}

impl Diag {
    /// A sink that keeps what it is told.
    pub fn recording() -> Diag {
        Diag {
            enabled: true,
            misses: Vec::new(),
        }
    }

    /// A sink that drops everything (during saturation).
    pub fn off() -> Diag {
        Diag::default()
    }

    /// Records that `class` matched structurally but `reason` stopped the fusion.
    pub fn miss(&mut self, class: Id, reason: impl FnOnce() -> String) {
        if self.enabled {
            let m = Miss {
                class,
                reason: reason(),
            };
            if !self.misses.contains(&m) {
                self.misses.push(m);
            }
        }
    }
}

/// A matcher: the recipes equal to class `id`, with rejected candidates told to the `Diag`.
pub type Matcher = fn(&KEGraph, Id, &mut Diag) -> Vec<Recipe>;

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
        if limit == 0 || (self.matcher)(egraph, eclass, &mut Diag::off()).is_empty() {
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
        let Some(want) = egraph[eclass].data.ty().cloned() else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for recipe in (self.matcher)(egraph, eclass, &mut Diag::off()) {
            let Some(ids) = recipe.add(egraph) else {
                continue;
            };
            let Some(&id) = ids.last() else { continue };
            if egraph[id].data.ty() != Some(&want) {
                continue;
            }
            let extra_ok = recipe.also.iter().all(|&(i, c)| {
                ids.get(i).is_some_and(|&n| {
                    egraph[n].data.ty().is_some() && egraph[n].data.ty() == egraph[c].data.ty()
                })
            });
            if !extra_ok {
                continue;
            }
            if egraph.union(eclass, id) {
                changed.push(id);
            }
            for &(i, c) in &recipe.also {
                if egraph.union(c, ids[i]) {
                    changed.push(ids[i]);
                }
            }
        }
        changed
    }
}

/// Every rule as `(name, fused pattern name, matcher)`.
pub const RULES: [(&str, &str, Matcher); 7] = [
    ("ln-fuse", "LayerNorm", layer_norm::ln_fuse),
    ("rms-fuse", "RmsNorm", rms_norm::rms_fuse),
    ("gelu-erf-fuse", "Gelu", gelu::gelu_erf_fuse),
    ("gelu-tanh-fuse", "Gelu", gelu::gelu_tanh_fuse),
    ("attention-fuse", "Attention", attention::attention_fuse),
    (
        "matmul-bias-fuse",
        "MatMulBias",
        matmul_bias::matmul_bias_fuse,
    ),
    ("skip-ln-fuse", "LayerNorm", skip_layer_norm::skip_ln_fuse),
];

/// Every fusion rule, by name.
pub fn all() -> Vec<Rewrite<KNode, KAnalysis>> {
    RULES
        .into_iter()
        .filter_map(|(name, _, matcher)| {
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

/// `(operand, axes)` of the keepdims mean reductions in class `id`.
pub fn means(eg: &KEGraph, id: Id) -> Vec<(Id, Vec<i64>)> {
    ops_in(eg, id, |o| {
        matches!(
            o,
            Op::Reduce {
                op: ReduceOp::Mean,
                keepdims: true,
                ..
            }
        )
    })
    .filter_map(|(op, c)| match (op, c) {
        (Op::Reduce { axes, .. }, [x]) => Some((eg.find(*x), axes.clone())),
        _ => None,
    })
    .collect()
}

/// True when `axes` is exactly the last axis of class `x`.
pub fn is_last_axis(eg: &KEGraph, x: Id, axes: &[i64]) -> bool {
    let Some(rank) = ty(eg, x).map(|t| t.rank() as i64) else {
        return false;
    };
    matches!(axes, [a] if rank > 0 && (*a == -1 || *a == rank - 1))
}

/// Operands of the mean reductions in class `id` over exactly the last axis with keepdims.
pub fn mean_last(eg: &KEGraph, id: Id) -> Vec<Id> {
    means(eg, id)
        .into_iter()
        .filter(|(x, axes)| is_last_axis(eg, *x, axes))
        .map(|(x, _)| x)
        .collect()
}

/// `(operand, target dtype)` of the cast nodes in class `id`.
pub fn casts(eg: &KEGraph, id: Id) -> Vec<(Id, DType)> {
    ops_in(eg, id, |o| matches!(o, Op::Cast { .. }))
        .filter_map(|(op, c)| match (op, c) {
            (Op::Cast { to }, [x]) => Some((eg.find(*x), *to)),
            _ => None,
        })
        .collect()
}

/// Class `id` itself, then the operand of each cast in it (`x` and the `y` of `x = cast(y)`).
pub fn through_cast(eg: &KEGraph, id: Id) -> Vec<Id> {
    let mut out = vec![eg.find(id)];
    out.extend(casts(eg, id).into_iter().map(|(x, _)| x));
    out
}

/// `(op, operands)` of the nodes in class `id` whose op satisfies `f`.
pub fn nodes(eg: &KEGraph, id: Id, f: impl Fn(&Op) -> bool) -> Vec<(Op, Vec<Id>)> {
    ops_in(eg, id, f)
        .map(|(op, c)| (op.clone(), c.iter().map(|&x| eg.find(x)).collect()))
        .collect()
}

/// The dtype of class `id`.
pub fn dtype(eg: &KEGraph, id: Id) -> Option<DType> {
    ty(eg, id).map(|t| t.dtype)
}

/// True when `a` and `b` are the same e-class.
pub fn same(eg: &KEGraph, a: Id, b: Id) -> bool {
    eg.find(a) == eg.find(b)
}
