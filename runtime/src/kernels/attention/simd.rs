//! The 16-lane f32 vector operations the attention kernel is written in, as a trait with one
//! implementation per instruction set, and the portable implementation (plain arrays the compiler
//! vectorises), and the `exp` clamps the implementations share (the approximation's constants
//! live in [`crate::kernels::numerics`]).

use crate::kernels::numerics::{EXP_POLY, LN2_HI, LN2_LO, LOG2E, ROUND_MAGIC};

/// Lanes per vector in every implementation.
pub(super) const LANES: usize = 16;

/// Upper clamp of `exp`'s argument (the kernel only needs `exp(x ≤ 0)`; this keeps `2ⁿ` finite).
pub(super) const EXP_HI: f32 = 88.0;
/// Below this `exp` returns exactly 0 (so an excluded or `-∞` score weighs exactly nothing).
pub(super) const EXP_LO: f32 = -87.336_55;

/// Sixteen f32 lanes and the operations on them. A value of an implementing type is a token that
/// proves the CPU supports the instruction set, so the arithmetic is safe to call; loads and stores
/// take raw pointers and are unsafe.
pub(super) trait Simd: Copy {
    /// A vector of [`LANES`] f32.
    type V: Copy;
    /// A lane mask.
    type M: Copy;
    /// True when the ISA has 32 vector registers, which allows larger register tiles.
    const WIDE: bool;

    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a − b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b + c`, fused where the ISA has FMA.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise maximum; `b` where either lane is NaN (the x86 `maxps` rule).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lanes where `a < b` (false for NaN).
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// Lanes where `a == b` (false for NaN).
    fn eq(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a` where the mask is set, else `b`.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;
    /// The lanes `0..n` (all of them when `n ≥ LANES`).
    fn first(self, n: usize) -> Self::M;
    /// `eˣ` to about 1 ulp; exactly 0 below [`EXP_LO`] and at `-∞`; NaN stays NaN.
    fn exp(self, x: Self::V) -> Self::V;

    /// Loads [`LANES`] values.
    ///
    /// # Safety
    /// `p .. p + LANES` must be readable.
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// Stores [`LANES`] values.
    ///
    /// # Safety
    /// `p .. p + LANES` must be writable.
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// Loads the masked lanes (others are 0 and not read).
    ///
    /// # Safety
    /// Lane `i` of `p` must be readable for every set lane `i` of `m`.
    unsafe fn load_masked(self, p: *const f32, m: Self::M) -> Self::V;
    /// Stores the masked lanes (others are not touched).
    ///
    /// # Safety
    /// Lane `i` of `p` must be writable for every set lane `i` of `m`.
    unsafe fn store_masked(self, p: *mut f32, v: Self::V, m: Self::M);
}

/// Scalar `eˣ` with the same algorithm and constants as the vector versions.
#[inline(always)]
pub(super) fn exp_scalar(x: f32) -> f32 {
    // `clamp` keeps NaN.
    let xc = x.clamp(EXP_LO, EXP_HI);
    // Round to nearest by the 1.5·2²³ trick (|t| < 2²²), which vectorises without SSE4.1.
    let n = (xc * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut y = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        y = y * r + c;
    }
    let y = y * (r * r) + r + 1.0;
    // n ∈ [-126, 127] after the clamp, so the biased exponent is a normal one.
    let pow2 = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < EXP_LO {
        0.0
    } else {
        y * pow2
    }
}

/// The portable implementation: arrays of 16 f32 that the compiler vectorises for the target.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Portable;

/// Applies `f` lane by lane.
#[inline(always)]
fn map2(a: [f32; LANES], b: [f32; LANES], f: impl Fn(f32, f32) -> f32) -> [f32; LANES] {
    std::array::from_fn(|i| f(a[i], b[i]))
}

impl Simd for Portable {
    type V = [f32; LANES];
    type M = [bool; LANES];
    const WIDE: bool = false;

    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        [x; LANES]
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        map2(a, b, |x, y| x + y)
    }
    #[inline(always)]
    fn sub(self, a: Self::V, b: Self::V) -> Self::V {
        map2(a, b, |x, y| x - y)
    }
    #[inline(always)]
    fn mul(self, a: Self::V, b: Self::V) -> Self::V {
        map2(a, b, |x, y| x * y)
    }
    #[inline(always)]
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    fn max(self, a: Self::V, b: Self::V) -> Self::V {
        map2(a, b, |x, y| if x > y { x } else { y })
    }
    #[inline(always)]
    fn lt(self, a: Self::V, b: Self::V) -> Self::M {
        std::array::from_fn(|i| a[i] < b[i])
    }
    #[inline(always)]
    fn eq(self, a: Self::V, b: Self::V) -> Self::M {
        std::array::from_fn(|i| a[i] == b[i])
    }
    #[inline(always)]
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|i| if m[i] { a[i] } else { b[i] })
    }
    #[inline(always)]
    fn first(self, n: usize) -> Self::M {
        std::array::from_fn(|i| i < n)
    }
    #[inline(always)]
    fn exp(self, x: Self::V) -> Self::V {
        x.map(exp_scalar)
    }

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> Self::V {
        // SAFETY: the caller guarantees `p .. p + LANES` is readable; `read_unaligned` needs no
        // alignment beyond that.
        unsafe { p.cast::<[f32; LANES]>().read_unaligned() }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: Self::V) {
        // SAFETY: the caller guarantees `p .. p + LANES` is writable.
        unsafe { p.cast::<[f32; LANES]>().write_unaligned(v) }
    }
    #[inline(always)]
    unsafe fn load_masked(self, p: *const f32, m: Self::M) -> Self::V {
        std::array::from_fn(|i| {
            if m[i] {
                // SAFETY: lane `i` is set, so the caller guarantees `p + i` is readable.
                unsafe { *p.add(i) }
            } else {
                0.0
            }
        })
    }
    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, v: Self::V, m: Self::M) {
        for i in 0..LANES {
            if m[i] {
                // SAFETY: lane `i` is set, so the caller guarantees `p + i` is writable.
                unsafe { *p.add(i) = v[i] }
            }
        }
    }
}
