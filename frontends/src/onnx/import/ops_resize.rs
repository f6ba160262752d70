//! ONNX `Resize` (opsets 10–19) and `Upsample` importers. Interpolation is separable, so each
//! resized axis (its sizes known at import time) becomes one op: nearest is a `gather` of
//! precomputed source indices, linear and cubic (antialias, exclude_outside and
//! tf_crop_and_resize included) a `matmul` with a precomputed `[out, in]` weight matrix.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_nn::{bin, norm_axis, reshape};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, Dim, Op};
use kiln_runtime::Tensor;

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Resize", resize);
    r.add("Upsample", resize);
}

/// The interpolation settings of one node.
struct Params {
    mode: String,
    coord: String,
    nearest: String,
    cubic_a: f64,
    exclude_outside: bool,
    antialias: bool,
}

/// One output position along an axis: `(source index, weight)` taps (indices clamped into the
/// input), or `None` where tf_crop_and_resize extrapolates.
type Row = Option<Vec<(i64, f64)>>;

/// The weights of the taps around a source coordinate whose distance past its left
/// neighbour is `r` (in `(0, 1]`), as in the ONNX reference.
fn coeffs(p: &Params, r: f64, scale: f64) -> Vec<f64> {
    let a = p.cubic_a;
    let cubic = |x: f64| {
        let x = x.abs();
        if x <= 1.0 {
            ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
        } else {
            0.0
        }
    };
    let normalized = |c: Vec<f64>| {
        let s: f64 = c.iter().sum();
        c.into_iter().map(|v| v / s).collect()
    };
    let s = scale.min(1.0);
    match (p.mode.as_str(), p.antialias) {
        ("nearest", _) => {
            let right = match p.nearest.as_str() {
                _ if r == 1.0 => true,
                "round_prefer_ceil" => r >= 0.5,
                "floor" => false,
                "ceil" => true,
                _ => r > 0.5,
            };
            vec![f64::from(u8::from(!right)), f64::from(u8::from(right))]
        }
        ("linear", false) => vec![1.0 - r, r],
        ("linear", true) => {
            let start = (-1.0 / s).floor() as i64 + 1;
            let taps = start..start + 2 - 2 * start;
            normalized(
                taps.map(|i| (1.0 - ((i as f64 - r) * s).abs()).clamp(0.0, 1.0))
                    .collect(),
            )
        }
        (_, false) => [r + 1.0, r, 1.0 - r, 2.0 - r]
            .iter()
            .map(|&x| cubic(x))
            .collect(),
        (_, true) => {
            let start = (-2.0 / s).floor() as i64 + 1;
            normalized(
                (start..2 - start)
                    .map(|i| cubic(s * (i as f64 - r)))
                    .collect(),
            )
        }
    }
}

/// The taps of every output position along an axis of `input` → `output` elements.
fn axis_rows(
    p: &Params,
    input: i64,
    output: i64,
    scale: f64,
    roi: (f64, f64),
) -> NResult<Vec<Row>> {
    let (inf, out_w) = (input as f64, scale * input as f64);
    let mut rows = Vec::with_capacity(output.max(0) as usize);
    for y in 0..output {
        let y = y as f64;
        let x = match p.coord.as_str() {
            "align_corners" if out_w == 1.0 => 0.0,
            "align_corners" => y * (inf - 1.0) / (out_w - 1.0),
            "asymmetric" => y / scale,
            "tf_crop_and_resize" if out_w == 1.0 => {
                (roi.1 - roi.0) * (inf - 1.0) / 2.0 + roi.0 * (inf - 1.0)
            }
            "tf_crop_and_resize" => {
                y * (roi.1 - roi.0) * (inf - 1.0) / (out_w - 1.0) + roi.0 * (inf - 1.0)
            }
            "pytorch_half_pixel" if out_w == 1.0 => -0.5,
            "half_pixel" | "pytorch_half_pixel" => (y + 0.5) / scale - 0.5,
            "half_pixel_symmetric" => {
                inf / 2.0 * (1.0 - output as f64 / out_w) + (y + 0.5) / scale - 0.5
            }
            other => return invalid(format!("unknown coordinate_transformation_mode `{other}`")),
        };
        if p.coord == "tf_crop_and_resize" && (x < 0.0 || x > inf - 1.0) {
            rows.push(None);
            continue;
        }
        let mut c = coeffs(p, if x == x.floor() { 1.0 } else { x - x.floor() }, scale);
        // The n taps nearest to x, ties to the left (the reference's index rule).
        let n = c.len() as i64;
        let pad = (n + 1) / 2;
        let xp = x + pad as f64;
        let frac = xp - xp.floor();
        let off = match n % 2 {
            0 if frac == 0.0 => -(n / 2),
            0 => 1 - n / 2,
            _ => -((n - 1) / 2) + i64::from(frac > 0.5),
        };
        let start = xp.floor() as i64 + off - pad;
        if p.exclude_outside {
            for (k, w) in c.iter_mut().enumerate() {
                if !(0..input).contains(&(start + k as i64)) {
                    *w = 0.0;
                }
            }
            let s: f64 = c.iter().sum();
            c.iter_mut()
                .for_each(|w| *w /= if s == 0.0 { 1.0 } else { s });
        }
        rows.push(Some(
            c.into_iter()
                .enumerate()
                .map(|(k, w)| ((start + k as i64).clamp(0, input - 1), w))
                .collect(),
        ));
    }
    Ok(rows)
}

