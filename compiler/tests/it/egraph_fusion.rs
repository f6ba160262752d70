//! E-graph fusion tests: decomposed LayerNorm and GELU spellings fuse (and are counted), near
//! misses stay unfused, and every optimized graph computes what its input graph computes.

use crate::common;
use kiln_compiler::egraph::{optimize, Limits, StopReason};
use kiln_compiler::interp::run;
use kiln_compiler::text::{parse, print};
use kiln_runtime::{DType, Tensor};
use std::collections::BTreeMap;

/// LayerNorm in the legacy TorchScript spelling; `{axis}`, `{eps}`, `{exp}` are substituted.
const LN: &str = r#"kir 1
graph {
  input %x: f32[2, 3, 4]
  weight @0 "gamma": f32[4] = [0.5, 1.0, 1.5, 2.0]
  weight @1 "beta": f32[4] = [0.1, -0.2, 0.3, -0.4]
  weight @2 "two": f32[] = [{exp}]
  weight @3 "eps": f32[] = [{eps}]
  %0 = reduce_mean(%x) {axes = [{axis}], keepdims = true} : f32[{mshape}]
  %1 = sub(%x, %0) : f32[2, 3, 4]
  %2 = pow(%1, @2) : f32[2, 3, 4]
  %3 = reduce_mean(%2) {axes = [{axis}], keepdims = true} : f32[{mshape}]
  %4 = add(%3, @3) : f32[{mshape}]
  %5 = sqrt(%4) : f32[{mshape}]
  %6 = div(%1, %5) : f32[2, 3, 4]
  %7 = mul(%6, @0) : f32[2, 3, 4]
  %8 = add(@1, %7) : f32[2, 3, 4]
  output "y" = %8
}
"#;

fn ln(axis: &str, eps: &str, exp: &str) -> String {
    let mshape = if axis == "1" { "2, 1, 4" } else { "2, 3, 1" };
    LN.replace("{axis}", axis)
        .replace("{eps}", eps)
        .replace("{exp}", exp)
        .replace("{mshape}", mshape)
}

/// GELU (erf form): `{body}` computes `%y` from `%x` using weights @0 = 0.5, @1 = 1, @2 = √2,
/// @3 = 1/√2.
fn gelu(body: &str) -> String {
    format!(
        r#"kir 1
graph {{
  input %x: f32[2, 5]
  weight @0 "half": f32[] = [0.5]
  weight @1 "one": f32[] = [1.0]
  weight @2 "sqrt2": f32[] = [1.4142099618911743]
  weight @3 "rsqrt2": f32[] = [0.7071067811865476]
{body}
  output "y" = %4
}}
"#
    )
}

const GELU_TORCH: &str = "  %0 = div(%x, @2) : f32[2, 5]\n  %1 = erf(%0) : f32[2, 5]\n  %2 = add(%1, @1) : f32[2, 5]\n  %3 = mul(%x, %2) : f32[2, 5]\n  %4 = mul(%3, @0) : f32[2, 5]";
const GELU_HALF_FIRST: &str = "  %0 = mul(%x, @3) : f32[2, 5]\n  %1 = erf(%0) : f32[2, 5]\n  %2 = add(@1, %1) : f32[2, 5]\n  %3 = mul(@0, %x) : f32[2, 5]\n  %4 = mul(%2, %3) : f32[2, 5]";
const GELU_BAD_CONST: &str = "  %0 = div(%x, @1) : f32[2, 5]\n  %1 = erf(%0) : f32[2, 5]\n  %2 = add(%1, @1) : f32[2, 5]\n  %3 = mul(%x, %2) : f32[2, 5]\n  %4 = mul(%3, @0) : f32[2, 5]";

/// GPT-2 `gelu_new`: `x·0.5·(1 + tanh(0.7978845608·(x + 0.044715·x³)))`.
const GELU_TANH: &str = r#"kir 1
graph {
  input %x: f32[2, 5]
  weight @0 "half": f32[] = [0.5]
  weight @1 "one": f32[] = [1.0]
  weight @2 "three": f32[] = [3.0]
  weight @3 "c": f32[] = [0.044715]
  weight @4 "k": f32[] = [0.7978845608]
  %0 = pow(%x, @2) : f32[2, 5]
  %1 = mul(%0, @3) : f32[2, 5]
  %2 = add(%x, %1) : f32[2, 5]
  %3 = mul(%2, @4) : f32[2, 5]
  %4 = tanh(%3) : f32[2, 5]
  %5 = add(%4, @1) : f32[2, 5]
  %6 = mul(%x, @0) : f32[2, 5]
  %7 = mul(%6, %5) : f32[2, 5]
  output "y" = %7
}
"#;

