//! ONNX importers for the integer and quantized linear ops: `MatMulInteger`, `ConvInteger`,
//! `QLinearMatMul` and `QLinearConv`. The zero-point-shifted inputs are cast to f64 and go
//! through the float `matmul` / `conv` (exact: each product is below 2^16 in magnitude and the
//! sums stay far below 2^53), then are cast to i32 or requantized.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_quant::{saturate, scale_input};
use super::ops_util::{binary, cast, dims, dtype, product, reshape};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("MatMulInteger", matmul_integer);
    r.add("QLinearMatMul", qlinear_matmul);
    r.add("ConvInteger", conv_integer);
    r.add("QLinearConv", qlinear_conv);
}

/// Quantized input `i` (u8 or i8).
fn qinput(ctx: &Ctx, n: &NodeView, i: usize) -> NResult<Operand> {
    let x = n.input(i)?.clone();
    match dtype(ctx, &x) {
        DType::U8 | DType::I8 => Ok(x),
        dt => unsupported(format!(
            "{} input {i} has dtype {dt}; only u8 and i8 are supported",
            n.node.op_type
        )),
    }
}

/// Optional zero point `i`, which must have the dtype of the data it shifts.
fn zero_point(ctx: &Ctx, n: &NodeView, i: usize, data: &Operand) -> NResult<Option<Operand>> {
    let Some(z) = n.opt_input(i) else {
        return Ok(None);
    };
    let (zt, xt) = (dtype(ctx, z), dtype(ctx, data));
    if zt != xt {
        return invalid(format!(
            "{} input {i} (a zero point) has dtype {zt}, its data has {xt}",
            n.node.op_type
        ));
    }
    Ok(Some(z.clone()))
}

/// `p` with one element as a scalar; a vector of several as `shape` (which has a single
/// non-1 dim); anything else as it is.
fn shaped(ctx: &mut Ctx, p: &Operand, shape: impl Fn(Dim) -> Vec<Dim>) -> NResult<Operand> {
    let pd = dims(ctx, p);
    if product(&pd).as_known() == Some(1) && !pd.is_empty() {
        return reshape(ctx, p, vec![]);
    }
    if pd.len() == 1 {
        return reshape(ctx, p, shape(pd[0].clone()));
    }
    Ok(p.clone())
}

/// `[d, 1]`: per-row parameters of a matmul's left operand.
fn per_row(d: Dim) -> Vec<Dim> {
    vec![d, Dim::known(1)]
}

/// `x - zp` in f64.
fn shifted(ctx: &mut Ctx, x: &Operand, zp: Option<Operand>) -> NResult<Operand> {
    let xf = cast(ctx, x, DType::F64)?;
    let Some(z) = zp else {
        return Ok(xf);
    };
    let zf = cast(ctx, &z, DType::F64)?;
    binary(ctx, BinaryOp::Sub, &xf, &zf)
}

/// The shifted f64 operands of a matmul: a (per-row zero point) and b (per-column).
fn shifted_pair(
    ctx: &mut Ctx,
    n: &NodeView,
    (ia, iaz, ib, ibz): (usize, usize, usize, usize),
) -> NResult<(Operand, Operand)> {
    let a = qinput(ctx, n, ia)?;
    let b = qinput(ctx, n, ib)?;
    let az = match zero_point(ctx, n, iaz, &a)? {
        Some(z) => Some(shaped(ctx, &z, per_row)?),
        None => None,
    };
    let bz = zero_point(ctx, n, ibz, &b)?;
    Ok((shifted(ctx, &a, az)?, shifted(ctx, &b, bz)?))
}

/// `A·B` of the shifted inputs, as i32.
fn matmul_integer(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (a, b) = shifted_pair(ctx, n, (0, 2, 1, 3))?;
    let y = ctx.emit1(Op::MatMul, &[a, b])?;
    Ok(vec![cast(ctx, &y, DType::I32)?])
}

/// The three scales of a QLinear op as `a · b / y` in their (shared) dtype, then as f64.
fn requant_factor(ctx: &mut Ctx, a: &Operand, b: &Operand, y: &Operand) -> NResult<Operand> {
    let (ta, tb, ty) = (dtype(ctx, a), dtype(ctx, b), dtype(ctx, y));
    if ta != tb || ta != ty {
        return invalid(format!(
            "the scales have different dtypes ({ta}, {tb}, {ty})"
        ));
    }
    let ab = binary(ctx, BinaryOp::Mul, a, b)?;
    let f = binary(ctx, BinaryOp::Div, &ab, y)?;
    cast(ctx, &f, DType::F64)
}

/// A per-tensor scale or zero point (one element), as a scalar.
fn scalar_param(ctx: &mut Ctx, p: &Operand, what: &str) -> NResult<Operand> {
    let pd = dims(ctx, p);
    if product(&pd).as_known() != Some(1) {
        return unsupported(format!(
            "{what} must be a single value (per-tensor), got shape {pd:?}"
        ));
    }
    reshape(ctx, p, vec![])
}