/// Applies one axis's rows to `x`: a gather for nearest, else `W·x` over that axis.
fn apply(
    ctx: &mut Ctx,
    x: &Operand,
    axis: usize,
    input: i64,
    rows: &[Row],
    extrapolation: f64,
) -> NResult<Operand> {
    let dims = ctx.ty(x).shape.0;
    let out = rows.len();
    let picks: Option<Vec<i64>> = rows
        .iter()
        .map(|r| r.as_ref()?.iter().find(|t| t.1 == 1.0).map(|t| t.0))
        .collect();
    let nearest = rows.iter().all(|r| {
        r.as_ref()
            .is_some_and(|t| t.iter().filter(|t| t.1 != 0.0).count() == 1)
    });
    if let (Some(idx), true) = (picks, nearest) {
        let t = ctx.constant(Tensor::from_i64(vec![out], idx)?);
        return ctx.emit1(Op::Gather { axis: axis as i64 }, &[x.clone(), t]);
    }
    let dt = ctx.ty(x).dtype;
    if !dt.is_float() {
        return unsupported(format!(
            "interpolating {dt} data (only nearest works on integers)"
        ));
    }
    let mut w = vec![0.0; out * input as usize];
    let mut extra = vec![0.0; out];
    for (o, r) in rows.iter().enumerate() {
        match r {
            Some(taps) => taps
                .iter()
                .for_each(|&(i, c)| w[o * input as usize + i as usize] += c),
            None => extra[o] = extrapolation,
        }
    }
    let prod = |d: &[Dim]| d.iter().fold(Dim::known(1), |a, b| a.mul(b));
    let x3 = reshape(
        ctx,
        x,
        vec![
            prod(&dims[..axis]),
            Dim::known(input),
            prod(&dims[axis + 1..]),
        ],
    )?;
    let wt = ctx.constant(Tensor::from_f64_values(dt, vec![out, input as usize], &w)?);
    let mut y = ctx.emit1(Op::MatMul, &[wt, x3])?;
    if extra.iter().any(|&e| e != 0.0) {
        let e = ctx.constant(Tensor::from_f64_values(dt, vec![out, 1], &extra)?);
        y = bin(ctx, BinaryOp::Add, &y, &e)?;
    }
    let mut shape = dims;
    shape[axis] = Dim::known(out as i64);
    reshape(ctx, &y, shape)
}

/// A constant float input as f64s; `None` when absent or empty.
fn floats(ctx: &mut Ctx, n: &NodeView, i: usize) -> NResult<Option<Vec<f64>>> {
    let Some(o) = n.opt_input(i) else {
        return Ok(None);
    };
    match ctx.const_tensor(o) {
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => Ok(Some(t.to_f64_vec())),
        None => unsupported(format!(
            "{} input {i} (roi / scales) is not known at import time: the output shape would \
             depend on runtime values",
            n.node.op_type
        )),
    }
}

