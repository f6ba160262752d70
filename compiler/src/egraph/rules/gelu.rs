//! GELU recognition. The product of `x`, the constant 0.5 and `1 + f(x)`, grouped either way
//! — `(x·0.5)·(1+f)`, `(x·(1+f))·0.5`, … — with constants in either operand slot, becomes
//! `gelu(x)`, where `f` is
//! - exact (`gelu-erf-fuse`, `approx = none`): `erf(x / √2)` or `erf(x · 1/√2)`;
//! - tanh (`gelu-tanh-fuse`, `approx = tanh`, GPT-2 `gelu_new`, BLOOM's `bloom_gelu_forward`):
//!   `tanh(√(2/π) · (x + 0.044715 · x³))` in any grouping and spelling of the cube
//!   (`Pow(x, 3)`, `x·x·x`, `√(2/π)·x·(1 + 0.044715·x·x)`): the argument is read as a
//!   polynomial in x ([`poly`](super::poly)) and compared coefficient by coefficient.
//!
//! Guards: 0.5 and 1 within 1e-6; the argument's coefficients within a relative 1e-4
//! (exporters write √2 as 1.4142099618911743 or `M_SQRT2`, √(2/π) as 0.7978845608 or
//! 0.79788456); every occurrence of `x` is the same e-class.

use super::poly::{close, poly};
use super::{bin, comm, push_unique, un, Diag, Recipe};
use crate::egraph::analysis::is_scalar;
use crate::egraph::lang::KEGraph;
use crate::ir::{BinaryOp, GeluApprox, Op, UnaryOp};
use egg::Id;
use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_PI};

/// Tolerance for the irrational constants.
const IRRATIONAL_TOL: f64 = 1e-4;
/// Tolerance for the exactly representable constants.
const EXACT_TOL: f64 = 1e-6;
/// The cubic coefficient of the tanh approximation.
const CUBIC: f64 = 0.044715;

/// A check of the unary's argument class against `x`.
type ArgCheck = fn(&KEGraph, Id, Id) -> bool;

/// True when class `u` is `x / √2` (any spelling of the constant, `· 1/√2` too).
fn is_x_over_sqrt2(eg: &KEGraph, u: Id, x: Id) -> bool {
    poly(eg, u, x).is_some_and(|p| close(&p, &[0.0, FRAC_1_SQRT_2, 0.0, 0.0, 0.0], IRRATIONAL_TOL))
}

/// True when class `u` is `√(2/π) · (x + 0.044715 · x³)`, in any grouping (GPT-2's
/// `gelu_new`, BLOOM's `x · k · (1 + c·x·x)`).
fn is_tanh_arg(eg: &KEGraph, u: Id, x: Id) -> bool {
    let k = FRAC_2_PI.sqrt();
    poly(eg, u, x).is_some_and(|p| close(&p, &[0.0, k, 0.0, k * CUBIC, 0.0], IRRATIONAL_TOL))
}

/// True when class `e` holds `1 + f(arg)` with `f` the approximation's unary and `arg`
/// accepted by its argument check.
fn is_one_plus(eg: &KEGraph, e: Id, x: Id, approx: GeluApprox) -> bool {
    let (f, arg_ok): (UnaryOp, ArgCheck) = match approx {
        GeluApprox::None => (UnaryOp::Erf, is_x_over_sqrt2),
        GeluApprox::Tanh => (UnaryOp::Tanh, is_tanh_arg),
    };
    comm(eg, e, BinaryOp::Add).into_iter().any(|(t, one)| {
        is_scalar(eg, one, 1.0, EXACT_TOL) && un(eg, t, f).into_iter().any(|u| arg_ok(eg, u, x))
    })
}

/// The GELU nodes equal to class `root` for one formula.
fn gelu_fuse(eg: &KEGraph, root: Id, approx: GeluApprox) -> Vec<Recipe> {
    let mut out = Vec::new();
    for (p, q) in comm(eg, root, BinaryOp::Mul) {
        for (a, b) in bin(eg, p, BinaryOp::Mul) {
            let f = [a, b, q];
            for (xi, hi, ei) in [
                (0, 1, 2),
                (0, 2, 1),
                (1, 0, 2),
                (1, 2, 0),
                (2, 0, 1),
                (2, 1, 0),
            ] {
                let x = f[xi];
                if is_scalar(eg, f[hi], 0.5, EXACT_TOL) && is_one_plus(eg, f[ei], x, approx) {
                    push_unique(&mut out, Recipe::one(Op::Gelu { approx }, &[x]));
                }
            }
        }
    }
    out
}

/// The matcher of rule `gelu-erf-fuse`.
pub fn gelu_erf_fuse(eg: &KEGraph, root: Id, _diag: &mut Diag) -> Vec<Recipe> {
    gelu_fuse(eg, root, GeluApprox::None)
}

/// The matcher of rule `gelu-tanh-fuse`.
pub fn gelu_tanh_fuse(eg: &KEGraph, root: Id, _diag: &mut Diag) -> Vec<Recipe> {
    gelu_fuse(eg, root, GeluApprox::Tanh)
}
