//! The dataflow graph: nodes on a petgraph `StableDiGraph` (edges producer → consumer), values
//! and weights addressed by typed `u32` ids.

use super::infer::infer_types;
use super::op::Op;
use super::types::TensorType;
use super::weights::{Weight, WeightId, WeightStore};
use super::InputLimits;
use crate::error::{Error, Result};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::{BTreeSet, HashMap};

/// Id of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// Id of a value (a graph input, a weight, or a node output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl NodeId {
    fn index(self) -> NodeIndex<u32> {
        NodeIndex::new(self.0 as usize)
    }
}

/// An operation applied to values.
#[derive(Debug, Clone)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Operand values, in order.
    pub inputs: Vec<ValueId>,
    /// Result values, in order.
    pub outputs: Vec<ValueId>,
    /// The name it had in the source model, if any (for error messages).
    pub name: Option<String>,
}

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueDef {
    /// A graph input.
    Input,
    /// A weight.
    Weight(WeightId),
    /// Output `index` of a node.
    Node {
        /// The producer.
        node: NodeId,
        /// Which of its outputs.
        index: u32,
    },
}

/// A typed value.
#[derive(Debug, Clone)]
pub struct Value {
    /// Its type.
    pub ty: TensorType,
    /// Its definition.
    pub def: ValueDef,
    /// Its name (graph inputs always have one).
    pub name: Option<String>,
}

/// A typed dataflow graph with named inputs and outputs.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    dag: StableDiGraph<Node, u32, u32>,
    values: Vec<Value>,
    inputs: Vec<ValueId>,
    outputs: Vec<(String, ValueId)>,
    weights: WeightStore,
    /// What the model accepts beyond the input types, by input name (set by frontends that know
    /// it; carried into the plan and checked when a run binds its inputs).
    input_limits: std::collections::BTreeMap<String, InputLimits>,
    /// Persistent tensors as `(input name, output name)`: the output is the input's value for
    /// the next run (a key/value cache and its `cache_write`); see [`Graph::add_state`].
    states: Vec<(String, String)>,
}

/// No limits, for inputs without any.
static NO_LIMITS: InputLimits = InputLimits {
    max_dims: Vec::new(),
    values: None,
};

impl Graph {
    /// Declares what input `name` accepts beyond its type (replacing earlier limits).
    pub fn set_input_limits(&mut self, name: &str, limits: InputLimits) {
        if limits.is_empty() {
            self.input_limits.remove(name);
        } else {
            self.input_limits.insert(name.to_string(), limits);
        }
    }

    /// The limits of input `name` (empty when none were declared).
    pub fn input_limits(&self, name: &str) -> &InputLimits {
        self.input_limits.get(name).unwrap_or(&NO_LIMITS)
    }

    /// Takes every input's limits and the state pairs from `src` (a graph with the same input
    /// and output names).
    pub fn copy_input_limits(&mut self, src: &Graph) {
        self.input_limits = src.input_limits.clone();
        self.states = src.states.clone();
    }

    /// Declares input `input` a state whose next value is output `output` (same type): a
    /// compiled plan keeps it in the caller's state buffers instead of copying it in and out,
    /// and writes it in place when `output` is a `cache_write` of `input`. The interpreter
    /// treats both as the ordinary input and output they are.
    pub fn add_state(&mut self, input: impl Into<String>, output: impl Into<String>) {
        self.states.push((input.into(), output.into()));
    }

    /// The `(input name, output name)` state pairs, in declaration order.
    pub fn states(&self) -> &[(String, String)] {
        &self.states
    }

    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    fn new_value(&mut self, ty: TensorType, def: ValueDef, name: Option<String>) -> ValueId {
        self.values.push(Value { ty, def, name });
        ValueId(self.values.len() as u32 - 1)
    }

    /// Adds a named graph input.
    pub fn add_input(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        let v = self.new_value(ty, ValueDef::Input, Some(name.into()));
        self.inputs.push(v);
        v
    }

    /// Adds a weight to the store and returns the value that refers to it.
    pub fn add_weight(&mut self, w: Weight) -> ValueId {
        let shape = super::types::Shape(
            w.shape
                .iter()
                .map(|&d| super::dim::Dim::known(d as i64))
                .collect(),
        );
        let ty = TensorType::new(w.dtype, shape);
        let name = w.name.clone();
        let id = self.weights.add(w);
        self.new_value(ty, ValueDef::Weight(id), Some(name))
    }

    /// Adds a node, inferring its output types; fails when the inputs do not type-check.
    pub fn add_node(&mut self, op: Op, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        for &v in inputs {
            if v.0 as usize >= self.values.len() {
                return Err(Error::Graph {
                    rule: "def-before-use",
                    message: format!("value #{} does not exist", v.0),
                });
            }
        }
        let tys: Vec<TensorType> = inputs
            .iter()
            .map(|&v| self.values[v.0 as usize].ty.clone())
            .collect();
        let out = infer_types(&op, &tys)?;
        Ok(self.add_node_typed(op, inputs, out, None))
    }

    /// Adds a node with given output types (not checked here: run [`crate::verify`]).
    /// Input ids must exist.
    pub fn add_node_typed(
        &mut self,
        op: Op,
        inputs: &[ValueId],
        out: Vec<TensorType>,
        name: Option<String>,
    ) -> Vec<ValueId> {
        let idx = self.dag.add_node(Node {
            op,
            inputs: inputs.to_vec(),
            outputs: Vec::new(),
            name,
        });
        let id = NodeId(idx.index() as u32);
        let outputs: Vec<ValueId> = out
            .into_iter()
            .enumerate()
            .map(|(i, ty)| {
                self.new_value(
                    ty,
                    ValueDef::Node {
                        node: id,
                        index: i as u32,
                    },
                    None,
                )
            })
            .collect();
        self.dag[idx].outputs = outputs.clone();
        for (slot, &v) in inputs.iter().enumerate() {
            if let ValueDef::Node { node, .. } = self.values[v.0 as usize].def {
                self.dag.add_edge(node.index(), idx, slot as u32);
            }
        }
        outputs
    }

