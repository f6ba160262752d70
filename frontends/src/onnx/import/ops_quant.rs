//! ONNX importers for linear quantization: `QuantizeLinear`, `DequantizeLinear` and
//! `DynamicQuantizeLinear`, decomposed into elementwise IR ops for u8 / i8 / i32 data and
//! float scales. Scales and zero points are aligned with x per tensor, per axis (reshape) or
//! per block (reshape + expand + slice).

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_nn::attr_dtype;
use super::ops_util::{binary, cast, dims, dtype, norm_axis, product, reshape, select, unary};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, ReduceOp, UnaryOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("QuantizeLinear", quantize_linear);
    r.add("DequantizeLinear", dequantize_linear);
    r.add("DynamicQuantizeLinear", dynamic_quantize_linear);
}

/// The saturation range of a quantized dtype.
pub(super) fn qrange(dt: DType) -> NResult<(f64, f64)> {
    match dt {
        DType::U8 => Ok((0.0, 255.0)),
        DType::I8 => Ok((-128.0, 127.0)),
        DType::I32 => Ok((f64::from(i32::MIN), f64::from(i32::MAX))),
        DType::I16 => Ok((f64::from(i16::MIN), f64::from(i16::MAX))),
        DType::U16 => Ok((0.0, f64::from(u16::MAX))),
        other => unsupported(format!(
            "quantized data of dtype {other} is not supported (u8, i8, u16, i16 or i32 only)"
        )),
    }
}

/// `clamp(x, lo, hi)` with scalar bounds of x's dtype.
pub(super) fn clamp(ctx: &mut Ctx, x: &Operand, lo: f64, hi: f64) -> NResult<Operand> {
    let dt = dtype(ctx, x);
    let (l, h) = (ctx.scalar(lo, dt)?, ctx.scalar(hi, dt)?);
    let y = binary(ctx, BinaryOp::Max, x, &l)?;
    binary(ctx, BinaryOp::Min, &y, &h)
}

/// `saturate(round_half_even(v) + zp)` as `to`. The sum is taken in v's float dtype (exact for
/// the u8 / i8 ranges, which every float dtype holds), in f64 for i32.
pub(super) fn saturate(
    ctx: &mut Ctx,
    v: &Operand,
    zp: Option<&Operand>,
    to: DType,
) -> NResult<Operand> {
    let (lo, hi) = qrange(to)?;
    let r = unary(ctx, UnaryOp::Round, v)?;
    let acc_dt = if to == DType::I32 {
        DType::F64
    } else {
        dtype(ctx, &r)
    };
    let mut acc = cast(ctx, &r, acc_dt)?;
    if let Some(zp) = zp {
        let z = cast(ctx, zp, acc_dt)?;
        acc = binary(ctx, BinaryOp::Add, &acc, &z)?;
    }
    let acc = clamp(ctx, &acc, lo, hi)?;
    cast(ctx, &acc, to)
}

