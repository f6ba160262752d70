//! The gate activations in f32, branch-free so that loops over a gate vectorise (the callers
//! compile them once per instruction set, see `cells.rs`): `exp` is Cephes `expf` with the
//! constants of [`crate::kernels::numerics`] (n from the `1.5·2²³` rounding trick, Cody–Waite
//! reduction, `2ⁿ` from exponent bits, inputs clamped to `[-87.3, 88.3]`); `sigmoid(x) =
//! 1 / (1 + e^-x)`; `tanh` is its odd Taylor series to `x¹⁵` below `|x| = 0.55` (error < 3e-8
//! relative) and `1 − 2 / (e^2|x| + 1)` with x's sign above, so small inputs keep their
//! relative accuracy. The rarely used functions (Elu, Softplus) call the standard library.

use crate::kernels::numerics::{
    EXP_POLY, GELU_EXP_MAX, GELU_EXP_MIN, LN2_HI, LN2_LO, LOG2E, ROUND_MAGIC, ROUND_MAGIC_BITS,
};
use crate::ops::{ActivationFn, RnnActivation};

/// `e^x` (clamped to the normal range of f32).
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    let x = x.clamp(GELU_EXP_MIN, GELU_EXP_MAX);
    let t = x * LOG2E + ROUND_MAGIC;
    let n_bits = (t.to_bits() as i32).wrapping_sub(ROUND_MAGIC_BITS);
    let n = t - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    let er = 1.0 + r + r * r * p;
    er * f32::from_bits((n_bits.wrapping_add(127) << 23) as u32)
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Taylor coefficients of `tanh(x)/x` in `x²`: `1, -1/3, 2/15, -17/315, ...` (to `x¹⁴`).
const TANH_TAYLOR: [f32; 8] = [
    1.0,
    -1.0 / 3.0,
    2.0 / 15.0,
    -17.0 / 315.0,
    62.0 / 2835.0,
    -1382.0 / 155_925.0,
    21_844.0 / 6_081_075.0,
    -929_569.0 / 638_512_875.0,
];

/// Below this magnitude `tanh` uses its Taylor series.
const TANH_SMALL: f32 = 0.55;

/// `tanh(x)`.
#[inline(always)]
pub(super) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let x2 = x * x;
    let mut p = TANH_TAYLOR[7];
    for &c in TANH_TAYLOR[..7].iter().rev() {
        p = p * x2 + c;
    }
    let small = x * p;
    let large = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
    if a < TANH_SMALL {
        small
    } else {
        large
    }
}

/// Applies `f` to `xs` in place, after clamping to `[-clip, clip]` when `clip` is finite.
#[inline(always)]
pub(super) fn apply(f: &ActivationFn, clip: f32, xs: &mut [f32]) {
    if clip.is_finite() {
        for x in xs.iter_mut() {
            *x = x.clamp(-clip, clip);
        }
    }
    apply_unclipped(f, xs);
}

/// Applies `f` to `xs` in place.
#[inline(always)]
pub(super) fn apply_unclipped(f: &ActivationFn, xs: &mut [f32]) {
    let (alpha, beta) = (f.alpha as f32, f.beta as f32);
    match f.kind {
        RnnActivation::Sigmoid => xs.iter_mut().for_each(|x| *x = sigmoid(*x)),
        RnnActivation::Tanh => xs.iter_mut().for_each(|x| *x = tanh(*x)),
        RnnActivation::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
        RnnActivation::Affine => xs.iter_mut().for_each(|x| *x = alpha * *x + beta),
        RnnActivation::LeakyRelu => xs.iter_mut().for_each(|x| {
            *x = if *x >= 0.0 { *x } else { alpha * *x };
        }),
        RnnActivation::ThresholdedRelu => xs.iter_mut().for_each(|x| {
            *x = if *x >= alpha { *x } else { 0.0 };
        }),
        RnnActivation::ScaledTanh => xs.iter_mut().for_each(|x| *x = alpha * tanh(beta * *x)),
        RnnActivation::HardSigmoid => xs
            .iter_mut()
            .for_each(|x| *x = (alpha * *x + beta).clamp(0.0, 1.0)),
        RnnActivation::Elu => xs.iter_mut().for_each(|x| {
            *x = if *x >= 0.0 { *x } else { alpha * x.exp_m1() };
        }),
        RnnActivation::Softsign => xs.iter_mut().for_each(|x| *x /= 1.0 + x.abs()),
        RnnActivation::Softplus => xs.iter_mut().for_each(|x| {
            *x = if *x > 0.0 {
                *x + (-*x).exp().ln_1p()
            } else {
                x.exp().ln_1p()
            };
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_sigmoid_and_tanh_are_accurate() {
        let mut worst = [0f64; 3];
        for i in -20_000..=20_000 {
            let x = i as f32 * 1e-3;
            let xd = f64::from(x);
            let rel = |got: f32, want: f64| (f64::from(got) - want).abs() / want.abs().max(1e-30);
            worst[0] = worst[0].max(rel(exp(x), xd.exp()));
            worst[1] = worst[1].max(rel(sigmoid(x), 1.0 / (1.0 + (-xd).exp())));
            if x != 0.0 {
                worst[2] = worst[2].max(rel(tanh(x), xd.tanh()));
            }
        }
        assert!(worst.iter().all(|&w| w < 1e-6), "relative errors {worst:?}");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert!(sigmoid(-200.0) < 1e-37);
        assert_eq!(sigmoid(200.0), 1.0);
        assert!(tanh(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
        assert!((tanh(1e-6) - 1e-6).abs() < 1e-12);
    }

    #[test]
    fn every_activation_matches_the_f64_definition() {
        for &kind in RnnActivation::ALL {
            let f = ActivationFn {
                kind,
                alpha: 0.7,
                beta: 0.3,
            };
            let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.2).collect();
            let mut ys = xs.clone();
            apply_unclipped(&f, &mut ys);
            for (&x, &y) in xs.iter().zip(&ys) {
                let want = f.eval(f64::from(x));
                let err = (f64::from(y) - want).abs();
                assert!(
                    err <= 1e-6 * want.abs().max(1.0),
                    "{kind:?}({x}) = {y}, want {want}"
                );
            }
        }
        let mut clipped = [5.0f32, -5.0, 0.5];
        let f = ActivationFn {
            kind: RnnActivation::Relu,
            alpha: 0.0,
            beta: 0.0,
        };
        apply(&f, 1.0, &mut clipped);
        assert_eq!(clipped, [1.0, 0.0, 0.5]);
    }
}
