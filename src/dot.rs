//! Graphviz (`dot`) rendering of a graph for `kiln inspect --format dot`: one box per node
//! labelled with its op and attributes (fused ops filled, with the pattern they replaced), graph
//! inputs and outputs as ellipses, weights as small dashed boxes with their shapes, and one edge
//! per operand labelled with the value's dtype and symbolic shape.

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

/// The dot node an operand edge starts at.
fn source(g: &Graph, v: ValueId) -> Option<String> {
    match g.value(v).def {
        ValueDef::Input => g
            .inputs()
            .iter()
            .position(|&i| i == v)
            .map(|i| format!("in{i}")),
        ValueDef::Node { node, .. } => Some(format!("n{}", node.0)),
        ValueDef::Weight(w) => Some(format!("w{}", w.0)),
    }
}

/// What a fused op replaced, for its label (`None` for ops that are not fused).
fn replaced(op_name: &str) -> Option<&'static str> {
    Some(match op_name {
        "attention" => "fused: q·kᵀ, scale, mask, softmax, ·v",
        "layer_norm" => "fused: mean, variance, normalize, scale, shift",
        "skip_layer_norm" => "fused: residual add, layer norm",
        "rms_norm" => "fused: mean of squares, rsqrt, scale",
        "gelu" => "fused: the erf or tanh GELU formula",
        "matmul_bias" => "fused: matmul, bias, activation",
        _ => return None,
    })
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
        let mut label = node.op.name().to_string();
        if !a.is_empty() {
            label = format!("{label}\n{a}");
        }
        if let Some(what) = node
            .op
            .is_fused()
            .then(|| replaced(node.op.name()))
            .flatten()
        {
            label = format!("{label}\n{what}");
        }
        let fill = if node.op.is_fused() {
            format!(", style=filled, fillcolor=\"{FUSED_COLOR}\"")
        } else {
            String::new()
        };
        let _ = writeln!(s, "  n{} [label={}{fill}];", n.0, quoted(&label));
    }
    // The weights the nodes read (the store may hold others, e.g. replaced by folding).
    let used: std::collections::BTreeSet<usize> = nodes
        .iter()
        .flat_map(|&n| g.node(n).inputs.iter())
        .filter_map(|&v| match g.value(v).def {
            ValueDef::Weight(w) => Some(w.0 as usize),
            _ => None,
        })
        .collect();
    for (id, w) in g
        .weights()
        .iter()
        .filter(|(id, _)| used.contains(&(id.0 as usize)))
    {
        let shape: Vec<String> = w.shape.iter().map(|d| d.to_string()).collect();
        let label = format!("{}\n{}[{}]", w.name, w.dtype.name(), shape.join(", "));
        let _ = writeln!(
            s,
            "  w{} [label={}, shape=box, style=dashed, fontsize=8];",
            id.0,
            quoted(&label)
        );
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
            match (source(g, v), &g.value(v).def) {
                // A weight's box already shows its type.
                (Some(from), ValueDef::Weight(_)) => {
                    let _ = writeln!(s, "  {from} -> n{} [style=dashed];", n.0);
                }
                (Some(from), _) => {
                    let ty = g.value(v).ty.to_string();
                    let _ = writeln!(s, "  {from} -> n{} [label={}];", n.0, quoted(&ty));
                }
                (None, _) => {}
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
    fn weights_are_dashed_boxes_and_fused_ops_say_what_they_replaced() {
        let src = "kir 1\ngraph {\n  input %x: f32[n, 4]\n  weight @0 \"g\": f32[4] = [1.0, 1.0, 1.0, 1.0]\n  \
                   weight @1 \"b\": f32[4] = [0.0, 0.0, 0.0, 0.0]\n  \
                   %0 = layer_norm(%x, @0, @1) {axis = -1, eps = 1e-5} : f32[n, 4]\n  \
                   output \"y\" = %0\n}\n";
        let g = kiln_compiler::text::parse(src).unwrap();
        let dot = to_dot(&g, "m");
        assert!(
            dot.contains("w0 [label=\"g\\nf32[4]\", shape=box, style=dashed"),
            "{dot}"
        );
        assert!(dot.contains("w0 -> n0 [style=dashed]"), "{dot}");
        assert!(
            dot.contains("fused: mean, variance, normalize, scale, shift"),
            "{dot}"
        );
        assert!(dot.contains(FUSED_COLOR), "{dot}");
    }

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
        assert!(!dot.contains(" w0 "), "no weights, no weight boxes: {dot}");
        assert_eq!(dot.matches("[label=").count(), 4 + 4, "{dot}");
        assert!(dot.contains("label=\"f32[n, 4]\""), "{dot}");
        assert!(!dot.contains(FUSED_COLOR), "{dot}");
    }
}
