//! MatMul + bias recognition: the Linear / Gemm spelling `add(matmul(a, b), bias)` (the bias in
//! either operand of the add) becomes `matmul_bias(a, b, bias)`.
//!
//! Guards (a failed one is reported as a miss): the bias is a constant (its class holds a
//! weight) — an activation added to a product is a residual or a mask, not a bias; and the
//! bias broadcasts to the product's shape without changing it (rank no larger than the
//! product's, every dim 1 or the product's dim), so the add's result is the product's shape.
//! The applier also checks the fused node's type is the add's own.

use super::{comm, nodes, push_unique, ty, Diag, Recipe};
use crate::egraph::lang::{KEGraph, Key};
use crate::ir::infer::broadcasts_to;
use crate::ir::{BinaryOp, Op};
use egg::Id;

/// True when class `id` holds a weight leaf (a constant).
fn is_constant(eg: &KEGraph, id: Id) -> bool {
    eg[id].nodes.iter().any(|n| matches!(n.key, Key::Weight(_)))
}

/// Why `bias` cannot be the bias of product `m` (None when it can).
fn bias_problem(eg: &KEGraph, m: Id, bias: Id) -> Option<String> {
    if !is_constant(eg, bias) {
        return Some("the bias is not a constant (an activation added to a matmul)".into());
    }
    let (Some(mt), Some(bt)) = (ty(eg, m), ty(eg, bias)) else {
        return Some("the type of the product or the bias is unknown".into());
    };
    if bt.rank() > mt.rank() || !broadcasts_to(&bt.shape, &mt.shape) {
        return Some(format!(
            "the bias {} does not broadcast to the product {} without changing its shape",
            bt.shape, mt.shape
        ));
    }
    None
}

/// The matcher of rule `matmul-bias-fuse`.
pub fn matmul_bias_fuse(eg: &KEGraph, root: Id, diag: &mut Diag) -> Vec<Recipe> {
    let mut out = Vec::new();
    for (m, bias) in comm(eg, root, BinaryOp::Add) {
        for (_, c) in nodes(eg, m, |o| *o == Op::MatMul) {
            let [a, b] = c.as_slice() else { continue };
            if let Some(why) = bias_problem(eg, m, bias) {
                // An activation of the product's own shape is a residual add, not a
                // candidate bias: nothing to report.
                let residual = !is_constant(eg, bias) && ty(eg, bias) == ty(eg, m);
                if !residual {
                    diag.miss(root, || why);
                }
                continue;
            }
            push_unique(&mut out, Recipe::one(Op::MatMulBias, &[*a, *b, bias]));
        }
    }
    out
}

/// Helpers the rule tests share: optimize a `.kir` graph and compare it with the input under
/// the reference interpreter.
#[cfg(test)]
pub(super) mod testing {
    use crate::egraph::{optimize, Limits, Report, StopReason};
    use crate::interp::run;
    use crate::ir::Graph;
    use crate::text::{parse, print};
    use kiln_runtime::test_util::Rng;
    use kiln_runtime::Tensor;
    use std::collections::BTreeMap;

    /// Optimizes `src` (which must saturate), checks the result verifies, prints and parses
    /// back to the same text, and computes the input graph's outputs (within `tol`) on a few
    /// inputs; returns the optimized graph's text with the report.
    pub fn check(src: &str, tol: f64) -> (String, Report) {
        let g = parse(src).unwrap();
        let (opt, report) = optimize(&g, &Limits::default()).unwrap();
        assert!(
            matches!(report.stop_reason, StopReason::Saturated),
            "{report:?}"
        );
        crate::verify(&opt).unwrap();
        let text = print(&opt).unwrap();
        assert_eq!(print(&parse(&text).unwrap()).unwrap(), text);
        for seed in 1..4 {
            let ins = inputs(&g, seed);
            let want = run(&g, &ins).unwrap();
            let got = run(&opt, &ins).unwrap();
            assert_eq!(want.len(), got.len());
            for ((wn, w), (gn, o)) in want.iter().zip(&got) {
                assert_eq!(wn, gn);
                assert_eq!(w.shape(), o.shape(), "{wn}");
                for (a, b) in w.to_f64_vec().iter().zip(o.to_f64_vec()) {
                    assert!((a - b).abs() <= tol, "{wn}: {a} vs {b}\n{text}");
                }
            }
        }
        (text, report)
    }

    /// Values for every (statically shaped) input of `g`.
    fn inputs(g: &Graph, seed: u64) -> BTreeMap<String, Tensor> {
        let mut ins = BTreeMap::new();
        for (i, &v) in g.inputs().iter().enumerate() {
            let val = g.value(v);
            let shape: Vec<usize> = val
                .ty
                .shape
                .0
                .iter()
                .map(|d| d.as_known().unwrap() as usize)
                .collect();
            let n = shape.iter().product();
            let t = Tensor::from_f64_values(
                val.ty.dtype,
                shape,
                &Rng(seed * 31 + i as u64).values(n, -2.0, 2.0),
            )
            .unwrap();
            ins.insert(val.name.clone().unwrap(), t);
        }
        ins
    }
}

