//! `kiln inspect` on the shipped example: the JSON summary's fields and values, and the IR text
//! with large weights elided.

use crate::common;

use common::{example, kiln};

use serde_json::{json, Value};
use std::process::Output;

fn stdout_of(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json_of(stage: &str) -> Value {
    let model = example("tiny_classifier.kir");
    let o = kiln(&[&"inspect", &model, &"--stage", &stage, &"--format", &"json"]);
    serde_json::from_str(&stdout_of(&o)).expect("one JSON object")
}

#[test]
fn json_summary_of_the_example() {
    let v = json_of("imported");
    let model = example("tiny_classifier.kir");
    assert_eq!(v["file"], json!(model.display().to_string()));
    assert_eq!(v["nodes"], json!(11));
    assert_eq!(
        v["ops"],
        json!({"add": 4, "gather": 1, "gelu": 1, "layer_norm": 1, "matmul": 3, "reduce_mean": 1})
    );
    assert_eq!(
        v["inputs"],
        json!([{"name": "tokens", "dtype": "i64", "shape": ["batch", "seq"]}])
    );
    assert_eq!(
        v["outputs"],
        json!([{"name": "logits", "dtype": "f32", "shape": ["batch", 4]}])
    );
    assert_eq!(v["weights"], json!({"count": 9, "bytes": 460 * 4}));
    assert_eq!(
        v["fusions"],
        json!({"Attention": 0, "LayerNorm": 1, "RmsNorm": 0, "Gelu": 1})
    );
}

#[test]
fn the_optimized_stage_of_the_example_fuses_its_linear_layers_and_reports() {
    let imported = json_of("imported");
    let optimized = json_of("optimized");
    assert_eq!(optimized["stage"], json!("optimized"));
    assert_eq!(
        optimized["passes"],
        json!({"simplify": 0, "fold": 0, "cse": 0, "dce": 0})
    );
    let report = &optimized["optimizer"];
    assert_eq!(report["stop_reason"], json!("Saturated"), "{report}");
    assert!(
        report["egraph_nodes"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    assert!(report["time_ms"].as_f64().is_some(), "{report}");
    assert_eq!(report["not_fused"], json!([]), "{report}");
    // The three matmul + bias pairs become matmul_bias; the fused ops already there stay.
    assert_eq!(imported["ops"]["matmul"], json!(3));
    assert_eq!(optimized["ops"]["matmul_bias"], json!(3), "{optimized}");
    assert!(optimized["ops"].get("matmul").is_none(), "{optimized}");
    assert_eq!(optimized["ops"]["add"], json!(1), "{optimized}");
    assert_eq!(imported["fusions"], optimized["fusions"]);
    assert_eq!(imported["inputs"], optimized["inputs"]);
    assert_eq!(imported["outputs"], optimized["outputs"]);
}

#[test]
fn text_elides_weights_over_sixteen_elements() {
    let model = example("tiny_classifier.kir");
    let text = stdout_of(&kiln(&[&"inspect", &model]));
    let full = std::fs::read_to_string(&model).unwrap();
    assert!(text.len() < full.len() / 2, "weights were not elided");
    assert!(text.contains("opaque"), "{text}");
    assert!(
        text.contains("layer_norm") && text.contains("gelu"),
        "{text}"
    );
    // The elided text still parses, to the same structure.
    let g = kiln_compiler::text::parse(&text).unwrap();
    assert_eq!(g.num_nodes(), 11);
    assert_eq!(g.weights().len(), 9);
    let inlined = g
        .weights()
        .iter()
        .filter(|(_, w)| w.bytes().is_some())
        .map(|(_, w)| w.numel())
        .collect::<Vec<_>>();
    assert!(inlined.iter().all(|&n| n <= 16), "{inlined:?}");
    assert!(!inlined.is_empty());
}

#[test]
fn text_and_json_agree_with_the_library_summary() {
    let model = example("tiny_classifier.kir");
    let g = kiln::load_model(&model).unwrap();
    let file = model.display().to_string();
    let want = serde_json::to_value(kiln::summarize(&g, &file, "imported")).unwrap();
    assert_eq!(json_of("imported"), want);
}

#[test]
fn the_dot_format_draws_one_node_per_op_and_highlights_fused_ops() {
    use kiln::kiln_compiler::ir::ValueDef;
    let model = example("tiny_classifier.kir");
    let g = kiln::load_model(&model).unwrap();
    let dot = stdout_of(&kiln(&[&"inspect", &model, &"--format", &"dot"]));
    assert!(dot.starts_with("digraph ") && dot.ends_with("}\n"), "{dot}");
    let lines: Vec<&str> = dot.lines().map(str::trim).collect();
    let defs = |prefix: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(prefix) && l.contains(" [label=") && !l.contains(" -> "))
            .count()
    };
    assert_eq!(defs("n"), g.num_nodes(), "{dot}");
    assert_eq!(defs("in"), g.inputs().len(), "{dot}");
    assert_eq!(defs("out"), g.outputs().len(), "{dot}");
    // One edge per operand; weight operands start at dashed weight boxes.
    let (mut operands, mut weight_operands) = (0, 0);
    for n in g.node_ids() {
        for &v in &g.node(n).inputs {
            operands += 1;
            if matches!(g.value(v).def, ValueDef::Weight(_)) {
                weight_operands += 1;
            }
        }
    }
    let edges = lines.iter().filter(|l| l.contains(" -> ")).count();
    assert_eq!(edges, operands + g.outputs().len(), "{dot}");
    let dashed = lines
        .iter()
        .filter(|l| l.starts_with('w') && l.contains(" -> ") && l.contains("style=dashed"))
        .count();
    assert_eq!(dashed, weight_operands, "{dot}");
    assert_eq!(defs("w"), g.weights().len(), "{dot}");
    let line_of = |op: &str| {
        lines
            .iter()
            .find(|l| l.contains(&format!("[label=\"{op}")))
            .unwrap_or_else(|| panic!("no {op} node in:\n{dot}"))
    };
    assert!(line_of("layer_norm").contains("fillcolor"), "{dot}");
    assert!(line_of("gelu").contains("fillcolor"), "{dot}");
    assert!(!line_of("gather").contains("fillcolor"), "{dot}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" -> ") && l.contains("label=\"f32[batch, seq, 8]\"")),
        "edges carry symbolic shapes:\n{dot}"
    );
}

#[test]
fn the_dot_format_of_the_optimized_stage_highlights_matmul_bias() {
    let model = example("tiny_classifier.kir");
    let o = kiln(&[
        &"inspect",
        &model,
        &"--stage",
        &"optimized",
        &"--format",
        &"dot",
    ]);
    let dot = stdout_of(&o);
    let fused = dot
        .lines()
        .find(|l| l.contains("[label=\"matmul_bias"))
        .unwrap_or_else(|| panic!("no matmul_bias node in:\n{dot}"));
    assert!(fused.contains("fillcolor"), "{dot}");
}

#[test]
fn the_dot_format_of_the_kernels_stage_is_refused() {
    let model = example("tiny_classifier.kir");
    let o = kiln(&[
        &"inspect",
        &model,
        &"--stage",
        &"kernels",
        &"--format",
        &"dot",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("tiny_classifier.kir"),
        "{err}"
    );
    assert!(err.contains("--format dot"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn the_kernels_stage_lists_the_plan() {
    let model = example("tiny_classifier.kir");
    let o = kiln(&[&"inspect", &model, &"--stage", &"kernels"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("kernels:") && text.contains("gemm") && text.contains("step 0:"),
        "{text}"
    );
}