fn resize(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let dims = ctx.ty(&x).shape.0;
    let rank = dims.len();
    // Upsample and Resize-10 take (X, scales) with asymmetric coordinates and floor rounding.
    let legacy = n.node.op_type == "Upsample" || n.opset < 11;
    let (scales, sizes, roi) = if legacy {
        let s = match n.floats("scales") {
            Some(s) => Some(s.into_iter().map(f64::from).collect()),
            None => floats(ctx, n, 1)?,
        };
        (s, None, None)
    } else {
        let sizes = match n.opt_input(3) {
            Some(o) => Some(ctx.dims(o).ok_or(()).or_else(|_| {
                unsupported(
                    "Resize sizes are not known at import time: the output shape would \
                     depend on runtime values",
                )
            })?),
            None => None,
        };
        (
            floats(ctx, n, 2)?,
            sizes.filter(|s| !s.is_empty()),
            floats(ctx, n, 1)?,
        )
    };
    let mode = match n.string("mode", "nearest").as_str() {
        "bilinear" | "linear" => "linear".to_string(),
        m => m.to_string(),
    };
    if !matches!(mode.as_str(), "nearest" | "linear" | "cubic") {
        return invalid(format!("unknown Resize mode `{mode}`"));
    }
    let p = Params {
        coord: if legacy {
            "asymmetric".into()
        } else {
            n.string("coordinate_transformation_mode", "half_pixel")
        },
        nearest: if legacy {
            "floor".into()
        } else {
            n.string("nearest_mode", "round_prefer_floor")
        },
        cubic_a: f64::from(n.float("cubic_coeff_a", -0.75)),
        exclude_outside: n.int("exclude_outside", 0) != 0,
        antialias: n.int("antialias", 0) != 0,
        mode,
    };
    if legacy && p.mode == "nearest" && scales.as_ref().is_some_and(|s| s.iter().any(|&v| v < 1.0))
    {
        return unsupported(
            "nearest downsampling in Upsample / Resize-10 (rounding differs between runtimes)",
        );
    }
    let axes: Vec<usize> = match n.ints("axes") {
        Some(a) => a
            .iter()
            .map(|&v| norm_axis(v, rank))
            .collect::<NResult<_>>()?,
        None => (0..rank).collect(),
    };
    let per_axis = |v: &[f64], what: &str| -> NResult<()> {
        if v.len() == axes.len() {
            Ok(())
        } else {
            invalid(format!(
                "{what} has {} entries for {} axes",
                v.len(),
                axes.len()
            ))
        }
    };
    // Per listed axis: (scale, output size).
    let mut plan: Vec<(f64, Option<i64>)> = match (&scales, &sizes) {
        (Some(s), _) => {
            per_axis(s, "scales")?;
            s.iter().map(|&v| (v, None)).collect()
        }
        (None, Some(sz)) => {
            per_axis(&vec![0.0; sz.len()], "sizes")?;
            let mut v = Vec::with_capacity(sz.len());
            for (k, d) in sz.iter().enumerate() {
                v.push(match d.as_known() {
                    _ if *d == dims[axes[k]] => (1.0, None),
                    Some(size) => (f64::NAN, Some(size)),
                    None => return unsupported(format!("Resize size {d} of axis {k} is symbolic")),
                });
            }
            v
        }
        (None, None) => return invalid("Resize needs scales or sizes"),
    };
    let known = |k: usize| {
        dims[axes[k]].as_known().ok_or(()).or_else(|_| {
            unsupported(format!(
                "Resize needs known sizes for the resized axis {}, got {}",
                axes[k], dims[axes[k]]
            ))
        })
    };
    if sizes.is_some() && scales.is_none() {
        let mut ratios = Vec::with_capacity(plan.len());
        for (k, &(ratio, out)) in plan.iter().enumerate() {
            ratios.push(match out {
                Some(o) => o as f64 / known(k)? as f64,
                None => ratio,
            });
        }
        let policy = n.string("keep_aspect_ratio_policy", "stretch");
        let shared = match policy.as_str() {
            "not_larger" => Some(ratios.iter().copied().fold(f64::INFINITY, f64::min)),
            "not_smaller" => Some(ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
            _ => None,
        };
        for (k, slot) in plan.iter_mut().enumerate() {
            *slot = match shared {
                Some(s) => (s, Some((s * known(k)? as f64 + 0.5) as i64)),
                None => (ratios[k], slot.1),
            };
        }
    }
    let mut y = x;
    for (k, &(scale, size)) in plan.iter().enumerate() {
        let a = axes[k];
        let r = roi.as_ref().map_or((0.0, 1.0), |r| {
            (
                r.get(k).copied().unwrap_or(0.0),
                r.get(k + axes.len()).copied().unwrap_or(1.0),
            )
        });
        let trivial_roi = p.coord != "tf_crop_and_resize" || r == (0.0, 1.0);
        if scale == 1.0 && size.is_none_or(|s| Dim::known(s) == dims[a]) && trivial_roi {
            continue;
        }
        let input = known(k)?;
        let output = size.unwrap_or((scale * input as f64).floor() as i64);
        // Antialias widens the kernel to about 4/scale taps: keep that bounded.
        if input < 1 || output < 0 || !(scale.is_finite() && scale > 1e-4) {
            return unsupported(format!(
                "resizing axis {a} from {input} to {output} (scale {scale})"
            ));
        }
        let rows = axis_rows(&p, input, output, scale, r)?;
        y = apply(
            ctx,
            &y,
            a,
            input,
            &rows,
            f64::from(n.float("extrapolation_value", 0.0)),
        )?;
    }
    Ok(vec![y])
}
