//! The `.kir` text format: a deterministic printer and a parser with line/column errors.
//!
//! The format is described in `docs/IR.md`. In short:
//!
//! ```text
//! kir 1
//! graph {
//!   input %x: f32[batch, 4]
//!   weight @0 "fc.weight": f32[4, 2] = [0.5, -1.25, nan, inf, 1.0, 2.0, 3.0, 4.0]
//!   %0 = matmul(%x, @0) : f32[batch, 2]
//!   output "y" = %0
//! }
//! ```
//!
//! Guarantees: printing is deterministic and `print → parse → print` is the identity; `parse`
//! never panics and reports every problem (syntax, unknown names, def-before-use, attribute
//! kinds, literal sizes, types that disagree with shape inference, verifier rules) as
//! [`crate::Error::Parse`] at a 1-based line and character column.
//!
//! Module map: `lexer` (tokens, positions, raw dim spans), `attrs` (typed field extraction for
//! the op definitions' generated parsing, `kiln_runtime::ops::Op::from_text`), `values`
//! (numbers and weight literals), `printer` and `parser`. Op names and attributes come from
//! the single op definition in `kiln_runtime::ops::op`.

mod attrs;
mod lexer;
mod parser;
mod printer;
mod values;

use crate::error::Result;
use crate::ir::Graph;

/// The version written in the `kir <version>` header and the only one the parser accepts.
pub const FORMAT_VERSION: u32 = 1;

/// How to print a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrintOptions {
    /// Weights with more elements than this are printed as `opaque` (their values elided);
    /// `None` prints every weight's values.
    pub inline_weight_limit: Option<usize>,
}

/// Prints a graph with every weight's values (the form that `parse` turns back into the
/// same graph).
pub fn print(g: &Graph) -> Result<String> {
    print_with(g, &PrintOptions::default())
}

/// Prints a graph with options. Fails only for graphs that cannot be written down: a cycle, a
/// use of a value no node defines, or a node without results.
pub fn print_with(g: &Graph, opts: &PrintOptions) -> Result<String> {
    printer::print_graph(g, opts)
}

/// Parses `.kir` text into a verified graph. Every error is an [`crate::Error::Parse`] with a
/// 1-based line and column (in characters).
pub fn parse(src: &str) -> Result<Graph> {
    parser::parse_graph(src)
}

/// Whether a value name can be written without quotes: ASCII letters, digits, `_` and `.`,
/// starting with a letter or `_`.
pub(crate) fn is_bare_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(is_name_char)
}

/// The characters allowed after the first one of a bare value name.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// A string literal with `"`, `\`, newline and other control characters escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A graph input's name as an operand: `%name`, or `%"quoted name"` when it is not bare.
pub(crate) fn input_ref(name: &str) -> String {
    if is_bare_name(name) {
        format!("%{name}")
    } else {
        format!("%{}", quote(name))
    }
}

#[cfg(test)]
mod tests;

/// The number each node result gets in printed text (`%N`): results in topological order,
/// as [`print`] numbers them.
pub fn result_numbers(g: &Graph) -> Result<std::collections::HashMap<crate::ir::ValueId, usize>> {
    let mut out = std::collections::HashMap::new();
    for n in g.topo_order()? {
        for &v in &g.node(n).outputs {
            let i = out.len();
            out.insert(v, i);
        }
    }
    Ok(out)
}
