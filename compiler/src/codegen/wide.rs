//! The GELUs, inline and evaluated in f64: an `f32x4` is widened to two `f64x2` halves (an `f32`
//! to one `f64`), computed, and narrowed back, so the f32 results are correctly rounded up to the
//! error of the approximations below (about 1.2e-7 relative for the exact GELU, ~1e-12 for the
//! tanh GELU) with no cancellation anywhere, including the negative tails. Their constants live
//! in `kiln_runtime::kernels::numerics`, shared with the runtime's scalar versions.
//!
//! - `exp` in f64: `x = n·ln2 + r` (Cody–Waite with fdlibm's split of ln2), `e^r` by its Taylor
//!   series to degree 9 (relative error below 1e-11 for `|r| ≤ ln2/2`), `2^n` from exponent bits.
//! - Exact GELU `x·Φ(x) = ½·x·erfc(-x/√2)`, with `erfc(z) = t·exp(-z² + P(t))`, `t = 1/(1 + z/2)`
//!   for `z ≥ 0` (the Chebyshev fit known as Numerical Recipes' `erfcc`, relative error below
//!   1.2e-7) and `erfc(-z) = 2 - erfc(z)`.
//! - Tanh GELU `½·x·(1 + tanh u) = x / (1 + e^(-2u))`, `u = √(2/π)·(x + 0.044715·x³)`.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F32, F32X4, F64, F64X2, I64, I64X2};
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Type, Value};

use kiln_runtime::kernels::numerics::{
    ERFC_P, GELU_TANH_CUBIC_F64, GELU_TANH_SCALE_F64, LN2_HI_F64, LN2_LO_F64, ROUND_MAGIC_F64,
    ROUND_MAGIC_F64_BITS,
};

use super::emit::Emit;

fn little() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

impl Emit<'_, '_> {
    /// The f64 constant `v` as `ty` (`f64` or `f64x2`).
    fn dconst(&mut self, ty: Type, v: f64) -> Value {
        let s = self.b.ins().f64const(v);
        self.splat(ty, s)
    }

    /// Applies `f` to `x` (`f32` or `f32x4`) in f64: one `f64`, or two `f64x2` halves.
    fn in_f64(&mut self, ty: Type, x: Value, f: fn(&mut Self, Type, Value) -> Value) -> Value {
        if !ty.is_vector() {
            let wide = self.b.ins().fpromote(F64, x);
            let r = f(self, F64, wide);
            return self.b.ins().fdemote(F32, r);
        }
        // Lanes 0-1 widen directly; lanes 2-3 are first moved down (as one 64-bit lane).
        let low = self.b.ins().fvpromote_low(x);
        let pairs = self.b.ins().bitcast(F64X2, little(), x);
        let upper_pair = self.b.ins().extractlane(pairs, 1);
        let upper_pair = self.b.ins().splat(F64X2, upper_pair);
        let upper = self.b.ins().bitcast(F32X4, little(), upper_pair);
        let high = self.b.ins().fvpromote_low(upper);
        let low = f(self, F64X2, low);
        let high = f(self, F64X2, high);
        // Narrow each half to lanes 0-1 of an f32x4 and join them as two 64-bit lanes.
        let low = self.b.ins().fvdemote(low);
        let high = self.b.ins().fvdemote(high);
        let low = self.b.ins().bitcast(F64X2, little(), low);
        let high = self.b.ins().bitcast(F64X2, little(), high);
        let high = self.b.ins().extractlane(high, 0);
        let joined = self.b.ins().insertlane(low, high, 1);
        self.b.ins().bitcast(F32X4, little(), joined)
    }

