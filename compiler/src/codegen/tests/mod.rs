//! Unit tests of the code generator: kernels compiled by Cranelift, loaded by the runtime's
//! `CodeModule`, called on random data and compared with f64 references (this file holds the
//! shared helpers and reference math).

mod elementwise;
mod objects;
mod rows;

use kiln_runtime::code::CodeModule;
use kiln_runtime::test_util::Rng;
use kiln_runtime::CpuFeatures;

use super::{compile_object, Access, ElementwiseKernel, EwBinary, EwNode, EwUnary, GenKernel};

const SHAPES: [(usize, usize); 9] = [
    (1, 1),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 8),
    (5, 13),
    (7, 1),
    (3, 64),
    (2, 771),
];

/// Calls kernel `name` with `args` (inputs, then outputs).
fn call(module: &CodeModule, name: &str, args: &mut [Vec<f32>], rows: usize, cols: usize) {
    let f = module
        .function(name)
        .unwrap_or_else(|| panic!("`{name}` not exported"));
    let ptrs: Vec<*mut f32> = args.iter_mut().map(|a| a.as_mut_ptr()).collect();
    // SAFETY: every buffer is as long as the kernel reads or writes for `rows × cols` (Full:
    // rows·cols, Row: cols, Col: rows, Scalar: 1), `ptrs` has one pointer per argument, and the
    // module outlives the call.
    unsafe { f(ptrs.as_ptr(), rows as u64, cols as u64) }
}

fn load(kernels: &[GenKernel], features: CpuFeatures) -> CodeModule {
    CodeModule::load(&compile_object(kernels, features).unwrap()).unwrap()
}

/// erf by its Maclaurin series (accurate to ~1e-15 for |x| < 2).
fn erf_series(x: f64) -> f64 {
    let (mut term, mut sum) = (x, x);
    for n in 1..120 {
        term *= -x * x / f64::from(n);
        sum += term / (2.0 * f64::from(n) + 1.0);
    }
    sum * std::f64::consts::FRAC_2_SQRT_PI
}

/// erfc to ~1e-13 relative, tails included: the continued fraction from 2 on.
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        return 1.0 - erf_series(x);
    }
    let mut t = x;
    for n in (1..=400).rev() {
        t = x + (f64::from(n) / 2.0) / t;
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / t
}

fn unary_ops() -> [EwUnary; 17] {
    use EwUnary::*;
    [
        Neg, Abs, Exp, Log, Sqrt, Rsqrt, Recip, Tanh, Erf, Sigmoid, Relu, GeluErf, GeluTanh, Floor,
        Ceil, Sin, Cos,
    ]
}

fn binary_ops() -> [EwBinary; 7] {
    use EwBinary::*;
    [Add, Sub, Mul, Div, Max, Min, Pow]
}

fn unary_ref(op: EwUnary, x: f64) -> f64 {
    let u = 0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x);
    match op {
        EwUnary::Neg => -x,
        EwUnary::Abs => x.abs(),
        EwUnary::Exp => x.exp(),
        EwUnary::Log => x.ln(),
        EwUnary::Sqrt => x.sqrt(),
        EwUnary::Rsqrt => 1.0 / x.sqrt(),
        EwUnary::Recip => 1.0 / x,
        EwUnary::Tanh => x.tanh(),
        EwUnary::Erf if x.abs() < 2.0 => erf_series(x),
        EwUnary::Erf => x.signum() * (1.0 - erfc(x.abs())),
        EwUnary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        EwUnary::Relu => x.max(0.0),
        // ½x(1 + erf(x/√2)) and ½x(1 + tanh u) in forms without cancellation for x < 0.
        EwUnary::GeluErf => 0.5 * x * erfc(-x / 2f64.sqrt()),
        EwUnary::GeluTanh => x / (1.0 + (-2.0 * u).exp()),
        EwUnary::Floor => x.floor(),
        EwUnary::Ceil => x.ceil(),
        EwUnary::Sin => x.sin(),
        EwUnary::Cos => x.cos(),
    }
}

fn binary_ref(op: EwBinary, a: f64, b: f64) -> f64 {
    match op {
        EwBinary::Add => a + b,
        EwBinary::Sub => a - b,
        EwBinary::Mul => a * b,
        EwBinary::Div => a / b,
        EwBinary::Max => a.max(b),
        EwBinary::Min => a.min(b),
        EwBinary::Pow => a.powf(b),
    }
}

/// Asserts `got` matches `want` within `rel·|want| + abs`, returning the relative error.
fn check(what: &str, got: f32, want: f64, rel: f64, abs: f64) -> f64 {
    if want.is_nan() {
        assert!(got.is_nan(), "{what}: got {got}, want NaN");
        return 0.0;
    }
    let err = (f64::from(got) - want).abs();
    let ok = err <= rel * want.abs() + abs || f64::from(got) == want;
    assert!(ok, "{what}: got {got}, want {want} (error {err:e})");
    if want == 0.0 {
        0.0
    } else {
        err / want.abs()
    }
}

/// An elementwise kernel from a compact description: accesses as letters (`"F R C S"`), nodes
/// as tokens (`x0` input, `2.5` constant, `exp(1)`, `add(0,1)` with ops spelled as their
/// lower-cased variant names), outputs as node ids.
fn ew(name: &str, accesses: &str, nodes: &str, outputs: &str) -> GenKernel {
    let inputs = accesses.split_whitespace().map(|a| match a {
        "F" => Access::Full,
        "R" => Access::Row,
        "C" => Access::Col,
        _ => Access::Scalar,
    });
    let node = |token: &str| -> EwNode {
        if let Some(i) = token.strip_prefix('x') {
            return EwNode::Input(i.parse().unwrap());
        }
        let Some((op, args)) = token.trim_end_matches(')').split_once('(') else {
            return EwNode::Const(token.parse().unwrap());
        };
        let ids: Vec<u32> = args.split(',').map(|a| a.parse().unwrap()).collect();
        let named = |d: String| d.to_lowercase() == op;
        match ids[..] {
            [a] => EwNode::Unary(
                unary_ops()
                    .into_iter()
                    .find(|u| named(format!("{u:?}")))
                    .unwrap(),
                a,
            ),
            [a, b] => EwNode::Binary(
                binary_ops()
                    .into_iter()
                    .find(|u| named(format!("{u:?}")))
                    .unwrap(),
                a,
                b,
            ),
            _ => panic!("bad node `{token}`"),
        }
    };
    GenKernel::Elementwise(ElementwiseKernel {
        name: name.into(),
        inputs: inputs.collect(),
        nodes: nodes.split_whitespace().map(node).collect(),
        outputs: outputs
            .split_whitespace()
            .map(|o| o.parse().unwrap())
            .collect(),
    })
}
