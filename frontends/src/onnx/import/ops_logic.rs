//! ONNX importers: comparisons, logical and bitwise ops, shifts, tests (`IsNaN`, `IsInf`) and
//! the selections `Where`, `Clip` and `Shrink`.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{
    as_scalar, binary, binary_inputs, binary_node, binary_scalar, cast, dtype, full_like, one,
    select, unary, unary_node,
};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, UnaryOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Equal", |c, n| binary_node(c, n, BinaryOp::Eq));
    r.add("Less", |c, n| binary_node(c, n, BinaryOp::Lt));
    r.add("LessOrEqual", |c, n| binary_node(c, n, BinaryOp::Le));
    r.add("Greater", |c, n| binary_node(c, n, BinaryOp::Gt));
    r.add("GreaterOrEqual", |c, n| binary_node(c, n, BinaryOp::Ge));
    r.add("And", |c, n| binary_node(c, n, BinaryOp::And));
    r.add("Or", |c, n| binary_node(c, n, BinaryOp::Or));
    r.add("Xor", |c, n| binary_node(c, n, BinaryOp::Xor));
    r.add("Not", |c, n| unary_node(c, n, UnaryOp::Not));
    r.add("BitwiseAnd", |c, n| binary_node(c, n, BinaryOp::BitAnd));
    r.add("BitwiseOr", |c, n| binary_node(c, n, BinaryOp::BitOr));
    r.add("BitwiseXor", |c, n| binary_node(c, n, BinaryOp::BitXor));
    r.add("BitwiseNot", |c, n| unary_node(c, n, UnaryOp::BitNot));
    r.add("BitShift", bit_shift);
    r.add("Where", where_);
    r.add("IsNaN", |c, n| unary_node(c, n, UnaryOp::IsNan));
    r.add("IsInf", is_inf);
    r.add("Clip", clip);
    r.add("Shrink", shrink);
}

/// Bit width of an integer dtype.
fn bit_width(dt: DType) -> i64 {
    match dt {
        DType::I64 => 64,
        DType::I32 => 32,
        _ => 8,
    }
}

/// `BitShift`. Shift amounts of at least the bit width give 0 (or -1 for a right shift of a
/// negative value) in the IR as in ONNX; negative amounts (signed types, opset 28) behave the
/// same way in ONNX, so they are replaced by the bit width.
fn bit_shift(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let op = match n.string("direction", "").as_str() {
        "LEFT" => BinaryOp::Shl,
        "RIGHT" => BinaryOp::Shr,
        other => {
            return invalid(format!(
                "BitShift: direction must be LEFT or RIGHT, got `{other}`"
            ))
        }
    };
    let (x, mut y) = binary_inputs(ctx, n)?;
    let dt = dtype(ctx, &y);
    if !dt.is_int() {
        return invalid(format!("BitShift takes integer tensors, got {dt}"));
    }
    let known_non_negative = ctx
        .const_i64s(&y)
        .is_some_and(|v| v.iter().all(|&s| s >= 0));
    if dt != DType::U8 && !known_non_negative {
        let negative = binary_scalar(ctx, BinaryOp::Lt, &y, 0.0)?;
        let width = ctx.scalar(bit_width(dt) as f64, dt)?;
        y = select(ctx, &negative, &width, &y)?;
    }
    one(binary(ctx, op, &x, &y)?)
}

/// `Where(cond, x, y)`.
fn where_(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (c, x, y) = (n.input(0)?, n.input(1)?, n.input(2)?);
    one(select(ctx, c, x, y)?)
}

/// `IsInf` with `detect_positive` / `detect_negative`.
fn is_inf(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let dt = dtype(ctx, &x);
    if !dt.is_float() {
        return unsupported(format!("IsInf of {dt} tensors (Kiln's isinf takes floats)"));
    }
    let pos = n.int("detect_positive", 1) != 0;
    let neg = n.int("detect_negative", 1) != 0;
    let y = match (pos, neg) {
        (true, true) => unary(ctx, UnaryOp::IsInf, &x)?,
        (true, false) => binary_scalar(ctx, BinaryOp::Eq, &x, f64::INFINITY)?,
        (false, true) => binary_scalar(ctx, BinaryOp::Eq, &x, f64::NEG_INFINITY)?,
        (false, false) => full_like(ctx, &x, 0.0, DType::Bool)?,
    };
    one(y)
}

/// The `-FLT_MAX`/`FLT_MAX` defaults of `Clip`-6's `min`/`max` attributes.
const FLT_MAX: f64 = f32::MAX as f64;

/// `Clip`: `min(max(x, lo), hi)` (so `lo > hi` gives `hi`, as ONNX says); bounds are attributes
/// before opset 11 (defaults ±FLT_MAX from opset 6; absent = unbounded in opset 1) and optional
/// scalar inputs from opset 11.
fn clip(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let dt = dtype(ctx, &x);
    let (lo, hi) = if n.opset < 11 {
        let bound = |ctx: &mut Ctx, name: &str, default: f64| -> NResult<Option<Operand>> {
            match (n.attr(name), n.opset >= 6) {
                (Some(a), _) => Ok(Some(ctx.scalar(f64::from(a.f), dt)?)),
                (None, true) => Ok(Some(ctx.scalar(default, dt)?)),
                (None, false) => Ok(None),
            }
        };
        (bound(ctx, "min", -FLT_MAX)?, bound(ctx, "max", FLT_MAX)?)
    } else {
        let bound = |ctx: &mut Ctx, i: usize, what: &str| -> NResult<Option<Operand>> {
            match n.opt_input(i) {
                Some(b) => {
                    let b = as_scalar(ctx, b, what)?;
                    Ok(Some(cast(ctx, &b, dt)?))
                }
                None => Ok(None),
            }
        };
        (bound(ctx, 1, "Clip min")?, bound(ctx, 2, "Clip max")?)
    };
    let mut y = x;
    if let Some(lo) = lo {
        y = binary(ctx, BinaryOp::Max, &y, &lo)?;
    }
    if let Some(hi) = hi {
        y = binary(ctx, BinaryOp::Min, &y, &hi)?;
    }
    one(y)
}

/// `Shrink`: `x < -lambd ? x + bias : x > lambd ? x - bias : 0`. Integer inputs are computed in
/// f64 and cast back (truncating), as the reference does.
fn shrink(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let dt = dtype(ctx, &x);
    if dt == DType::Bool {
        return invalid("Shrink does not take bool tensors");
    }
    let lambd = f64::from(n.float("lambd", 0.5));
    let bias = f64::from(n.float("bias", 0.0));
    let xf = if dt.is_float() {
        x
    } else {
        cast(ctx, &x, DType::F64)?
    };
    let below = binary_scalar(ctx, BinaryOp::Lt, &xf, -lambd)?;
    let above = binary_scalar(ctx, BinaryOp::Gt, &xf, lambd)?;
    let plus = binary_scalar(ctx, BinaryOp::Add, &xf, bias)?;
    let minus = binary_scalar(ctx, BinaryOp::Sub, &xf, bias)?;
    let zero = ctx.scalar(0.0, dtype(ctx, &xf))?;
    let inner = select(ctx, &above, &minus, &zero)?;
    let y = select(ctx, &below, &plus, &inner)?;
    one(cast(ctx, &y, dt)?)
}
