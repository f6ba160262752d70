//! ONNX importers: activation functions, lowered onto IR unary ops, `where` and arithmetic.

use super::ctx::{invalid, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{
    binary, binary_scalar, cast, dims, one, require_float, reshape, scale, select, unary,
    unary_node,
};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, GeluApprox, Op, UnaryOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Relu", |c, n| unary_node(c, n, UnaryOp::Relu));
    r.add("Sigmoid", |c, n| unary_node(c, n, UnaryOp::Sigmoid));
    r.add("Softplus", |c, n| unary_node(c, n, UnaryOp::Softplus));
    r.add("Softsign", |c, n| unary_node(c, n, UnaryOp::Softsign));
    r.add("LeakyRelu", leaky_relu);
    r.add("PRelu", prelu);
    r.add("Elu", elu);
    r.add("Selu", selu);
    r.add("Celu", celu);
    r.add("HardSigmoid", hard_sigmoid);
    r.add("HardSwish", hard_swish);
    r.add("ThresholdedRelu", thresholded_relu);
    r.add("Mish", mish);
    r.add("Swish", swish);
    r.add("Gelu", gelu);
}

/// The float input 0 of an activation.
fn float_input(ctx: &Ctx, n: &NodeView) -> NResult<Operand> {
    let x = n.input(0)?.clone();
    require_float(ctx, &x, &n.node.op_type)?;
    Ok(x)
}

/// Multi-step activations of f16/bf16 inputs compute in f32 and round once at the end (as the
/// reference does for bf16 and kernels usually do), instead of rounding after every step.
fn widen(ctx: &mut Ctx, x: &Operand) -> NResult<Operand> {
    match ctx.ty(x).dtype {
        DType::F16 | DType::BF16 => cast(ctx, x, DType::F32),
        _ => Ok(x.clone()),
    }
}

/// `f(widen(x))` cast back to x's dtype.
fn widened(
    ctx: &mut Ctx,
    n: &NodeView,
    f: impl FnOnce(&mut Ctx, &Operand) -> NResult<Operand>,
) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n)?;
    let dt = ctx.ty(&x).dtype;
    let w = widen(ctx, &x)?;
    let y = f(ctx, &w)?;
    one(cast(ctx, &y, dt)?)
}

/// A float attribute as f64.
fn attr(n: &NodeView, name: &str, default: f32) -> f64 {
    f64::from(n.float(name, default))
}

/// `x < 0 ? neg : x`.
fn where_negative(ctx: &mut Ctx, x: &Operand, neg: &Operand) -> NResult<Operand> {
    let is_neg = binary_scalar(ctx, BinaryOp::Lt, x, 0.0)?;
    select(ctx, &is_neg, neg, x)
}

/// `max(0, min(1, alpha·x + beta))`.
fn hard_sigmoid_of(ctx: &mut Ctx, x: &Operand, alpha: f64, beta: f64) -> NResult<Operand> {
    let y = scale(ctx, x, alpha)?;
    let y = binary_scalar(ctx, BinaryOp::Add, &y, beta)?;
    let y = binary_scalar(ctx, BinaryOp::Min, &y, 1.0)?;
    binary_scalar(ctx, BinaryOp::Max, &y, 0.0)
}

/// `LeakyRelu`: `x < 0 ? alpha·x : x`.
fn leaky_relu(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n)?;
    let neg = scale(ctx, &x, attr(n, "alpha", 0.01))?;
    one(where_negative(ctx, &x, &neg)?)
}

/// `PRelu`: `x < 0 ? slope·x : x`, slope broadcast to x. Before opset 7 a rank-1 slope of
/// length `C = x.shape[1]` is per channel (axis 1, the Caffe2 convention). Integers work too
/// (opset ≥ 9).
fn prelu(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let mut slope = n.input(1)?.clone();
    let (xd, sd) = (dims(ctx, &x), dims(ctx, &slope));
    if n.opset < 7
        && sd.len() == 1
        && xd.len() >= 3
        && sd[0] == xd[1]
        && sd[0].as_known() != Some(1)
    {
        let mut shape = sd.clone();
        shape.extend(std::iter::repeat_n(Dim::known(1), xd.len() - 2));
        slope = reshape(ctx, &slope, shape)?;
    }
    let neg = binary(ctx, BinaryOp::Mul, &x, &slope)?;
    one(where_negative(ctx, &x, &neg)?)
}

