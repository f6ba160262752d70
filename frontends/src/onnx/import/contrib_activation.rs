//! ONNX Runtime's fused activations (`com.microsoft`): `Gelu`, `BiasGelu` and `FastGelu` onto
//! the IR `gelu` (exact erf form, or the tanh approximation) after an optional bias add, and
//! `QuickGelu` as `x · sigmoid(alpha · x)`; and the matmuls its graph optimizer fuses with
//! transposes, a scale or an activation (`FusedMatMul`, `TransposeMatMul`, `FusedGemm`), onto the
//! IR `matmul` between transposes and scalar ops.

use super::contrib_common::shape;
use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_linalg::{gemm, matmul};
use super::ops_util::{
    binary, binary_scalar, dims, flag, one, require_float, scale, transpose, unary,
};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, GeluApprox, Op, UnaryOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    const MS: &str = "com.microsoft";
    r.add_in(MS, "Gelu", |c, n| gelu(c, n, GeluApprox::None, false));
    r.add_in(MS, "BiasGelu", |c, n| gelu(c, n, GeluApprox::None, true));
    r.add_in(MS, "FastGelu", |c, n| gelu(c, n, GeluApprox::Tanh, false));
    r.add_in(MS, "QuickGelu", quick_gelu);
    r.add_in(MS, "FusedMatMul", fused_matmul);
    r.add_in(MS, "TransposeMatMul", fused_matmul);
    r.add_in(MS, "FusedGemm", fused_gemm);
}

/// Float input `i`.
fn float_input(ctx: &Ctx, n: &NodeView, i: usize) -> NResult<Operand> {
    let x = n.input(i)?.clone();
    require_float(ctx, &x, &n.node.op_type)?;
    Ok(x)
}

/// `x + bias` for a bias over the last axis (input 1: required for `BiasGelu`, optional for
/// `FastGelu`, absent for `Gelu`).
fn biased(ctx: &mut Ctx, n: &NodeView, required: bool) -> NResult<Operand> {
    let x = float_input(ctx, n, 0)?;
    if !required && n.opt_input(1).is_none() {
        return Ok(x);
    }
    let b = float_input(ctx, n, 1)?;
    let (xd, bd) = (dims(ctx, &x), dims(ctx, &b));
    let last_ok = match (xd.last(), bd.as_slice()) {
        (Some(h), [d]) => d == h || d.as_known().is_none() || h.as_known().is_none(),
        _ => false,
    };
    if !last_ok {
        return invalid(format!(
            "{} bias has shape {}; expected [H] for an input of shape {}",
            n.node.op_type,
            shape(&bd),
            shape(&xd)
        ));
    }
    binary(ctx, BinaryOp::Add, &x, &b)
}

/// `gelu(x [+ bias])` with the given formula.
fn gelu(ctx: &mut Ctx, n: &NodeView, approx: GeluApprox, bias: bool) -> NResult<Vec<Operand>> {
    let x = if approx == GeluApprox::Tanh {
        biased(ctx, n, false)?
    } else if bias {
        biased(ctx, n, true)?
    } else {
        float_input(ctx, n, 0)?
    };
    one(ctx.emit1(Op::Gelu { approx }, &[x])?)
}

/// `x · sigmoid(alpha · x)`, alpha 1.702 by default (1.0 is SiLU).
fn quick_gelu(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n, 0)?;
    let alpha = f64::from(n.float("alpha", 1.702));
    if !alpha.is_finite() {
        return invalid(format!("QuickGelu alpha must be finite, got {alpha}"));
    }
    let a = scale(ctx, &x, alpha)?;
    let s = unary(ctx, UnaryOp::Sigmoid, &a)?;
    one(binary(ctx, BinaryOp::Mul, &x, &s)?)
}

/// `x` with its last two axes swapped when `on` (refused below rank 2).
fn swap_last(ctx: &mut Ctx, x: &Operand, on: bool, what: &str) -> NResult<Operand> {
    if !on {
        return Ok(x.clone());
    }
    let r = dims(ctx, x).len();
    if r < 2 {
        return invalid(format!("{what} of rank {r} cannot be transposed"));
    }
    let mut perm: Vec<i64> = (0..r as i64).collect();
    perm.swap(r - 2, r - 1);
    transpose(ctx, x, perm)
}

/// `alpha · op(A) · op(B)`, `op` transposing the last two axes when `transA` / `transB` is set.
fn fused_matmul(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    for name in ["transBatchA", "transBatchB"] {
        let v = n.int(name, 0);
        if v != 0 {
            return unsupported(format!("{} {name} = {v}", n.node.op_type));
        }
    }
    let a = float_input(ctx, n, 0)?;
    let b = float_input(ctx, n, 1)?;
    let a = swap_last(ctx, &a, flag(n, "transA", false), "A")?;
    let b = swap_last(ctx, &b, flag(n, "transB", false), "B")?;
    let y = matmul(ctx, &a, &b)?;
    one(scale(ctx, &y, f64::from(n.float("alpha", 1.0)))?)
}

/// ONNX `Gemm` followed by `activation` (`Relu`, `Tanh`, `Sigmoid`, `LeakyRelu` with
/// `activation_alpha`, `HardSigmoid` with `activation_alpha` and `activation_beta`).
fn fused_gemm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let act = n.string("activation", "");
    let alpha = |default: f32| f64::from(n.float("activation_alpha", default));
    if !matches!(
        act.as_str(),
        "" | "Relu" | "Tanh" | "Sigmoid" | "LeakyRelu" | "HardSigmoid"
    ) {
        return unsupported(format!(
            "FusedGemm activation = {act} (Relu, Tanh, Sigmoid, LeakyRelu or HardSigmoid)"
        ));
    }
    let y = gemm(ctx, n)?.remove(0);
    let y = match act.as_str() {
        "Relu" => unary(ctx, UnaryOp::Relu, &y)?,
        "Tanh" => unary(ctx, UnaryOp::Tanh, &y)?,
        "Sigmoid" => unary(ctx, UnaryOp::Sigmoid, &y)?,
        "LeakyRelu" => {
            let neg = scale(ctx, &y, alpha(0.01))?;
            let is_neg = binary_scalar(ctx, BinaryOp::Lt, &y, 0.0)?;
            ctx.emit1(Op::Where, &[is_neg, neg, y])?
        }
        "HardSigmoid" => {
            let beta = f64::from(n.float("activation_beta", 0.5));
            let v = scale(ctx, &y, alpha(0.2))?;
            let v = binary_scalar(ctx, BinaryOp::Add, &v, beta)?;
            let v = binary_scalar(ctx, BinaryOp::Min, &v, 1.0)?;
            binary_scalar(ctx, BinaryOp::Max, &v, 0.0)?
        }
        _ => y,
    };
    one(y)
}
