//! Inference for sliding-window ops: convolution, transposed convolution and pooling (attribute
//! checks and the output-size formulas over symbolic dims).

use super::super::dim::Dim;
use super::super::op::PoolKind;
use super::super::types::{DType, Shape, TensorType};
use super::{ceil_div_dim, is_numeric, k, Ctx};
use crate::error::Result;

/// One spatial dim's window attributes.
#[derive(Debug, Clone, Copy)]
struct AxisAttrs {
    stride: i64,
    /// Begin and end pads.
    pads: (i64, i64),
    dilation: i64,
}

/// The attributes of spatial dim `i` of `spatial`, or an error when a list is too short.
fn axis_attrs(
    cx: &Ctx,
    (i, spatial): (usize, usize),
    strides: &[i64],
    pads: &[i64],
    dilations: &[i64],
) -> Result<AxisAttrs> {
    let (Some(&stride), Some(&dilation), Some(&pb), Some(&pe)) = (
        strides.get(i),
        dilations.get(i),
        pads.get(i),
        pads.get(i + spatial),
    ) else {
        return cx.err("attribute lengths disagree with the rank");
    };
    Ok(AxisAttrs {
        stride,
        pads: (pb, pe),
        dilation,
    })
}

/// Checks the per-spatial-dim attributes: `k` positive strides and dilations, `2k`
/// non-negative pads.
fn check_window_attrs(
    cx: &Ctx,
    spatial: usize,
    strides: &[i64],
    pads: &[i64],
    dilations: &[i64],
) -> Result<()> {
    cx.attr_len("strides", strides, spatial)?;
    cx.attr_len("dilations", dilations, spatial)?;
    cx.attr_len("pads", pads, 2 * spatial)?;
    for (name, values) in [("strides", strides), ("dilations", dilations)] {
        if let Some(v) = values.iter().find(|&&v| v <= 0) {
            return cx.err(format!("{name} must be positive, got {v} in {values:?}"));
        }
    }
    if let Some(v) = pads.iter().find(|&&v| v < 0) {
        return cx.err(format!("pads must be non-negative, got {v} in {pads:?}"));
    }
    Ok(())
}

/// The x input: rank ≥ 3 (`[N, C, D1..Dk]`).
fn spatial_input<'a>(cx: &Ctx<'a>, x: &'a TensorType) -> Result<usize> {
    if x.rank() < 3 {
        return cx.err(format!(
            "input 0 has rank {} ({}), expected at least 3 ([N, C, D1, ...])",
            x.rank(),
            x.shape
        ));
    }
    Ok(x.rank() - 2)
}

/// `(K - 1)·d + 1`.
fn effective_kernel(kernel: &Dim, dilation: i64) -> Dim {
    kernel.sub(&k(1)).mul(&k(dilation)).add(&k(1))
}

/// `floor((D + pb + pe - eff) / s) + 1`, or with `ceil` the ceiling, less one when the last
/// window would start at or after `D + pb` (checked when everything is known).
fn window_out(cx: &Ctx, i: usize, d: &Dim, kernel: &Dim, a: AxisAttrs, ceil: bool) -> Result<Dim> {
    let AxisAttrs {
        stride,
        pads: (pb, pe),
        dilation,
    } = a;
    let eff = effective_kernel(kernel, dilation);
    let span = d.add(&k(pb)).add(&k(pe)).sub(&eff);
    if span.as_known().is_some_and(|v| v < 0) {
        return cx.err(format!(
            "spatial dim {i}: input size {d} plus pads {pb}+{pe} is smaller than the \
             effective kernel size {eff}"
        ));
    }
    let s = k(stride);
    if !ceil {
        return Ok(span.floor_div(&s).add(&k(1)));
    }
    let out = ceil_div_dim(&span, &s).add(&k(1));
    if let (Some(o), Some(dv)) = (out.as_known(), d.as_known()) {
        let last_start = (i128::from(o) - 1) * i128::from(stride);
        if last_start >= i128::from(dv) + i128::from(pb) {
            return Ok(k(o.wrapping_sub(1)));
        }
    }
    Ok(out)
}

/// Checks an optional bias input (index 2): same dtype as x, shape `[m]`.
fn check_bias(cx: &Ctx, m: &Dim) -> Result<()> {
    if cx.count() < 3 {
        return Ok(());
    }
    cx.same_dtype(2, 0)?;
    let b = cx.rank(2, 1, "the bias [M]")?;
    match b.shape.0.first() {
        Some(d) if d == m => Ok(()),
        _ => cx.err(format!(
            "input 2 (bias) has shape {}, expected [{m}] (one per output channel)",
            b.shape
        )),
    }
}

/// Kernel sizes: w's dims from 2 on; known ones must be positive.
fn kernel_dims<'a>(cx: &Ctx, w: &'a TensorType) -> Result<&'a [Dim]> {
    let kernel = w.shape.0.get(2..).unwrap_or_default();
    if let Some(d) = kernel.iter().find(|d| d.as_known().is_some_and(|v| v <= 0)) {
        return cx.err(format!(
            "kernel sizes must be positive, got {d} in weights {}",
            w.shape
        ));
    }
    Ok(kernel)
}

/// Both known and different.
fn provably_differ(a: &Dim, b: &Dim) -> bool {
    matches!((a.as_known(), b.as_known()), (Some(x), Some(y)) if x != y)
}

