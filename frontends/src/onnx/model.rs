//! Loading an `.onnx` file: decoding the protobuf, the opset imports, and the structural
//! validation every importer relies on (one definition per value, no dangling inputs, no
//! cycles). Op-specific checks belong to the importer.

use super::proto::{GraphProto, ModelProto, TensorProto, ValueInfoProto};
use super::structure;
use super::tensor::{decode_tensor, TensorSource};
use crate::error::domain_name;
use crate::Error;
use kiln_compiler::ir::Weight;
use prost::Message;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// A decoded and structurally validated ONNX model.
#[derive(Debug)]
pub struct OnnxModel {
    /// The `.onnx` file.
    pub path: PathBuf,
    /// Its folder (external data is resolved against it).
    pub dir: PathBuf,
    /// The decoded model; `proto.graph` is present.
    pub proto: ModelProto,
    /// Where initializers' data comes from (external files are mapped once, on first use).
    pub source: TensorSource,
    /// The opset version of every imported domain; the default domain is keyed `""`.
    pub opsets: BTreeMap<String, i64>,
}

/// `GraphProto::default()`, for [`OnnxModel::graph`] should a caller remove the graph.
static EMPTY_GRAPH: LazyLock<GraphProto> = LazyLock::new(GraphProto::default);

impl OnnxModel {
    /// Reads, decodes and validates an ONNX model file.
    pub fn load(path: &Path) -> Result<OnnxModel, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        OnnxModel::from_bytes(path, &bytes)
    }

    /// Decodes and validates a model held in memory; `path` names it in errors and its folder
    /// is where external data is looked for.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<OnnxModel, Error> {
        let proto = ModelProto::decode(bytes).map_err(|e| Error::Decode {
            path: path.to_path_buf(),
            message: format!("not an ONNX model: {e}"),
        })?;
        OnnxModel::from_proto(path, proto)
    }

    /// Validates a decoded model.
    pub fn from_proto(path: &Path, proto: ModelProto) -> Result<OnnxModel, Error> {
        let source = TensorSource::new(path);
        let malformed = |message: String| Error::Malformed {
            path: path.to_path_buf(),
            message,
        };
        if proto.ir_version < 1 {
            return Err(malformed("the IR version is not set".to_string()));
        }
        let Some(graph) = &proto.graph else {
            return Err(malformed("the model has no graph".to_string()));
        };
        let opsets = opset_imports(&proto).map_err(malformed)?;
        structure::check_graph(graph).map_err(malformed)?;
        Ok(OnnxModel {
            path: path.to_path_buf(),
            dir: source.dir.clone(),
            proto,
            source,
            opsets,
        })
    }

    /// The main graph.
    pub fn graph(&self) -> &GraphProto {
        self.proto.graph.as_ref().unwrap_or(&EMPTY_GRAPH)
    }

    /// The imported opset version of a domain (`""` and `ai.onnx` are the default domain).
    pub fn opset(&self, domain: &str) -> Option<i64> {
        self.opsets.get(normal_domain(domain)).copied()
    }

    /// The graph inputs a caller must feed: those that are not also initializers (old
    /// exporters list every initializer as an input too).
    pub fn graph_inputs(&self) -> Vec<&ValueInfoProto> {
        let g = self.graph();
        let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        g.input
            .iter()
            .filter(|v| !inits.contains(v.name.as_str()))
            .collect()
    }

    /// A topological order of `graph().node` (indices); the stored order when it is sorted.
    pub fn topo_nodes(&self) -> Result<Vec<usize>, Error> {
        structure::topo_order(self.graph()).map_err(|message| self.malformed(message))
    }

    /// The name of node `index` for messages: its name, or `#index` when it has none.
    pub fn node_name(&self, index: usize) -> String {
        match self.graph().node.get(index) {
            Some(n) => structure::node_display_name(n, index),
            None => format!("#{index}"),
        }
    }

    /// The initializer called `name`.
    pub fn initializer(&self, name: &str) -> Option<&TensorProto> {
        self.graph().initializer.iter().find(|t| t.name == name)
    }

    /// Decodes a tensor of this model (an initializer or a `Constant` value) into a weight.
    pub fn decode(&self, t: &TensorProto) -> Result<Weight, Error> {
        decode_tensor(t, &self.source)
    }

    /// Decodes every initializer, in the stored order.
    pub fn initializers(&self) -> Result<Vec<Weight>, Error> {
        self.graph()
            .initializer
            .iter()
            .map(|t| self.decode(t))
            .collect()
    }

    /// A [`Error::Malformed`] naming this model's file.
    pub fn malformed(&self, message: impl Into<String>) -> Error {
        Error::Malformed {
            path: self.path.clone(),
            message: message.into(),
        }
    }
}

