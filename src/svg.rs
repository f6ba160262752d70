//! SVG pictures of a graph for `kiln inspect --format svg`: the Graphviz text of [`crate::dot`]
//! laid out and rendered in-process by the `layout-rs` crate, so no Graphviz install is needed.

/// Renders dot text as an SVG document. `layout-rs` is a young crate: a layout it cannot do
/// (including a panic inside it) is an error message, never a crash of the caller.
pub fn dot_to_svg(dot: &str) -> Result<String, String> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};
    let render = || {
        let mut parser = DotParser::new(dot);
        let ast = parser
            .process()
            .map_err(|e| format!("the layout engine cannot read the graph: {e}"))?;
        let mut builder = GraphBuilder::new();
        builder.visit_graph(&ast);
        let mut graph = builder.get();
        let mut svg = SVGWriter::new();
        graph.do_it(false, false, false, &mut svg);
        Ok(svg.finalize())
    };
    // A panic in the layout engine must not end the process; the default hook would also print
    // its message, so it is silenced for the call.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(render);
    std::panic::set_hook(hook);
    result.unwrap_or_else(|_| Err("the layout engine failed on this graph".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_graph_renders_as_svg_with_its_labels() {
        let svg = dot_to_svg("digraph \"m\" {\n  a [label=\"relu\"];\n  b [label=\"add\"];\n  a -> b [label=\"f32[n, 4]\"];\n}\n")
            .unwrap();
        assert!(
            svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        assert!(svg.contains("relu") && svg.contains("add"), "{svg}");
    }

    #[test]
    fn unreadable_dot_is_an_error() {
        assert!(dot_to_svg("digraph { a -> ; }").is_err());
    }
}
