//! The e-graph language: one e-node per IR node, `(Key, children)`. Leaves name graph inputs
//! and weights by their original [`ValueId`] number; `Proj(i)` reads output `i` of a
//! multi-output op (Split, TopK); one `Outputs` node joins every graph output into one root.
//!
//! Ops are `Eq + Hash` (f64 attributes by their bits). [`Key`]'s order, which decides the
//! order of nodes in an e-class and so extraction's tie-breaks, compares two ops by their
//! `Debug` text, as the text-keyed op wrapper this replaced did.

use crate::ir::Op;
use egg::{Id, Language};
use std::cmp::Ordering;

/// What an e-node is, apart from its children.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// An IR op applied to its children.
    Op(Op),
    /// The graph input with this original value id (no children).
    Input(u32),
    /// The weight value with this original value id (no children).
    Weight(u32),
    /// Output `i` of the single child (a multi-output op).
    Proj(u32),
    /// The root: its children are the graph outputs, in order.
    Outputs,
}

impl Key {
    /// The variant's position and number, for ordering keys that are not both ops.
    fn rank(&self) -> (u8, u32) {
        match self {
            Key::Op(_) => (0, 0),
            Key::Input(i) => (1, *i),
            Key::Weight(i) => (2, *i),
            Key::Proj(i) => (3, *i),
            Key::Outputs => (4, 0),
        }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::Op(a), Key::Op(b)) if a == b => Ordering::Equal,
            (Key::Op(a), Key::Op(b)) => format!("{a:?}").cmp(&format!("{b:?}")),
            _ => self.rank().cmp(&other.rank()),
        }
    }
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
            key: Key::Op(op),
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
            Key::Op(op) => Some(op),
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
