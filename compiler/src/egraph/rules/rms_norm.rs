//! RmsNorm recognition (Llama, T5, Mistral): `γ · (x · rstd)` or `γ · (x / √(…))` where the
//! root-mean-square reciprocal `rstd` is `1 / Sqrt(mean(x²) + ε)`, `Reciprocal(Sqrt(…))` or
//! `Rsqrt(…)`, becomes `rms_norm(x, γ) {eps = ε}`.
//!
//! Mixed precision as `LlamaRMSNorm` writes it — x cast up to f32, the normalised value cast
//! back to the input dtype before γ — is fused over the uncast x in γ's dtype.
//!
//! Guards (a failed one is reported as a miss): the mean is over the last axis only, with
//! keepdims; the square is `Pow(x, 2)` or `Mul(x, x)`; 0 < ε < 1e-3; γ is 1-D with the
//! length of x's last dim.

use super::layer_norm::{affine_problem, fused_input, normalised, rstd_eps, var_eps};
use super::{bin, comm, push_unique, un, Arg, Diag, Recipe};
use crate::egraph::analysis::is_scalar;
use crate::egraph::lang::KEGraph;
use crate::ir::{BinaryOp, Op, UnaryOp};
use egg::Id;

/// `(x, ε)` with class `n` = `x · rstd(x)` or `x / √(mean(x²) + ε)`.
fn scaled(eg: &KEGraph, n: Id, root: Id, diag: &mut Diag) -> Vec<(Id, f64)> {
    let mut out = Vec::new();
    for (x, r) in bin(eg, n, BinaryOp::Div) {
        out.extend(rstd_eps(eg, r, x, root, diag).into_iter().map(|e| (x, e)));
    }
    for (x, inv) in comm(eg, n, BinaryOp::Mul) {
        for (one, r) in bin(eg, inv, BinaryOp::Div) {
            if is_scalar(eg, one, 1.0, 0.0) {
                out.extend(rstd_eps(eg, r, x, root, diag).into_iter().map(|e| (x, e)));
            }
        }
        for r in un(eg, inv, UnaryOp::Reciprocal) {
            out.extend(rstd_eps(eg, r, x, root, diag).into_iter().map(|e| (x, e)));
        }
        for e in un(eg, inv, UnaryOp::Rsqrt) {
            out.extend(var_eps(eg, e, x, root, diag).into_iter().map(|v| (x, v)));
        }
    }
    out
}

/// The matcher of rule `rms-fuse`.
pub fn rms_fuse(eg: &KEGraph, root: Id, diag: &mut Diag) -> Vec<Recipe> {
    let mut out = Vec::new();
    for (n, gamma) in comm(eg, root, BinaryOp::Mul) {
        for (n, cast_back) in normalised(eg, n) {
            for (x, eps) in scaled(eg, n, root, diag) {
                if let Some(why) = affine_problem(eg, gamma, x, "γ") {
                    diag.miss(root, || why);
                    continue;
                }
                let mut rec = Recipe::default();
                let Some(xin) = fused_input(eg, &mut rec, x, gamma, cast_back) else {
                    continue;
                };
                rec.push(Op::RmsNorm { eps }, vec![xin, Arg::Class(gamma)]);
                push_unique(&mut out, rec);
            }
        }
    }
    out
}
