//! The IR verifier: def-before-use, acyclicity, arity, types and shapes per op, graph interface.

use super::graph::{Graph, ValueDef};
use super::infer::infer_types;
use crate::error::{Error, Result};
use std::collections::BTreeSet;

/// Checks every invariant of a graph; the error names the node and the violated rule.
pub fn verify(g: &Graph) -> Result<()> {
    let mut names = BTreeSet::new();
    for &v in g.inputs() {
        let name = g.value(v).name.clone().unwrap_or_default();
        if !names.insert(name.clone()) {
            return Err(Error::Graph {
                rule: "unique-names",
                message: format!("input `{name}` is declared twice"),
            });
        }
    }
    let mut out_names = BTreeSet::new();
    for (name, v) in g.outputs() {
        if !out_names.insert(name.clone()) {
            return Err(Error::Graph {
                rule: "unique-names",
                message: format!("output `{name}` is declared twice"),
            });
        }
        if !g.is_defined(*v) {
            return Err(Error::Graph {
                rule: "def-before-use",
                message: format!("output `{name}` refers to a value that no node defines"),
            });
        }
    }
    if g.outputs().is_empty() {
        return Err(Error::Graph {
            rule: "has-outputs",
            message: "the graph declares no outputs".to_string(),
        });
    }
    let mut state_inputs = BTreeSet::new();
    for (input, output) in g.states() {
        let fail = |message: String| Error::Graph {
            rule: "states",
            message,
        };
        let vi = g
            .inputs()
            .iter()
            .copied()
            .find(|&v| g.value(v).name.as_deref() == Some(input.as_str()))
            .ok_or_else(|| fail(format!("state `{input}` is not a graph input")))?;
        let vo = g
            .outputs()
            .iter()
            .find(|(n, _)| n == output)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                fail(format!(
                    "state `{input}`'s update `{output}` is not a graph output"
                ))
            })?;
        if g.value(vi).ty != g.value(vo).ty {
            return Err(fail(format!(
                "state `{input}` has type {}, its update `{output}` {}",
                g.value(vi).ty,
                g.value(vo).ty
            )));
        }
        if !state_inputs.insert(input.clone()) {
            return Err(fail(format!("state `{input}` is declared twice")));
        }
    }
    let bound = g.input_symbols();
    let order = g.topo_order()?;
    for n in order {
        let node = g.node(n);
        let fail = |rule: &'static str, message: String| Error::Verify {
            node: g.node_label(n),
            op: node.op.name(),
            rule,
            message,
        };
        for (slot, &v) in node.inputs.iter().enumerate() {
            if !g.is_defined(v) {
                return Err(fail(
                    "def-before-use",
                    format!("input {slot} refers to a value that no node defines"),
                ));
            }
            if let ValueDef::Node { node: p, .. } = g.value(v).def {
                if p == n {
                    return Err(fail(
                        "acyclic",
                        format!("input {slot} is the node's own output"),
                    ));
                }
            }
        }
        let (min, max) = node.op.arity();
        let count = node.inputs.len();
        if count < min || max.is_some_and(|m| count > m) {
            let want = match max {
                Some(m) if m == min => format!("{min}"),
                Some(m) => format!("{min} to {m}"),
                None => format!("at least {min}"),
            };
            return Err(fail("arity", format!("takes {want} inputs, has {count}")));
        }
        if let Some(s) = node
            .op
            .attr_dims()
            .into_iter()
            .flat_map(|d| d.symbols())
            .find(|s| !bound.contains(s))
        {
            return Err(fail(
                "bound-symbols",
                format!("an attribute uses symbol `{s}`, which no graph input's shape defines"),
            ));
        }
        let tys: Vec<_> = node.inputs.iter().map(|&v| g.value(v).ty.clone()).collect();
        let inferred = infer_types(&node.op, &tys).map_err(|e| fail("types", e.to_string()))?;
        if inferred.len() != node.outputs.len() {
            return Err(fail(
                "types",
                format!(
                    "produces {} outputs, has {}",
                    inferred.len(),
                    node.outputs.len()
                ),
            ));
        }
        for (i, (want, &v)) in inferred.iter().zip(&node.outputs).enumerate() {
            let have = &g.value(v).ty;
            if want != have {
                return Err(fail(
                    "types",
                    format!("output {i} is declared {have} but the op gives {want}"),
                ));
            }
            for d in &have.shape.0 {
                if let Some(s) = d.symbols().into_iter().find(|s| !bound.contains(s)) {
                    return Err(fail(
                        "bound-symbols",
                        format!(
                            "output {i} uses symbol `{s}`, which no graph input's shape defines"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
