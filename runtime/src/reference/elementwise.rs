//! Elementwise kernels: unary functions, binary ops with numpy broadcasting, where.
//!
//! Floats are computed in f64 and rounded to the output dtype once; integers are computed in i64
//! and wrapped to the output dtype (two's complement), which equals computing in the native
//! width for `+ - * / % neg abs << >> & | ^ !`; bools stay bools.

use super::special::{erf, floor_mod, max_nan, min_nan, sigmoid, softplus};
use super::util::{broadcast_indices, broadcast_shapes, KResult};
use crate::ops::{BinaryOp, UnaryOp};
use crate::{DType, Tensor};

/// A float tensor of `dtype` from f64 values (rounded to nearest).
fn floats(dtype: DType, shape: Vec<usize>, v: &[f64]) -> KResult<Tensor> {
    Tensor::from_f64_values(dtype, shape, v).map_err(|e| e.to_string())
}

/// An integer (or bool) tensor of `dtype` from i64 values (wrapped to the dtype).
fn ints(dtype: DType, shape: Vec<usize>, v: &[i64]) -> KResult<Tensor> {
    Tensor::from_i64_values(dtype, shape, v).map_err(|e| e.to_string())
}

/// The element count of `shape`, or an error when the product of its non-zero dims overflows
/// (that product bounds every row-major stride, which a zero-sized dim does not make small).
pub(super) fn element_count(shape: &[usize]) -> KResult<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d.max(1)))
        .ok_or_else(|| format!("shape {shape:?} has too many elements"))?;
    Ok(shape.iter().product())
}

/// The numpy broadcast of `shapes`, refusing shapes whose strides or element count overflow.
pub(super) fn broadcast(shapes: &[&[usize]]) -> KResult<Vec<usize>> {
    let out = broadcast_shapes(shapes)?;
    for s in shapes.iter().copied().chain([out.as_slice()]) {
        element_count(s)?;
    }
    Ok(out)
}

/// A bool tensor.
fn bools(shape: Vec<usize>, v: Vec<bool>) -> KResult<Tensor> {
    Tensor::from_bools(shape, v).map_err(|e| e.to_string())
}

/// The float function computing a unary op, or None for the ops that are not float → float.
fn float_fn(op: UnaryOp) -> Option<fn(f64) -> f64> {
    use UnaryOp as U;
    Some(match op {
        U::Neg => |x: f64| -x,
        U::Abs => f64::abs,
        // numpy `sign`: ±1, 0 for ±0 and NaN for NaN.
        U::Sign => |x: f64| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else if x == 0.0 {
                0.0
            } else {
                x
            }
        },
        U::Exp => f64::exp,
        U::Log => f64::ln,
        U::Sqrt => f64::sqrt,
        U::Rsqrt => |x: f64| 1.0 / x.sqrt(),
        U::Reciprocal => |x: f64| 1.0 / x,
        U::Sin => f64::sin,
        U::Cos => f64::cos,
        U::Tan => f64::tan,
        U::Asin => f64::asin,
        U::Acos => f64::acos,
        U::Atan => f64::atan,
        U::Sinh => f64::sinh,
        U::Cosh => f64::cosh,
        U::Asinh => f64::asinh,
        U::Acosh => f64::acosh,
        U::Atanh => f64::atanh,
        U::Tanh => f64::tanh,
        U::Sigmoid => sigmoid,
        // numpy `maximum(x, 0)`: NaN stays NaN.
        U::Relu => |x: f64| max_nan(x, 0.0),
        U::Erf => erf,
        U::Floor => f64::floor,
        U::Ceil => f64::ceil,
        U::Round => f64::round_ties_even,
        U::Softplus => softplus,
        U::Softsign => |x: f64| x / (1.0 + x.abs()),
        U::Not | U::BitNot | U::IsNan | U::IsInf => return None,
    })
}

