//! Scalar activation functions of the GEMM epilogue and the constants their vectorised versions
//! share (the erf rational approximation and the `exp` range reduction).

use super::Activation;

/// `erf(x)` is `x · P(x²) / Q(x²)` on `[-ERF_CLAMP, ERF_CLAMP]` and `±1` outside (in `f32`,
/// `erf(4) = 1`); the approximation of Eigen and XLA, accurate to a few `f32` ulps.
pub(super) const ERF_CLAMP: f32 = 4.0;
/// Coefficients of `P`, highest degree first.
pub(super) const ERF_P: [f32; 7] = [
    -2.726_142_3e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906e-4,
    -2.954_600_2e-3,
    -1.609_603_3e-2,
];
/// Coefficients of `Q`, highest degree first.
pub(super) const ERF_Q: [f32; 5] = [
    -1.456_607_2e-5,
    -2.133_740_6e-4,
    -1.682_827e-3,
    -7.373_329e-3,
    -1.426_474e-2,
];

/// `exp` inputs are clamped to this range so that `2^n` stays a normal number.
pub(super) const EXP_MIN: f32 = -87.3;
/// Upper clamp of `exp` inputs.
pub(super) const EXP_MAX: f32 = 88.3;
/// `log2(e)`.
pub(super) const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split in a part exact in few bits and the rest (Cody–Waite reduction).
pub(super) const LN2_HI: f32 = 0.693_359_4;
/// See [`LN2_HI`].
pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
/// Minimax polynomial for `(exp(r) - 1 - r) / r²` on `|r| ≤ ln2 / 2`, highest degree first.
pub(super) const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `√(2/π)`, the tanh-GELU input scale.
pub(super) const GELU_TANH_SCALE: f32 = 0.797_884_6;
/// The cubic coefficient of tanh-GELU.
pub(super) const GELU_TANH_CUBIC: f32 = 0.044_715;

/// `erf(x)` by the rational approximation the vector kernels use.
pub(super) fn erf(x: f32) -> f32 {
    let x = x.clamp(-ERF_CLAMP, ERF_CLAMP);
    let x2 = x * x;
    let p = ERF_P[1..].iter().fold(ERF_P[0], |acc, &c| acc * x2 + c);
    let q = ERF_Q[1..].iter().fold(ERF_Q[0], |acc, &c| acc * x2 + c);
    x * p / q
}

/// Exact-erf GELU, `0.5·x·(1 + erf(x/√2))`, with the approximation of the vector kernels.
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Tanh-approximated GELU, written as `x / (1 + exp(-2u))` with
/// `u = √(2/π)·(x + 0.044715·x³)`.
pub fn gelu_tanh(x: f32) -> f32 {
    let u = GELU_TANH_SCALE * (x + GELU_TANH_CUBIC * x * x * x);
    x / (1.0 + (-2.0 * u).clamp(EXP_MIN, EXP_MAX).exp())
}

/// Applies `act` to one value.
#[inline]
pub(super) fn activate(act: Activation, x: f32) -> f32 {
    match act {
        Activation::None => x,
        Activation::Relu => x.max(0.0),
        Activation::GeluErf => gelu_erf(x),
        Activation::GeluTanh => gelu_tanh(x),
    }
}
