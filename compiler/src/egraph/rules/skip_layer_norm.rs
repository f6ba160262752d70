//! Skip (residual) LayerNorm recognition: `layer_norm(add(x, skip), γ, [β]) {axis, eps}`
//! becomes `skip_layer_norm(x, skip, γ, [β]) {axis, eps}`, whose output 0 replaces the
//! layer_norm and output 1 the residual sum `add(x, skip)` (which the next residual add of a
//! pre-LN transformer, or nothing, consumes).
//!
//! The layer_norm may be imported directly (ONNX `LayerNormalization`) or made by `ln-fuse`
//! from a decomposed spelling; saturation runs both, so this rule sees the latter in a later
//! iteration.
//!
//! Guard (a failed one is told to the `Diag` as a miss; the optimizer's report leaves it out,
//! since it skips classes whose chosen node is already a fused op, here the layer_norm): the
//! add is a residual, not a broadcast — x, skip and the sum all have the same type. (A
//! broadcast add, such as a bias or a position embedding, stays an add.)

use super::{bin, nodes, push_unique, ty, Arg, Diag, Recipe};
use crate::egraph::lang::KEGraph;
use crate::ir::{BinaryOp, Op};
use egg::Id;

/// The matcher of rule `skip-ln-fuse`.
pub fn skip_ln_fuse(eg: &KEGraph, root: Id, diag: &mut Diag) -> Vec<Recipe> {
    let mut out = Vec::new();
    for (op, c) in nodes(eg, root, |o| matches!(o, Op::LayerNorm { .. })) {
        let Op::LayerNorm { axis, eps } = op else {
            continue;
        };
        let (s, params) = match c.as_slice() {
            [s, params @ ..] if matches!(params.len(), 1 | 2) => (*s, params),
            _ => continue,
        };
        for (x, skip) in bin(eg, s, BinaryOp::Add) {
            let (Some(st), Some(xt), Some(kt)) = (ty(eg, s), ty(eg, x), ty(eg, skip)) else {
                continue;
            };
            if xt != st || kt != st {
                diag.miss(root, || {
                    format!(
                        "the add before the layer_norm broadcasts ({xt} + {kt} → {st}), \
                         not a residual"
                    )
                });
                continue;
            }
            let mut rec = Recipe::default();
            let mut args = vec![Arg::Class(x), Arg::Class(skip)];
            args.extend(params.iter().map(|&p| Arg::Class(p)));
            let k = rec.push(Op::SkipLayerNorm { axis, eps }, args);
            let sum = rec.proj(k, 1);
            rec.also(sum, s);
            // Last: y, the node unioned with the matched class.
            rec.proj(k, 0);
            push_unique(&mut out, rec);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::matmul_bias::testing::check;
    use super::super::Diag;
    use super::skip_ln_fuse;
    use crate::egraph::convert::to_egraph;
    use crate::text::parse;

    const G: &str = r#"  weight @0 "g": f32[4] = [1.0, 0.5, -1.5, 2.0]
  weight @1 "b": f32[4] = [0.1, -0.2, 0.3, -0.4]"#;

    /// BERT post-LN: `y = layer_norm(x + r)`; `extra` adds outputs (the residual sum).
    fn post_ln(beta: bool, extra: &str) -> String {
        let params = if beta { "@0, @1" } else { "@0" };
        format!(
            r#"kir 1
graph {{
  input %x: f32[2, 3, 4]
  input %r: f32[2, 3, 4]
{G}
  %0 = add(%x, %r) : f32[2, 3, 4]
  %1 = layer_norm(%0, {params}) {{axis = -1, eps = 1e-5}} : f32[2, 3, 4]
  output "y" = %1
{extra}}}
"#
        )
    }

    #[test]
    fn residual_layer_norm_fuses() {
        for beta in [true, false] {
            let (text, report) = check(&post_ln(beta, ""), 1e-5);
            let params = if beta { "@0, @1" } else { "@0" };
            let want = format!("= skip_layer_norm(%x, %r, {params}) {{axis = -1, eps = 1e-5}}");
            assert!(text.contains(&want), "{text}");
            assert!(!text.contains("add("), "{text}");
            assert!(!text.contains(" layer_norm("), "{text}");
            // Already a layer_norm in the input: nothing gained by name.
            assert_eq!(report.count("LayerNorm"), 0);
        }
    }

    #[test]
    fn residual_sum_is_the_second_output() {
        // Pre-LN: the sum is used again (here as an output) besides feeding the layer_norm.
        let (text, _) = check(&post_ln(true, "  output \"sum\" = %0\n"), 1e-5);
        assert!(text.contains("skip_layer_norm(%x, %r, @0, @1)"), "{text}");
        assert_eq!(text.matches("skip_layer_norm(").count(), 1, "{text}");
    }

    #[test]
    fn decomposed_layer_norm_of_a_residual_fuses() {
        // ln-fuse makes the layer_norm; skip-ln-fuse then absorbs the add.
        let src = format!(
            r#"kir 1
graph {{
  input %x: f32[3, 4]
  input %r: f32[3, 4]
{G}
  weight @2 "two": f32[] = [2.0]
  weight @3 "eps": f32[] = [1e-5]
  %s = add(%x, %r) : f32[3, 4]
  %0 = reduce_mean(%s) {{axes = [-1], keepdims = true}} : f32[3, 1]
  %1 = sub(%s, %0) : f32[3, 4]
  %2 = pow(%1, @2) : f32[3, 4]
  %3 = reduce_mean(%2) {{axes = [-1], keepdims = true}} : f32[3, 1]
  %4 = add(%3, @3) : f32[3, 1]
  %5 = sqrt(%4) : f32[3, 1]
  %6 = div(%1, %5) : f32[3, 4]
  %7 = mul(%6, @0) : f32[3, 4]
  %8 = add(%7, @1) : f32[3, 4]
  output "y" = %8
}}
"#
        );
        let (text, report) = check(&src, 1e-5);
        assert!(text.contains("skip_layer_norm(%x, %r, @0, @1)"), "{text}");
        assert!(!text.contains("reduce_mean"), "{text}");
        assert_eq!(report.count("LayerNorm"), 1);
    }

    #[test]
    fn broadcasting_add_does_not_fuse() {
        for r in ["f32[4]", "f32[1, 3, 4]"] {
            let src =
                post_ln(true, "").replace("input %r: f32[2, 3, 4]", &format!("input %r: {r}"));
            let (text, report) = check(&src, 0.0);
            assert!(!text.contains("skip_layer_norm"), "{text}");
            assert!(
                text.contains("layer_norm(") && text.contains("add("),
                "{text}"
            );
            assert_eq!(report.count("LayerNorm"), 0);
            // The miss is told to the Diag (the report skips layer_norm classes: already fused).
            let (eg, _) = to_egraph(&parse(&src).unwrap()).unwrap();
            let mut diag = Diag::recording();
            for class in eg.classes() {
                assert!(skip_ln_fuse(&eg, class.id, &mut diag).is_empty());
            }
            assert_eq!(diag.misses.len(), 1, "{:?}", diag.misses);
            let reason = &diag.misses[0].reason;
            assert!(
                reason.contains("broadcasts") && reason.contains(r),
                "{reason}"
            );
        }
    }
}