pub fn unary(op: UnaryOp, x: &Tensor) -> KResult<Tensor> {
    use UnaryOp as U;
    let dt = x.dtype();
    let shape = x.shape().to_vec();
    let wrong = |what: &str| Err(format!("{op:?} takes {what}, got {dt}"));
    match op {
        U::Not if dt == DType::Bool => bools(shape, x.to_bool_vec().iter().map(|b| !b).collect()),
        U::Not => wrong("bool"),
        U::BitNot if dt.is_int() => ints(dt, shape, &map_i(x, |v| !v)),
        U::BitNot => wrong("integers"),
        U::IsNan | U::IsInf if dt.is_float() => {
            let test = if op == U::IsNan {
                f64::is_nan
            } else {
                f64::is_infinite
            };
            bools(shape, x.to_f64_vec().into_iter().map(test).collect())
        }
        U::Neg if dt.is_int() => ints(dt, shape, &map_i(x, i64::wrapping_neg)),
        U::Abs if dt.is_int() => ints(dt, shape, &map_i(x, i64::wrapping_abs)),
        U::Sign if dt.is_int() => ints(dt, shape, &map_i(x, i64::signum)),
        U::Relu if dt.is_int() => ints(dt, shape, &map_i(x, |v| v.max(0))),
        _ => match float_fn(op) {
            Some(f) if dt.is_float() => {
                let v: Vec<f64> = x.to_f64_vec().into_iter().map(f).collect();
                floats(dt, shape, &v)
            }
            _ => wrong("floats"),
        },
    }
}

fn map_i(x: &Tensor, f: impl Fn(i64) -> i64) -> Vec<i64> {
    x.to_i64_vec().into_iter().map(f).collect()
}

/// Bit width of an integer dtype (for shifts).
fn bit_width(dt: DType) -> i64 {
    match dt {
        DType::I64 => 64,
        DType::I32 => 32,
        _ => 8,
    }
}

/// An arithmetic op on two floats.
fn float_arith(op: BinaryOp, x: f64, y: f64) -> f64 {
    use BinaryOp as B;
    match op {
        B::Add => x + y,
        B::Sub => x - y,
        B::Mul => x * y,
        B::Div => x / y,
        B::Pow => x.powf(y),
        B::Max => max_nan(x, y),
        B::Min => min_nan(x, y),
        B::Mod => floor_mod(x, y),
        // Rust's `%` on floats is C `fmod`.
        B::FMod => x % y,
        // The caller routes only the arithmetic ops above here.
        _ => f64::NAN,
    }
}

/// `x^y` for integers by square-and-multiply, wrapping (the same ring result as repeated
/// wrapping multiplication).
fn int_pow(mut base: i64, mut exp: i64) -> i64 {
    let mut acc: i64 = 1;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = acc.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        exp >>= 1;
    }
    acc
}

/// An arithmetic, bitwise or shift op on two integers of dtype `dt` (given as i64).
fn int_arith(op: BinaryOp, dt: DType, x: i64, y: i64) -> KResult<i64> {
    use BinaryOp as B;
    let zero_div = || Err("integer division by zero".to_string());
    if y < 0 && matches!(op, B::Shl | B::Shr) {
        return Err(format!("negative shift amount {y}"));
    }
    let width = bit_width(dt);
    Ok(match op {
        B::Add => x.wrapping_add(y),
        B::Sub => x.wrapping_sub(y),
        B::Mul => x.wrapping_mul(y),
        B::Div | B::Mod | B::FMod if y == 0 => return zero_div(),
        // Truncation toward zero.
        B::Div => x.wrapping_div(y),
        // Sign of the dividend.
        B::FMod => x.wrapping_rem(y),
        // Sign of the divisor.
        B::Mod => {
            let r = x.wrapping_rem(y);
            if r != 0 && ((r < 0) != (y < 0)) {
                r + y
            } else {
                r
            }
        }
        B::Pow if y < 0 => return Err(format!("negative integer exponent {y}")),
        B::Pow => int_pow(x, y),
        B::Max => x.max(y),
        B::Min => x.min(y),
        B::BitAnd => x & y,
        B::BitOr => x | y,
        B::BitXor => x ^ y,
        B::Shl if y >= width => 0,
        B::Shl => x << y,
        B::Shr if y >= width => {
            if x < 0 {
                -1
            } else {
                0
            }
        }
        B::Shr => x >> y,
        _ => return Err(format!("{op:?} is not an integer op")),
    })
}

