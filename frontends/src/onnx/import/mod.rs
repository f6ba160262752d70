//! ONNX graph import: initializers become weights, graph inputs keep their symbolic dims, and
//! each node goes through the importer registered for its op type (one module per category).

mod constant;
mod contrib_activation;
mod contrib_attention;
mod contrib_common;
mod contrib_gqa;
mod contrib_norm;
mod contrib_quant;
mod ctx;
mod fold;
mod node;
mod ops_activation;
mod ops_attention;
mod ops_axis;
mod ops_cast;
mod ops_einsum;
mod ops_elementwise;
mod ops_generate;
mod ops_grid;
mod ops_index;
mod ops_layout;
mod ops_linalg;
mod ops_logic;
mod ops_loss;
mod ops_nn;
mod ops_norm;
mod ops_quant;
mod ops_quant_conv;
mod ops_recurrent;
mod ops_reduce;
mod ops_resize;
mod ops_rotary;
mod ops_select;
mod ops_shape;
mod ops_util;
mod ops_window;
mod symbols;

pub use ctx::{invalid, unsupported, Ctx, NResult, NodeError, Operand, SymTensor};
pub use node::NodeView;

use crate::error::Error;
use crate::onnx::model::OnnxModel;
use crate::onnx::proto::{type_proto, NodeProto};
use crate::onnx::tensor::onnx_dtype;
use kiln_compiler::ir::{Graph, Shape, TensorType};
use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;

/// An op importer: reads the node, emits IR through the context, returns one operand per
/// output it produces (trailing optional outputs may be left out).
pub type ImportFn = fn(&mut Ctx, &NodeView) -> NResult<Vec<Operand>>;

/// Op importers by `(domain, op_type)`; the default domain is `""`.
#[derive(Default, Debug)]
pub struct Registry {
    map: HashMap<(&'static str, &'static str), ImportFn>,
}

impl Registry {
    /// Registers an importer for an op of the default ONNX domain.
    pub fn add(&mut self, op_type: &'static str, f: ImportFn) {
        self.map.insert(("", op_type), f);
    }

    /// Registers an importer for an op of another domain.
    pub fn add_in(&mut self, domain: &'static str, op_type: &'static str, f: ImportFn) {
        self.map.insert((domain, op_type), f);
    }

    fn get(&self, domain: &str, op_type: &str) -> Option<ImportFn> {
        self.map.get(&(domain, op_type)).copied()
    }

    /// Every registered `(domain, op_type)`, sorted.
    pub fn ops(&self) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = self.map.keys().copied().collect();
        v.sort();
        v
    }
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut r = Registry::default();
    constant::register(&mut r);
    ops_elementwise::register(&mut r);
    ops_logic::register(&mut r);
    ops_cast::register(&mut r);
    ops_activation::register(&mut r);
    ops_reduce::register(&mut r);
    ops_axis::register(&mut r);
    ops_linalg::register(&mut r);
    ops_einsum::register(&mut r);
    ops_shape::register(&mut r);
    ops_index::register(&mut r);
    ops_layout::register(&mut r);
    ops_generate::register(&mut r);
    ops_select::register(&mut r);
    ops_nn::register(&mut r);
    ops_norm::register(&mut r);
    ops_attention::register(&mut r);
    ops_rotary::register(&mut r);
    ops_resize::register(&mut r);
    ops_quant::register(&mut r);
    ops_quant_conv::register(&mut r);
    ops_grid::register(&mut r);
    ops_recurrent::register(&mut r);
    ops_window::register(&mut r);
    ops_loss::register(&mut r);
    contrib_norm::register(&mut r);
    contrib_activation::register(&mut r);
    contrib_quant::register(&mut r);
    contrib_attention::register(&mut r);
    contrib_gqa::register(&mut r);
    r
});

/// The registry of every op importer.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

fn normalize_domain(d: &str) -> &str {
    if d == "ai.onnx" {
        ""
    } else {
        d
    }
}

/// Loads an ONNX file and imports it.
pub fn import_file(path: &Path) -> Result<Graph, Error> {
    import_model(&OnnxModel::load(path)?)
}

