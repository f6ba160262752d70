//! ONNX decoders exported with their key/value cache (optimum's `text-generation-with-past`):
//! [`load_decoder`] imports the file and hands it to `kiln_compiler::passes::kv_states`, which
//! makes the `past_key_values` inputs and `present` outputs graph states. optimum's *merged*
//! decoder adds an input `use_cache_branch: bool[1]` and one `If` choosing between the graph
//! with past and the one without; the with-past branch also serves the first step (a past of
//! length zero), so [`specialize_if`] fixes `use_cache_branch` to true before the import: each
//! `If` on a known input is replaced by the nodes of the branch it takes (its initializers
//! moved out, its outputs renamed by `Identity` nodes), and other readers get a `Constant`.

use super::model::OnnxModel;
use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::DataType;
use super::proto::{AttributeProto, GraphProto, NodeProto, TensorProto};
use crate::Error;
use kiln_compiler::ir::Graph;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

/// The input of optimum's merged decoders that chooses the branch with past.
pub const USE_CACHE_BRANCH: &str = "use_cache_branch";

/// The model with the graph inputs of `known` (name → value) replaced by constants and every
/// `If` whose condition is one of them replaced by the branch it takes, nested ones too.
/// A name that is no graph input, or a branch whose output count differs from its `If`'s, is
/// refused.
pub fn specialize_if(
    model: &OnnxModel,
    known: &BTreeMap<String, bool>,
) -> Result<OnnxModel, Error> {
    let mut proto = model.proto.clone();
    let Some(graph) = proto.graph.as_mut() else {
        return Err(model.malformed("the model has no graph"));
    };
    for name in known.keys() {
        if !graph.input.iter().any(|i| i.name == *name) {
            return Err(model.malformed(format!("`{name}` is no input of the graph")));
        }
    }
    graph.input.retain(|i| !known.contains_key(&i.name));
    let mut nodes: Vec<NodeProto> = known
        .iter()
        .map(|(name, &value)| constant(name, value))
        .collect();
    let mut work: VecDeque<NodeProto> = std::mem::take(&mut graph.node).into();
    while let Some(node) = work.pop_front() {
        let cond = node.input.first().and_then(|c| known.get(c));
        let (true, Some(&cond)) = (node.op_type == "If" && node.domain.is_empty(), cond) else {
            nodes.push(node);
            continue;
        };
        let which = if cond { "then_branch" } else { "else_branch" };
        let branch = node
            .attribute
            .iter()
            .find(|a| a.name == which)
            .and_then(|a| a.g.clone())
            .ok_or_else(|| model.malformed(format!("`If` node `{}` has no {which}", node.name)))?;
        if branch.output.len() != node.output.len() {
            return Err(model.malformed(format!(
                "`If` node `{}`: its {which} has {} outputs for {}",
                node.name,
                branch.output.len(),
                node.output.len()
            )));
        }
        let GraphProto {
            node: body,
            initializer,
            output,
            ..
        } = branch;
        graph.initializer.extend(initializer);
        let renames = output.iter().zip(&node.output).map(|(from, to)| NodeProto {
            input: vec![from.name.clone()],
            output: vec![to.clone()],
            name: format!("{}/{}", node.name, to),
            op_type: "Identity".into(),
            ..NodeProto::default()
        });
        // The branch's nodes, then the renames, before the rest (so nested `If`s unfold too).
        for n in body.into_iter().chain(renames).rev() {
            work.push_front(n);
        }
    }
    graph.node = nodes;
    OnnxModel::from_proto(&model.path, proto)
}

/// A `Constant` node holding `value` as a `bool[1]` named `name`.
fn constant(name: &str, value: bool) -> NodeProto {
    let t = TensorProto {
        dims: vec![1],
        data_type: DataType::Bool as i32,
        int32_data: vec![i32::from(value)],
        ..TensorProto::default()
    };
    NodeProto {
        output: vec![name.to_string()],
        name: format!("{name}/known"),
        op_type: "Constant".into(),
        attribute: vec![AttributeProto {
            name: "value".into(),
            r#type: AttributeType::Tensor as i32,
            t: Some(t),
            ..AttributeProto::default()
        }],
        ..NodeProto::default()
    }
}

/// The decoder graph of an ONNX file with `past_key_values` inputs and `present` outputs, its
/// caches as states (see the module docs); a merged decoder takes its with-past branch.
pub fn load_decoder(path: &Path) -> Result<Graph, Error> {
    let mut model = OnnxModel::load(path)?;
    if model
        .graph_inputs()
        .iter()
        .any(|i| i.name == USE_CACHE_BRANCH)
    {
        let known = BTreeMap::from([(USE_CACHE_BRANCH.to_string(), true)]);
        model = specialize_if(&model, &known)?;
    }
    let g = super::import::import_model(&model)?;
    Ok(kiln_compiler::passes::kv_states::run(&g)?)
}
