//! f32 kernels over spatial and reduced axes: 2-D max/average pooling over `[N, C, H, W]`,
//! sum/mean/max/min over a contiguous block of axes (global average pooling is a mean over
//! `H, W`), and softmax/log-softmax along any axis. Planes run in parallel on the pool.

use crate::ops::{PoolKind, ReduceOp};
use rayon::prelude::*;

/// A 2-D pooling window: kernel, strides, begin/end pads and dilations per spatial axis.
#[derive(Debug, Clone, Copy)]
pub struct Pool2d {
    /// Max or average.
    pub kind: PoolKind,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Strides.
    pub strides: [usize; 2],
    /// Top, left, bottom, right pads.
    pub pads: [usize; 4],
    /// Dilations.
    pub dilations: [usize; 2],
    /// Average divides by the taps inside the padded input.
    pub count_include_pad: bool,
}

/// Pools `x` of shape `[N, C, H, W]` into `y` of shape `[N, C, OH, OW]` (`y_shape`), as the
/// reference kernel does (Max ignores padding; a window without real elements is an error).
pub fn pool2d(
    p: &Pool2d,
    x: &[f32],
    x_shape: &[usize],
    y: &mut [f32],
    y_shape: &[usize],
) -> Result<(), String> {
    let [n, c, h, w] = <[usize; 4]>::try_from(x_shape)
        .map_err(|_| format!("pool input {x_shape:?} is not 4-D"))?;
    let [n2, c2, oh, ow] = <[usize; 4]>::try_from(y_shape)
        .map_err(|_| format!("pool output {y_shape:?} is not 4-D"))?;
    let planes = super::numel(&[n, c])?;
    if n2 != n || c2 != c || x.len() != planes * h * w || y.len() != planes * oh * ow {
        return Err(format!(
            "pool {x_shape:?} -> {y_shape:?} does not match the buffers"
        ));
    }
    if p.kernel.contains(&0) || p.strides.contains(&0) || p.dilations.contains(&0) {
        return Err("pool kernel, strides and dilations must be positive".into());
    }
    if y.is_empty() {
        return Ok(());
    }
    if h * w == 0 {
        return Err("pool window covers no input element (empty input)".into());
    }
    let (ph, pw) = (h + p.pads[0] + p.pads[2], w + p.pads[1] + p.pads[3]);
    let bad = std::sync::atomic::AtomicBool::new(false);
    y.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .for_each(|(yp, xp)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut max, mut sum, mut real, mut padded) =
                        (f32::NEG_INFINITY, 0f64, 0usize, 0usize);
                    let mut nan = false;
                    for ky in 0..p.kernel[0] {
                        // Position in the padded input; real rows are pads[0]..pads[0]+h.
                        let py = oy * p.strides[0] + ky * p.dilations[0];
                        for kx in 0..p.kernel[1] {
                            let px = ox * p.strides[1] + kx * p.dilations[1];
                            padded += usize::from(py < ph && px < pw);
                            let (Some(iy), Some(ix)) =
                                (py.checked_sub(p.pads[0]), px.checked_sub(p.pads[1]))
                            else {
                                continue;
                            };
                            if iy >= h || ix >= w {
                                continue;
                            }
                            let v = xp[iy * w + ix];
                            real += 1;
                            sum += f64::from(v);
                            nan |= v.is_nan();
                            if v > max {
                                max = v;
                            }
                        }
                    }
                    yp[oy * ow + ox] = match p.kind {
                        PoolKind::Max if real > 0 => {
                            if nan {
                                f32::NAN
                            } else {
                                max
                            }
                        }
                        PoolKind::Avg if p.count_include_pad && padded > 0 => {
                            (sum / padded as f64) as f32
                        }
                        PoolKind::Avg if !p.count_include_pad && real > 0 => {
                            (sum / real as f64) as f32
                        }
                        _ => {
                            bad.store(true, std::sync::atomic::Ordering::Relaxed);
                            0.0
                        }
                    };
                }
            }
        });
    if bad.into_inner() {
        return Err("a pool window covers no input element (padding too large)".into());
    }
    Ok(())
}