/// x, w (and bias) for both convolutions: float x, w of x's dtype and rank, group ≥ 1.
fn conv_inputs<'a>(cx: &Ctx<'a>, group: i64) -> Result<(&'a TensorType, &'a TensorType, usize)> {
    let x = cx.float(0)?;
    let spatial = spatial_input(cx, x)?;
    let w = cx.same_dtype(1, 0)?;
    if w.rank() != x.rank() {
        return cx.err(format!(
            "input 1 (weights) has rank {} ({}), expected {} (the rank of input 0)",
            w.rank(),
            w.shape,
            x.rank()
        ));
    }
    if group < 1 {
        return cx.err(format!("group must be at least 1, got {group}"));
    }
    Ok((x, w, spatial))
}

pub(super) fn conv(
    cx: &Ctx,
    strides: &[i64],
    pads: &[i64],
    dilations: &[i64],
    group: i64,
) -> Result<TensorType> {
    let (x, w, spatial) = conv_inputs(cx, group)?;
    check_window_attrs(cx, spatial, strides, pads, dilations)?;
    let [n, c, ds @ ..] = x.shape.0.as_slice() else {
        return cx.err("input 0 has rank < 3");
    };
    let [m, cg, ..] = w.shape.0.as_slice() else {
        return cx.err("input 1 has rank < 3");
    };
    let need = cg.mul(&k(group));
    if provably_differ(c, &need) {
        return cx.err(format!(
            "input 0 has {c} channels but the weights {} with group {group} expect {need}",
            w.shape
        ));
    }
    if let Some(mv) = m.as_known() {
        if mv % group != 0 {
            return cx.err(format!(
                "{mv} output channels are not divisible by group {group}"
            ));
        }
    }
    check_bias(cx, m)?;
    let kernel = kernel_dims(cx, w)?;
    let mut dims = vec![n.clone(), m.clone()];
    for i in 0..spatial {
        let (Some(d), Some(kd)) = (ds.get(i), kernel.get(i)) else {
            return cx.err("attribute lengths disagree with the rank");
        };
        let a = axis_attrs(cx, (i, spatial), strides, pads, dilations)?;
        dims.push(window_out(cx, i, d, kd, a, false)?);
    }
    Ok(TensorType::new(x.dtype, Shape(dims)))
}

pub(super) fn conv_transpose(
    cx: &Ctx,
    strides: &[i64],
    pads: &[i64],
    dilations: &[i64],
    group: i64,
    output_padding: &[i64],
) -> Result<TensorType> {
    let (x, w, spatial) = conv_inputs(cx, group)?;
    check_window_attrs(cx, spatial, strides, pads, dilations)?;
    cx.attr_len("output_padding", output_padding, spatial)?;
    let [n, c, ds @ ..] = x.shape.0.as_slice() else {
        return cx.err("input 0 has rank < 3");
    };
    let [wc, mg, ..] = w.shape.0.as_slice() else {
        return cx.err("input 1 has rank < 3");
    };
    if provably_differ(c, wc) {
        return cx.err(format!(
            "input 0 has {c} channels but the weights {} expect {wc}",
            w.shape
        ));
    }
    if let Some(cv) = wc.as_known() {
        if cv % group != 0 {
            return cx.err(format!(
                "{cv} input channels are not divisible by group {group}"
            ));
        }
    }
    let m = mg.mul(&k(group));
    check_bias(cx, &m)?;
    let kernel = kernel_dims(cx, w)?;
    let mut dims = vec![n.clone(), m];
    for i in 0..spatial {
        let (Some(d), Some(kd), Some(&op)) = (ds.get(i), kernel.get(i), output_padding.get(i))
        else {
            return cx.err("attribute lengths disagree with the rank");
        };
        let AxisAttrs {
            stride: s,
            pads: (pb, pe),
            dilation: dl,
        } = axis_attrs(cx, (i, spatial), strides, pads, dilations)?;
        if op < 0 || (op >= s && op >= dl) {
            return cx.err(format!(
                "output_padding {op} of spatial dim {i} must be non-negative and smaller than \
                 the stride ({s}) or the dilation ({dl})"
            ));
        }
        let out = k(s)
            .mul(&d.sub(&k(1)))
            .add(&k(op))
            .add(&effective_kernel(kd, dl))
            .sub(&k(pb))
            .sub(&k(pe));
        if out.as_known().is_some_and(|v| v < 0) {
            return cx.err(format!(
                "spatial dim {i}: output size {out} is negative (input {d}, pads {pb}+{pe})"
            ));
        }
        dims.push(out);
    }
    Ok(TensorType::new(x.dtype, Shape(dims)))
}

pub(super) fn pool(
    cx: &Ctx,
    kind: PoolKind,
    kernel: &[i64],
    strides: &[i64],
    pads: &[i64],
    dilations: &[i64],
    ceil_mode: bool,
) -> Result<TensorType> {
    let x = match kind {
        PoolKind::Max => cx.dtype(0, is_numeric, "a float or integer dtype")?,
        PoolKind::Avg => cx.dtype(0, DType::is_float, "a float dtype")?,
    };
    let spatial = spatial_input(cx, x)?;
    cx.attr_len("kernel", kernel, spatial)?;
    if let Some(v) = kernel.iter().find(|&&v| v <= 0) {
        return cx.err(format!("kernel must be positive, got {v} in {kernel:?}"));
    }
    check_window_attrs(cx, spatial, strides, pads, dilations)?;
    let mut dims: Vec<Dim> = x.shape.0.iter().take(2).cloned().collect();
    for (i, d) in x.shape.0.iter().skip(2).enumerate() {
        let Some(&kd) = kernel.get(i) else {
            return cx.err("attribute lengths disagree with the rank");
        };
        let a = axis_attrs(cx, (i, spatial), strides, pads, dilations)?;
        dims.push(window_out(cx, i, d, &k(kd), a, ceil_mode)?);
    }
    Ok(TensorType::new(x.dtype, Shape(dims)))
}