    /// Declares `v` as the graph output `name` (outputs keep their declaration order).
    pub fn add_output(&mut self, name: impl Into<String>, v: ValueId) {
        self.outputs.push((name.into(), v));
    }

    /// Graph inputs, in order.
    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }

    /// Graph outputs `(name, value)`, in order.
    pub fn outputs(&self) -> &[(String, ValueId)] {
        &self.outputs
    }

    /// The weight store.
    pub fn weights(&self) -> &WeightStore {
        &self.weights
    }

    /// A value by id.
    pub fn value(&self, v: ValueId) -> &Value {
        &self.values[v.0 as usize]
    }

    /// Number of values ever created.
    pub fn num_values(&self) -> usize {
        self.values.len()
    }

    /// A node by id.
    pub fn node(&self, n: NodeId) -> &Node {
        &self.dag[n.index()]
    }

    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.dag.node_count()
    }

    /// Every node id, in insertion order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.dag.node_indices().map(|i| NodeId(i.index() as u32))
    }

    /// A label for messages: the node's source name, or `#id`.
    pub fn node_label(&self, n: NodeId) -> String {
        match &self.node(n).name {
            Some(name) => format!("`{name}`"),
            None => format!("#{}", n.0),
        }
    }

    /// Nodes that consume an output of `n` (each once).
    pub fn successors(&self, n: NodeId) -> BTreeSet<NodeId> {
        self.dag
            .edges_directed(n.index(), Direction::Outgoing)
            .map(|e| NodeId(e.target().index() as u32))
            .collect()
    }

    /// Nodes in a deterministic topological order: among ready nodes, the lowest id first
    /// (so a graph built in a valid order keeps it). Fails on a cycle, naming a node on it.
    pub fn topo_order(&self) -> Result<Vec<NodeId>> {
        let mut indegree: HashMap<NodeIndex<u32>, usize> = HashMap::new();
        for n in self.dag.node_indices() {
            indegree.insert(n, self.dag.edges_directed(n, Direction::Incoming).count());
        }
        let mut ready: BTreeSet<u32> = indegree
            .iter()
            .filter(|(_, &d)| d == 0)
            .map(|(n, _)| n.index() as u32)
            .collect();
        let mut order = Vec::with_capacity(indegree.len());
        while let Some(n) = ready.pop_first() {
            order.push(NodeId(n));
            for e in self
                .dag
                .edges_directed(NodeIndex::new(n as usize), Direction::Outgoing)
            {
                let d = indegree.get_mut(&e.target()).map(|d| {
                    *d -= 1;
                    *d
                });
                if d == Some(0) {
                    ready.insert(e.target().index() as u32);
                }
            }
        }
        if order.len() != indegree.len() {
            let stuck = indegree
                .iter()
                .filter(|(_, &d)| d > 0)
                .map(|(n, _)| n.index() as u32)
                .min()
                .unwrap_or(0);
            let node = NodeId(stuck);
            return Err(Error::Verify {
                node: self.node_label(node),
                op: self.node(node).op.name(),
                rule: "acyclic",
                message: "the node depends on its own output through a cycle".to_string(),
            });
        }
        Ok(order)
    }

    /// Replaces input `slot` of node `n` by value `v` (keeping the edges in sync).
    pub fn set_input(&mut self, n: NodeId, slot: usize, v: ValueId) {
        let idx = n.index();
        let old = self.dag[idx].inputs[slot];
        if let ValueDef::Node { node, .. } = self.values[old.0 as usize].def {
            let edge = self
                .dag
                .edges_connecting(node.index(), idx)
                .find(|e| *e.weight() == slot as u32)
                .map(|e| e.id());
            if let Some(e) = edge {
                self.dag.remove_edge(e);
            }
        }
        self.dag[idx].inputs[slot] = v;
        if let ValueDef::Node { node, .. } = self.values[v.0 as usize].def {
            self.dag.add_edge(node.index(), idx, slot as u32);
        }
    }

    /// Replaces every use of `old` (node inputs and graph outputs) by `new`.
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        let users: Vec<(NodeId, usize)> = self
            .node_ids()
            .flat_map(|n| {
                self.node(n)
                    .inputs
                    .iter()
                    .enumerate()
                    .filter(|(_, &v)| v == old)
                    .map(move |(s, _)| (n, s))
            })
            .collect();
        for (n, s) in users {
            self.set_input(n, s, new);
        }
        for o in &mut self.outputs {
            if o.1 == old {
                o.1 = new;
            }
        }
    }

    /// Removes a node (its output values stay allocated but become dangling; do this only for
    /// nodes whose outputs are unused).
    pub fn remove_node(&mut self, n: NodeId) -> Option<Node> {
        self.dag.remove_node(n.index())
    }

    /// True when the value is defined: an input, a weight, or an output of an existing node.
    pub fn is_defined(&self, v: ValueId) -> bool {
        match self.values.get(v.0 as usize).map(|x| x.def) {
            Some(ValueDef::Node { node, .. }) => self.dag.contains_node(node.index()),
            Some(_) => true,
            None => false,
        }
    }

    /// Every symbol that appears in a graph input's shape.
    pub fn input_symbols(&self) -> BTreeSet<String> {
        self.inputs
            .iter()
            .flat_map(|&v| self.value(v).ty.shape.0.iter().flat_map(|d| d.symbols()))
            .collect()
    }
}
