//! AVX-512F micro-kernel: an `MR × 32` tile of `C` in `2·MR` zmm accumulators (A broadcast, B
//! loaded as two zmm per k step, FMA), with the epilogue applied to the tile right after it is
//! stored, while it is in L1.

use std::arch::x86_64::*;

use super::types::{Activation, Finish, Tile, NR};
use crate::kernels::numerics::{
    ERF_CLAMP, ERF_P, ERF_Q, EXP_POLY, GELU_EXP_MAX as EXP_MAX, GELU_EXP_MIN as EXP_MIN,
    GELU_TANH_CUBIC, GELU_TANH_SCALE, LN2_HI, LN2_LO, LOG2E,
};

/// Rows per tile: 24 accumulators + 2 B vectors + broadcasts fit the 32 zmm registers.
pub(super) const MR: usize = 12;

/// Runs one tile.
///
/// # Safety
/// The CPU has AVX-512F and `t` satisfies the invariants of [`Tile`] with `t.rows ≤ MR`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn tile(t: &Tile) {
    // SAFETY: forwarded from the caller; each arm matches `t.rows`.
    unsafe {
        match t.rows {
            1 => kernel::<1>(t),
            2 => kernel::<2>(t),
            3 => kernel::<3>(t),
            4 => kernel::<4>(t),
            5 => kernel::<5>(t),
            6 => kernel::<6>(t),
            7 => kernel::<7>(t),
            8 => kernel::<8>(t),
            9 => kernel::<9>(t),
            10 => kernel::<10>(t),
            11 => kernel::<11>(t),
            _ => kernel::<12>(t),
        }
    }
}

/// Prefetches the first and last column of each of the `rows` rows of the tile's C (and
/// residual, when the epilogue has one). Prefetches never fault, so no pointer needs to be valid.
#[target_feature(enable = "avx512f")]
fn prefetch_tile(t: &Tile, rows: usize) {
    let residual = t.finish.map_or(std::ptr::null(), |f| f.residual);
    for r in 0..rows {
        for col in [0, t.cols - 1] {
            let offset = r * t.ldc + col;
            _mm_prefetch::<_MM_HINT_T0>(t.c.wrapping_add(offset) as *const i8);
            if !residual.is_null() {
                _mm_prefetch::<_MM_HINT_T0>(residual.wrapping_add(offset) as *const i8);
            }
        }
    }
}

/// The lanes `0..n` (n clamped to 16) of a 16-lane mask.
fn mask(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// `M × 32` tile kernel.
///
/// # Safety
/// As [`tile`], with `t.rows == M`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn kernel<const M: usize>(t: &Tile) {
    let m0 = mask(t.cols);
    let m1 = mask(t.cols.saturating_sub(16));
    let mut acc = [[_mm512_setzero_ps(); 2]; M];
    // SAFETY: (whole body) by the tile invariants, rows `r < M` of A span `kc` readable values
    // from `a + r·lda`, B has `kc · NR` readable values from `b`, and C, bias and residual hold
    // `cols` values per row; masked loads and stores touch only lanes `< cols`.
    unsafe {
        if t.accumulate {
            for (r, acc) in acc.iter_mut().enumerate() {
                let c = t.c.add(r * t.ldc);
                acc[0] = _mm512_maskz_loadu_ps(m0, c);
                acc[1] = _mm512_maskz_loadu_ps(m1, c.wrapping_add(16));
            }
        }
        // Start fetching the C tile (and the residual) now so that the stores at the end do
        // not wait for it.
        prefetch_tile(t, M);
        let mut a = t.a;
        let mut b = t.b;
        for _ in 0..t.kc {
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * t.lda));
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
            a = a.add(1);
            b = b.add(NR);
        }
        for (r, acc) in acc.iter().enumerate() {
            let c = t.c.add(r * t.ldc);
            _mm512_mask_storeu_ps(c, m0, acc[0]);
            _mm512_mask_storeu_ps(c.wrapping_add(16), m1, acc[1]);
        }
        if let Some(f) = &t.finish {
            finish(t.c, t.ldc, M, f, m0, m1);
        }
    }
}