/// The dtype numpy computes `a op b` in, for float b: the common dtype, f64 for integer a, f32
/// for two different narrow floats.
pub(super) fn promote(a: DType, b: DType) -> DType {
    if a == b {
        a
    } else if !a.is_float() || a == DType::F64 || b == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// A float scale input, or an error naming it.
pub(super) fn scale_input(ctx: &Ctx, n: &NodeView, i: usize, what: &str) -> NResult<Operand> {
    let s = n.input(i)?.clone();
    let dt = dtype(ctx, &s);
    if !dt.is_float() {
        return unsupported(format!(
            "{what} of dtype {dt} is not supported (float scales only)"
        ));
    }
    Ok(s)
}

/// Scale or zero point `p` aligned with x of dims `xd`: rank 0 or a single element → a scalar;
/// 1-D without a block size → per axis, `[1, .., D, .., 1]`; with a block size → each entry
/// repeated `block` times along `axis`, the last block cropped to x's dim.
pub(super) fn align(
    ctx: &mut Ctx,
    p: &Operand,
    xd: &[Dim],
    axis: i64,
    block: i64,
    what: &str,
) -> NResult<Operand> {
    let pd = dims(ctx, p);
    if pd.is_empty() {
        return Ok(p.clone());
    }
    if product(&pd).as_known() == Some(1) {
        return reshape(ctx, p, vec![]);
    }
    let ax = norm_axis(axis, xd.len())?;
    let differ =
        |a: &Dim, b: &Dim| matches!((a.as_known(), b.as_known()), (Some(x), Some(y)) if x != y);
    if block <= 0 {
        if block < 0 {
            return invalid(format!("block_size must be positive, got {block}"));
        }
        if pd.len() != 1 || differ(&pd[0], &xd[ax]) {
            return invalid(format!(
                "{what} has shape {pd:?}; per-axis quantization needs [{}] (axis {ax})",
                xd[ax]
            ));
        }
        let mut shape = vec![Dim::known(1); xd.len()];
        shape[ax] = pd[0].clone();
        return reshape(ctx, p, shape);
    }
    let fits = pd.len() == xd.len()
        && (0..xd.len()).all(|i| i == ax || !differ(&pd[i], &xd[i]))
        && !differ(&pd[ax], &xd[ax].ceil_div(&Dim::known(block)));
    if !fits {
        return invalid(format!(
            "{what} has shape {pd:?}; blocked quantization of {xd:?} with block_size {block} \
             along axis {ax} needs x's shape with dim {ax} = ceil({} / {block})",
            xd[ax]
        ));
    }
    let b = Dim::known(block);
    let mut split = pd.clone();
    split.insert(ax + 1, Dim::known(1));
    let p1 = reshape(ctx, p, split.clone())?;
    split[ax + 1] = b.clone();
    let p2 = ctx.emit1(Op::Expand { shape: split }, &[p1])?;
    let mut merged = pd.clone();
    merged[ax] = pd[ax].mul(&b);
    let p3 = reshape(ctx, &p2, merged.clone())?;
    if merged[ax] == xd[ax] {
        return Ok(p3);
    }
    let op = Op::Slice {
        axes: vec![ax as i64],
        starts: vec![Dim::known(0)],
        ends: vec![xd[ax].clone()],
        steps: vec![1],
    };
    ctx.emit1(op, &[p3])
}

/// `axis` and `block_size` (opset ≥ 21; 0 = none).
fn granularity(n: &NodeView) -> (i64, i64) {
    let block = if n.opset >= 21 {
        n.int("block_size", 0)
    } else {
        0
    };
    (n.int("axis", 1), block)
}

/// A float dtype named by attribute `name` (0 or absent = `None`).
fn float_attr(n: &NodeView, name: &str) -> NResult<Option<DType>> {
    match n.int(name, 0) {
        0 => Ok(None),
        v => {
            let dt = attr_dtype(v)?;
            if !dt.is_float() {
                return unsupported(format!("{name} {dt} is not supported (float only)"));
            }
            Ok(Some(dt))
        }
    }
}

/// `y = saturate(round(x / y_scale) + y_zero_point)`; the type comes from the zero point, else
/// `output_dtype`, else u8. The division runs in `precision`, else in numpy's common dtype of x
/// and the scale (as the reference does). `saturate` only concerns float8, which Kiln lacks.
fn quantize_linear(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let scale = scale_input(ctx, n, 1, "y_scale")?;
    let zp = n.opt_input(2).cloned();
    let attr_out = match n.int("output_dtype", 0) {
        0 => None,
        v => Some(attr_dtype(v)?),
    };
    let out = match (&zp, attr_out) {
        (Some(z), Some(o)) if dtype(ctx, z) != o => {
            return invalid(format!(
                "output_dtype {o} differs from y_zero_point's dtype {}",
                dtype(ctx, z)
            ))
        }
        (Some(z), _) => dtype(ctx, z),
        (None, o) => o.unwrap_or(DType::U8),
    };
    qrange(out)?;
    let xt = dtype(ctx, &x);
    if !xt.is_float() && xt != DType::I32 {
        return invalid(format!("QuantizeLinear takes float or i32 x, got {xt}"));
    }
    let work = match float_attr(n, "precision")? {
        Some(p) => p,
        None => promote(xt, dtype(ctx, &scale)),
    };
    let xd = dims(ctx, &x);
    let (axis, block) = granularity(n);
    let s = align(ctx, &scale, &xd, axis, block, "y_scale")?;
    let zp = match zp {
        Some(z) => Some(align(ctx, &z, &xd, axis, block, "y_zero_point")?),
        None => None,
    };
    let xw = cast(ctx, &x, work)?;
    let sw = cast(ctx, &s, work)?;
    let q = binary(ctx, BinaryOp::Div, &xw, &sw)?;
    Ok(vec![saturate(ctx, &q, zp.as_ref(), out)?])
}

/// `y = (x - x_zero_point) * x_scale` as `output_dtype` (opset ≥ 23), else the scale's dtype;
/// computed in the wider of the two.
fn dequantize_linear(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let xt = dtype(ctx, &x);
    qrange(xt)?;
    let scale = scale_input(ctx, n, 1, "x_scale")?;
    let zp = n.opt_input(2).cloned();
    if let Some(z) = &zp {
        if dtype(ctx, z) != xt {
            return invalid(format!(
                "x_zero_point has dtype {}, x has {xt}",
                dtype(ctx, z)
            ));
        }
    }
    let st = dtype(ctx, &scale);
    let out = float_attr(n, "output_dtype")?.unwrap_or(st);
    let work = promote(st, out);
    let xd = dims(ctx, &x);
    let (axis, block) = granularity(n);
    let s = align(ctx, &scale, &xd, axis, block, "x_scale")?;
    let mut v = cast(ctx, &x, work)?;
    if let Some(z) = zp {
        let z = align(ctx, &z, &xd, axis, block, "x_zero_point")?;
        let z = cast(ctx, &z, work)?;
        v = binary(ctx, BinaryOp::Sub, &v, &z)?;
    }
    let s = cast(ctx, &s, work)?;
    let y = binary(ctx, BinaryOp::Mul, &v, &s)?;
    Ok(vec![cast(ctx, &y, out)?])
}

/// Min or max over every element, as a scalar.
fn reduce_all(ctx: &mut Ctx, op: ReduceOp, x: &Operand) -> NResult<Operand> {
    let op = Op::Reduce {
        op,
        axes: vec![],
        keepdims: false,
    };
    ctx.emit1(op, std::slice::from_ref(x))
}

/// u8 quantization with a range that covers x and 0: `scale = (max(0, max x) - min(0, min x))
/// / 255` (1/255 when both are 0), `zp = round(clamp(-min / scale, 0, 255))`,
/// `y = saturate(round(x / scale) + zp)`. Outputs y, scale, zp.
fn dynamic_quantize_linear(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let dt = dtype(ctx, &x);
    if !dt.is_float() {
        return invalid(format!("DynamicQuantizeLinear takes a float x, got {dt}"));
    }
    let zero = ctx.scalar(0.0, dt)?;
    let hi = reduce_all(ctx, ReduceOp::Max, &x)?;
    let hi = binary(ctx, BinaryOp::Max, &hi, &zero)?;
    let lo = reduce_all(ctx, ReduceOp::Min, &x)?;
    let lo = binary(ctx, BinaryOp::Min, &lo, &zero)?;
    let range = binary(ctx, BinaryOp::Sub, &hi, &lo)?;
    let empty = binary(ctx, BinaryOp::Eq, &range, &zero)?;
    let one_c = ctx.scalar(1.0, dt)?;
    let range = select(ctx, &empty, &one_c, &range)?;
    let levels = ctx.scalar(255.0, dt)?;
    let scale = binary(ctx, BinaryOp::Div, &range, &levels)?;
    let zp = binary(ctx, BinaryOp::Div, &lo, &scale)?;
    let zp = binary(ctx, BinaryOp::Sub, &zero, &zp)?;
    let zp = clamp(ctx, &zp, 0.0, 255.0)?;
    let zp = unary(ctx, UnaryOp::Round, &zp)?;
    let q = binary(ctx, BinaryOp::Div, &x, &scale)?;
    let y = saturate(ctx, &q, Some(&zp), DType::U8)?;
    let zp = cast(ctx, &zp, DType::U8)?;
    Ok(vec![y, scale, zp])
}
