//! The e-graph language: one e-node per IR node, `(Key, children)`, with hashable op keys.
//!
//! `Op` holds f64 attributes, so it is neither `Eq` nor `Hash`. An [`OpKey`] pairs the op with
//! its `Debug` text, which spells every attribute exactly (Rust prints f64 in shortest
//! round-trip form), and compares, orders and hashes by that text only. Leaves name graph
//! inputs and weights by their original [`ValueId`] number; `Proj(i)` reads output `i` of a
//! multi-output op (Split, TopK); one `Outputs` node joins every graph output into one root.

use crate::ir::Op;
use egg::{Id, Language};
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// An op made hashable by its attribute text.
#[derive(Debug, Clone)]
pub struct OpKey {
    text: String,
    op: Op,
}

impl OpKey {
    /// Wraps an op.
    pub fn new(op: Op) -> OpKey {
        OpKey {
            text: format!("{op:?}"),
            op,
        }
    }

    /// The op.
    pub fn op(&self) -> &Op {
        &self.op
    }
}

impl PartialEq for OpKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for OpKey {}

impl Hash for OpKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialOrd for OpKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OpKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.text.cmp(&other.text)
    }
}

/// What an e-node is, apart from its children.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An IR op applied to its children.
    Op(OpKey),
    /// The graph input with this original value id (no children).
    Input(u32),
    /// The weight value with this original value id (no children).
    Weight(u32),
    /// Output `i` of the single child (a multi-output op).
    Proj(u32),
    /// The root: its children are the graph outputs, in order.
    Outputs,
}

/// An e-node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KNode {
    /// What it is.
    pub key: Key,
    /// Its operands (e-classes).
    pub children: Vec<Id>,
}

impl KNode {
    /// An op node.
    pub fn op(op: Op, children: Vec<Id>) -> KNode {
        KNode {
            key: Key::Op(OpKey::new(op)),
            children,
        }
    }

    /// A leaf or structural node.
    pub fn new(key: Key, children: Vec<Id>) -> KNode {
        KNode { key, children }
    }

    /// The IR op, if this is an op node.
    pub fn as_op(&self) -> Option<&Op> {
        match &self.key {
            Key::Op(k) => Some(k.op()),
            _ => None,
        }
    }
}

impl Language for KNode {
    type Discriminant = Key;

    fn discriminant(&self) -> Key {
        self.key.clone()
    }

    fn matches(&self, other: &Self) -> bool {
        self.key == other.key && self.children.len() == other.children.len()
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

/// The graph's e-graph type.
pub type KEGraph = egg::EGraph<KNode, super::analysis::KAnalysis>;

/// Every node of class `id` whose op satisfies `f`, with its children.
pub fn ops_in<'a>(
    eg: &'a KEGraph,
    id: Id,
    f: impl Fn(&Op) -> bool + 'a,
) -> impl Iterator<Item = (&'a Op, &'a [Id])> + 'a {
    eg[id]
        .nodes
        .iter()
        .filter_map(move |n| n.as_op().filter(|op| f(op)).map(|op| (op, &n.children[..])))
}