fn normal_domain(domain: &str) -> &str {
    if domain == "ai.onnx" {
        ""
    } else {
        domain
    }
}

/// The newest opset of each ONNX domain whose ops Kiln imports (the ONNX 1.20 node tests use
/// these); a newer one may change what an op means, so it is refused rather than guessed.
pub const NEWEST_OPSETS: [(&str, i64); 2] = [("", 28), ("ai.onnx.ml", 5)];

/// The opset version of each imported domain. Since IR version 3 a model that uses ops of the
/// default domain must import it; older models predate opset imports and use opset 1.
fn opset_imports(proto: &ModelProto) -> Result<BTreeMap<String, i64>, String> {
    let mut opsets = BTreeMap::new();
    for o in &proto.opset_import {
        let domain = normal_domain(&o.domain);
        if o.version < 1 {
            return Err(format!(
                "opset import of domain `{}` has version {}",
                domain_name(domain),
                o.version
            ));
        }
        if let Some(&(_, newest)) = NEWEST_OPSETS.iter().find(|(d, _)| *d == domain) {
            if o.version > newest {
                return Err(format!(
                    "opset {} of domain `{}` is newer than the newest Kiln knows ({newest}); \
                     its ops may mean something else there (export with opset {newest} or older)",
                    o.version,
                    domain_name(domain)
                ));
            }
        }
        match opsets.insert(domain.to_string(), o.version) {
            Some(v) if v != o.version => {
                return Err(format!(
                    "domain `{}` is imported twice (opsets {v} and {})",
                    domain_name(domain),
                    o.version
                ))
            }
            _ => {}
        }
    }
    if !opsets.contains_key("") {
        // Models made only of other domains' ops (ai.onnx.ml, training) need not import it.
        let uses_default = proto
            .graph
            .as_ref()
            .is_some_and(|g| g.node.iter().any(|n| normal_domain(&n.domain).is_empty()));
        if proto.ir_version < 3 {
            opsets.insert(String::new(), 1);
        } else if uses_default {
            return Err(format!(
                "no opset import for the default domain (ai.onnx), which IR version {} requires",
                proto.ir_version
            ));
        }
    }
    Ok(opsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::OperatorSetIdProto;

    fn import(domain: &str, version: i64) -> OperatorSetIdProto {
        OperatorSetIdProto {
            domain: domain.to_string(),
            version,
        }
    }

    fn model(ir_version: i64, opsets: Vec<OperatorSetIdProto>) -> ModelProto {
        ModelProto {
            ir_version,
            opset_import: opsets,
            graph: Some(GraphProto::default()),
            ..Default::default()
        }
    }

    #[test]
    fn models_can_be_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<OnnxModel>();
        send_sync::<TensorSource>();
    }

    #[test]
    fn ai_onnx_is_the_default_domain() {
        let p = model(8, vec![import("ai.onnx", 17), import("com.microsoft", 1)]);
        let m = OnnxModel::from_proto(Path::new("m.onnx"), p).unwrap();
        assert_eq!(m.opset(""), Some(17));
        assert_eq!(m.opset("ai.onnx"), Some(17));
        assert_eq!(m.opset("com.microsoft"), Some(1));
        assert_eq!(m.opset("ai.onnx.ml"), None);
        assert_eq!(m.dir, Path::new("."));
    }

    #[test]
    fn opset_imports_are_checked() {
        let err = |p: ModelProto| {
            OnnxModel::from_proto(Path::new("m.onnx"), p)
                .unwrap_err()
                .to_string()
        };
        let with_node = |domain: &str| {
            let mut p = model(8, vec![import("com.microsoft", 1)]);
            let node = crate::onnx::proto::NodeProto {
                op_type: "Relu".into(),
                domain: domain.into(),
                ..Default::default()
            };
            if let Some(g) = p.graph.as_mut() {
                g.node.push(node);
            }
            p
        };
        let e = err(with_node(""));
        assert!(e.contains("no opset import for the default domain"), "{e}");
        // A model made only of another domain's ops does not need the default domain.
        let m = OnnxModel::from_proto(Path::new("m.onnx"), with_node("com.microsoft")).unwrap();
        assert_eq!(m.opset(""), None);
        let e = err(model(8, vec![import("", 13), import("ai.onnx", 17)]));
        assert!(e.contains("imported twice (opsets 13 and 17)"), "{e}");
        let e = err(model(8, vec![import("", 0)]));
        assert!(e.contains("has version 0"), "{e}");
        let e = err(model(0, vec![import("", 13)]));
        assert!(e.contains("IR version is not set"), "{e}");
        let old = OnnxModel::from_proto(Path::new("m.onnx"), model(2, vec![])).unwrap();
        assert_eq!(old.opset(""), Some(1));
    }
}