/// Optimizes `src`, checks the outputs agree on random inputs, returns (printed, report).
fn check(src: &str) -> (String, kiln_compiler::egraph::Report) {
    let g = parse(src).unwrap();
    let (opt, report) = optimize(&g, &Limits::default()).unwrap();
    assert!(
        matches!(report.stop_reason, StopReason::Saturated),
        "{report:?}"
    );
    kiln_compiler::verify(&opt).unwrap();
    for seed in 0..3 {
        let mut ins = BTreeMap::new();
        for &v in g.inputs() {
            let val = g.value(v);
            let shape: Vec<usize> = val
                .ty
                .shape
                .as_known()
                .unwrap()
                .iter()
                .map(|&d| d as usize)
                .collect();
            let n = shape.iter().product();
            let t =
                Tensor::from_f64_values(DType::F32, shape, &common::Rng(seed).values(n, -2.0, 2.0))
                    .unwrap();
            ins.insert(val.name.clone().unwrap(), t);
        }
        let want = run(&g, &ins).unwrap();
        let got = run(&opt, &ins).unwrap();
        assert_eq!(want.len(), got.len());
        for ((wn, w), (gn, o)) in want.iter().zip(&got) {
            assert_eq!(wn, gn);
            for (a, b) in w.to_f64_vec().iter().zip(o.to_f64_vec()) {
                assert!(
                    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-5,
                    "{wn}: {a} vs {b}"
                );
            }
        }
    }
    (print(&opt).unwrap(), report)
}

#[test]
fn layer_norm_fuses() {
    let (text, report) = check(&ln("-1", "1e-5", "2.0"));
    assert!(text.contains("layer_norm("), "{text}");
    assert!(
        text.contains("eps = 0.00001") || text.contains("eps = 1e-5"),
        "{text}"
    );
    assert!(!text.contains("reduce_mean"), "{text}");
    assert_eq!(report.count("LayerNorm"), 1);
    assert!(report.cost_after < report.cost_before);
    assert!(report.egraph_nodes > 0 && report.egraph_classes > 0);
}

#[test]
fn layer_norm_positive_last_axis_fuses() {
    let (text, report) = check(&ln("2", "1e-12", "2.0"));
    assert!(text.contains("layer_norm("), "{text}");
    assert_eq!(report.count("LayerNorm"), 1);
}

#[test]
fn layer_norm_near_misses_stay_unfused() {
    for (axis, eps, exp) in [
        ("1", "1e-5", "2.0"),
        ("-1", "0.5", "2.0"),
        ("-1", "1e-5", "3.0"),
    ] {
        let (text, report) = check(&ln(axis, eps, exp));
        assert!(!text.contains("layer_norm"), "{axis} {eps} {exp}: {text}");
        assert_eq!(report.count("LayerNorm"), 0);
    }
}

#[test]
fn gelu_fuses_in_both_groupings() {
    for body in [GELU_TORCH, GELU_HALF_FIRST] {
        let (text, report) = check(&gelu(body));
        assert!(text.contains("gelu(%x) {approx = none}"), "{text}");
        assert!(!text.contains("erf"), "{text}");
        assert_eq!(report.count("Gelu"), 1);
    }
}

#[test]
fn gelu_with_wrong_constant_stays_unfused() {
    let (text, report) = check(&gelu(GELU_BAD_CONST));
    assert!(text.contains("erf"), "{text}");
    assert_eq!(report.count("Gelu"), 0);
}

#[test]
fn shared_intermediate_is_kept() {
    // The normalised value %6 also feeds a second output: LN still fuses, %6 is kept once.
    let src = ln("-1", "1e-5", "2.0").replace(
        "  output \"y\" = %8\n",
        "  output \"y\" = %8\n  output \"z\" = %6\n",
    );
    let (text, report) = check(&src);
    assert!(text.contains("layer_norm("), "{text}");
    assert_eq!(text.matches("sqrt(").count(), 1, "{text}");
    assert_eq!(report.count("LayerNorm"), 1);
}

#[test]
fn gelu_tanh_fuses() {
    let (text, report) = check(GELU_TANH);
    assert!(text.contains("gelu(%x) {approx = tanh}"), "{text}");
    assert_eq!(report.count("Gelu"), 1);
    let (text, _) = check(&GELU_TANH.replace("[3.0]", "[2.0]"));
    assert!(!text.contains("gelu"), "{text}");
}

#[test]
fn layer_norm_tf_spelling_fuses() {
    // Square as mul(d, d) and the division as a multiplication by a reciprocal.
    let src = ln("-1", "1e-5", "2.0")
        .replace("pow(%1, @2)", "mul(%1, %1)")
        .replace(
            "  %6 = div(%1, %5) : f32[2, 3, 4]\n",
            "  %9 = reciprocal(%5) : f32[2, 3, 1]\n  %6 = mul(%1, %9) : f32[2, 3, 4]\n",
        );
    let (text, report) = check(&src);
    assert!(text.contains("layer_norm("), "{text}");
    assert_eq!(report.count("LayerNorm"), 1);
}
