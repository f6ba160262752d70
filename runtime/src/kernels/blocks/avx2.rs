//! AVX2/FMA paths over block-quantized rows: a block dequantized into four ymm registers with
//! the scalar definition's rounding (`(q·d) + m` as a multiply then an add), then either
//! multiply-added against a row of `A` (the dot products of a decode step) or stored (a row
//! dequantized for a panel).

use std::arch::x86_64::*;

use super::format::{BlockFormat, BLOCK};

/// The block's scale `d` and (for `Q4_1`) minimum `m`, broadcast, by the F16C conversion
/// (exact, as the scalar one).
///
/// # Safety
/// AVX2, FMA and F16C; `p .. p + 4` is readable.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn scales(p: *const u8) -> (__m256, __m256) {
    // SAFETY: the caller's contract: four bytes (d, then m or the first quants) are readable.
    let bits = unsafe { p.cast::<i32>().read_unaligned() };
    let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(bits));
    (
        _mm256_broadcastss_ps(dm),
        _mm256_broadcastss_ps(_mm_movehdup_ps(dm)),
    )
}

/// Eight bytes (the low half of `x`) zero-extended to f32 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn u8x8(x: __m128i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(x))
}

/// Eight signed bytes (the low half of `x`) as f32 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn i8x8(x: __m128i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(x))
}

/// The format with id `f` (a const parameter, so that each kernel is compiled for one format:
/// 0 `Q4_0`, 1 `Q4_1`, otherwise `Q8_0`).
const fn format_of(f: u8) -> BlockFormat {
    match f {
        0 => BlockFormat::Q4_0,
        1 => BlockFormat::Q4_1,
        _ => BlockFormat::Q8_0,
    }
}

/// The const parameter of `format`'s kernels.
const fn id(format: BlockFormat) -> u8 {
    match format {
        BlockFormat::Q4_0 => 0,
        BlockFormat::Q4_1 => 1,
        BlockFormat::Q8_0 => 2,
    }
}

/// Calls `$f::<F>($args)` with `F` the id of `$format`.
macro_rules! by_format {
    ($format:expr, $f:ident, ($($arg:expr),*)) => {
        match id($format) {
            0 => $f::<0>($($arg),*),
            1 => $f::<1>($($arg),*),
            _ => $f::<2>($($arg),*),
        }
    };
}

/// The [`BLOCK`] values of the block at `p`, eight per register, in element order.
///
/// # Safety
/// AVX2, FMA and F16C; `p .. p + format.block_bytes()` is readable.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn block<const F: u8>(p: *const u8) -> [__m256; 4] {
    let format = format_of(F);
    // SAFETY: the caller's contract: the block's bytes are readable (d at 0, m at 2 for Q4_1,
    // quants after them; every load below stays inside the block).
    unsafe {
        let (d, m) = scales(p);
        match format {
            BlockFormat::Q4_0 | BlockFormat::Q4_1 => {
                let at = if format == BlockFormat::Q4_1 { 4 } else { 2 };
                let q = _mm_loadu_si128(p.add(at).cast());
                let mask = _mm_set1_epi8(0x0F);
                let lo = _mm_and_si128(q, mask);
                let hi = _mm_and_si128(_mm_srli_epi16::<4>(q), mask);
                let mut v = [
                    u8x8(lo),
                    u8x8(_mm_srli_si128::<8>(lo)),
                    u8x8(hi),
                    u8x8(_mm_srli_si128::<8>(hi)),
                ];
                if format == BlockFormat::Q4_1 {
                    for x in &mut v {
                        *x = _mm256_add_ps(_mm256_mul_ps(*x, d), m);
                    }
                } else {
                    // q − 8 is exact in f32, so subtracting after the conversion rounds as the
                    // integer subtraction of the scalar definition.
                    let eight = _mm256_set1_ps(8.0);
                    for x in &mut v {
                        *x = _mm256_mul_ps(_mm256_sub_ps(*x, eight), d);
                    }
                }
                v
            }
            BlockFormat::Q8_0 => {
                let q0 = _mm_loadu_si128(p.add(2).cast());
                let q1 = _mm_loadu_si128(p.add(18).cast());
                [
                    _mm256_mul_ps(i8x8(q0), d),
                    _mm256_mul_ps(i8x8(_mm_srli_si128::<8>(q0)), d),
                    _mm256_mul_ps(i8x8(q1), d),
                    _mm256_mul_ps(i8x8(_mm_srli_si128::<8>(q1)), d),
                ]
            }
        }
    }
}

