//! Data movement of the GEMM path: thread-local scratch, the NCHW → NHWC transpose of an input
//! image, im2col rows, and the transpose of a `[pixels, M]` block back into NCHW planes.

use std::cell::Cell;
use std::thread::LocalKey;

use rayon::prelude::*;

use super::params::Geometry;

/// Pixels per task of the NHWC transpose.
const TRANSPOSE_BLOCK: usize = 64;

/// A thread-local scratch buffer, taken out while in use so that a nested call on the same
/// thread (rayon may run another task while this one waits) gets a fresh one.
pub(super) type Scratch = LocalKey<Cell<Vec<f32>>>;

/// Runs `f` on `len` elements of the scratch buffer in `cell` (contents unspecified).
pub(super) fn with_scratch<R>(
    cell: &'static Scratch,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    let mut buf = cell.with(Cell::take);
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let result = f(&mut buf[..len]);
    cell.with(|c| c.set(buf));
    result
}

/// Transposes `x` (`[c, pixels]`) into `out` (`[pixels, c]`), in parallel over pixel blocks.
/// `x.len() = out.len() = c·pixels`, `c ≥ 1`.
pub(super) fn to_nhwc(x: &[f32], c: usize, out: &mut [f32]) {
    let pixels = x.len() / c;
    out.par_chunks_mut(TRANSPOSE_BLOCK * c)
        .enumerate()
        .for_each(|(b, dst)| {
            let p0 = b * TRANSPOSE_BLOCK;
            let np = dst.len() / c;
            for (ci, src) in x.chunks_exact(pixels).enumerate() {
                for (i, &v) in src[p0..p0 + np].iter().enumerate() {
                    dst[i * c + ci] = v;
                }
            }
        });
}

/// Writes rows `r0 .. r0 + rows` of `colᵀ` into `col` (`rows × g·kg`): row `r` is output pixel
/// `r0 + r` (`oh·OW + ow`), and group `g`'s `kg` columns, in `(i, j, c)` order, hold
/// `x[g·cg + c, oh·sh + i·dh − top, ow·sw + j·dw − left]` (zero outside the input), read from
/// the NHWC image `nhwc` (`[h, w, c]`).
pub(super) fn im2col(geo: &Geometry, nhwc: &[f32], r0: usize, rows: usize, col: &mut [f32]) {
    let (c, cg, kw) = (geo.c, geo.cg, geo.kw);
    let kt = geo.g * geo.kg;
    let (mut oh, mut ow) = (r0 / geo.ow, r0 % geo.ow);
    for row in col.chunks_exact_mut(kt).take(rows) {
        // Taps j in `js` read inside the input row: iw = j·dw + ow·sw − left.
        let js = Geometry::valid_range(kw, geo.w, geo.dw, ow * geo.sw, geo.pl);
        for i in 0..geo.kh {
            let ih = (oh * geo.sh + i * geo.dh)
                .checked_sub(geo.pt)
                .filter(|&ih| ih < geo.h);
            for gi in 0..geo.g {
                let seg = &mut row[gi * geo.kg + i * kw * cg..][..kw * cg];
                let Some(ih) = ih else {
                    seg.fill(0.0);
                    continue;
                };
                seg[..js.start * cg].fill(0.0);
                seg[js.end * cg..].fill(0.0);
                if js.is_empty() {
                    continue;
                }
                // First pixel read: j = js.start.
                let iw0 = js.start * geo.dw + ow * geo.sw - geo.pl;
                let src0 = (ih * geo.w + iw0) * c + gi * cg;
                if geo.dw == 1 && geo.g == 1 {
                    seg[js.start * cg..js.end * cg]
                        .copy_from_slice(&nhwc[src0..src0 + js.len() * c]);
                } else {
                    for (t, j) in js.clone().enumerate() {
                        let src = src0 + t * geo.dw * c;
                        seg[j * cg..(j + 1) * cg].copy_from_slice(&nhwc[src..src + cg]);
                    }
                }
            }
        }
        ow += 1;
        if ow == geo.ow {
            ow = 0;
            oh += 1;
        }
    }
}

/// Splits the NCHW output image `out` (`m` planes of `pixels`) into per-block views: entry `b`
/// holds, for every channel, that plane's pixels `b·rows .. (b+1)·rows` (the last block shorter).
pub(super) fn plane_blocks(out: &mut [f32], pixels: usize, rows: usize) -> Vec<Vec<&mut [f32]>> {
    let blocks = pixels.div_ceil(rows);
    let mut views: Vec<Vec<&mut [f32]>> = (0..blocks)
        .map(|_| Vec::with_capacity(out.len() / pixels))
        .collect();
    for plane in out.chunks_exact_mut(pixels) {
        for (b, seg) in plane.chunks_mut(rows).enumerate() {
            views[b].push(seg);
        }
    }
    views
}

/// Transposes `tile` (`[rows, m]`, `m = planes.len()`) into the plane segments (`rows` each).
pub(super) fn scatter(tile: &[f32], planes: &mut [&mut [f32]]) {
    let m = planes.len();
    for (mm, plane) in planes.iter_mut().enumerate() {
        for (r, dst) in plane.iter_mut().enumerate() {
            *dst = tile[r * m + mm];
        }
    }
}