/// The output dtype of a QLinear op: y_zero_point's, else the input's.
fn out_dtype(ctx: &Ctx, yz: Option<&Operand>, x: &Operand) -> NResult<DType> {
    let dt = yz.map_or_else(|| dtype(ctx, x), |z| dtype(ctx, z));
    match dt {
        DType::U8 | DType::I8 => Ok(dt),
        other => unsupported(format!(
            "y_zero_point of dtype {other} is not supported (u8 or i8 only)"
        )),
    }
}

/// `saturate(round(A·B · a_scale·b_scale/y_scale) + y_zero_point)`.
fn qlinear_matmul(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (a, b) = shifted_pair(ctx, n, (0, 2, 3, 5))?;
    let acc = ctx.emit1(Op::MatMul, &[a, b])?;
    let sa = scale_input(ctx, n, 1, "a_scale")?;
    let sa = shaped(ctx, &sa, per_row)?;
    let sb = scale_input(ctx, n, 4, "b_scale")?;
    let sy = scale_input(ctx, n, 6, "y_scale")?;
    let sy = scalar_param(ctx, &sy, "y_scale")?;
    let f = requant_factor(ctx, &sa, &sb, &sy)?;
    let v = binary(ctx, BinaryOp::Mul, &acc, &f)?;
    let yz = match n.opt_input(7) {
        Some(z) => Some(scalar_param(ctx, z, "y_zero_point")?),
        None => None,
    };
    let out = out_dtype(ctx, yz.as_ref(), n.input(0)?)?;
    Ok(vec![saturate(ctx, &v, yz.as_ref(), out)?])
}

/// A float convolution through the `Conv` importer (same attributes), of x, w and bias.
fn float_conv(
    ctx: &mut Ctx,
    n: &NodeView,
    x: Operand,
    w: Operand,
    bias: Option<Operand>,
) -> NResult<Operand> {
    let Some(conv) = super::registry().get("", "Conv") else {
        return unsupported("the Conv importer is not registered");
    };
    let view = NodeView {
        node: n.node,
        inputs: vec![Some(x), Some(w), bias],
        opset: n.opset,
    };
    match conv(ctx, &view)?.into_iter().next() {
        Some(y) => Ok(y),
        None => invalid("Conv produced no output"),
    }
}

/// `[M, 1, ..]` of the weights' rank: per-output-channel weight parameters.
fn per_out_channel(ctx: &Ctx, w: &Operand) -> impl Fn(Dim) -> Vec<Dim> {
    let r = dims(ctx, w).len().max(1);
    move |m| {
        let mut s = vec![Dim::known(1); r];
        s[0] = m;
        s
    }
}

/// The shifted f64 x (per-tensor zero point) and w (per-tensor or per-output-channel).
fn conv_operands(
    ctx: &mut Ctx,
    n: &NodeView,
    (ix, ixz, iw, iwz): (usize, usize, usize, usize),
) -> NResult<(Operand, Operand)> {
    let x = qinput(ctx, n, ix)?;
    let w = qinput(ctx, n, iw)?;
    let xz = match zero_point(ctx, n, ixz, &x)? {
        Some(z) => Some(scalar_param(ctx, &z, "x_zero_point")?),
        None => None,
    };
    let wz = match zero_point(ctx, n, iwz, &w)? {
        Some(z) => Some(shaped(ctx, &z, per_out_channel(ctx, &w))?),
        None => None,
    };
    Ok((shifted(ctx, &x, xz)?, shifted(ctx, &w, wz)?))
}

/// The convolution of the shifted inputs, as i32.
fn conv_integer(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (x, w) = conv_operands(ctx, n, (0, 2, 1, 3))?;
    let y = float_conv(ctx, n, x, w, None)?;
    Ok(vec![cast(ctx, &y, DType::I32)?])
}

/// `saturate(round((conv + B) · x_scale·w_scale/y_scale) + y_zero_point)`, w_scale per tensor
/// or per output channel.
fn qlinear_conv(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (x, w) = conv_operands(ctx, n, (0, 2, 3, 5))?;
    let bias = match n.opt_input(8) {
        Some(b) if dtype(ctx, b) != DType::I32 => {
            return invalid(format!(
                "QLinearConv bias has dtype {}, not i32",
                dtype(ctx, b)
            ))
        }
        Some(b) => Some(cast(ctx, b, DType::F64)?),
        None => None,
    };
    let rank = dims(ctx, &x).len();
    let acc = float_conv(ctx, n, x, w, bias)?;
    let sx = scale_input(ctx, n, 1, "x_scale")?;
    let sx = scalar_param(ctx, &sx, "x_scale")?;
    let sw = scale_input(ctx, n, 4, "w_scale")?;
    let sw = shaped(ctx, &sw, |m| {
        let mut s = vec![Dim::known(1); rank.max(2)];
        s[1] = m;
        s
    })?;
    let sy = scale_input(ctx, n, 6, "y_scale")?;
    let sy = scalar_param(ctx, &sy, "y_scale")?;
    let f = requant_factor(ctx, &sx, &sw, &sy)?;
    let v = binary(ctx, BinaryOp::Mul, &acc, &f)?;
    let yz = match n.opt_input(7) {
        Some(z) => Some(scalar_param(ctx, z, "y_zero_point")?),
        None => None,
    };
    let out = out_dtype(ctx, yz.as_ref(), n.input(0)?)?;
    Ok(vec![saturate(ctx, &v, yz.as_ref(), out)?])
}