/// Applies the epilogue in place to the `rows` rows (stride `ldc`) of a tile just stored to `c`
/// (still in L1), in the lanes of `m0` (columns `0..16`) and `m1` (columns `16..32`).
///
/// # Safety
/// AVX-512F; for each row `r < rows` the masked lanes of `c + r·ldc` are readable and writable
/// and those of `f.residual + r·ldc` (if not null) readable; the masked lanes of `f.bias` (if
/// not null) are readable.
#[target_feature(enable = "avx512f")]
unsafe fn finish(c: *mut f32, ldc: usize, rows: usize, f: &Finish, m0: __mmask16, m1: __mmask16) {
    let masks = [m0, m1];
    // SAFETY: the pointers are valid for the masked lanes (see the function's contract).
    unsafe {
        let bias = if f.bias.is_null() {
            [_mm512_setzero_ps(); 2]
        } else {
            [
                _mm512_maskz_loadu_ps(m0, f.bias),
                _mm512_maskz_loadu_ps(m1, f.bias.wrapping_add(16)),
            ]
        };
        for r in 0..rows {
            for h in 0..2 {
                let p = c.wrapping_add(r * ldc + 16 * h);
                let mut v = _mm512_add_ps(_mm512_maskz_loadu_ps(masks[h], p), bias[h]);
                v = match f.activation {
                    Activation::None => v,
                    Activation::Relu => relu(v),
                    Activation::GeluErf => gelu_erf(v),
                    Activation::GeluTanh => gelu_tanh(v),
                };
                if !f.residual.is_null() {
                    let res = f.residual.wrapping_add(r * ldc + 16 * h);
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(masks[h], res));
                }
                _mm512_mask_storeu_ps(p, masks[h], v);
            }
        }
    }
}

/// `max(x, 0)`.
#[target_feature(enable = "avx512f")]
fn relu(x: __m512) -> __m512 {
    _mm512_max_ps(x, _mm512_setzero_ps())
}

/// Horner evaluation of `coeffs` (highest degree first) at `x`.
#[target_feature(enable = "avx512f")]
#[inline]
fn poly(coeffs: &[f32], x: __m512) -> __m512 {
    let mut acc = _mm512_set1_ps(coeffs[0]);
    for &c in &coeffs[1..] {
        acc = _mm512_fmadd_ps(acc, x, _mm512_set1_ps(c));
    }
    acc
}

/// `erf(x)` by the rational approximation of [`crate::kernels::numerics::erf`].
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn erf(x: __m512) -> __m512 {
    let x = _mm512_min_ps(
        _mm512_max_ps(x, _mm512_set1_ps(-ERF_CLAMP)),
        _mm512_set1_ps(ERF_CLAMP),
    );
    let x2 = _mm512_mul_ps(x, x);
    let p = _mm512_mul_ps(x, poly(&ERF_P, x2));
    _mm512_div_ps(p, poly(&ERF_Q, x2))
}

/// `exp(x)` for `x` clamped to `[EXP_MIN, EXP_MAX]` (relative error ≈ 1e-7).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn exp(x: __m512) -> __m512 {
    let x = _mm512_min_ps(
        _mm512_max_ps(x, _mm512_set1_ps(EXP_MIN)),
        _mm512_set1_ps(EXP_MAX),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    let y = _mm512_fmadd_ps(poly(&EXP_POLY, r), _mm512_mul_ps(r, r), r);
    _mm512_scalef_ps(_mm512_add_ps(y, _mm512_set1_ps(1.0)), n)
}

/// `0.5·x·(1 + erf(x/√2))`.
#[target_feature(enable = "avx512f")]
fn gelu_erf(x: __m512) -> __m512 {
    let e = erf(_mm512_mul_ps(
        x,
        _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2),
    ));
    let half_x = _mm512_mul_ps(x, _mm512_set1_ps(0.5));
    _mm512_fmadd_ps(half_x, e, half_x)
}

/// `x / (1 + exp(-2u))`, `u = √(2/π)·(x + 0.044715·x³)`.
#[target_feature(enable = "avx512f")]
fn gelu_tanh(x: __m512) -> __m512 {
    let x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    let u = _mm512_fmadd_ps(x3, _mm512_set1_ps(GELU_TANH_CUBIC), x);
    let e = exp(_mm512_mul_ps(u, _mm512_set1_ps(-2.0 * GELU_TANH_SCALE)));
    _mm512_div_ps(x, _mm512_add_ps(e, _mm512_set1_ps(1.0)))
}