#[cfg(test)]
mod tests {
    use super::testing::check;
    use crate::egraph::{optimize, Limits};
    use crate::text::parse;

    /// `y = x @ w + b`: `bias_decl` declares the bias `@1`, the add is `add(lhs, rhs)` over
    /// the product `%0` and `@1`.
    fn linear(bias_decl: &str, lhs: &str, rhs: &str) -> String {
        format!(
            r#"kir 1
graph {{
  input %x: f32[2, 3, 4]
  weight @0 "w": f32[4, 5] = [0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 0.0, -0.5, 1.0, 0.125, -2.0, 0.75, 1.25, -0.25, 0.5, 1.0, -1.5, 0.375, 0.0, 2.5]
{bias_decl}
  %0 = matmul(%x, @0) : f32[2, 3, 5]
  %1 = add({lhs}, {rhs}) : f32[2, 3, 5]
  output "y" = %1
}}
"#
        )
    }

    const BIAS: &str = r#"  weight @1 "b": f32[5] = [0.1, -0.2, 0.3, -0.4, 0.5]"#;

    #[test]
    fn linear_fuses_in_both_orders() {
        for (lhs, rhs) in [("%0", "@1"), ("@1", "%0")] {
            let (text, _) = check(&linear(BIAS, lhs, rhs), 1e-5);
            assert!(
                text.contains("= matmul_bias(%x, @0, @1) : f32[2, 3, 5]"),
                "{text}"
            );
            assert!(!text.contains("add("), "{text}");
            assert!(!text.contains("matmul("), "{text}");
        }
    }

    #[test]
    fn broadcast_bias_shapes_fuse() {
        // [3, 1] and [1, 1, 5] stretch to [2, 3, 5] without changing it.
        for decl in [
            r#"  weight @1 "b": f32[3, 1] = [1.0, -1.0, 0.5]"#,
            r#"  weight @1 "b": f32[1, 1, 5] = [0.1, -0.2, 0.3, -0.4, 0.5]"#,
            r#"  weight @1 "b": f32[] = [0.25]"#,
        ] {
            let (text, _) = check(&linear(decl, "%0", "@1"), 1e-5);
            assert!(text.contains("matmul_bias("), "{decl}\n{text}");
        }
    }

    #[test]
    fn non_constant_or_widening_bias_does_not_fuse() {
        // `x·w + r` with an activation `r` of the given shape.
        let plus_activation = |r_shape: &str| {
            format!(
                "kir 1
graph {{
  input %x: f32[2, 3, 4]
  input %r: f32[{r_shape}]
  weight @0 \"w\": f32[4, 5] = [0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 0.0, -0.5, 1.0, 0.125, -2.0, 0.75, 1.25, -0.25, 0.5, 1.0, -1.5, 0.375, 0.0, 2.5]
  %0 = matmul(%x, @0) : f32[2, 3, 5]
  %1 = add(%0, %r) : f32[2, 3, 5]
  output \"y\" = %1
}}
"
            )
        };
        // An activation of the product's own shape (a residual) fuses not and is no candidate.
        let (text, report) = check(&plus_activation("2, 3, 5"), 0.0);
        assert!(!text.contains("matmul_bias"), "{text}");
        assert!(report.misses.iter().all(|m| m.rule != "matmul-bias-fuse"));
        // A broadcast activation added to the product: a bias-shaped candidate, not constant.
        let src = plus_activation("5");
        let (text, report) = check(&src, 0.0);
        assert!(!text.contains("matmul_bias"), "{text}");
        assert!(text.contains("matmul(") && text.contains("add("), "{text}");
        let miss = report
            .misses
            .iter()
            .find(|m| m.rule == "matmul-bias-fuse")
            .expect("a miss is reported");
        assert_eq!(miss.pattern, "MatMulBias");
        assert!(miss.reason.contains("not a constant"), "{}", miss.reason);
        // A constant that widens the product ([2, 1, 5] + [4, 2, 1, 1] → [4, 2, 1, 5]).
        let widen = r#"kir 1
graph {
  input %x: f32[2, 1, 4]
  weight @0 "w": f32[4, 5] = [0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 0.0, -0.5, 1.0, 0.125, -2.0, 0.75, 1.25, -0.25, 0.5, 1.0, -1.5, 0.375, 0.0, 2.5]
  weight @1 "b": f32[4, 2, 1, 1] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
  %0 = matmul(%x, @0) : f32[2, 1, 5]
  %1 = add(%0, @1) : f32[4, 2, 1, 5]
  output "y" = %1
}
"#;
        let g = parse(widen).unwrap();
        let (opt, report) = optimize(&g, &Limits::default()).unwrap();
        let text = crate::text::print(&opt).unwrap();
        assert!(!text.contains("matmul_bias"), "{text}");
        assert!(report
            .misses
            .iter()
            .any(|m| m.rule == "matmul-bias-fuse" && m.reason.contains("broadcast")));
    }
}