/// Horizontal sum of the four accumulators.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn sum(acc: [__m256; 4]) -> f32 {
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// `Σ a[i] · w[i]` over `blocks · BLOCK` elements, `w` the row of `W` at `w`. One row at a
/// time: the four accumulators, the block's values and its scales fill the ymm registers
/// (two rows would spill an accumulator to the stack, a store-to-load chain per block).
///
/// # Safety
/// AVX2, FMA and F16C; `a .. a + blocks·BLOCK` (f32) and `w .. w + blocks·block_bytes` are
/// readable.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot(format: BlockFormat, a: *const f32, w: *const u8, blocks: usize) -> f32 {
    // SAFETY: forwarded.
    unsafe { by_format!(format, dot_of, (a, w, blocks)) }
}

/// [`dot`] for the format with id `F`.
///
/// # Safety
/// As for [`dot`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_of<const F: u8>(a: *const f32, w: *const u8, blocks: usize) -> f32 {
    let bb = format_of(F).block_bytes();
    let mut acc = [_mm256_setzero_ps(); 4];
    for b in 0..blocks {
        // SAFETY: block `b < blocks` of the row and elements `b·BLOCK .. (b+1)·BLOCK` of `a`
        // are readable by the contract.
        unsafe {
            let a = a.add(b * BLOCK);
            let v = block::<F>(w.add(b * bb));
            for (i, x) in v.into_iter().enumerate() {
                acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(8 * i)), x, acc[i]);
            }
        }
    }
    sum(acc)
}

/// Dequantizes `blocks` blocks at `w` into `out .. out + blocks·BLOCK`.
///
/// # Safety
/// AVX2, FMA and F16C; `w .. w + blocks·block_bytes` is readable and `out .. out + blocks·BLOCK`
/// (f32) writable.
#[cfg(test)]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dequantize(format: BlockFormat, w: *const u8, blocks: usize, out: *mut f32) {
    // SAFETY: forwarded.
    unsafe { by_format!(format, dequantize_of, (w, blocks, out)) }
}

/// [`dequantize`] for the format with id `F`.
///
/// # Safety
/// As for [`dequantize`].
#[cfg(test)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dequantize_of<const F: u8>(w: *const u8, blocks: usize, out: *mut f32) {
    let bb = format_of(F).block_bytes();
    for b in 0..blocks {
        // SAFETY: block `b` and its `BLOCK` outputs are in range by the contract.
        unsafe {
            let v = block::<F>(w.add(b * bb));
            let o = out.add(b * BLOCK);
            for (i, x) in v.into_iter().enumerate() {
                _mm256_storeu_ps(o.add(8 * i), x);
            }
        }
    }
}

/// Rows `r0..r7` of an 8 × 8 block, transposed: lane `q` of output `p` is lane `p` of row `q`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}

/// Eight columns of a packed GEMM panel: the `rows ≤ 8` rows of `W` at `w + r·row_bytes`
/// (`blocks` blocks each) dequantized and transposed, element `p` of row `r` going to
/// `out + p·ld + r`; rows `rows..8` are written as zeros.
///
/// # Safety
/// AVX2, FMA and F16C; `w + r·row_bytes .. + blocks·block_bytes` is readable for `r < rows`;
/// `out + p·ld + x` is writable for `p < blocks·BLOCK`, `x < 8`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn panel_columns(
    format: BlockFormat,
    w: *const u8,
    row_bytes: usize,
    rows: usize,
    blocks: usize,
    out: *mut f32,
    ld: usize,
) {
    // SAFETY: forwarded.
    unsafe {
        by_format!(
            format,
            panel_columns_of,
            (w, row_bytes, rows, blocks, out, ld)
        )
    }
}

/// [`panel_columns`] for the format with id `F`.
///
/// # Safety
/// As for [`panel_columns`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn panel_columns_of<const F: u8>(
    w: *const u8,
    row_bytes: usize,
    rows: usize,
    blocks: usize,
    out: *mut f32,
    ld: usize,
) {
    let bb = format_of(F).block_bytes();
    let mut v = [[_mm256_setzero_ps(); 4]; 8];
    for b in 0..blocks {
        for (r, row) in v.iter_mut().enumerate().take(rows.min(8)) {
            // SAFETY: block `b` of row `r < rows` is readable by the contract.
            *row = unsafe { block::<F>(w.add(r * row_bytes + b * bb)) };
        }
        // `i` picks the same quarter of all eight rows (and the panel rows it fills).
        #[allow(clippy::needless_range_loop)]
        for i in 0..4 {
            let t = transpose8(std::array::from_fn(|r| v[r][i]));
            for (q, x) in t.into_iter().enumerate() {
                // SAFETY: element `p = b·BLOCK + 8i + q < blocks·BLOCK`, lanes `0..8` of its
                // panel row are writable by the contract.
                unsafe { _mm256_storeu_ps(out.add((b * BLOCK + 8 * i + q) * ld), x) };
            }
        }
    }
}