/// Imports a loaded model into a verified IR graph.
pub fn import_model(model: &OnnxModel) -> Result<Graph, Error> {
    let mut ctx = Ctx::new(&model.path, &model.dir);
    let mut names: HashMap<String, Operand> = HashMap::new();
    let mut syms = symbols::SymbolNamer::default();
    let graph = model.graph();

    for t in &graph.initializer {
        let w = model.decode(t)?;
        let v = ctx.graph.add_weight(w);
        names.insert(t.name.clone(), Operand::Value(v));
    }
    for vi in model.graph_inputs() {
        let bad = |message: String| Error::Malformed {
            path: model.path.clone(),
            message,
        };
        let unsupported_input = |reason: String| Error::UnsupportedInput {
            path: model.path.clone(),
            input: vi.name.clone(),
            reason,
        };
        let tt = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(tt)) => tt,
            Some(_) => {
                return Err(unsupported_input(
                    "only tensor inputs are supported (not sequences, maps or optionals)".into(),
                ))
            }
            None => return Err(bad(format!("graph input `{}` has no type", vi.name))),
        };
        let dtype = onnx_dtype(tt.elem_type).map_err(unsupported_input)?;
        let Some(shape) = &tt.shape else {
            return Err(bad(format!(
                "graph input `{}` has no shape (its rank is unknown)",
                vi.name
            )));
        };
        let dims = shape.dim.iter().map(|d| syms.dim(d, &mut ctx)).collect();
        let v = ctx
            .graph
            .add_input(vi.name.clone(), TensorType::new(dtype, Shape(dims)));
        names.insert(vi.name.clone(), Operand::Value(v));
    }

    for index in model.topo_nodes()? {
        let node = &graph.node[index];
        let outs = import_node(&mut ctx, model, index, node, &names)?;
        for (name, o) in node.output.iter().zip(outs) {
            if !name.is_empty() {
                names.insert(name.clone(), o);
            }
        }
    }

    for out in &graph.output {
        let o = names.get(&out.name).ok_or_else(|| Error::Malformed {
            path: model.path.clone(),
            message: format!(
                "graph output `{}` is not produced by any supported node output",
                out.name
            ),
        })?;
        let v = ctx
            .value(o)
            .map_err(|e| node_error(model, "graph output", &out.name, e))?;
        ctx.graph.add_output(out.name.clone(), v);
    }
    kiln_compiler::verify(&ctx.graph)?;
    Ok(ctx.graph)
}

fn import_node(
    ctx: &mut Ctx,
    model: &OnnxModel,
    index: usize,
    node: &NodeProto,
    names: &HashMap<String, Operand>,
) -> Result<Vec<Operand>, Error> {
    let domain = normalize_domain(&node.domain);
    let opset = model.opset(domain).unwrap_or(0);
    let label = model.node_name(index);
    let wrap = |e: NodeError| match e {
        NodeError::Unsupported(reason) => Error::Unsupported {
            path: model.path.clone(),
            node: label.clone(),
            op_type: node.op_type.clone(),
            domain: domain.to_string(),
            opset,
            reason,
        },
        NodeError::Invalid(message) => Error::Node {
            path: model.path.clone(),
            node: label.clone(),
            op_type: node.op_type.clone(),
            message,
        },
    };
    let Some(f) = registry().get(domain, &node.op_type) else {
        return Err(wrap(NodeError::Unsupported(
            "Kiln has no importer for this op".to_string(),
        )));
    };
    let mut inputs = Vec::with_capacity(node.input.len());
    for name in &node.input {
        if name.is_empty() {
            inputs.push(None);
            continue;
        }
        match names.get(name) {
            Some(o) => inputs.push(Some(o.clone())),
            None => {
                return Err(wrap(NodeError::Unsupported(format!(
                    "input `{name}` comes from a node output that Kiln does not produce"
                ))))
            }
        }
    }
    let view = NodeView {
        node,
        inputs,
        opset,
    };
    f(ctx, &view).map_err(wrap)
}

fn node_error(model: &OnnxModel, op_type: &str, name: &str, e: NodeError) -> Error {
    let message = match e {
        NodeError::Unsupported(m) | NodeError::Invalid(m) => m,
    };
    Error::Node {
        path: model.path.clone(),
        node: name.to_string(),
        op_type: op_type.to_string(),
        message,
    }
}
