//! AVX2/FMA micro-kernel: the 32-wide panel is covered by two `MR × 16` sub-tiles of `C`, each in
//! `2·MR` ymm accumulators (A broadcast, B loaded as two ymm per k step, FMA), with the epilogue
//! applied to each sub-tile right after it is stored, while it is in L1.

use std::arch::x86_64::*;

use super::types::{Activation, Finish, Tile, NR};
use crate::kernels::numerics::{
    ERF_CLAMP, ERF_P, ERF_Q, EXP_POLY, GELU_EXP_MAX as EXP_MAX, GELU_EXP_MIN as EXP_MIN,
    GELU_TANH_CUBIC, GELU_TANH_SCALE, LN2_HI, LN2_LO, LOG2E,
};

/// Rows per tile: 12 accumulators + 2 B vectors + 1 broadcast fit the 16 ymm registers.
pub(super) const MR: usize = 6;

/// Runs one tile.
///
/// # Safety
/// The CPU has AVX2 and FMA, and `t` satisfies the invariants of [`Tile`] with `t.rows ≤ MR`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn tile(t: &Tile) {
    if t.rows == 1 && t.cols == NR {
        // One row (a decode step's GEMV): the whole panel in one pass, contiguous.
        // SAFETY: forwarded from the caller; all `NR` columns are in C, bias and residual.
        unsafe { row_panel(t) };
        return;
    }
    for half in 0..2 {
        let c0 = half * 16;
        if c0 >= t.cols {
            break;
        }
        // SAFETY: forwarded from the caller; columns `c0..c0 + 16` of the panel are within its
        // `NR` columns and only `cols - c0` of them are touched in C, bias and residual.
        unsafe {
            match t.rows {
                1 => kernel::<1>(t, c0),
                2 => kernel::<2>(t, c0),
                3 => kernel::<3>(t, c0),
                4 => kernel::<4>(t, c0),
                5 => kernel::<5>(t, c0),
                _ => kernel::<6>(t, c0),
            }
        }
    }
}

/// Loads lanes `0..n` (n clamped to 8) of `p`, zero elsewhere.
///
/// # Safety
/// AVX2; `p + l` is readable for `l < min(n, 8)`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load(p: *const f32, n: usize) -> __m256 {
    // SAFETY: the contract; `maskload` does not touch masked-off lanes.
    unsafe {
        if n >= 8 {
            _mm256_loadu_ps(p)
        } else {
            _mm256_maskload_ps(p, lanes(n))
        }
    }
}

/// Stores lanes `0..n` (n clamped to 8) of `v` to `p`.
///
/// # Safety
/// AVX2; `p + l` is writable for `l < min(n, 8)`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store(p: *mut f32, n: usize, v: __m256) {
    // SAFETY: the contract; `maskstore` does not touch masked-off lanes.
    unsafe {
        if n >= 8 {
            _mm256_storeu_ps(p, v)
        } else {
            _mm256_maskstore_ps(p, lanes(n), v)
        }
    }
}

/// A mask with lanes `0..n` set.
#[target_feature(enable = "avx2,fma")]
fn lanes(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n.min(8) as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// `M × 16` sub-tile kernel for columns `c0..c0 + 16` of the tile.
///
/// # Safety
/// As [`tile`], with `t.rows == M` and `c0 < t.cols`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn kernel<const M: usize>(t: &Tile, c0: usize) {
    let n0 = t.cols - c0;
    let n1 = n0.saturating_sub(8);
    let mut acc = [[_mm256_setzero_ps(); 2]; M];
    // SAFETY: (whole body) by the tile invariants, rows `r < M` of A span `kc` readable values
    // from `a + r·lda`, B has `kc · NR` readable values from `b`, and C, bias and residual hold
    // `cols` values per row; `load`/`store` touch only lanes `< cols - c0`.
    unsafe {
        let c = t.c.add(c0);
        if t.accumulate {
            for (r, acc) in acc.iter_mut().enumerate() {
                acc[0] = load(c.add(r * t.ldc), n0);
                acc[1] = load(c.wrapping_add(r * t.ldc + 8), n1);
            }
        }
        // Start fetching the C sub-tile (and the residual) so the stores do not wait for it.
        let residual = t.finish.map_or(std::ptr::null(), |f| f.residual);
        for r in 0..M {
            for col in [c0, c0 + n0.min(16) - 1] {
                let offset = r * t.ldc + col;
                _mm_prefetch::<_MM_HINT_T0>(t.c.wrapping_add(offset) as *const i8);
                if !residual.is_null() {
                    _mm_prefetch::<_MM_HINT_T0>(residual.wrapping_add(offset) as *const i8);
                }
            }
        }
        let mut a = t.a;
        let mut b = t.b.add(c0);
        for _ in 0..t.kc {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(r * t.lda));
                acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
            }
            a = a.add(1);
            b = b.add(NR);
        }
        for (r, acc) in acc.iter().enumerate() {
            store(c.add(r * t.ldc), n0, acc[0]);
            store(c.wrapping_add(r * t.ldc + 8), n1, acc[1]);
        }
        if let Some(f) = &t.finish {
            finish(c, t.ldc, M, f, c0, n0);
        }
    }
}

