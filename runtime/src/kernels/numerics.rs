//! The one home of the kernels' numerics: the constants of the `exp`, `erf`, `erfc` and tanh
//! GELU approximations, shared by the library kernels (portable, AVX2 and AVX-512 paths), the
//! run-time helper functions of generated code (`code::symbols`) and the compiler's code
//! generator, which emits the same constants inline. Every user evaluates them in the order its
//! doc comment states, so all paths round identically.
//!
//! - `f32` `exp` (Cephes `expf`): `x = n·ln2 + r` with `n = round(x·log2 e)` by the `1.5·2²³`
//!   trick, a Cody–Waite split of `ln 2` ([`LN2_HI`], [`LN2_LO`]), `e^r ≈ 1 + r + r²·P(r)` with
//!   [`EXP_POLY`] by Horner, and `2ⁿ` from exponent bits. The clamps differ per user (each
//!   kernel documents its own range).
//! - `f64` `exp` (generated code's wide GELUs): the same reduction with fdlibm's split of `ln 2`
//!   ([`LN2_HI_F64`], [`LN2_LO_F64`]) and the Taylor series of `e^r`.
//! - `f32` `erf`: the rational approximation of Eigen and XLA ([`erf`]).
//! - `f64` `erfc`: Numerical Recipes' Chebyshev-fitted `erfcc` ([`erfc`]).
//! - tanh GELU: `x / (1 + e^(-2u))`, `u = √(2/π)·(x + 0.044715·x³)`; the scalar GELUs of the
//!   GEMM epilogue ([`gelu_erf`], [`gelu_tanh`]) are here too.

/// `log2(e)` in `f32`.
pub const LOG2E: f32 = std::f32::consts::LOG2_E;
/// The high part of `ln 2` (`355/512`, exact in few bits, so `n·LN2_HI` is exact).
pub const LN2_HI: f32 = 0.693_359_4;
/// The low part of `ln 2`: `ln 2 − LN2_HI`.
pub const LN2_LO: f32 = -2.121_944_4e-4;
/// Minimax coefficients of `(exp(r) − 1 − r)/r²` on `|r| ≤ ln2/2` (Cephes `expf`), highest
/// degree first (`5.0000001201e-1` rounds to `0.5` in `f32`).
pub const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];
/// `1.5·2²³`: adding and subtracting it rounds an `f32` of magnitude below `2²²` to an integer
/// (without SSE4.1), and the sum's low mantissa bits hold that integer.
pub const ROUND_MAGIC: f32 = 12_582_912.0;
/// The bits of [`ROUND_MAGIC`].
pub const ROUND_MAGIC_BITS: i32 = 0x4b40_0000;

/// `1.5·2⁵²`, the `f64` counterpart of [`ROUND_MAGIC`].
pub const ROUND_MAGIC_F64: f64 = 6_755_399_441_055_744.0;
/// The bits of [`ROUND_MAGIC_F64`].
pub const ROUND_MAGIC_F64_BITS: i64 = 0x4338_0000_0000_0000;
/// The high part of `ln 2` in `f64` (fdlibm's split).
pub const LN2_HI_F64: f64 = 6.931_471_803_691_238e-1;
/// The low part of `ln 2` in `f64`.
pub const LN2_LO_F64: f64 = 1.908_214_929_270_587_7e-10;

/// `erf(x)` is `x · P(x²) / Q(x²)` on `[-ERF_CLAMP, ERF_CLAMP]` and `±1` outside (in `f32`,
/// `erf(4) = 1`); the approximation of Eigen and XLA, accurate to a few `f32` ulps.
pub const ERF_CLAMP: f32 = 4.0;
/// Coefficients of `P`, highest degree first.
pub const ERF_P: [f32; 7] = [
    -2.726_142_3e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906e-4,
    -2.954_600_2e-3,
    -1.609_603_3e-2,
];
/// Coefficients of `Q`, highest degree first.
pub const ERF_Q: [f32; 5] = [
    -1.456_607_2e-5,
    -2.133_740_6e-4,
    -1.682_827e-3,
    -7.373_329e-3,
    -1.426_474e-2,
];

