//! The AVX-512F implementation of the attention vector operations (one zmm register per vector,
//! `__mmask16` masks) and the target-feature entry that compiles the generic kernel for it.

use super::job::Job;
use super::kernel::{self, Scratch};
use super::simd::{Simd, EXP_HI, EXP_LO};
use crate::kernels::numerics::{EXP_POLY, LN2_HI, LN2_LO, LOG2E};
use std::arch::x86_64::*;

/// Proof that this CPU has AVX-512F; only [`Avx512::new`] makes one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Avx512 {
    _private: (),
}

impl Avx512 {
    /// The token, when the CPU has AVX-512F.
    pub(super) fn new() -> Option<Self> {
        is_x86_feature_detected!("avx512f").then_some(Avx512 { _private: () })
    }
}

impl Simd for Avx512 {
    type V = __m512;
    type M = __mmask16;
    const WIDE: bool = true;

    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: an `Avx512` exists only when AVX-512F was detected.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: an `Avx512` exists only when AVX-512F was detected.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: an `Avx512` exists only when AVX-512F was detected.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: an `Avx512` exists only when AVX-512F was detected.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: an `Avx512` exists only when AVX-512F was detected.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: an `Avx512` exists only when AVX-512F was detected.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn lt(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: an `Avx512` exists only when AVX-512F was detected.
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn eq(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: an `Avx512` exists only when AVX-512F was detected.
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b) }
    }
    #[inline(always)]
    fn select(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
        // SAFETY: an `Avx512` exists only when AVX-512F was detected.
        unsafe { _mm512_mask_blend_ps(m, b, a) }
    }
    #[inline(always)]
    fn first(self, n: usize) -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            (1u16 << n) - 1
        }
    }
    #[inline(always)]
    fn exp(self, x: __m512) -> __m512 {
        // SAFETY: an `Avx512` exists only when AVX-512F was detected.
        unsafe {
            // `max(lo, x)` and `min(hi, ·)` return their second operand for NaN: NaN passes.
            let xc = _mm512_min_ps(
                _mm512_set1_ps(EXP_HI),
                _mm512_max_ps(_mm512_set1_ps(EXP_LO), x),
            );
            let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_mul_ps(xc, _mm512_set1_ps(LOG2E)),
            );
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), xc);
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
            let mut y = _mm512_set1_ps(EXP_POLY[0]);
            for &c in &EXP_POLY[1..] {
                y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(c));
            }
            let y = _mm512_fmadd_ps(
                y,
                _mm512_mul_ps(r, r),
                _mm512_add_ps(r, _mm512_set1_ps(1.0)),
            );
            let e = _mm512_scalef_ps(y, n);
            let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(EXP_LO));
            _mm512_mask_mov_ps(e, below, _mm512_setzero_ps())
        }
    }

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: AVX-512F is present (token) and the caller guarantees 16 readable floats.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: AVX-512F is present (token) and the caller guarantees 16 writable floats.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_masked(self, p: *const f32, m: __mmask16) -> __m512 {
        // SAFETY: AVX-512F is present; masked-off lanes are neither read nor faulted on, and the
        // caller guarantees the set lanes are readable.
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    }
    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, v: __m512, m: __mmask16) {
        // SAFETY: AVX-512F is present; only the set lanes, which the caller guarantees writable,
        // are written.
        unsafe { _mm512_mask_storeu_ps(p, m, v) }
    }
}

/// Runs one task of `job` with the kernel compiled for AVX-512F.
///
/// # Safety
/// As [`kernel::run_task`].
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run_task(s: Avx512, job: &Job<'_>, task: usize, scratch: &mut Scratch) {
    // SAFETY: forwarded from this function's contract; the token proves AVX-512F.
    unsafe { kernel::run_task(s, job, task, scratch) }
}
