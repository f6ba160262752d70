//! LayerNorm recognition, legacy TorchScript spelling:
//! `ReduceMean(-1) → Sub → Pow(2) → ReduceMean(-1) → Add(ε) → Sqrt → Div → Mul(γ) → Add(β)`
//! becomes `layer_norm(x, γ, β) {axis = -1, eps = ε}` (ONNX `LayerNormalization` is imported
//! as `layer_norm` directly).
//!
//! Also accepted (TF / onnxscript spellings the same matcher absorbs): the square as
//! `Mul(d, d)` instead of `Pow(d, 2)`; the division as `Mul(d, Reciprocal(sqrt))`; no β (the
//! `Mul(γ)` is the root); and mixed precision — x cast up to f32 for the statistics and the
//! normalised value cast back before γ (`Cast → … → Div → Cast → Mul(γ)`), fused as a
//! `layer_norm` in γ's dtype over the uncast x.
//!
//! Guards (a failed one is reported as a miss): both reductions are means over the last axis
//! only, with keepdims; the exponent is the constant 2; ε is a one-element constant with
//! 0 < ε < 1e-3; γ and β are 1-D with the length of x's last dim. The Sub feeding Pow is the
//! one feeding Div (hash-consing makes a duplicated Sub the same class). Constants may sit in
//! either operand of Add and Mul.

use super::{bin, casts, comm, dtype, is_last_axis, means, push_unique, same, ty, un};
use super::{Arg, Diag, Recipe};
use crate::egraph::analysis::scalar;
use crate::egraph::lang::KEGraph;
use crate::ir::{BinaryOp, Op, UnaryOp};
use egg::Id;

/// Largest ε accepted (a larger one is not a numerical-stability epsilon).
pub const MAX_EPS: f64 = 1e-3;

/// Why `p` is not a 1-D affine parameter over `x`'s last dim (None when it is).
pub(super) fn affine_problem(eg: &KEGraph, p: Id, x: Id, what: &str) -> Option<String> {
    match (ty(eg, p), ty(eg, x)) {
        (Some(pt), Some(xt)) => {
            let ok = pt.rank() == 1 && xt.rank() >= 1 && pt.shape.0[0] == xt.shape.0[xt.rank() - 1];
            (!ok).then(|| {
                format!(
                    "{what} has shape {} (wants [{}], 1-D over the last axis)",
                    pt.shape,
                    xt.shape.0.last().map(|d| d.to_string()).unwrap_or_default()
                )
            })
        }
        _ => Some(format!("the type of {what} is unknown")),
    }
}

/// True when class `p` is `s²` (`Pow(s, 2)` or `Mul(s, s)`).
pub(super) fn is_square_of(eg: &KEGraph, p: Id, s: Id) -> bool {
    let pow = bin(eg, p, BinaryOp::Pow)
        .into_iter()
        .any(|(b, two)| same(eg, b, s) && scalar(eg, two) == Some(2.0));
    pow || bin(eg, p, BinaryOp::Mul)
        .into_iter()
        .any(|(a, b)| same(eg, a, s) && same(eg, b, s))
}

/// `Sqrt(mean(s²) + ε)` in class `r`: the ε values that pass the guards (misses told to
/// `diag` against `root`).
pub(super) fn rstd_eps(eg: &KEGraph, r: Id, s: Id, root: Id, diag: &mut Diag) -> Vec<f64> {
    let mut out = Vec::new();
    for e in un(eg, r, UnaryOp::Sqrt) {
        out.extend(var_eps(eg, e, s, root, diag));
    }
    out
}

/// `mean(s²) + ε` in class `e` (mean over the last axis, small ε): the ε values.
pub(super) fn var_eps(eg: &KEGraph, e: Id, s: Id, root: Id, diag: &mut Diag) -> Vec<f64> {
    let mut out = Vec::new();
    for (v, c) in comm(eg, e, BinaryOp::Add) {
        let Some(eps) = scalar(eg, c) else { continue };
        for (p, axes) in means(eg, v) {
            if !is_square_of(eg, p, s) {
                continue;
            }
            if !is_last_axis(eg, p, &axes) {
                diag.miss(root, || {
                    format!("the mean of squares is over axes {axes:?}, not the last axis alone")
                });
                continue;
            }
            if !(eps > 0.0 && eps < MAX_EPS) {
                diag.miss(root, || format!("ε = {eps} is not in (0, {MAX_EPS})"));
                continue;
            }
            if !out.contains(&eps) {
                out.push(eps);
            }
        }
    }
    out
}