/// One row times a whole `NR`-column panel: B is read once, contiguously (32 floats per k),
/// into four independent accumulators per 16 columns (k unrolled by two), so that neither
/// the FMA latency nor a second pass over the panel bounds a single-row product, which is
/// memory-bound: a decode step streams every weight once.
///
/// # Safety
/// As [`tile`], with `t.rows == 1` and `t.cols == NR`.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_panel(t: &Tile) {
    // SAFETY: (whole body) row 0 of A spans `kc` readable values from `a`, B has `kc · NR`
    // readable values from `b`, and C, bias and residual hold `NR` values in row 0.
    unsafe {
        let z = _mm256_setzero_ps();
        let (mut e, mut o) = ([z; 4], [z; 4]);
        if t.accumulate {
            for (q, acc) in e.iter_mut().enumerate() {
                *acc = _mm256_loadu_ps(t.c.add(8 * q));
            }
        }
        let (a, b) = (t.a, t.b);
        let pairs = t.kc / 2;
        for i in 0..pairs {
            let k = 2 * i;
            let (a0, a1) = (
                _mm256_broadcast_ss(&*a.add(k)),
                _mm256_broadcast_ss(&*a.add(k + 1)),
            );
            let (b0, b1) = (b.add(k * NR), b.add((k + 1) * NR));
            for q in 0..4 {
                e[q] = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b0.add(8 * q)), e[q]);
                o[q] = _mm256_fmadd_ps(a1, _mm256_loadu_ps(b1.add(8 * q)), o[q]);
            }
        }
        if t.kc % 2 == 1 {
            let k = t.kc - 1;
            let a0 = _mm256_broadcast_ss(&*a.add(k));
            for (q, acc) in e.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b.add(k * NR + 8 * q)), *acc);
            }
        }
        for q in 0..4 {
            _mm256_storeu_ps(t.c.add(8 * q), _mm256_add_ps(e[q], o[q]));
        }
        if let Some(f) = &t.finish {
            finish(t.c, t.ldc, 1, f, 0, 16);
            finish(t.c.add(16), t.ldc, 1, f, 16, 16);
        }
    }
}

/// Applies the epilogue in place to the `rows` rows (stride `ldc`) of the sub-tile at column
/// `c0` just stored to `c` (still in L1); its first `n0` (≤ 16) columns are valid.
///
/// # Safety
/// AVX2; for each row `r < rows` the first `n0` values of `c + r·ldc` are readable and writable
/// and those of `f.residual + r·ldc + c0` (if not null) readable; `n0` values of `f.bias + c0`
/// (if not null) are readable.
#[target_feature(enable = "avx2,fma")]
unsafe fn finish(c: *mut f32, ldc: usize, rows: usize, f: &Finish, c0: usize, n0: usize) {
    let ns = [n0, n0.saturating_sub(8)];
    // SAFETY: the pointers are valid for the loaded and stored lanes (the function's contract).
    unsafe {
        let bias = if f.bias.is_null() {
            [_mm256_setzero_ps(); 2]
        } else {
            [
                load(f.bias.add(c0), ns[0]),
                load(f.bias.wrapping_add(c0 + 8), ns[1]),
            ]
        };
        for r in 0..rows {
            for h in 0..2 {
                let p = c.wrapping_add(r * ldc + 8 * h);
                let mut v = _mm256_add_ps(load(p, ns[h]), bias[h]);
                v = match f.activation {
                    Activation::None => v,
                    Activation::Relu => _mm256_max_ps(v, _mm256_setzero_ps()),
                    Activation::GeluErf => gelu_erf(v),
                    Activation::GeluTanh => gelu_tanh(v),
                };
                if !f.residual.is_null() {
                    let res = f.residual.wrapping_add(r * ldc + c0 + 8 * h);
                    v = _mm256_add_ps(v, load(res, ns[h]));
                }
                store(p, ns[h], v);
            }
        }
    }
}

/// Horner evaluation of `coeffs` (highest degree first) at `x`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn poly(coeffs: &[f32], x: __m256) -> __m256 {
    let mut acc = _mm256_set1_ps(coeffs[0]);
    for &c in &coeffs[1..] {
        acc = _mm256_fmadd_ps(acc, x, _mm256_set1_ps(c));
    }
    acc
}

/// `erf(x)` by the rational approximation of [`crate::kernels::numerics::erf`].
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn erf(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(-ERF_CLAMP)),
        _mm256_set1_ps(ERF_CLAMP),
    );
    let x2 = _mm256_mul_ps(x, x);
    let p = _mm256_mul_ps(x, poly(&ERF_P, x2));
    _mm256_div_ps(p, poly(&ERF_Q, x2))
}

/// `exp(x)` for `x` clamped to `[EXP_MIN, EXP_MAX]` (relative error ≈ 1e-7).
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn exp(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(EXP_MIN)),
        _mm256_set1_ps(EXP_MAX),
    );
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(LOG2E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    let y = _mm256_fmadd_ps(poly(&EXP_POLY, r), _mm256_mul_ps(r, r), r);
    let y = _mm256_add_ps(y, _mm256_set1_ps(1.0));
    // 2^n built in the exponent field; the clamp keeps n within [-126, 127].
    let pow2 = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_mul_ps(y, _mm256_castsi256_ps(pow2))
}

/// `0.5·x·(1 + erf(x/√2))`.
#[target_feature(enable = "avx2,fma")]
fn gelu_erf(x: __m256) -> __m256 {
    let e = erf(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2),
    ));
    let half_x = _mm256_mul_ps(x, _mm256_set1_ps(0.5));
    _mm256_fmadd_ps(half_x, e, half_x)
}

/// `x / (1 + exp(-2u))`, `u = √(2/π)·(x + 0.044715·x³)`.
#[target_feature(enable = "avx2,fma")]
fn gelu_tanh(x: __m256) -> __m256 {
    let x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    let u = _mm256_fmadd_ps(x3, _mm256_set1_ps(GELU_TANH_CUBIC), x);
    let e = exp(_mm256_mul_ps(u, _mm256_set1_ps(-2.0 * GELU_TANH_SCALE)));
    _mm256_div_ps(x, _mm256_add_ps(e, _mm256_set1_ps(1.0)))
}
