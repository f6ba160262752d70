//! The direct path for convolutions with few output channels per group (depthwise and similar):
//! each output plane, row by row, accumulates `w[c, i, j] · (input row shifted by the tap)` over
//! its group's channels and the kernel taps, starting from the bias.

use std::ops::Range;

use rayon::prelude::*;

use super::params::Geometry;
use crate::kernels::gemm::Activation;

/// Runs the direct path; `conv2d` has checked every length (`w` is `[m, cg, kh, kw]`) and
/// `geo.n ≥ 1`.
pub(super) fn run(
    geo: &Geometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
) {
    let plane_in = geo.h * geo.w;
    // Output columns whose tap j reads inside the input, per j.
    let cols: Vec<Range<usize>> = (0..geo.kw)
        .map(|j| Geometry::valid_range(geo.ow, geo.w, geo.sw, j * geo.dw, geo.pl))
        .collect();
    out.par_chunks_mut(geo.pixels())
        .enumerate()
        .for_each(|(index, plane)| {
            let (image, mm) = (index / geo.m, index % geo.m);
            let group = mm / geo.mg;
            let xg = &x[image * geo.x_image + group * geo.cg * plane_in..][..geo.cg * plane_in];
            let wm = &w[mm * geo.kg..][..geo.kg];
            let b = bias.map_or(0.0, |b| b[mm]);
            for (oh, orow) in plane.chunks_exact_mut(geo.ow).enumerate() {
                orow.fill(b);
                for (xc, wc) in xg
                    .chunks_exact(plane_in)
                    .zip(wm.chunks_exact(geo.kh * geo.kw))
                {
                    for (i, wi) in wc.chunks_exact(geo.kw).enumerate() {
                        let Some(ih) = (oh * geo.sh + i * geo.dh)
                            .checked_sub(geo.pt)
                            .filter(|&ih| ih < geo.h)
                        else {
                            continue;
                        };
                        let irow = &xc[ih * geo.w..][..geo.w];
                        for (j, (&wv, range)) in wi.iter().zip(&cols).enumerate() {
                            accumulate(&mut orow[range.clone()], irow, wv, geo, j, range.start);
                        }
                    }
                }
                if activation != Activation::None {
                    for v in orow.iter_mut() {
                        *v = activation.apply(*v);
                    }
                }
            }
        });
}

/// `dst[t] += wv · irow[(first + t)·sw + j·dw − left]` for every `t` (all inside `irow`).
#[inline]
fn accumulate(dst: &mut [f32], irow: &[f32], wv: f32, geo: &Geometry, j: usize, first: usize) {
    if dst.is_empty() {
        return;
    }
    let start = first * geo.sw + j * geo.dw - geo.pl;
    if geo.sw == 1 {
        let len = dst.len();
        for (d, &s) in dst.iter_mut().zip(&irow[start..start + len]) {
            *d += wv * s;
        }
    } else {
        for (d, &s) in dst.iter_mut().zip(irow[start..].iter().step_by(geo.sw)) {
            *d += wv * s;
        }
    }
}