/// `erf(x)` in `f32` by the rational approximation ([`ERF_P`], [`ERF_Q`]), both polynomials by
/// Horner from the highest degree; the vector kernels evaluate it in the same order.
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-ERF_CLAMP, ERF_CLAMP);
    let x2 = x * x;
    let p = ERF_P[1..].iter().fold(ERF_P[0], |acc, &c| acc * x2 + c);
    let q = ERF_Q[1..].iter().fold(ERF_Q[0], |acc, &c| acc * x2 + c);
    x * p / q
}

/// `erfc`'s fitted polynomial `P(t)` (Numerical Recipes' `erfcc`), constant term first.
pub const ERFC_P: [f64; 10] = [
    -1.265_512_23,
    1.000_023_68,
    0.374_091_96,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_07,
    -1.135_203_98,
    1.488_515_87,
    -0.822_152_23,
    0.170_872_77,
];

/// `erfc(x)` to a relative error below 1.2e-7 everywhere: the Chebyshev-fitted form
/// `t·exp(-z² + P(t))`, `t = 1/(1 + z/2)`, `z = |x|`, with [`ERFC_P`] by Horner from the
/// highest degree, in `f64`; negative arguments use `erfc(-z) = 2 - erfc(z)`.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = ERFC_P.iter().rev().fold(0.0, |acc, &c| acc * t + c);
    let tail = t * (-z * z + poly).exp();
    if x >= 0.0 {
        tail
    } else {
        2.0 - tail
    }
}

/// `√(2/π)`, the tanh-GELU input scale, in `f32`.
pub const GELU_TANH_SCALE: f32 = 0.797_884_6;
/// `√(2/π)` in `f64`.
pub const GELU_TANH_SCALE_F64: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of tanh-GELU, in `f32`.
pub const GELU_TANH_CUBIC: f32 = 0.044_715;
/// The cubic coefficient of tanh-GELU, in `f64`.
pub const GELU_TANH_CUBIC_F64: f64 = 0.044_715;

/// The GEMM epilogue clamps the argument of the tanh GELU's `exp` to this range, so that `2ⁿ`
/// stays a normal number in its vector versions.
pub const GELU_EXP_MIN: f32 = -87.3;
/// Upper clamp of the tanh GELU's `exp` argument.
pub const GELU_EXP_MAX: f32 = 88.3;

/// Exact-erf GELU, `0.5·x·(1 + erf(x/√2))`, with the [`erf`] of the vector kernels.
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Tanh-approximated GELU, written as `x / (1 + exp(-2u))` with
/// `u = √(2/π)·(x + 0.044715·x³)`.
pub fn gelu_tanh(x: f32) -> f32 {
    let u = GELU_TANH_SCALE * (x + GELU_TANH_CUBIC * x * x * x);
    x / (1.0 + (-2.0 * u).clamp(GELU_EXP_MIN, GELU_EXP_MAX).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_constants_are_what_they_claim() {
        assert_eq!(ROUND_MAGIC.to_bits() as i32, ROUND_MAGIC_BITS);
        assert_eq!(ROUND_MAGIC_F64.to_bits() as i64, ROUND_MAGIC_F64_BITS);
        assert_eq!(LN2_HI, 355.0 / 512.0);
        let ln2 = f64::from(LN2_HI) + f64::from(LN2_LO);
        assert!((ln2 - std::f64::consts::LN_2).abs() < 1e-10);
        assert!((LN2_HI_F64 + LN2_LO_F64 - std::f64::consts::LN_2).abs() < 1e-18);
        assert_eq!(EXP_POLY[4], 0.166_666_65);
    }

    #[test]
    fn erf_and_erfc_are_close_to_the_true_functions() {
        assert_eq!(erf(0.0), 0.0);
        assert!((erf(5.0) - 1.0).abs() < 1e-6 && erf(-5.0) == -erf(5.0));
        assert!((erf(0.5) - 0.520_499_9).abs() < 1e-6);
        assert!((erfc(0.5) - 0.479_500_122_186_953_5).abs() < 1e-7);
        assert!((erfc(-0.5) - 1.520_499_877_813_046_5).abs() < 1e-7);
    }
}