    /// `e^x` for `f64`/`f64x2`; `x` is clamped to [-708, 709] (NaN propagates).
    fn exp_f64(&mut self, ty: Type, x: Value) -> Value {
        let lo = self.dconst(ty, -708.0);
        let hi = self.dconst(ty, 709.0);
        let x = self.clamp(ty, x, lo, hi);
        let magic = self.dconst(ty, ROUND_MAGIC_F64);
        let log2e = self.dconst(ty, std::f64::consts::LOG2_E);
        let t = self.mul_add(x, log2e, magic);
        let n = self.b.ins().fsub(t, magic);
        let ln2_hi = self.dconst(ty, -LN2_HI_F64);
        let ln2_lo = self.dconst(ty, -LN2_LO_F64);
        let r = self.mul_add(n, ln2_hi, x);
        let r = self.mul_add(n, ln2_lo, r);
        // Σ r^k/k! for k = 0..=9, by Horner.
        let mut p = self.dconst(ty, 1.0 / 362_880.0);
        let mut factorial = 362_880.0;
        for k in (0..9).rev() {
            factorial /= f64::from(k + 1);
            let c = self.dconst(ty, 1.0 / factorial);
            p = self.mul_add(p, r, c);
        }
        // 2^n from exponent bits: bits(t) - bits(ROUND_MAGIC_F64) = n.
        let ity = if ty.is_vector() { I64X2 } else { I64 };
        let tbits = self.b.ins().bitcast(ity, little(), t);
        let offset = self.b.ins().iconst(I64, ROUND_MAGIC_F64_BITS - 1023);
        let offset = if ty.is_vector() {
            self.b.ins().splat(I64X2, offset)
        } else {
            offset
        };
        let biased = self.b.ins().isub(tbits, offset);
        let shift = self.b.ins().iconst(I64, 52);
        let bits = self.b.ins().ishl(biased, shift);
        let scale = self.b.ins().bitcast(ty, little(), bits);
        self.b.ins().fmul(p, scale)
    }

    /// Exact GELU of an `f64`/`f64x2`.
    fn gelu_erf_f64(&mut self, ty: Type, x: Value) -> Value {
        let neg_rsqrt2 = self.dconst(ty, -std::f64::consts::FRAC_1_SQRT_2);
        let w = self.b.ins().fmul(x, neg_rsqrt2);
        let z = self.b.ins().fabs(w);
        let half = self.dconst(ty, 0.5);
        let one = self.dconst(ty, 1.0);
        let d = self.mul_add(z, half, one);
        let t = self.b.ins().fdiv(one, d);
        let mut p = self.dconst(ty, ERFC_P[9]);
        for &c in ERFC_P[..9].iter().rev() {
            let c = self.dconst(ty, c);
            p = self.mul_add(p, t, c);
        }
        let neg_z = self.b.ins().fneg(z);
        let arg = self.mul_add(neg_z, z, p);
        let e = self.exp_f64(ty, arg);
        let tail = self.b.ins().fmul(t, e); // erfc(|w|)
        let two = self.dconst(ty, 2.0);
        let other = self.b.ins().fsub(two, tail); // erfc(-|w|)
        let zero = self.dconst(ty, 0.0);
        let nonneg = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, w, zero);
        let erfc = if ty.is_vector() {
            let mask = self.b.ins().bitcast(ty, little(), nonneg);
            self.b.ins().bitselect(mask, tail, other)
        } else {
            self.b.ins().select(nonneg, tail, other)
        };
        let hx = self.b.ins().fmul(x, half);
        self.b.ins().fmul(hx, erfc)
    }

    /// Tanh GELU of an `f64`/`f64x2`.
    fn gelu_tanh_f64(&mut self, ty: Type, x: Value) -> Value {
        let x2 = self.b.ins().fmul(x, x);
        let k = self.dconst(ty, GELU_TANH_CUBIC_F64);
        let one = self.dconst(ty, 1.0);
        let inner = self.mul_add(x2, k, one);
        let c = self.dconst(ty, -2.0 * GELU_TANH_SCALE_F64);
        let xc = self.b.ins().fmul(x, c);
        let neg_2u = self.b.ins().fmul(xc, inner);
        let e = self.exp_f64(ty, neg_2u);
        let d = self.b.ins().fadd(one, e);
        self.b.ins().fdiv(x, d)
    }

    /// Exact GELU `x·Φ(x)` of an `f32`/`f32x4`.
    pub(crate) fn gelu_erf(&mut self, ty: Type, x: Value) -> Value {
        self.in_f64(ty, x, Self::gelu_erf_f64)
    }

    /// Tanh-approximated GELU of an `f32`/`f32x4`.
    pub(crate) fn gelu_tanh(&mut self, ty: Type, x: Value) -> Value {
        self.in_f64(ty, x, Self::gelu_tanh_f64)
    }
}
