//! The runtime symbol table: the scalar math functions that generated kernels call by name
//! (resolved by relocation when a [`CodeModule`](super::CodeModule) is loaded).
//!
//! Every function has the C ABI (`extern "C" fn(f32) -> f32`, `fn(f32, f32) -> f32` or, for
//! `fmaf`, three arguments; System V on x86-64), so Cranelift code can call it through an absolute
//! 64-bit address. The error function and the GELUs are evaluated in f64 so their f32 results are
//! accurate to about one ulp; the others are Rust's `f32` methods (the platform libm). The current
//! code generator inlines exp, sigmoid and the GELUs and calls the rest; the GELU entries remain
//! for objects that call them and as scalar references. The approximations' constants (and
//! `erfc`) live in [`crate::kernels::numerics`], shared with the code generator.

use crate::kernels::numerics::{erfc, GELU_TANH_CUBIC_F64, GELU_TANH_SCALE_F64};

/// `e^x`.
pub extern "C" fn kiln_rt_expf(x: f32) -> f32 {
    x.exp()
}

/// Natural logarithm.
pub extern "C" fn kiln_rt_logf(x: f32) -> f32 {
    x.ln()
}

/// Hyperbolic tangent.
pub extern "C" fn kiln_rt_tanhf(x: f32) -> f32 {
    x.tanh()
}

/// The error function.
pub extern "C" fn kiln_rt_erff(x: f32) -> f32 {
    erf(f64::from(x)) as f32
}

/// `x^y`.
pub extern "C" fn kiln_rt_powf(x: f32, y: f32) -> f32 {
    x.powf(y)
}

/// Sine.
pub extern "C" fn kiln_rt_sinf(x: f32) -> f32 {
    x.sin()
}

/// Cosine.
pub extern "C" fn kiln_rt_cosf(x: f32) -> f32 {
    x.cos()
}

/// Round toward negative infinity (Cranelift's `floor` libcall on CPUs without SSE4.1).
pub extern "C" fn kiln_rt_floorf(x: f32) -> f32 {
    x.floor()
}

/// Round toward positive infinity (Cranelift's `ceil` libcall on CPUs without SSE4.1).
pub extern "C" fn kiln_rt_ceilf(x: f32) -> f32 {
    x.ceil()
}

/// Round to the nearest integer, ties to even (Cranelift's `nearest` libcall).
pub extern "C" fn kiln_rt_nearestf(x: f32) -> f32 {
    x.round_ties_even()
}

/// Round toward zero (Cranelift's `trunc` libcall).
pub extern "C" fn kiln_rt_truncf(x: f32) -> f32 {
    x.trunc()
}

/// Fused multiply-add `x·y + z` (Cranelift's `fma` libcall on CPUs without FMA).
pub extern "C" fn kiln_rt_fmaf(x: f32, y: f32, z: f32) -> f32 {
    x.mul_add(y, z)
}

/// Exact GELU, `x·Φ(x) = ½·x·erfc(-x/√2)` (the erfc form has no cancellation for negative `x`).
pub extern "C" fn kiln_rt_gelu_erff(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * erfc(-x * std::f64::consts::FRAC_1_SQRT_2)) as f32
}

/// Tanh-approximated GELU, `½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, evaluated as
/// `x / (1 + e^(-2u))` (the same value, without cancellation for negative `x`).
pub extern "C" fn kiln_rt_gelu_tanhf(x: f32) -> f32 {
    let x = f64::from(x);
    let u = GELU_TANH_SCALE_F64 * (x + GELU_TANH_CUBIC_F64 * x * x * x);
    (x / (1.0 + (-2.0 * u).exp())) as f32
}

/// The names of every function in the table, in a stable order.
pub const NAMES: [&str; 14] = [
    "kiln_rt_expf",
    "kiln_rt_logf",
    "kiln_rt_tanhf",
    "kiln_rt_erff",
    "kiln_rt_powf",
    "kiln_rt_sinf",
    "kiln_rt_cosf",
    "kiln_rt_floorf",
    "kiln_rt_ceilf",
    "kiln_rt_nearestf",
    "kiln_rt_truncf",
    "kiln_rt_fmaf",
    "kiln_rt_gelu_erff",
    "kiln_rt_gelu_tanhf",
];

/// The address of the runtime function called `name`, if the runtime provides one.
pub fn lookup(name: &str) -> Option<usize> {
    type Unary = extern "C" fn(f32) -> f32;
    type Binary = extern "C" fn(f32, f32) -> f32;
    type Ternary = extern "C" fn(f32, f32, f32) -> f32;
    let addr = match name {
        "kiln_rt_expf" => kiln_rt_expf as Unary as usize,
        "kiln_rt_logf" => kiln_rt_logf as Unary as usize,
        "kiln_rt_tanhf" => kiln_rt_tanhf as Unary as usize,
        "kiln_rt_erff" => kiln_rt_erff as Unary as usize,
        "kiln_rt_powf" => kiln_rt_powf as Binary as usize,
        "kiln_rt_sinf" => kiln_rt_sinf as Unary as usize,
        "kiln_rt_cosf" => kiln_rt_cosf as Unary as usize,
        "kiln_rt_floorf" => kiln_rt_floorf as Unary as usize,
        "kiln_rt_ceilf" => kiln_rt_ceilf as Unary as usize,
        "kiln_rt_nearestf" => kiln_rt_nearestf as Unary as usize,
        "kiln_rt_truncf" => kiln_rt_truncf as Unary as usize,
        "kiln_rt_fmaf" => kiln_rt_fmaf as Ternary as usize,
        "kiln_rt_gelu_erff" => kiln_rt_gelu_erff as Unary as usize,
        "kiln_rt_gelu_tanhf" => kiln_rt_gelu_tanhf as Unary as usize,
        _ => return None,
    };
    Some(addr)
}

