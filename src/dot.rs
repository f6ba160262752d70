//! Graphviz (`dot`) rendering of a graph for `kiln inspect --format dot`: one box per node
//! labelled with its op and attributes (fused ops filled), graph inputs and outputs as ellipses,
//! and one edge per operand labelled with the value's type. Weights are not drawn.

use kiln_compiler::ir::{Graph, Node, ValueDef, ValueId};
use std::fmt::Write;

/// Fill colour of the fused ops the optimizer introduces.
pub const FUSED_COLOR: &str = "#ffd27f";
/// Fill colour of graph inputs and outputs.
const IO_COLOR: &str = "#d9e8fb";
/// Attribute text longer than this is cut (with `…`) so labels stay readable.
const MAX_ATTRS: usize = 60;

/// A string as a quoted dot identifier or label: the `.kir` quoting (`"`, `\`, newline and
/// control characters escaped), which Graphviz reads the same way.
fn quoted(s: &str) -> String {
    kiln_compiler::text::quote(s)
}

/// The attributes of a node's op as the `.kir` text spells them (`axis = -1, eps = 1e-5`),
/// cut after [`MAX_ATTRS`] characters.
fn attrs(node: &Node) -> String {
    let inner = node
        .op
        .attrs()
        .into_iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    if inner.chars().count() > MAX_ATTRS {
        let cut: String = inner.chars().take(MAX_ATTRS).collect();
        format!("{cut}…")
    } else {
        inner
    }
}

/// The dot node an operand edge starts at, or `None` for a weight.
fn source(g: &Graph, v: ValueId) -> Option<String> {
    match g.value(v).def {
        ValueDef::Input => g
            .inputs()
            .iter()
            .position(|&i| i == v)
            .map(|i| format!("in{i}")),
        ValueDef::Node { node, .. } => Some(format!("n{}", node.0)),
        ValueDef::Weight(_) => None,
    }
}

/// Renders `g` (named `name` in the output) as a dot digraph.
pub fn to_dot(g: &Graph, name: &str) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "digraph {} {{", quoted(name));
    s.push_str("  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
    s.push_str("  edge [fontname=\"monospace\", fontsize=10];\n");
    for (i, &v) in g.inputs().iter().enumerate() {
        let val = g.value(v);
        let label = format!("{}\n{}", val.name.as_deref().unwrap_or(""), val.ty);
        let _ = writeln!(
            s,
            "  in{i} [label={}, shape=ellipse, style=filled, fillcolor=\"{IO_COLOR}\"];",
            quoted(&label)
        );
    }
    let nodes: Vec<_> = g.node_ids().collect();
    for &n in &nodes {
        let node = g.node(n);
        let a = attrs(node);
        let label = if a.is_empty() {
            node.op.name().to_string()
        } else {
            format!("{}\n{a}", node.op.name())
        };
        let fill = if node.op.is_fused() {
            format!(", style=filled, fillcolor=\"{FUSED_COLOR}\"")
        } else {
            String::new()
        };
        let _ = writeln!(s, "  n{} [label={}{fill}];", n.0, quoted(&label));
    }
    for (i, (out, v)) in g.outputs().iter().enumerate() {
        let label = format!("{out}\n{}", g.value(*v).ty);
        let _ = writeln!(
            s,
            "  out{i} [label={}, shape=ellipse, style=filled, fillcolor=\"{IO_COLOR}\"];",
            quoted(&label)
        );
    }
    for &n in &nodes {
        for &v in &g.node(n).inputs {
            if let Some(from) = source(g, v) {
                let ty = g.value(v).ty.to_string();
                let _ = writeln!(s, "  {from} -> n{} [label={}];", n.0, quoted(&ty));
            }
        }
    }
    for (i, (_, v)) in g.outputs().iter().enumerate() {
        if let Some(from) = source(g, *v) {
            let ty = g.value(*v).ty.to_string();
            let _ = writeln!(s, "  {from} -> out{i} [label={}];", quoted(&ty));
        }
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_quotes_backslashes_and_newlines() {
        assert_eq!(quoted("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn labels_spell_attributes_as_the_text_format_does() {
        let src = "kir 1\ngraph {\n  input %x: f32[n, 4]\n  \
                   %0 = reduce_mean(%x) {axes = [1], keepdims = false} : f32[n]\n  \
                   output \"y\" = %0\n}\n";
        let g = kiln_compiler::text::parse(src).unwrap();
        let dot = to_dot(&g, "m");
        assert!(
            dot.contains("label=\"reduce_mean\\naxes = [1], keepdims = false\""),
            "{dot}"
        );
    }

    #[test]
    fn the_example_has_a_node_per_op_and_an_edge_per_non_weight_operand() {
        let src = "kir 1\ngraph {\n  input %x: f32[n, 4]\n  %0 = relu(%x) : f32[n, 4]\n  \
                   %1 = add(%0, %x) : f32[n, 4]\n  output \"y\" = %1\n}\n";
        let g = kiln_compiler::text::parse(src).unwrap();
        let dot = to_dot(&g, "m");
        assert!(dot.starts_with("digraph \"m\" {\n"), "{dot}");
        assert_eq!(dot.matches(" -> ").count(), 4, "{dot}");
        assert_eq!(dot.matches("[label=").count(), 4 + 4, "{dot}");
        assert!(dot.contains("label=\"f32[n, 4]\""), "{dot}");
        assert!(!dot.contains(FUSED_COLOR), "{dot}");
    }
}