/// The `(outer, reduced, inner)` sizes of reducing `shape` over `axes` (normalised, empty =
/// all), or an error when the axes are not one contiguous block.
pub fn reduce_block(shape: &[usize], axes: &[i64]) -> Result<(usize, usize, usize), String> {
    let rank = shape.len();
    let mut ax: Vec<usize> = if axes.is_empty() {
        (0..rank).collect()
    } else {
        axes.iter()
            .map(|&a| super::norm_axis(a, rank))
            .collect::<Result<_, _>>()?
    };
    ax.sort_unstable();
    ax.dedup();
    let (Some(&lo), Some(&hi)) = (ax.first(), ax.last()) else {
        return Ok((super::numel(shape)?, 1, 1));
    };
    if hi - lo + 1 != ax.len() || hi >= rank {
        return Err(format!(
            "axes {axes:?} are not a contiguous block of rank {rank}"
        ));
    }
    Ok((
        super::numel(&shape[..lo])?,
        super::numel(&shape[lo..=hi])?,
        super::numel(&shape[hi + 1..])?,
    ))
}

/// Reduces `x` viewed as `[outer, red, inner]` over the middle axis into `y` (`[outer, inner]`),
/// accumulating sums in f64 as the reference does.
pub fn reduce(
    op: ReduceOp,
    x: &[f32],
    (outer, red, inner): (usize, usize, usize),
    y: &mut [f32],
) -> Result<(), String> {
    if x.len() != outer * red * inner || y.len() != outer * inner {
        return Err(format!(
            "reduce buffers of {} and {} elements are not {outer}×{red}×{inner}",
            x.len(),
            y.len()
        ));
    }
    if y.is_empty() {
        return Ok(());
    }
    let slab = (red * inner).max(1);
    y.par_chunks_mut(inner).enumerate().for_each(|(o, yo)| {
        let xo = &x[(o * slab).min(x.len())..((o + 1) * slab).min(x.len())];
        let mut acc = vec![0f64; inner];
        let mut ext = vec![
            if op == ReduceOp::Max {
                f32::NEG_INFINITY
            } else {
                f32::INFINITY
            };
            inner
        ];
        for r in 0..red {
            let row = &xo[r * inner..(r + 1) * inner];
            for ((a, e), &v) in acc.iter_mut().zip(ext.iter_mut()).zip(row) {
                *a += f64::from(v);
                let better = match op {
                    ReduceOp::Max => v > *e || v.is_nan(),
                    _ => v < *e || v.is_nan(),
                };
                if better && !e.is_nan() {
                    *e = v;
                }
            }
        }
        for ((yv, a), e) in yo.iter_mut().zip(&acc).zip(&ext) {
            *yv = match op {
                ReduceOp::Sum => *a as f32,
                ReduceOp::Mean => (*a / red as f64) as f32,
                _ => *e,
            };
        }
    });
    Ok(())
}

/// Softmax (log-softmax when `log`) of `x` viewed as `[outer, len, inner]` along the middle axis.
pub fn softmax_axis(
    x: &[f32],
    (outer, len, inner): (usize, usize, usize),
    log: bool,
    y: &mut [f32],
) -> Result<(), String> {
    if x.len() != outer * len * inner || y.len() != x.len() {
        return Err(format!(
            "softmax buffers of {} and {} elements are not {outer}×{len}×{inner}",
            x.len(),
            y.len()
        ));
    }
    if y.is_empty() {
        return Ok(());
    }
    let slab = len * inner;
    y.par_chunks_mut(slab)
        .zip(x.par_chunks(slab))
        .for_each(|(yo, xo)| {
            let mut max = vec![f32::NEG_INFINITY; inner];
            let mut sum = vec![0f64; inner];
            for row in xo.chunks_exact(inner) {
                for (m, &v) in max.iter_mut().zip(row) {
                    if v > *m || v.is_nan() {
                        *m = v;
                    }
                }
            }
            for row in xo.chunks_exact(inner) {
                for ((s, &m), &v) in sum.iter_mut().zip(&max).zip(row) {
                    *s += (f64::from(v) - f64::from(m)).exp();
                }
            }
            for (yr, xr) in yo.chunks_exact_mut(inner).zip(xo.chunks_exact(inner)) {
                for (((yv, &v), &m), &s) in yr.iter_mut().zip(xr).zip(&max).zip(&sum) {
                    let d = f64::from(v) - f64::from(m);
                    *yv = if log {
                        (d - s.ln()) as f32
                    } else {
                        (d.exp() / s) as f32
                    };
                }
            }
        });
    Ok(())
}
