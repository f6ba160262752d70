//! `GridSample` as index arithmetic: each output point's source coordinates are denormalised,
//! clamped or reflected per `padding_mode`, split into interpolation taps (1 nearest, 2 linear,
//! 4 cubic per spatial axis) whose flat indices feed one `GatherElements` over the flattened
//! spatial dims, and the gathered pixels are summed with the taps' weights.

use super::ctx::{unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{binary, binary_scalar, cast, dims, dtype, one, product, reshape, select};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, ReduceOp, UnaryOp};

/// Registers the importer.
pub fn register(r: &mut Registry) {
    r.add("GridSample", grid_sample);
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Clone, Copy, PartialEq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

/// One spatial axis: its size and the reflection borders `[lo, hi]`.
#[derive(Clone, Copy)]
struct Axis {
    d: f64,
    lo: f64,
    hi: f64,
}

/// The taps of one axis, stacked on axis 1 (`[N, t, P]`): i64 indices into the axis, their
/// weights (none for nearest), and, for zero padding, which taps fall inside the image.
struct Taps {
    idx: Operand,
    weight: Option<Operand>,
    valid: Option<Operand>,
}

fn bin(ctx: &mut Ctx, op: BinaryOp, a: &Operand, b: &Operand) -> NResult<Operand> {
    binary(ctx, op, a, b)
}

fn sc(ctx: &mut Ctx, op: BinaryOp, x: &Operand, v: f64) -> NResult<Operand> {
    binary_scalar(ctx, op, x, v)
}

fn clamp(ctx: &mut Ctx, x: &Operand, lo: f64, hi: f64) -> NResult<Operand> {
    let x = sc(ctx, BinaryOp::Max, x, lo)?;
    sc(ctx, BinaryOp::Min, &x, hi)
}

/// Whether `x` lies outside `[lo, hi]`.
fn outside(ctx: &mut Ctx, x: &Operand, lo: f64, hi: f64) -> NResult<Operand> {
    let below = sc(ctx, BinaryOp::Lt, x, lo)?;
    let above = sc(ctx, BinaryOp::Gt, x, hi)?;
    bin(ctx, BinaryOp::Or, &below, &above)
}

/// Reflects `x` into `[lo, hi]` by the near border until inside (period `2·(hi - lo)`); values
/// already inside are kept exactly.
fn reflect(ctx: &mut Ctx, x: &Operand, a: Axis) -> NResult<Operand> {
    let rng = a.hi - a.lo;
    let off = sc(ctx, BinaryOp::Sub, x, a.lo)?;
    let t = sc(ctx, BinaryOp::Mod, &off, 2.0 * rng)?;
    let near = sc(ctx, BinaryOp::Add, &t, a.lo)?;
    let neg = sc(ctx, BinaryOp::Mul, &t, -1.0)?;
    let far = sc(ctx, BinaryOp::Add, &neg, a.lo + 2.0 * rng)?;
    let first = sc(ctx, BinaryOp::Le, &t, rng)?;
    let r = select(ctx, &first, &near, &far)?;
    let out = outside(ctx, x, a.lo, a.hi)?;
    select(ctx, &out, &r, x)
}

/// Keys' cubic convolution weights (alpha -0.75) of the taps at `-1, 0, 1, 2` for fraction t.
fn cubic_weights(ctx: &mut Ctx, t: &Operand) -> NResult<Vec<Operand>> {
    const A: f64 = -0.75;
    // Far taps (|s| in [1, 2]): ((A·s - 5A)·s + 8A)·s - 4A; near taps: ((A+2)·s - (A+3))·s² + 1.
    let far = |ctx: &mut Ctx, s: &Operand| -> NResult<Operand> {
        let p = sc(ctx, BinaryOp::Mul, s, A)?;
        let p = sc(ctx, BinaryOp::Sub, &p, 5.0 * A)?;
        let p = bin(ctx, BinaryOp::Mul, &p, s)?;
        let p = sc(ctx, BinaryOp::Add, &p, 8.0 * A)?;
        let p = bin(ctx, BinaryOp::Mul, &p, s)?;
        sc(ctx, BinaryOp::Sub, &p, 4.0 * A)
    };
    let near = |ctx: &mut Ctx, s: &Operand| -> NResult<Operand> {
        let p = sc(ctx, BinaryOp::Mul, s, A + 2.0)?;
        let p = sc(ctx, BinaryOp::Sub, &p, A + 3.0)?;
        let p = bin(ctx, BinaryOp::Mul, &p, s)?;
        let p = bin(ctx, BinaryOp::Mul, &p, s)?;
        sc(ctx, BinaryOp::Add, &p, 1.0)
    };
    let neg = sc(ctx, BinaryOp::Mul, t, -1.0)?;
    let one_minus = sc(ctx, BinaryOp::Add, &neg, 1.0)?;
    let two_minus = sc(ctx, BinaryOp::Add, &neg, 2.0)?;
    let t_plus = sc(ctx, BinaryOp::Add, t, 1.0)?;
    Ok(vec![
        far(ctx, &t_plus)?,
        near(ctx, t)?,
        near(ctx, &one_minus)?,
        far(ctx, &two_minus)?,
    ])
}

/// The taps of one axis for source coordinates `c` (normalised, `[N, 1, P]`).
fn axis_taps(
    ctx: &mut Ctx,
    c: &Operand,
    a: Axis,
    mode: Mode,
    pad: Padding,
    align: bool,
) -> NResult<Taps> {
    // Denormalise: align_corners maps [-1, 1] to [0, d-1], otherwise to [-0.5, d-0.5].
    let p1 = sc(ctx, BinaryOp::Add, c, 1.0)?;
    let mut x = if align {
        let h = sc(ctx, BinaryOp::Div, &p1, 2.0)?;
        sc(ctx, BinaryOp::Mul, &h, a.d - 1.0)?
    } else {
        let m = sc(ctx, BinaryOp::Mul, &p1, a.d)?;
        let m = sc(ctx, BinaryOp::Sub, &m, 1.0)?;
        sc(ctx, BinaryOp::Div, &m, 2.0)?
    };
    if mode == Mode::Nearest {
        x = ctx.emit1(Op::Unary(UnaryOp::Round), &[x])?;
    }
    match pad {
        Padding::Zeros => {}
        Padding::Border => {
            let out = outside(ctx, &x, a.lo, a.hi)?;
            let cl = clamp(ctx, &x, 0.0, a.d - 1.0)?;
            x = select(ctx, &out, &cl, &x)?;
        }
        Padding::Reflection => x = reflect(ctx, &x, a)?,
    }
    let (base, offsets, weights) = match mode {
        Mode::Nearest => (x, vec![0.0], None),
        Mode::Linear | Mode::Cubic => {
            let x0 = ctx.emit1(Op::Unary(UnaryOp::Floor), &[x.clone()])?;
            let t = bin(ctx, BinaryOp::Sub, &x, &x0)?;
            if mode == Mode::Linear {
                let neg = sc(ctx, BinaryOp::Mul, &t, -1.0)?;
                let w0 = sc(ctx, BinaryOp::Add, &neg, 1.0)?;
                (x0, vec![0.0, 1.0], Some(vec![w0, t]))
            } else {
                (x0, vec![-1.0, 0.0, 1.0, 2.0], Some(cubic_weights(ctx, &t)?))
            }
        }
    };
    let mut idx = Vec::new();
    let mut valid = Vec::new();
    for off in offsets {
        let i = sc(ctx, BinaryOp::Add, &base, off)?;
        if pad == Padding::Zeros {
            let out = outside(ctx, &i, 0.0, a.d - 1.0)?;
            valid.push(ctx.emit1(Op::Unary(UnaryOp::Not), &[out])?);
        }
        let i = match pad {
            Padding::Reflection => reflect(ctx, &i, a)?,
            _ => i,
        };
        // Always clamp, so that the gather never reads out of bounds.
        let i = clamp(ctx, &i, 0.0, a.d - 1.0)?;
        idx.push(cast(ctx, &i, DType::I64)?);
    }
    let cat = |ctx: &mut Ctx, v: Vec<Operand>| -> NResult<Operand> {
        if v.len() == 1 {
            return Ok(v[0].clone());
        }
        ctx.emit1(Op::Concat { axis: 1 }, &v)
    };
    Ok(Taps {
        idx: cat(ctx, idx)?,
        weight: weights.map(|w| cat(ctx, w)).transpose()?,
        valid: if valid.is_empty() {
            None
        } else {
            Some(cat(ctx, valid)?)
        },
    })
}

fn grid_sample(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let grid = n.input(1)?.clone();
    let default_mode = if n.opset < 20 { "bilinear" } else { "linear" };
    let mode = match n.string("mode", default_mode).as_str() {
        "bilinear" | "linear" => Mode::Linear,
        "nearest" => Mode::Nearest,
        "bicubic" | "cubic" => Mode::Cubic,
        m => return unsupported(format!("GridSample mode `{m}`")),
    };
    let pad = match n.string("padding_mode", "zeros").as_str() {
        "zeros" => Padding::Zeros,
        "border" => Padding::Border,
        "reflection" => Padding::Reflection,
        m => return unsupported(format!("GridSample padding_mode `{m}`")),
    };
    let align = n.int("align_corners", 0) != 0;
    let xd = dims(ctx, &x);
    let gd = dims(ctx, &grid);
    let xt = dtype(ctx, &x);
    if !xt.is_float() {
        return unsupported(format!(
            "GridSample on {xt} data (only float data is supported)"
        ));
    }
    let k = xd.len().saturating_sub(2);
    if !(1..=3).contains(&k) {
        return unsupported(format!(
            "GridSample on rank {} data (3 to 5 supported)",
            xd.len()
        ));
    }
    if mode == Mode::Cubic && k != 2 {
        return unsupported("GridSample cubic mode on other than 4-D data");
    }
    if gd.len() != k + 2 || gd[k + 1].as_known() != Some(k as i64) {
        return unsupported(format!(
            "GridSample grid of shape {} for {k} spatial dims",
            ctx.ty(&grid).shape
        ));
    }
    let Some(sizes) = xd[2..]
        .iter()
        .map(Dim::as_known)
        .collect::<Option<Vec<i64>>>()
    else {
        return unsupported("GridSample with spatial dims unknown at import");
    };
    if sizes.iter().any(|&s| s < 1) || (align && pad == Padding::Reflection && sizes.contains(&1)) {
        return unsupported("GridSample with empty spatial dims (or size 1 with reflection)");
    }
    let gt = match dtype(ctx, &grid) {
        t @ (DType::F32 | DType::F64) => t,
        _ => DType::F32,
    };
    let grid = cast(ctx, &grid, gt)?;
    let (nb, ch) = (xd[0].clone(), xd[1].clone());
    let p = product(&gd[1..=k]);
    // [N, O.., k] → [N, k, P]: coordinate j (x = width first) of every output point.
    let gn = gd[0].clone();
    let g = reshape(
        ctx,
        &grid,
        vec![gn.clone(), p.clone(), Dim::known(k as i64)],
    )?;
    let g = ctx.emit1(
        Op::Transpose {
            perm: vec![0, 2, 1],
        },
        &[g],
    )?;
    let mut idx: Option<Operand> = None;
    let mut weight: Option<Operand> = None;
    let mut valid: Option<Operand> = None;
    let mut stride = 1i64;
    let mut taps_per_axis = vec![1i64; k];
    for j in (0..k).rev() {
        let d = sizes[j] as f64;
        let (lo, hi) = if align {
            (0.0, d - 1.0)
        } else {
            (-0.5, d - 0.5)
        };
        let comp = (k - 1 - j) as i64;
        let c = ctx.emit1(
            Op::Slice {
                axes: vec![1],
                starts: vec![Dim::known(comp)],
                ends: vec![Dim::known(comp + 1)],
                steps: vec![1],
            },
            std::slice::from_ref(&g),
        )?;
        let taps = axis_taps(ctx, &c, Axis { d, lo, hi }, mode, pad, align)?;
        let t = dims(ctx, &taps.idx)[1].as_known().unwrap_or(1);
        taps_per_axis[j] = t;
        // View as [N, 1.., t (at axis 1 + j), 1.., P] so that the axes broadcast together.
        let mut shape = vec![gn.clone()];
        shape.extend((0..k).map(|i| Dim::known(if i == j { t } else { 1 })));
        shape.push(p.clone());
        let ti = sc(ctx, BinaryOp::Mul, &taps.idx, stride as f64)?;
        let ti = reshape(ctx, &ti, shape.clone())?;
        idx = Some(match idx {
            Some(acc) => bin(ctx, BinaryOp::Add, &acc, &ti)?,
            None => ti,
        });
        if let Some(w) = taps.weight {
            let w = reshape(ctx, &w, shape.clone())?;
            weight = Some(match weight {
                Some(acc) => bin(ctx, BinaryOp::Mul, &acc, &w)?,
                None => w,
            });
        }
        if let Some(v) = taps.valid {
            let v = reshape(ctx, &v, shape)?;
            valid = Some(match valid {
                Some(acc) => bin(ctx, BinaryOp::And, &acc, &v)?,
                None => v,
            });
        }
        stride *= sizes[j];
    }
    let Some(idx) = idx else {
        return unsupported("GridSample without spatial dims");
    };
    let total: i64 = taps_per_axis.iter().product();
    let tp = Dim::known(total).mul(&p);
    let flat_idx = reshape(ctx, &idx, vec![gn.clone(), Dim::known(1), tp.clone()])?;
    let flat_idx = ctx.emit1(
        Op::Expand {
            shape: vec![nb.clone(), ch.clone(), tp],
        },
        &[flat_idx],
    )?;
    let xs = reshape(ctx, &x, vec![nb.clone(), ch.clone(), Dim::known(stride)])?;
    let gathered = ctx.emit1(Op::GatherElements { axis: 2 }, &[xs, flat_idx])?;
    let tap_shape = vec![nb.clone(), ch.clone(), Dim::known(total), p.clone()];
    let mut y = reshape(ctx, &gathered, tap_shape)?;
    let one_shape = vec![gn, Dim::known(1), Dim::known(total), p.clone()];
    if let Some(v) = valid {
        let v = reshape(ctx, &v, one_shape.clone())?;
        let zero = ctx.scalar(0.0, xt)?;
        y = select(ctx, &v, &y, &zero)?;
    }
    if let Some(w) = weight {
        let w = reshape(ctx, &w, one_shape)?;
        let w = cast(ctx, &w, xt)?;
        y = bin(ctx, BinaryOp::Mul, &y, &w)?;
    }
    let y = ctx.emit1(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![2],
            keepdims: false,
        },
        &[y],
    )?;
    let mut out_shape = vec![nb, ch];
    out_shape.extend(gd[1..=k].iter().cloned());
    one(reshape(ctx, &y, out_shape)?)
}
