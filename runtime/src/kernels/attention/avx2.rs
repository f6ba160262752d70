//! The AVX2 + FMA implementation of the attention vector operations (two ymm registers per
//! 16-lane vector, masks as all-ones/all-zeros lanes) and the target-feature entry that compiles
//! the generic kernel for it.

use super::job::Job;
use super::kernel::{self, Scratch};
use super::simd::{Simd, EXP_HI, EXP_LO};
use crate::kernels::numerics::{EXP_POLY, LN2_HI, LN2_LO, LOG2E};
use std::arch::x86_64::*;

/// Proof that this CPU has AVX2 and FMA; only [`Avx2::new`] makes one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Avx2 {
    _private: (),
}

impl Avx2 {
    /// The token, when the CPU has AVX2 and FMA.
    pub(super) fn new() -> Option<Self> {
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
            .then_some(Avx2 { _private: () })
    }
}

/// Applies a two-operand intrinsic to both halves.
macro_rules! halves {
    ($f:expr, $a:expr, $b:expr) => {
        [$f($a[0], $b[0]), $f($a[1], $b[1])]
    };
}

/// `eˣ` on 8 lanes (see [`Simd::exp`]).
#[inline(always)]
fn exp8(_: Avx2, x: __m256) -> __m256 {
    // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
    unsafe {
        let xc = _mm256_min_ps(
            _mm256_set1_ps(EXP_HI),
            _mm256_max_ps(_mm256_set1_ps(EXP_LO), x),
        );
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), xc);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut y = _mm256_set1_ps(EXP_POLY[0]);
        for &c in &EXP_POLY[1..] {
            y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(c));
        }
        let y = _mm256_fmadd_ps(
            y,
            _mm256_mul_ps(r, r),
            _mm256_add_ps(r, _mm256_set1_ps(1.0)),
        );
        // n ∈ [-126, 127] after the clamp: build 2ⁿ from its biased exponent.
        let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        ));
        let e = _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
        let below = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_LO));
        _mm256_andnot_ps(below, e)
    }
}

impl Simd for Avx2 {
    type V = [__m256; 2];
    type M = [__m256; 2];
    const WIDE: bool = false;

    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
        unsafe { [_mm256_set1_ps(x); 2] }
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
        unsafe { halves!(_mm256_add_ps, a, b) }
    }
    #[inline(always)]
    fn sub(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
        unsafe { halves!(_mm256_sub_ps, a, b) }
    }
    #[inline(always)]
    fn mul(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
        unsafe { halves!(_mm256_mul_ps, a, b) }
    }
    #[inline(always)]
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
        unsafe {
            [
                _mm256_fmadd_ps(a[0], b[0], c[0]),
                _mm256_fmadd_ps(a[1], b[1], c[1]),
            ]
        }
    }
    #[inline(always)]
    fn max(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
        unsafe { halves!(_mm256_max_ps, a, b) }
    }
    #[inline(always)]
    fn lt(self, a: Self::V, b: Self::V) -> Self::M {
        // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
        unsafe { halves!(_mm256_cmp_ps::<_CMP_LT_OQ>, a, b) }
    }
    #[inline(always)]
    fn eq(self, a: Self::V, b: Self::V) -> Self::M {
        // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
        unsafe { halves!(_mm256_cmp_ps::<_CMP_EQ_OQ>, a, b) }
    }
    #[inline(always)]
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
        unsafe {
            [
                _mm256_blendv_ps(b[0], a[0], m[0]),
                _mm256_blendv_ps(b[1], a[1], m[1]),
            ]
        }
    }
    #[inline(always)]
    fn first(self, n: usize) -> Self::M {
        let n = n.min(16) as i32;
        // SAFETY: an `Avx2` token exists only when AVX2 and FMA were detected.
        unsafe {
            let lo = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let hi = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
            let nn = _mm256_set1_epi32(n);
            [
                _mm256_castsi256_ps(_mm256_cmpgt_epi32(nn, lo)),
                _mm256_castsi256_ps(_mm256_cmpgt_epi32(nn, hi)),
            ]
        }
    }
    #[inline(always)]
    fn exp(self, x: Self::V) -> Self::V {
        [exp8(self, x[0]), exp8(self, x[1])]
    }

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> Self::V {
        // SAFETY: AVX2 is present (token) and the caller guarantees 16 readable floats.
        unsafe { [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))] }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: Self::V) {
        // SAFETY: AVX2 is present (token) and the caller guarantees 16 writable floats.
        unsafe {
            _mm256_storeu_ps(p, v[0]);
            _mm256_storeu_ps(p.add(8), v[1]);
        }
    }
    #[inline(always)]
    unsafe fn load_masked(self, p: *const f32, m: Self::M) -> Self::V {
        // SAFETY: AVX2 is present; `vmaskmovps` neither reads nor faults on masked-off lanes, the
        // caller guarantees the set ones readable. `p + 8` is only formed for the address
        // arithmetic (`wrapping_add`), never dereferenced beyond the set lanes.
        unsafe {
            [
                _mm256_maskload_ps(p, _mm256_castps_si256(m[0])),
                _mm256_maskload_ps(p.wrapping_add(8), _mm256_castps_si256(m[1])),
            ]
        }
    }
    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, v: Self::V, m: Self::M) {
        // SAFETY: AVX2 is present; only the set lanes, which the caller guarantees writable, are
        // written.
        unsafe {
            _mm256_maskstore_ps(p, _mm256_castps_si256(m[0]), v[0]);
            _mm256_maskstore_ps(p.wrapping_add(8), _mm256_castps_si256(m[1]), v[1]);
        }
    }
}

/// Runs one task of `job` with the kernel compiled for AVX2 + FMA.
///
/// # Safety
/// As [`kernel::run_task`].
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run_task(s: Avx2, job: &Job<'_>, task: usize, scratch: &mut Scratch) {
    // SAFETY: forwarded from this function's contract; the token proves AVX2 and FMA.
    unsafe { kernel::run_task(s, job, task, scratch) }
}