/// `(d, r)` pairs with class `q` = `d / r` or `d · Reciprocal(r)`.
pub(super) fn divisions(eg: &KEGraph, q: Id) -> Vec<(Id, Id)> {
    let mut out = bin(eg, q, BinaryOp::Div);
    for (d, rr) in comm(eg, q, BinaryOp::Mul) {
        out.extend(un(eg, rr, UnaryOp::Reciprocal).into_iter().map(|r| (d, r)));
    }
    out
}

/// The normalised-value classes of `d`: `d` itself, and `d32` when `d = cast(d32)` (the
/// statistics computed in a wider type), with the dtype the fused op must produce.
pub(super) fn normalised(eg: &KEGraph, d: Id) -> Vec<(Id, bool)> {
    let mut out = vec![(d, false)];
    out.extend(casts(eg, d).into_iter().map(|(x, _)| (x, true)));
    out
}

/// The fused op's input: `x`, or — when the normalised value was cast back (`cast_back`) — x
/// in γ's dtype: the uncast x when x is a cast from it, else x cast down (pushed on `rec`).
pub(super) fn fused_input(
    eg: &KEGraph,
    rec: &mut Recipe,
    x: Id,
    gamma: Id,
    cast_back: bool,
) -> Option<Arg> {
    if !cast_back {
        return Some(Arg::Class(x));
    }
    let want = dtype(eg, gamma);
    match casts(eg, x)
        .into_iter()
        .find(|&(x0, _)| dtype(eg, x0) == want)
    {
        Some((x0, _)) => Some(Arg::Class(x0)),
        None => want.map(|to| rec.push(Op::Cast { to }, vec![Arg::Class(x)])),
    }
}

/// The LayerNorm recipes for root `root` = `d·γ (+ β)`.
fn fuse_affine(
    eg: &KEGraph,
    root: Id,
    d: Id,
    gamma: Id,
    beta: Option<Id>,
    diag: &mut Diag,
    out: &mut Vec<Recipe>,
) {
    for (d, cast_back) in normalised(eg, d) {
        for (s, r) in divisions(eg, d) {
            for (x, m) in bin(eg, s, BinaryOp::Sub) {
                for (mx, axes) in means(eg, m) {
                    if !same(eg, mx, x) {
                        continue;
                    }
                    if !is_last_axis(eg, x, &axes) {
                        diag.miss(root, || {
                            format!("the mean is over axes {axes:?}, not the last axis alone")
                        });
                        continue;
                    }
                    let bad = affine_problem(eg, gamma, x, "γ")
                        .or_else(|| beta.and_then(|b| affine_problem(eg, b, x, "β")));
                    if let Some(why) = bad {
                        diag.miss(root, || why);
                        continue;
                    }
                    for eps in rstd_eps(eg, r, s, root, diag) {
                        let mut rec = Recipe::default();
                        let Some(xin) = fused_input(eg, &mut rec, x, gamma, cast_back) else {
                            continue;
                        };
                        let mut args = vec![xin, Arg::Class(gamma)];
                        args.extend(beta.map(Arg::Class));
                        rec.push(Op::LayerNorm { axis: -1, eps }, args);
                        push_unique(out, rec);
                    }
                }
            }
        }
    }
}

/// The matcher of rule `ln-fuse`.
pub fn ln_fuse(eg: &KEGraph, root: Id, diag: &mut Diag) -> Vec<Recipe> {
    let mut out = Vec::new();
    for (a, beta) in comm(eg, root, BinaryOp::Add) {
        for (d, gamma) in comm(eg, a, BinaryOp::Mul) {
            fuse_affine(eg, root, d, gamma, Some(beta), diag, &mut out);
        }
    }
    for (d, gamma) in comm(eg, root, BinaryOp::Mul) {
        fuse_affine(eg, root, d, gamma, None, diag, &mut out);
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
