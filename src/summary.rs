//! The JSON summary of a graph that `kiln inspect --format json` prints: node and op counts,
//! inputs and outputs with their types, weight totals and fused-op counts.

use kiln_compiler::ir::{Graph, Op, ValueId};
use serde::Serialize;
use std::collections::BTreeMap;

/// A summary of one graph; serializes to the object documented in the CLI contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The model path as given.
    pub file: String,
    /// The pipeline stage summarized (`imported`, `optimized`).
    pub stage: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Op name → number of nodes with that op.
    pub ops: BTreeMap<&'static str, usize>,
    /// Graph inputs, in order.
    pub inputs: Vec<ValueSummary>,
    /// Graph outputs, in order.
    pub outputs: Vec<ValueSummary>,
    /// Weight totals.
    pub weights: WeightSummary,
    /// Fused ops present, by pattern name.
    pub fusions: Fusions,
}

/// A named, typed graph input or output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueSummary {
    /// The name.
    pub name: String,
    /// The dtype name (`f32`, `i64`, ...).
    pub dtype: &'static str,
    /// Each dim: a number when known, the expression as a string when symbolic.
    pub shape: Vec<serde_json::Value>,
}

/// Weight totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WeightSummary {
    /// Number of weights.
    pub count: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Number of fused ops per pattern; every key is always present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Fusions {
    /// `attention` ops.
    #[serde(rename = "Attention")]
    pub attention: usize,
    /// `layer_norm` and `skip_layer_norm` ops.
    #[serde(rename = "LayerNorm")]
    pub layer_norm: usize,
    /// `rms_norm` ops.
    #[serde(rename = "RmsNorm")]
    pub rms_norm: usize,
    /// `gelu` ops.
    #[serde(rename = "Gelu")]
    pub gelu: usize,
}

fn value_summary(g: &Graph, name: &str, v: ValueId) -> ValueSummary {
    let ty = &g.value(v).ty;
    ValueSummary {
        name: name.to_string(),
        dtype: ty.dtype.name(),
        shape: ty
            .shape
            .dims()
            .iter()
            .map(|d| match d.as_known() {
                Some(n) => serde_json::Value::from(n),
                None => serde_json::Value::from(d.to_string()),
            })
            .collect(),
    }
}

impl Summary {
    /// The summary as `#` comment lines, which `kiln inspect` prints above the IR text (so the
    /// text stays parseable): inputs and outputs with their types, weights, ops and fused ops.
    pub fn comment_lines(&self) -> String {
        let values = |list: &[ValueSummary]| {
            list.iter()
                .map(|v| {
                    let dims: Vec<String> = v
                        .shape
                        .iter()
                        .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string))
                        .collect();
                    format!("{}: {}[{}]", v.name, v.dtype, dims.join(", "))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ops: Vec<String> = self.ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
        let f = &self.fusions;
        format!(
            "# {} ({} stage)\n# inputs: {}\n# outputs: {}\n# weights: {} ({})\n\
             # nodes: {} ({})\n# fused ops: Attention {}, LayerNorm {}, RmsNorm {}, Gelu {}\n",
            self.file,
            self.stage,
            values(&self.inputs),
            values(&self.outputs),
            self.weights.count,
            kiln_runtime::budget::human(self.weights.bytes),
            self.nodes,
            ops.join(", "),
            f.attention,
            f.layer_norm,
            f.rms_norm,
            f.gelu
        )
    }
}

/// Summarizes a graph.
pub fn summarize(g: &Graph, file: &str, stage: &str) -> Summary {
    let mut ops = BTreeMap::new();
    let mut fusions = Fusions::default();
    for n in g.node_ids() {
        let op = &g.node(n).op;
        *ops.entry(op.name()).or_insert(0) += 1;
        match op {
            Op::Attention { .. } => fusions.attention += 1,
            Op::LayerNorm { .. } | Op::SkipLayerNorm { .. } => fusions.layer_norm += 1,
            Op::RmsNorm { .. } => fusions.rms_norm += 1,
            Op::Gelu { .. } => fusions.gelu += 1,
            _ => {}
        }
    }
    let inputs = g
        .inputs()
        .iter()
        .map(|&v| {
            let name = g.value(v).name.clone().unwrap_or_default();
            value_summary(g, &name, v)
        })
        .collect();
    let outputs = g
        .outputs()
        .iter()
        .map(|(name, v)| value_summary(g, name, *v))
        .collect();
    let bytes = g
        .weights()
        .iter()
        .map(|(_, w)| w.byte_len().map_or(u64::MAX, |b| b as u64))
        .fold(0u64, u64::saturating_add);
    Summary {
        file: file.to_string(),
        stage: stage.to_string(),
        nodes: g.num_nodes(),
        ops,
        inputs,
        outputs,
        weights: WeightSummary {
            count: g.weights().len(),
            bytes,
        },
        fusions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_compiler::ir::{Dim, GeluApprox, Shape, TensorType, Weight};
    use kiln_runtime::{DType, Tensor};

    #[test]
    fn counts_ops_fusions_and_weights() {
        let mut g = Graph::new();
        let shape = Shape(vec![Dim::sym("batch"), Dim::known(3)]);
        let x = g.add_input("x", TensorType::new(DType::F32, shape.clone()));
        let w = g.add_weight(Weight::from_tensor(
            "w",
            &Tensor::from_f32(vec![3], vec![1.0; 3]).unwrap(),
        ));
        let ty = TensorType::new(DType::F32, shape);
        let gelu = Op::Gelu {
            approx: GeluApprox::None,
        };
        let y = g.add_node_typed(gelu, &[x], vec![ty.clone()], None)[0];
        let add = Op::Binary(kiln_compiler::ir::BinaryOp::Add);
        let z = g.add_node_typed(add, &[y, w], vec![ty], None)[0];
        g.add_output("z", z);

        let s = summarize(&g, "m.kir", "imported");
        assert_eq!(s.nodes, 2);
        assert_eq!(s.ops.get("gelu"), Some(&1));
        assert_eq!(s.ops.get("add"), Some(&1));
        assert_eq!(
            s.weights,
            WeightSummary {
                count: 1,
                bytes: 12
            }
        );
        assert_eq!(s.fusions.gelu, 1);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["inputs"][0]["shape"], serde_json::json!(["batch", 3]));
        assert_eq!(json["outputs"][0]["name"], "z");
        assert_eq!(
            json["fusions"],
            serde_json::json!({"Attention": 0, "LayerNorm": 0, "RmsNorm": 0, "Gelu": 1})
        );
        assert_eq!(
            s.comment_lines(),
            "# m.kir (imported stage)\n# inputs: x: f32[batch, 3]\n# outputs: z: f32[batch, 3]\n\
             # weights: 1 (12 bytes)\n# nodes: 2 (add 1, gelu 1)\n\
             # fused ops: Attention 0, LayerNorm 0, RmsNorm 0, Gelu 1\n"
        );
    }
}
