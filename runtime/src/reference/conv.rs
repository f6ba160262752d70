//! Convolution, transposed convolution and pooling over any number k ≥ 1 of spatial dims.
//!
//! Layout is `[N, C, D1..Dk]`. Values are computed in f64 and rounded to the output dtype once.
//! A kernel tap `kk` of output position `o` reads input position `o·s + kk·d - pad_begin` on
//! each spatial axis; positions outside `[0, D)` are padding (zero for conv).

use super::util::{strides, unravel, KResult};
use crate::ops::PoolKind;
use crate::{DType, Tensor};

/// Largest element count a kernel will materialise.
const MAX_ELEMENTS: usize = isize::MAX as usize / 16;

/// The window attributes of a convolution or pooling as the op holds them: one stride and one
/// dilation per spatial axis, and the begin pads then the end pads.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window<'a> {
    /// `[s1..sk]`.
    pub strides: &'a [i64],
    /// `[b1..bk, e1..ek]`.
    pub pads: &'a [i64],
    /// `[d1..dk]`.
    pub dilations: &'a [i64],
}

/// Checked per-axis attributes of a windowed op with k spatial dims.
struct Geometry {
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pad_begin: Vec<usize>,
    pad_end: Vec<usize>,
}

impl Geometry {
    fn new(op: &str, k: usize, win: Window<'_>) -> KResult<Self> {
        let Window {
            strides,
            pads,
            dilations,
        } = win;
        if strides.len() != k || dilations.len() != k || pads.len() != 2 * k {
            return Err(format!(
                "{op} with {k} spatial dims needs {k} strides, {k} dilations and {} pads; got \
                 strides {strides:?}, dilations {dilations:?}, pads {pads:?}",
                2 * k
            ));
        }
        let list = |v: &[i64], min: i64, what: &str| -> KResult<Vec<usize>> {
            v.iter()
                .map(|&a| match usize::try_from(a) {
                    Ok(u) if a >= min => Ok(u),
                    _ => Err(format!("{op} {what} {v:?} must all be ≥ {min}")),
                })
                .collect()
        };
        let pads = list(pads, 0, "pads")?;
        Ok(Geometry {
            strides: list(strides, 1, "strides")?,
            dilations: list(dilations, 1, "dilations")?,
            pad_begin: pads[..k].to_vec(),
            pad_end: pads[k..].to_vec(),
        })
    }

    /// Span of a kernel of `kernel` taps on axis `a`: `(kernel - 1)·dilation + 1`.
    fn span(&self, a: usize, kernel: usize) -> i128 {
        (kernel as i128 - 1) * self.dilations[a] as i128 + 1
    }

    /// Input position read by tap `kk` of output position `o` on axis `a`.
    fn input_pos(&self, a: usize, o: usize, kk: usize) -> i128 {
        o as i128 * self.strides[a] as i128 + kk as i128 * self.dilations[a] as i128
            - self.pad_begin[a] as i128
    }

    /// The offsets (into the data and into the weight) that tap `kk` adds at output position
    /// `pos` (spatial parts only), or `None` when the tap falls outside `extent` on some axis;
    /// `data` and `weight` are the spatial strides.
    fn tap(
        &self,
        pos: &[usize],
        kk: &[usize],
        extent: &[usize],
        data: &[usize],
        weight: &[usize],
    ) -> Option<(usize, usize)> {
        let (mut di, mut wi) = (0, 0);
        for a in 0..kk.len() {
            let p = self.input_pos(a, pos[a], kk[a]);
            if p < 0 || p >= extent[a] as i128 {
                return None;
            }
            di += p as usize * data[a];
            wi += kk[a] * weight[a];
        }
        Some((di, wi))
    }

    /// Output size on axis `a` of a sliding window over `dim` elements:
    /// `floor((dim + pads - span) / stride) + 1`, or with `ceil_mode` `ceil(...) + 1`, minus 1
    /// when the last window would start at or beyond `dim + pad_begin`.
    fn out_size(&self, a: usize, dim: usize, kernel: usize, ceil_mode: bool) -> KResult<usize> {
        let s = self.strides[a] as i128;
        let room = dim as i128 + self.pad_begin[a] as i128 + self.pad_end[a] as i128
            - self.span(a, kernel);
        if room < 0 {
            return Err(format!(
                "kernel span {} on spatial axis {a} exceeds the padded input size {}",
                self.span(a, kernel),
                room + self.span(a, kernel)
            ));
        }
        let mut o = if ceil_mode {
            (room + s - 1) / s
        } else {
            room / s
        } + 1;
        if ceil_mode && (o - 1) * s >= dim as i128 + self.pad_begin[a] as i128 {
            o -= 1;
        }
        usize::try_from(o).map_err(|_| format!("output size {o} is too large"))
    }
}

fn checked_count(shape: &[usize]) -> KResult<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("output shape {shape:?} has too many elements"))
}

