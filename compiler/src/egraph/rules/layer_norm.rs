//! LayerNorm recognition, legacy TorchScript spelling:
//! `ReduceMean(-1) → Sub → Pow(2) → ReduceMean(-1) → Add(ε) → Sqrt → Div → Mul(γ) → Add(β)`
//! becomes `layer_norm(x, γ, β) {axis = -1, eps = ε}`.
//!
//! Also accepted (TF / onnxscript spellings the same matcher absorbs): the square as
//! `Mul(d, d)` instead of `Pow(d, 2)`, and the division as `Mul(d, Reciprocal(sqrt))`.
//!
//! Guards: both reductions are means over the last axis only, with keepdims; the Pow exponent
//! is the constant 2; ε is a one-element constant with 0 < ε < 1e-3; γ and β are 1-D with the
//! length of x's last dim; the Sub feeding Pow is the one feeding Div (hash-consing makes a
//! duplicated Sub the same class). Constants may sit in either operand of Add and Mul.

use super::{bin, comm, mean_last, same, ty, un};
use crate::egraph::analysis::scalar;
use crate::egraph::lang::{KEGraph, KNode};
use crate::ir::{BinaryOp, Op, UnaryOp};
use egg::Id;

/// Largest ε accepted (a larger one is not a numerical-stability epsilon).
pub const MAX_EPS: f64 = 1e-3;

/// True when `p` is 1-D with the length of `x`'s last dim.
fn is_affine_param(eg: &KEGraph, p: Id, x: Id) -> bool {
    match (ty(eg, p), ty(eg, x)) {
        (Some(pt), Some(xt)) => {
            pt.rank() == 1 && xt.rank() >= 1 && pt.shape.0[0] == xt.shape.0[xt.rank() - 1]
        }
        _ => false,
    }
}

/// `Sqrt(mean_last(Pow(s, 2)) + ε)` in class `r`: the ε values found.
fn rstd_eps(eg: &KEGraph, r: Id, s: Id) -> Vec<f64> {
    let mut out = Vec::new();
    for e in un(eg, r, UnaryOp::Sqrt) {
        for (v, c) in comm(eg, e, BinaryOp::Add) {
            let Some(eps) = scalar(eg, c) else { continue };
            if !(eps > 0.0 && eps < MAX_EPS) {
                continue;
            }
            for p in mean_last(eg, v) {
                let pow = bin(eg, p, BinaryOp::Pow)
                    .into_iter()
                    .any(|(b, two)| same(eg, b, s) && scalar(eg, two) == Some(2.0));
                let mul = bin(eg, p, BinaryOp::Mul)
                    .into_iter()
                    .any(|(a, b)| same(eg, a, s) && same(eg, b, s));
                let squares = pow || mul;
                if squares {
                    out.push(eps);
                }
            }
        }
    }
    out
}

/// `(d, r)` pairs with class `q` = `d / r` or `d · Reciprocal(r)`.
fn divisions(eg: &KEGraph, q: Id) -> Vec<(Id, Id)> {
    let mut out = bin(eg, q, BinaryOp::Div);
    for (d, rr) in comm(eg, q, BinaryOp::Mul) {
        out.extend(un(eg, rr, UnaryOp::Reciprocal).into_iter().map(|r| (d, r)));
    }
    out
}

/// The matcher of rule `ln-fuse`.
pub fn ln_fuse(eg: &KEGraph, root: Id) -> Vec<KNode> {
    let mut out: Vec<KNode> = Vec::new();
    for (a, beta) in comm(eg, root, BinaryOp::Add) {
        for (d, gamma) in comm(eg, a, BinaryOp::Mul) {
            for (s, r) in divisions(eg, d) {
                for (x, m) in bin(eg, s, BinaryOp::Sub) {
                    if !mean_last(eg, m).into_iter().any(|mx| same(eg, mx, x)) {
                        continue;
                    }
                    if !is_affine_param(eg, gamma, x) || !is_affine_param(eg, beta, x) {
                        continue;
                    }
                    for eps in rstd_eps(eg, r, s) {
                        let n = KNode::op(Op::LayerNorm { axis: -1, eps }, vec![x, gamma, beta]);
                        if !out.contains(&n) {
                            out.push(n);
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::egraph::{optimize, Limits};
    use crate::text::parse;

    /// A minimal legacy LayerNorm over `f32[3, 2]` with the given ε text.
    fn src(eps: &str) -> String {
        format!(
            r#"kir 1
graph {{
  input %x: f32[3, 2]
  weight @0 "g": f32[2] = [1.0, 2.0]
  weight @1 "b": f32[2] = [0.0, 1.0]
  weight @2 "two": f32[] = [2.0]
  weight @3 "eps": f32[] = [{eps}]
  %0 = reduce_mean(%x) {{axes = [-1], keepdims = true}} : f32[3, 1]
  %1 = sub(%x, %0) : f32[3, 2]
  %2 = pow(%1, @2) : f32[3, 2]
  %3 = reduce_mean(%2) {{axes = [-1], keepdims = true}} : f32[3, 1]
  %4 = add(@3, %3) : f32[3, 1]
  %5 = sqrt(%4) : f32[3, 1]
  %6 = div(%1, %5) : f32[3, 2]
  %7 = mul(@0, %6) : f32[3, 2]
  %8 = add(%7, @1) : f32[3, 2]
  output "y" = %8
}}
"#
        )
    }

    #[test]
    fn eps_bounds() {
        for (eps, fuses) in [
            ("1e-12", true),
            ("0.0009", true),
            ("0.001", false),
            ("0.0", false),
        ] {
            let g = parse(&src(eps)).unwrap();
            let (_, report) = optimize(&g, &Limits::default()).unwrap();
            assert_eq!(report.count("LayerNorm"), usize::from(fuses), "eps {eps}");
        }
    }
}
