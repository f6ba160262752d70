//! Packing `B` into column panels of `NR` columns, each stored k-major (see the module docs of
//! `gemm` for the layout).

use super::types::{check_len, span, GemmError, Matrix, NR};

/// Elements of the packed form of a `k × n` matrix: `⌈n / NR⌉ · NR · k` (saturating at
/// `usize::MAX`, which no buffer can satisfy, when that overflows).
pub fn packed_len(k: usize, n: usize) -> usize {
    n.div_ceil(NR).saturating_mul(NR).saturating_mul(k)
}

/// Packs `b` (row-major `k × n`) into `out` (at least [`packed_len`]`(k, n)` elements).
pub fn pack_b(b: &[f32], k: usize, n: usize, out: &mut [f32]) -> Result<(), GemmError> {
    pack_strided(Matrix { data: b, stride: n }, k, n, out)
}

/// Packs `B = btᵀ` where `bt` is row-major `n × k` (ONNX `Gemm` with `transB`, or `Kᵀ` in `Q·Kᵀ`)
/// into `out` (at least [`packed_len`]`(k, n)` elements).
pub fn pack_b_transposed(bt: &[f32], k: usize, n: usize, out: &mut [f32]) -> Result<(), GemmError> {
    pack_strided_transposed(
        Matrix {
            data: bt,
            stride: k,
        },
        k,
        n,
        out,
    )
}

/// Checks `out` (for a `k × n` product), then the source `b`, stored as `rows × cols` with its
/// row stride; returns the packed length.
fn check_pack(
    b: &Matrix<'_>,
    (rows, cols): (usize, usize),
    (k, n): (usize, usize),
    out: &[f32],
) -> Result<usize, GemmError> {
    let len = packed_len(k, n);
    if len == usize::MAX {
        return Err(GemmError::Overflow { m: 0, n, k });
    }
    check_len("out", out.len(), len)?;
    check_len("b", b.data.len(), span("b", rows, cols, b.stride)?)?;
    Ok(len)
}

/// [`pack_b`] for a `b` with row stride `ldb`.
pub(super) fn pack_strided(
    b: Matrix<'_>,
    k: usize,
    n: usize,
    out: &mut [f32],
) -> Result<(), GemmError> {
    let len = check_pack(&b, (k, n), (k, n), out)?;
    let (b, ldb) = (b.data, b.stride);
    for (j, panel) in out[..len].chunks_exact_mut(NR * k.max(1)).enumerate() {
        let j0 = j * NR;
        let cols = NR.min(n - j0);
        for (p, dst) in panel.chunks_exact_mut(NR).take(k).enumerate() {
            let src = &b[p * ldb + j0..p * ldb + j0 + cols];
            dst[..cols].copy_from_slice(src);
            dst[cols..].fill(0.0);
        }
    }
    Ok(())
}

/// [`pack_b_transposed`] for a `bt` with row stride `ldb`.
pub(super) fn pack_strided_transposed(
    bt: Matrix<'_>,
    k: usize,
    n: usize,
    out: &mut [f32],
) -> Result<(), GemmError> {
    let len = check_pack(&bt, (n, k), (k, n), out)?;
    let (bt, ldb) = (bt.data, bt.stride);
    if k == 0 {
        return Ok(());
    }
    for (j, panel) in out[..len].chunks_exact_mut(NR * k).enumerate() {
        let j0 = j * NR;
        let cols = NR.min(n - j0);
        // Walk `k` in blocks so that the `cols` source rows being read stay in cache.
        for p0 in (0..k).step_by(64) {
            let p1 = (p0 + 64).min(k);
            for c in 0..NR {
                if c < cols {
                    let row = &bt[(j0 + c) * ldb + p0..(j0 + c) * ldb + p1];
                    for (dp, &v) in row.iter().enumerate() {
                        panel[(p0 + dp) * NR + c] = v;
                    }
                } else {
                    for p in p0..p1 {
                        panel[p * NR + c] = 0.0;
                    }
                }
            }
        }
    }
    Ok(())
}