/// Checks `x: [N, C, D1..Dk]` (k ≥ 1) and a numeric dtype; returns k.
fn spatial_rank(op: &str, x: &Tensor) -> KResult<usize> {
    if x.rank() < 3 {
        return Err(format!(
            "{op} input must be [N, C, D1..Dk], got shape {:?}",
            x.shape()
        ));
    }
    if x.dtype() == DType::Bool {
        return Err(format!("{op} does not take bool"));
    }
    Ok(x.rank() - 2)
}

/// Checks the weight (same rank and dtype as x, non-empty kernel) and the optional bias `[m]`;
/// returns the bias values.
fn check_weight_bias(
    op: &str,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    m: usize,
) -> KResult<Option<Vec<f64>>> {
    if w.rank() != x.rank() || w.dtype() != x.dtype() || w.shape()[2..].contains(&0) {
        return Err(format!(
            "{op} weight {}{:?} does not fit input {}{:?}",
            w.dtype(),
            w.shape(),
            x.dtype(),
            x.shape()
        ));
    }
    match b {
        Some(b) if b.shape() != [m] || b.dtype() != x.dtype() => Err(format!(
            "{op} bias is {}{:?}, expected {}[{m}]",
            b.dtype(),
            b.shape(),
            x.dtype()
        )),
        _ => Ok(b.map(Tensor::to_f64_vec)),
    }
}

fn group_size(op: &str, group: i64, channels: &[(usize, &str)]) -> KResult<usize> {
    let g = usize::try_from(group).ok().filter(|&g| g >= 1);
    let g = g.ok_or_else(|| format!("{op} group {group} must be ≥ 1"))?;
    for &(c, what) in channels {
        if c % g != 0 {
            return Err(format!("{op} group {g} does not divide {what} {c}"));
        }
    }
    Ok(g)
}

/// `y[n, m, o] = b[m] + Σ_{c, kk} x[n, g·Cg + c, o·s + kk·d - pb] · w[m, c, kk]` where
/// `g = m / (M / group)` and out-of-range input positions read zero.
pub fn conv(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    win: Window<'_>,
    group: i64,
) -> KResult<Tensor> {
    let k = spatial_rank("conv", x)?;
    let geo = Geometry::new("conv", k, win)?;
    let (n, c, m) = (
        x.shape()[0],
        x.shape()[1],
        w.shape().first().copied().unwrap_or(0),
    );
    let bias = check_weight_bias("conv", x, w, b, m)?;
    let g = group_size(
        "conv",
        group,
        &[(c, "input channels"), (m, "output channels")],
    )?;
    let (cg, mg) = (c / g, m / g);
    if w.shape()[1] != cg {
        return Err(format!(
            "conv weight {:?} needs dim 1 = channels / group = {c} / {g} = {cg}",
            w.shape()
        ));
    }
    let kshape = &w.shape()[2..];
    let mut out_shape = vec![n, m];
    for (a, &kd) in kshape.iter().enumerate() {
        out_shape.push(geo.out_size(a, x.shape()[2 + a], kd, false)?);
    }
    let count = checked_count(&out_shape)?;
    let (xv, wv) = (x.to_f64_vec(), w.to_f64_vec());
    let (xs, ws) = (strides(x.shape()), strides(w.shape()));
    let taps: usize = kshape.iter().product();
    let mut y = Vec::with_capacity(count);
    for l in 0..count {
        let pos = unravel(l, &out_shape);
        let (ni, mi) = (pos[0], pos[1]);
        let gi = mi / mg;
        let mut acc = bias.as_ref().map_or(0.0, |bv| bv[mi]);
        for ci in 0..cg {
            for t in 0..taps {
                let kk = unravel(t, kshape);
                let xi = ni * xs[0] + (gi * cg + ci) * xs[1];
                let wi = mi * ws[0] + ci * ws[1];
                let extent = &x.shape()[2..];
                if let Some((dx, dw)) = geo.tap(&pos[2..], &kk, extent, &xs[2..], &ws[2..]) {
                    acc += xv[xi + dx] * wv[wi + dw];
                }
            }
        }
        y.push(acc);
    }
    Tensor::from_f64_values(x.dtype(), out_shape, &y).map_err(|e| e.to_string())
}