/// `Elu`: `x < 0 ? alpha·(exp(x) - 1) : x`.
fn elu(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let alpha = attr(n, "alpha", 1.0);
    widened(ctx, n, |ctx, x| {
        let e = unary(ctx, UnaryOp::Exp, x)?;
        let e = binary_scalar(ctx, BinaryOp::Sub, &e, 1.0)?;
        let neg = scale(ctx, &e, alpha)?;
        where_negative(ctx, x, &neg)
    })
}

/// `Selu`: `x <= 0 ? gamma·(alpha·exp(x) - alpha) : gamma·x`.
fn selu(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let alpha = attr(n, "alpha", 1.673_263_2);
    let gamma = attr(n, "gamma", 1.050_701);
    widened(ctx, n, |ctx, x| {
        let e = unary(ctx, UnaryOp::Exp, x)?;
        let e = scale(ctx, &e, alpha)?;
        let e = binary_scalar(ctx, BinaryOp::Sub, &e, alpha)?;
        let neg = scale(ctx, &e, gamma)?;
        let pos = scale(ctx, x, gamma)?;
        let le0 = binary_scalar(ctx, BinaryOp::Le, x, 0.0)?;
        select(ctx, &le0, &neg, &pos)
    })
}

/// `Celu`: `max(0, x) + min(0, alpha·(exp(x/alpha) - 1))`, i.e. `x < 0 ? alpha·(exp(x/alpha) - 1)
/// : x`.
fn celu(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let alpha = attr(n, "alpha", 1.0);
    if alpha == 0.0 {
        return invalid("Celu: alpha must not be 0");
    }
    widened(ctx, n, |ctx, x| {
        let e = scale(ctx, x, 1.0 / alpha)?;
        let e = unary(ctx, UnaryOp::Exp, &e)?;
        let e = binary_scalar(ctx, BinaryOp::Sub, &e, 1.0)?;
        let neg = scale(ctx, &e, alpha)?;
        where_negative(ctx, x, &neg)
    })
}

/// `HardSigmoid`: `max(0, min(1, alpha·x + beta))`.
fn hard_sigmoid(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (alpha, beta) = (attr(n, "alpha", 0.2), attr(n, "beta", 0.5));
    widened(ctx, n, |ctx, x| hard_sigmoid_of(ctx, x, alpha, beta))
}

/// `HardSwish`: `x · hard_sigmoid(x)` with alpha 1/6, beta 0.5.
fn hard_swish(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    widened(ctx, n, |ctx, x| {
        let h = hard_sigmoid_of(ctx, x, 1.0 / 6.0, 0.5)?;
        binary(ctx, BinaryOp::Mul, x, &h)
    })
}

/// `ThresholdedRelu`: `x > alpha ? x : 0`.
fn thresholded_relu(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n)?;
    let above = binary_scalar(ctx, BinaryOp::Gt, &x, attr(n, "alpha", 1.0))?;
    let zero = ctx.scalar(0.0, ctx.ty(&x).dtype)?;
    one(select(ctx, &above, &x, &zero)?)
}

/// `Mish`: `x · tanh(softplus(x))`.
fn mish(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    widened(ctx, n, |ctx, x| {
        let s = unary(ctx, UnaryOp::Softplus, x)?;
        let t = unary(ctx, UnaryOp::Tanh, &s)?;
        binary(ctx, BinaryOp::Mul, x, &t)
    })
}

/// `Swish`: `x · sigmoid(alpha·x)`.
fn swish(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let alpha = attr(n, "alpha", 1.0);
    widened(ctx, n, |ctx, x| {
        let a = scale(ctx, x, alpha)?;
        let s = unary(ctx, UnaryOp::Sigmoid, &a)?;
        binary(ctx, BinaryOp::Mul, x, &s)
    })
}

/// `Gelu` (opset 20): `approximate` is `none` or `tanh`.
fn gelu(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n)?;
    let approx = match n.string("approximate", "none").as_str() {
        "none" => GeluApprox::None,
        "tanh" => GeluApprox::Tanh,
        other => {
            return invalid(format!(
                "Gelu: approximate must be none or tanh, got `{other}`"
            ))
        }
    };
    one(ctx.emit1(Op::Gelu { approx }, &[x])?)
}
