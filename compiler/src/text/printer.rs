//! The deterministic printer: nodes in topological order, node results renumbered `%0, %1, ...`
//! in print order, weights renumbered `@0, @1, ...` in order of first use (unused ones skipped).

use super::values::write_literal;
use super::{input_ref, quote, PrintOptions, FORMAT_VERSION};
use crate::error::{Error, Result};
use crate::ir::{Graph, ValueDef, ValueId, WeightId};
use std::collections::HashMap;
use std::fmt::Write as _;

fn unprintable(message: String) -> Error {
    Error::Graph {
        rule: "printable",
        message,
    }
}

/// How each value is referred to in the text.
struct Names<'g> {
    g: &'g Graph,
    results: HashMap<ValueId, usize>,
    weights: HashMap<ValueId, usize>,
    weight_order: Vec<(ValueId, WeightId)>,
}

impl Names<'_> {
    fn note_weight(&mut self, v: ValueId) {
        if !self.g.is_defined(v) {
            return;
        }
        if let ValueDef::Weight(w) = self.g.value(v).def {
            if !self.weights.contains_key(&v) {
                self.weights.insert(v, self.weight_order.len());
                self.weight_order.push((v, w));
            }
        }
    }

    fn show(&self, v: ValueId, user: &str) -> Result<String> {
        if !self.g.is_defined(v) {
            return Err(unprintable(format!(
                "{user} refers to value #{}, which no node defines",
                v.0
            )));
        }
        let value = self.g.value(v);
        match value.def {
            ValueDef::Input => Ok(input_ref(value.name.as_deref().unwrap_or(""))),
            ValueDef::Weight(_) => self
                .weights
                .get(&v)
                .map(|i| format!("@{i}"))
                .ok_or_else(|| unprintable(format!("{user} uses an unnumbered weight"))),
            ValueDef::Node { .. } => self
                .results
                .get(&v)
                .map(|i| format!("%{i}"))
                .ok_or_else(|| unprintable(format!("{user} uses a value before it is defined"))),
        }
    }
}

/// Prints `g` (see `docs/IR.md`).
pub(crate) fn print_graph(g: &Graph, opts: &PrintOptions) -> Result<String> {
    let order = g.topo_order()?;
    let mut names = Names {
        g,
        results: HashMap::new(),
        weights: HashMap::new(),
        weight_order: Vec::new(),
    };
    for &n in &order {
        for &v in &g.node(n).inputs {
            names.note_weight(v);
        }
    }
    for (_, v) in g.outputs() {
        names.note_weight(*v);
    }

    let mut out = format!("kir {FORMAT_VERSION}\ngraph {{\n");
    for &v in g.inputs() {
        let value = g.value(v);
        let name = value.name.as_deref().unwrap_or("");
        let _ = writeln!(out, "  input {}: {}", input_ref(name), value.ty);
    }
    for (i, &(v, w)) in names.weight_order.iter().enumerate() {
        let weight = g.weights().get(w);
        let _ = write!(
            out,
            "  weight @{i} {}: {} = ",
            quote(&weight.name),
            g.value(v).ty
        );
        match opts.inline_weight_limit {
            Some(limit) if weight.numel() > limit => out.push_str("opaque"),
            _ => write_literal(&mut out, weight)?,
        }
        out.push('\n');
    }
    for &n in &order {
        let node = g.node(n);
        let label = format!("node {} ({})", g.node_label(n), node.op.name());
        if node.outputs.is_empty() {
            return Err(unprintable(format!("{label} has no results")));
        }
        let operands = node
            .inputs
            .iter()
            .map(|&v| names.show(v, &label))
            .collect::<Result<Vec<_>>>()?;
        let mut results = Vec::new();
        for &v in &node.outputs {
            let i = names.results.len();
            names.results.insert(v, i);
            results.push(format!("%{i}"));
        }
        let _ = write!(
            out,
            "  {} = {}({})",
            results.join(", "),
            node.op.name(),
            operands.join(", ")
        );
        let attrs = node.op.attrs();
        if !attrs.is_empty() {
            let list: Vec<String> = attrs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let _ = write!(out, " {{{}}}", list.join(", "));
        }
        let types: Vec<String> = node
            .outputs
            .iter()
            .map(|&v| g.value(v).ty.to_string())
            .collect();
        let _ = writeln!(out, " : {}", types.join(", "));
    }
    for (name, v) in g.outputs() {
        let shown = names.show(*v, &format!("output {}", quote(name)))?;
        let _ = writeln!(out, "  output {} = {shown}", quote(name));
    }
    out.push_str("}\n");
    Ok(out)
}
