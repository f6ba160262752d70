//! Graph ↔ e-graph: every IR node becomes an op e-node (multi-output ops read through
//! `Proj(i)`), inputs and weights become leaves named by their value id, and an `Outputs`
//! node is the single root. Back from an extracted choice (one e-node per e-class), the graph
//! keeps its inputs (all of them, in order), the weights it still uses (in original order,
//! data shared, not copied) and its named outputs.

use super::analysis::KAnalysis;
use super::lang::{KEGraph, KNode, Key};
use crate::error::{Error, Result};
use crate::ir::{Graph, ValueDef, ValueId};
use egg::Id;
use std::collections::{BTreeSet, HashMap, HashSet};

fn err(message: String) -> Error {
    Error::Graph {
        rule: "egraph",
        message,
    }
}

/// Builds the e-graph of `g`; returns it with the root (`Outputs`) class.
pub fn to_egraph(g: &Graph) -> Result<(KEGraph, Id)> {
    let mut eg = KEGraph::new(KAnalysis::from_graph(g));
    let mut class: HashMap<ValueId, Id> = HashMap::new();
    let leaf = |eg: &mut KEGraph, v: ValueId| -> Result<Id> {
        let key = match g.value(v).def {
            ValueDef::Input => Key::Input(v.0),
            ValueDef::Weight(_) => Key::Weight(v.0),
            ValueDef::Node { .. } => {
                return Err(err(format!("value %{} used before definition", v.0)))
            }
        };
        Ok(eg.add(KNode::new(key, Vec::new())))
    };
    for n in g.topo_order()? {
        let node = g.node(n);
        let mut children = Vec::with_capacity(node.inputs.len());
        for &v in &node.inputs {
            let id = match class.get(&v) {
                Some(&id) => id,
                None => leaf(&mut eg, v)?,
            };
            children.push(id);
        }
        let id = eg.add(KNode::op(node.op.clone(), children));
        if node.outputs.len() == 1 {
            class.insert(node.outputs[0], id);
        } else {
            for (i, &v) in node.outputs.iter().enumerate() {
                let p = eg.add(KNode::new(Key::Proj(i as u32), vec![id]));
                class.insert(v, p);
            }
        }
    }
    let mut roots = Vec::with_capacity(g.outputs().len());
    for (_, v) in g.outputs() {
        let id = match class.get(v) {
            Some(&id) => id,
            None => leaf(&mut eg, *v)?,
        };
        roots.push(id);
    }
    let root = eg.add(KNode::new(Key::Outputs, roots));
    eg.rebuild();
    Ok((eg, root))
}

struct Builder<'a> {
    src: &'a Graph,
    eg: &'a KEGraph,
    choice: &'a HashMap<Id, KNode>,
    out: Graph,
    values: HashMap<Id, Vec<ValueId>>,
    leaves: HashMap<u32, ValueId>,
    visiting: HashSet<Id>,
}

impl Builder<'_> {
    fn pick(&self, id: Id) -> Result<&KNode> {
        let id = self.eg.find(id);
        self.choice
            .get(&id)
            .ok_or_else(|| err(format!("e-class {id} has no extracted node")))
    }

    /// Collects the weight leaves reachable from `root` through the choice.
    fn used_weights(&self, root: Id) -> Result<BTreeSet<u32>> {
        let mut seen = HashSet::new();
        let mut stack = vec![self.eg.find(root)];
        let mut used = BTreeSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let n = self.pick(id)?;
            if let Key::Weight(v) = n.key {
                used.insert(v);
            }
            stack.extend(n.children.iter().map(|&c| self.eg.find(c)));
        }
        Ok(used)
    }

    fn build(&mut self, id: Id) -> Result<Vec<ValueId>> {
        let id = self.eg.find(id);
        if let Some(v) = self.values.get(&id) {
            return Ok(v.clone());
        }
        if !self.visiting.insert(id) {
            return Err(err(format!(
                "extraction chose a cycle through e-class {id}"
            )));
        }
        let n = self.pick(id)?.clone();
        let mut ins = Vec::with_capacity(n.children.len());
        for &c in &n.children {
            ins.push(self.build(c)?);
        }
        let single = |ins: &[Vec<ValueId>], i: usize| -> Result<ValueId> {
            match ins.get(i).map(Vec::as_slice) {
                Some([v]) => Ok(*v),
                _ => Err(err(format!("operand {i} of e-class {id} is not one value"))),
            }
        };
        let vals = match &n.key {
            Key::Input(v) | Key::Weight(v) => {
                let v = self.leaves.get(v).copied();
                vec![v.ok_or_else(|| err(format!("leaf of e-class {id} is unknown")))?]
            }
            Key::Proj(i) => {
                let all = ins
                    .first()
                    .ok_or_else(|| err("projection without operand".into()))?;
                let v = all.get(*i as usize).copied();
                vec![v.ok_or_else(|| err(format!("projection {i} out of range")))?]
            }
            Key::Outputs => return Err(err("nested outputs node".into())),
            Key::Op(k) => {
                let args: Vec<ValueId> = (0..ins.len())
                    .map(|i| single(&ins, i))
                    .collect::<Result<_>>()?;
                self.out.add_node(k.clone(), &args)?
            }
        };
        self.visiting.remove(&id);
        self.values.insert(id, vals.clone());
        Ok(vals)
    }
}

/// Rebuilds a graph from `choice` (the chosen e-node of each canonical e-class) under `root`;
/// also returns the value(s) each built e-class became.
pub fn to_graph(
    src: &Graph,
    eg: &KEGraph,
    choice: &HashMap<Id, KNode>,
    root: Id,
) -> Result<(Graph, HashMap<Id, Vec<ValueId>>)> {
    let mut b = Builder {
        src,
        eg,
        choice,
        out: Graph::new(),
        values: HashMap::new(),
        leaves: HashMap::new(),
        visiting: HashSet::new(),
    };
    b.out.copy_input_limits(b.src);
    for &v in b.src.inputs() {
        let val = b.src.value(v);
        let name = val.name.clone().unwrap_or_else(|| format!("in{}", v.0));
        let nv = b.out.add_input(name, val.ty.clone());
        b.leaves.insert(v.0, nv);
    }
    for v in b.used_weights(root)? {
        if let ValueDef::Weight(w) = b.src.value(ValueId(v)).def {
            let nv = b.out.add_weight(b.src.weights().get(w).clone());
            b.leaves.insert(v, nv);
        }
    }
    let outs = b.pick(root)?.clone();
    if outs.key != Key::Outputs || outs.children.len() != src.outputs().len() {
        return Err(err("the root is not the outputs node".into()));
    }
    for ((name, _), &c) in src.outputs().iter().zip(&outs.children) {
        match b.build(c)?.as_slice() {
            [v] => b.out.add_output(name.clone(), *v),
            _ => return Err(err(format!("output `{name}` is not one value"))),
        }
    }
    Ok((b.out, b.values))
}