/// A comparison of two values.
fn compare<T: PartialOrd>(op: BinaryOp, x: T, y: T) -> bool {
    match op {
        BinaryOp::Eq => x == y,
        BinaryOp::Lt => x < y,
        BinaryOp::Le => x <= y,
        BinaryOp::Gt => x > y,
        _ => x >= y,
    }
}

pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    use BinaryOp as B;
    let dt = a.dtype();
    if b.dtype() != dt {
        return Err(format!("{op:?}: dtype mismatch, {dt} vs {}", b.dtype()));
    }
    let shape = broadcast(&[a.shape(), b.shape()])?;
    let ia = broadcast_indices(a.shape(), &shape);
    let ib = broadcast_indices(b.shape(), &shape);
    let pairs = || ia.iter().zip(&ib).map(|(&i, &j)| (i, j));
    let wrong = |what: &str| Err(format!("{op:?} takes {what}, got {dt}"));
    match op {
        B::Eq | B::Lt | B::Le | B::Gt | B::Ge => {
            let out = if dt.is_float() {
                let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
                pairs().map(|(i, j)| compare(op, x[i], y[j])).collect()
            } else {
                let (x, y) = (a.to_i64_vec(), b.to_i64_vec());
                pairs().map(|(i, j)| compare(op, x[i], y[j])).collect()
            };
            bools(shape, out)
        }
        B::And | B::Or | B::Xor => {
            if dt != DType::Bool {
                return wrong("bool");
            }
            let (x, y) = (a.to_bool_vec(), b.to_bool_vec());
            let f = |p: bool, q: bool| match op {
                B::And => p & q,
                B::Or => p | q,
                _ => p ^ q,
            };
            bools(shape, pairs().map(|(i, j)| f(x[i], y[j])).collect())
        }
        B::BitAnd | B::BitOr | B::BitXor | B::Shl | B::Shr if !dt.is_int() => wrong("integers"),
        _ if dt == DType::Bool => wrong("numbers"),
        _ if dt.is_float() => {
            let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
            let out: Vec<f64> = pairs().map(|(i, j)| float_arith(op, x[i], y[j])).collect();
            floats(dt, shape, &out)
        }
        _ => {
            let (x, y) = (a.to_i64_vec(), b.to_i64_vec());
            let out: KResult<Vec<i64>> = pairs()
                .map(|(i, j)| int_arith(op, dt, x[i], y[j]))
                .collect();
            ints(dt, shape, &out?)
        }
    }
}

pub fn where_(cond: &Tensor, x: &Tensor, y: &Tensor) -> KResult<Tensor> {
    if cond.dtype() != DType::Bool {
        return Err(format!(
            "where: condition must be bool, got {}",
            cond.dtype()
        ));
    }
    let dt = x.dtype();
    if y.dtype() != dt {
        return Err(format!("where: dtype mismatch, {dt} vs {}", y.dtype()));
    }
    let shape = broadcast(&[cond.shape(), x.shape(), y.shape()])?;
    let ic = broadcast_indices(cond.shape(), &shape);
    let ix = broadcast_indices(x.shape(), &shape);
    let iy = broadcast_indices(y.shape(), &shape);
    let c = cond.to_bool_vec();
    // Floats travel as f64 and integers/bools as i64, both exactly.
    if dt.is_float() {
        let (xv, yv) = (x.to_f64_vec(), y.to_f64_vec());
        let out: Vec<f64> = (0..ic.len())
            .map(|k| if c[ic[k]] { xv[ix[k]] } else { yv[iy[k]] })
            .collect();
        floats(dt, shape, &out)
    } else {
        let (xv, yv) = (x.to_i64_vec(), y.to_i64_vec());
        let out: Vec<i64> = (0..ic.len())
            .map(|k| if c[ic[k]] { xv[ix[k]] } else { yv[iy[k]] })
            .collect();
        ints(dt, shape, &out)
    }
}
