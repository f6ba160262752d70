//! Rotary position embedding (`x·cos + rotate_half(x)·sin`, `rotate_half(x) =
//! concat(-x[D/2..], x[..D/2])`): keys are rotated once per call into a contiguous scratch
//! tensor; queries are rotated while a task transposes its query block.

use super::job::Job;
use super::types::Dims;
use super::views::{Rotary, View};
use rayon::prelude::*;

/// Rotates one row of `d` (even) values at sequence position `pos` of batch `b` into `dst(i, x)`.
#[inline(always)]
fn rotate_row(x: &[f32], r: &Rotary<'_>, b: usize, pos: usize, mut dst: impl FnMut(usize, f32)) {
    let d = x.len();
    let half = d / 2;
    let t = b * r.stride_b + pos * r.stride_s;
    let (cos, sin) = (&r.cos[t..t + d], &r.sin[t..t + d]);
    for i in 0..d {
        let rotated = if i < half { -x[i + half] } else { x[i - half] };
        dst(i, x[i] * cos[i] + rotated * sin[i]);
    }
}

/// The keys of a validated call with rotary applied, as a contiguous `[B, Hkv, Sk, D]` tensor.
pub(super) fn rotate_keys(dims: &Dims, k: &View<'_>, r: &Rotary<'_>) -> Vec<f32> {
    let (sk, d) = (dims.sk, dims.d);
    let mut out = vec![0.0; dims.batch * dims.kv_heads * sk * d];
    if sk == 0 || d == 0 {
        return out;
    }
    out.par_chunks_mut(sk * d)
        .enumerate()
        .for_each(|(bh, dst)| {
            let (b, h) = (bh / dims.kv_heads, bh % dims.kv_heads);
            for (j, row_out) in dst.chunks_exact_mut(d).enumerate() {
                let start = b * k.stride_b + h * k.stride_h + j * k.stride_s;
                rotate_row(&k.data[start..start + d], r, b, j, |i, y| row_out[i] = y);
            }
        });
    out
}

/// Writes query rows `i0 .. i0 + rows` of batch `b`, head `h` transposed into `qt` (`qt[x·bq + r]`
/// = element `x` of row `r`), rotated when the job has rotary, and zeroes rows `rows .. bq`.
pub(super) fn fill_qt(
    job: &Job<'_>,
    b: usize,
    h: usize,
    i0: usize,
    rows: usize,
    bq: usize,
    qt: &mut [f32],
) {
    let d = job.dims.d;
    if d == 0 {
        return;
    }
    let q = &job.q;
    let base = b * q.stride_b + h * q.stride_h;
    for r in 0..rows {
        let start = base + (i0 + r) * q.stride_s;
        let row = &q.data[start..start + d];
        match &job.rotary {
            None => {
                for (x, &val) in row.iter().enumerate() {
                    qt[x * bq + r] = val;
                }
            }
            Some(rot) => rotate_row(row, rot, b, i0 + r, |x, y| qt[x * bq + r] = y),
        }
    }
    for x in 0..d {
        qt[x * bq + rows..(x + 1) * bq].fill(0.0);
    }
}