/// `erf(x)`: its Maclaurin series near zero (where `1 - erfc` would cancel), `1 - erfc(x)`
/// elsewhere.
fn erf(x: f64) -> f64 {
    if x.abs() < 0.5 {
        // erf(x) = 2/√π · Σ (-1)ⁿ x²ⁿ⁺¹ / (n!·(2n+1)); ten terms reach 1e-13 at |x| = 0.5.
        let x2 = x * x;
        let mut term = x;
        let mut sum = x;
        for n in 1..10 {
            let n = f64::from(n);
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        std::f64::consts::FRAC_2_SQRT_PI * sum
    } else {
        1.0 - erfc(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erfc to ~1e-14: 1 - series below 2, the continued fraction above (slow, test-only).
    fn reference_erfc(x: f64) -> f64 {
        if x < 0.0 {
            return 2.0 - reference_erfc(-x);
        }
        if x < 2.0 {
            let x2 = x * x;
            let (mut term, mut sum) = (x, x);
            for n in 1..200 {
                let n = f64::from(n);
                term *= -x2 / n;
                sum += term / (2.0 * n + 1.0);
            }
            return 1.0 - std::f64::consts::FRAC_2_SQRT_PI * sum;
        }
        let mut t = x;
        for n in (1..=2000).rev() {
            t = x + (f64::from(n) / 2.0) / t;
        }
        (-x * x).exp() / std::f64::consts::PI.sqrt() / t
    }

    #[test]
    #[cfg_attr(miri, ignore = "sweeps too many points for Miri")]
    fn erf_erfc_and_gelu_are_accurate() {
        let mut worst_erfc: f64 = 0.0;
        let mut worst_erf: f64 = 0.0;
        let mut worst_gelu: f64 = 0.0;
        for i in -1200..=1200 {
            let x = f64::from(i) * 0.01;
            let want = reference_erfc(x);
            worst_erfc = worst_erfc.max(((erfc(x) - want) / want).abs());
            let want_erf = 1.0 - want;
            if want_erf != 0.0 && x.abs() < 5.0 {
                worst_erf = worst_erf.max(((erf(x) - want_erf) / want_erf).abs());
            }
            let xf = x as f32;
            let g = f64::from(kiln_rt_gelu_erff(xf));
            let want_g = 0.5 * f64::from(xf) * reference_erfc(-f64::from(xf) / 2f64.sqrt());
            if want_g != 0.0 {
                worst_gelu = worst_gelu.max(((g - want_g) / want_g).abs());
            }
        }
        assert!(worst_erfc < 1.3e-7, "erfc relative error {worst_erfc:e}");
        assert!(worst_erf < 1.3e-7, "erf relative error {worst_erf:e}");
        assert!(worst_gelu < 3e-7, "gelu relative error {worst_gelu:e}");
        assert_eq!(kiln_rt_erff(0.0), 0.0);
        assert!(kiln_rt_erff(f32::NAN).is_nan());
        assert_eq!(kiln_rt_erff(f32::INFINITY), 1.0);
        assert_eq!(kiln_rt_erff(f32::NEG_INFINITY), -1.0);
    }

    #[test]
    fn gelu_tanh_matches_the_tanh_form() {
        for i in -80..=80 {
            let x = f64::from(i) * 0.1;
            let u = 0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x);
            let want = 0.5 * x * (1.0 + u.tanh());
            let got = f64::from(kiln_rt_gelu_tanhf(x as f32));
            assert!(
                (got - want).abs() <= 1e-6 * want.abs() + 1e-12,
                "x={x}: {got} vs {want}"
            );
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "Miri perturbs libm results on purpose: powf(2, 10) != 1024"
    )]
    fn every_name_resolves_and_others_do_not() {
        for name in NAMES {
            assert!(lookup(name).is_some(), "{name}");
        }
        assert_eq!(lookup("kiln_rt_nope"), None);
        assert_eq!(lookup("memcpy"), None);
        // The table entries compute what their names say.
        assert_eq!(kiln_rt_expf(0.0), 1.0);
        assert_eq!(kiln_rt_logf(1.0), 0.0);
        assert_eq!(kiln_rt_tanhf(0.0), 0.0);
        assert_eq!(kiln_rt_powf(2.0, 10.0), 1024.0);
        assert_eq!(kiln_rt_sinf(0.0), 0.0);
        assert_eq!(kiln_rt_cosf(0.0), 1.0);
        assert_eq!(kiln_rt_floorf(-1.5), -2.0);
        assert_eq!(kiln_rt_ceilf(-1.5), -1.0);
        assert_eq!(kiln_rt_nearestf(2.5), 2.0);
        assert_eq!(kiln_rt_truncf(-1.5), -1.0);
        assert_eq!(kiln_rt_fmaf(2.0, 3.0, 1.0), 7.0);
    }
}