/// Scatter definition: `y[n, g·Mg + m, o] += x[n, g·Cg + c, i] · w[g·Cg + c, m, kk]` for
/// `o = i·s + kk·d - pb` inside the output, starting from the bias. Output size per axis is
/// `s·(D-1) + output_padding + (K-1)·d + 1 - pb - pe`.
pub fn conv_transpose(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    win: Window<'_>,
    group: i64,
    output_padding: &[i64],
) -> KResult<Tensor> {
    let k = spatial_rank("conv_transpose", x)?;
    let geo = Geometry::new("conv_transpose", k, win)?;
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let g = group_size("conv_transpose", group, &[(c, "input channels")])?;
    let cg = c / g;
    let mg = w.shape().get(1).copied().unwrap_or(0);
    let m = mg
        .checked_mul(g)
        .ok_or("conv_transpose output channels overflow")?;
    let bias = check_weight_bias("conv_transpose", x, w, b, m)?;
    if w.shape()[0] != c {
        return Err(format!(
            "conv_transpose weight {:?} needs dim 0 = input channels {c}",
            w.shape()
        ));
    }
    if output_padding.len() != k || output_padding.iter().any(|&p| p < 0) {
        return Err(format!(
            "conv_transpose output_padding {output_padding:?} needs {k} entries ≥ 0"
        ));
    }
    let kshape = &w.shape()[2..];
    let mut out_shape = vec![n, m];
    for a in 0..k {
        let o = geo.strides[a] as i128 * (x.shape()[2 + a] as i128 - 1)
            + i128::from(output_padding[a])
            + geo.span(a, kshape[a])
            - geo.pad_begin[a] as i128
            - geo.pad_end[a] as i128;
        out_shape.push(
            usize::try_from(o)
                .map_err(|_| format!("conv_transpose output size {o} on spatial axis {a}"))?,
        );
    }
    let count = checked_count(&out_shape)?;
    let out_sp = &out_shape[2..];
    let (xv, wv) = (x.to_f64_vec(), w.to_f64_vec());
    let (ys, ws) = (strides(&out_shape), strides(w.shape()));
    let inner: usize = out_sp.iter().product();
    let mut y: Vec<f64> = (0..count)
        .map(|l| {
            bias.as_ref()
                .map_or(0.0, |bv| bv[(l / inner.max(1)) % m.max(1)])
        })
        .collect();
    let taps: usize = kshape.iter().product();
    for (l, &xval) in xv.iter().enumerate() {
        let pos = unravel(l, x.shape());
        let (ni, ch) = (pos[0], pos[1]);
        let gi = ch / cg;
        for mi in 0..mg {
            for t in 0..taps {
                let kk = unravel(t, kshape);
                let yi = ni * ys[0] + (gi * mg + mi) * ys[1];
                let wi = ch * ws[0] + mi * ws[1];
                // o = i·s + kk·d - pb: the same arithmetic as conv's input position.
                if let Some((dy, dw)) = geo.tap(&pos[2..], &kk, out_sp, &ys[2..], &ws[2..]) {
                    y[yi + dy] += xval * wv[wi + dw];
                }
            }
        }
    }
    Tensor::from_f64_values(x.dtype(), out_shape, &y).map_err(|e| e.to_string())
}

/// Max or average pooling. Max ignores padding (NaN-propagating among real elements); Avg sums
/// the real elements and divides by the taps inside the explicitly padded input when
/// `count_include_pad` (taps past it, which only ceil mode creates, never count), else by the
/// number of real elements. A window with no real element is an error where the result would
/// be undefined (Max, and Avg without `count_include_pad`).
pub fn pool(
    x: &Tensor,
    kind: PoolKind,
    kernel: &[i64],
    win: Window<'_>,
    ceil_mode: bool,
    count_include_pad: bool,
) -> KResult<Tensor> {
    let k = spatial_rank("pool", x)?;
    let geo = Geometry::new("pool", k, win)?;
    let kshape: Vec<usize> = kernel
        .iter()
        .map(|&kd| usize::try_from(kd).ok().filter(|&kd| kd >= 1))
        .collect::<Option<_>>()
        .filter(|v: &Vec<usize>| v.len() == k)
        .ok_or_else(|| format!("pool kernel {kernel:?} needs {k} entries ≥ 1"))?;
    let mut out_shape = x.shape()[..2].to_vec();
    for (a, &kd) in kshape.iter().enumerate() {
        out_shape.push(geo.out_size(a, x.shape()[2 + a], kd, ceil_mode)?);
    }
    let count = checked_count(&out_shape)?;
    let xv = x.to_f64_vec();
    let xs = strides(x.shape());
    let taps: usize = kshape.iter().product();
    let mut y = Vec::with_capacity(count);
    for l in 0..count {
        let pos = unravel(l, &out_shape);
        let (mut max, mut sum, mut real, mut padded) = (None::<f64>, 0.0, 0usize, 0usize);
        for t in 0..taps {
            let kk = unravel(t, &kshape);
            let mut xi = pos[0] * xs[0] + pos[1] * xs[1];
            let (mut is_real, mut in_padded) = (true, true);
            for a in 0..k {
                let p = geo.input_pos(a, pos[2 + a], kk[a]);
                let d = x.shape()[2 + a] as i128;
                // p ≥ -pad_begin always holds; only the end can be passed.
                in_padded &= p < d + geo.pad_end[a] as i128;
                if p < 0 || p >= d {
                    is_real = false;
                } else {
                    xi += p as usize * xs[2 + a];
                }
            }
            padded += usize::from(in_padded);
            if is_real {
                let v = xv[xi];
                real += 1;
                sum += v;
                max = Some(match max {
                    Some(m) if m.is_nan() || !(v.is_nan() || v > m) => m,
                    _ => v,
                });
            }
        }
        let value = match kind {
            PoolKind::Max => max,
            PoolKind::Avg if count_include_pad => Some(sum / padded as f64),
            PoolKind::Avg => (real > 0).then(|| sum / real as f64),
        };
        y.push(value.ok_or_else(|| {
            format!("pool window at output {pos:?} covers no input element (padding too large)")
        })?);
    }
    Tensor::from_f64_values(x.dtype(), out_shape, &y).map_err(|e| e.to_string())
}
