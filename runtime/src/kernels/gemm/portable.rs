//! Portable micro-kernel in plain Rust (the compiler vectorises the 32-wide rows): an `MR × 32`
//! tile of `C` accumulated in an array, with the scalar epilogue.

use super::types::{Tile, NR};

/// Rows per tile.
pub(super) const MR: usize = 4;
/// Columns per register block (two SSE registers).
const LANES: usize = 8;

/// Runs one tile.
///
/// # Safety
/// `t` satisfies the invariants of [`Tile`] with `t.rows ≤ MR`.
pub(super) unsafe fn tile(t: &Tile) {
    let rows = t.rows.clamp(1, MR);
    // SAFETY: by the tile invariants B holds `kc · NR` readable values from `b`.
    let b = unsafe { std::slice::from_raw_parts(t.b, t.kc * NR) };
    // Rows past `rows` repeat the last row so that every loop below has a constant trip count
    // (and stays in registers); their results are dropped.
    // SAFETY: by the tile invariants row `r < rows` of A holds `kc` readable values.
    let a: [&[f32]; MR] = std::array::from_fn(|r| unsafe {
        std::slice::from_raw_parts(t.a.wrapping_add(r.min(rows - 1) * t.lda), t.kc)
    });
    let mut acc = [[0.0f32; NR]; MR];
    for c0 in (0..t.cols).step_by(LANES) {
        let mut part = [[0.0f32; LANES]; MR];
        for (p, brow) in b.chunks_exact(NR).enumerate() {
            let bv: &[f32; LANES] = brow[c0..c0 + LANES].try_into().unwrap_or(&[0.0; LANES]);
            for (part, a) in part.iter_mut().zip(&a) {
                let av = a[p];
                for (x, &bv) in part.iter_mut().zip(bv) {
                    *x += av * bv;
                }
            }
        }
        for (acc, part) in acc.iter_mut().zip(&part) {
            acc[c0..c0 + LANES].copy_from_slice(part);
        }
    }
    let finish = t.finish.as_ref();
    // SAFETY: by the tile invariants the bias (when not null) holds `cols` readable values.
    let bias = finish
        .filter(|f| !f.bias.is_null())
        .map(|f| unsafe { std::slice::from_raw_parts(f.bias, t.cols) });
    for (r, acc) in acc.iter().enumerate().take(rows) {
        // SAFETY: by the tile invariants row `r` of C holds `cols` values this tile owns, and
        // C overlaps none of A, B, bias or residual.
        let c = unsafe { std::slice::from_raw_parts_mut(t.c.add(r * t.ldc), t.cols) };
        // SAFETY: by the tile invariants row `r` of the residual (when not null) holds `cols`
        // readable values.
        let residual = finish
            .filter(|f| !f.residual.is_null())
            .map(|f| unsafe { std::slice::from_raw_parts(f.residual.add(r * t.ldc), t.cols) });
        for (x, out) in c.iter_mut().enumerate() {
            let mut v = acc[x];
            if t.accumulate {
                v += *out;
            }
            if let Some(f) = finish {
                if let Some(bias) = bias {
                    v += bias[x];
                }
                v = f.activation.apply(v);
                if let Some(residual) = residual {
                    v += residual[x];
                }
            }
            *out = v;
        }
    }
}
