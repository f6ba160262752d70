//! Elementwise kernels against f64 references: every access, unary and binary op, fused and
//! spelled-out GELUs, several shapes (columns not a multiple of 4, one column, one row), on the
//! host's features and on baseline x86-64; special values, GELU tails, empty and in-place calls.

use kiln_runtime::CpuFeatures;

use super::super::{Access, ElementwiseKernel, EwNode, EwUnary, GenKernel, RowOp};
use super::rows::row;
use super::*;

/// Elementwise kernels covering every access, every unary and binary op, chains and multiple
/// outputs; each with its tolerance (rel, abs).
fn elementwise_kernels() -> Vec<(GenKernel, f64, f64)> {
    let mut out = vec![
        (ew("bias_add", "F R", "x0 x1 add(0,1)", "2"), 1e-6, 0.0),
        (ew("residual_add", "F F", "x0 x1 add(0,1)", "2"), 1e-6, 0.0),
        (ew("scalar_mul", "F S", "x0 x1 mul(0,1)", "2"), 1e-6, 0.0),
        (ew("col_sub", "F C", "x0 x1 sub(0,1)", "2"), 1e-6, 0.0),
        // bias + exact GELU, and the same spelled out: x·0.5·(1 + erf(x·(1/√2))).
        (
            ew("bias_gelu_erf", "F R", "x0 x1 add(0,1) geluerf(2)", "3"),
            1e-6,
            1e-12,
        ),
        (
            ew(
                "gelu_erf_chain",
                "F",
                "x0 0.70710677 mul(0,1) erf(2) 1 add(3,4) 0.5 mul(0,6) mul(7,5)",
                "8",
            ),
            1e-5,
            1e-6,
        ),
        // tanh GELU, fused and spelled out: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
        (ew("gelu_tanh", "F", "x0 gelutanh(0)", "1"), 1e-6, 1e-12),
        (
            ew(
                "gelu_tanh_chain",
                "F",
                "x0 3 pow(0,1) 0.044715 mul(2,3) add(0,4) 0.7978846 mul(5,6) tanh(7) 1 add(8,9) \
                 0.5 mul(0,11) mul(12,10)",
                "13",
            ),
            1e-5,
            1e-6,
        ),
        (ew("silu", "F", "x0 sigmoid(0) mul(0,1)", "2"), 1e-6, 1e-12),
        (
            ew("exp_log", "F", "x0 exp(0) 1 add(1,2) log(3)", "4"),
            1e-6,
            1e-7,
        ),
        // Three outputs, Row + Col + Scalar together, an unused input, and a dead node.
        (
            ew(
                "multi_out",
                "F R C S F",
                "x0 x1 add(0,1) x2 mul(2,3) x3 max(4,5) exp(6) relu(2)",
                "6 8 2",
            ),
            1e-6,
            0.0,
        ),
        (ew("constant", "", "2.5 4 div(0,1)", "2"), 0.0, 0.0),
    ];
    for op in unary_ops() {
        // Log, roots and reciprocals see |x| + 0.5.
        let name = format!("{op:?}").to_lowercase();
        let positive = matches!(
            op,
            EwUnary::Log | EwUnary::Sqrt | EwUnary::Rsqrt | EwUnary::Recip
        );
        let nodes = if positive {
            format!("x0 abs(0) 0.5 add(1,2) {name}(3)")
        } else {
            format!("x0 {name}(0)")
        };
        let last = (nodes.split_whitespace().count() - 1).to_string();
        out.push((ew(&format!("unary_{name}"), "F", &nodes, &last), 1e-6, 1e-7));
    }
    for op in binary_ops() {
        let name = format!("{op:?}").to_lowercase();
        let nodes = format!("x0 abs(0) 0.5 add(1,2) x1 {name}(3,4)");
        out.push((
            ew(&format!("binary_{name}"), "F R", &nodes, "5"),
            1e-6,
            1e-7,
        ));
    }
    out
}

/// Reference value of elementwise node `id` at `(r, c)`.
fn ew_ref(k: &ElementwiseKernel, inputs: &[Vec<f32>], id: u32, at: (usize, usize, usize)) -> f64 {
    let (r, c, cols) = at;
    match k.nodes[id as usize] {
        EwNode::Input(i) => {
            let i = i as usize;
            let index = match k.inputs[i] {
                Access::Full => r * cols + c,
                Access::Row => c,
                Access::Col => r,
                Access::Scalar => 0,
            };
            f64::from(inputs[i][index])
        }
        EwNode::Const(v) => f64::from(v),
        EwNode::Unary(op, a) => unary_ref(op, ew_ref(k, inputs, a, at)),
        EwNode::Binary(op, a, b) => {
            binary_ref(op, ew_ref(k, inputs, a, at), ew_ref(k, inputs, b, at))
        }
    }
}

fn run_elementwise(features: CpuFeatures) {
    let kernels = elementwise_kernels();
    let list: Vec<GenKernel> = kernels.iter().map(|(k, _, _)| k.clone()).collect();
    let module = load(&list, features);
    assert_eq!(module.symbols().count(), list.len());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (kernel, rel, abs) in &kernels {
        let GenKernel::Elementwise(k) = kernel else {
            unreachable!()
        };
        let mut worst: f64 = 0.0;
        for (rows, cols) in SHAPES {
            let sizes = k.inputs.iter().map(|a| match a {
                Access::Full => rows * cols,
                Access::Row => cols,
                Access::Col => rows,
                Access::Scalar => 1,
            });
            let mut args: Vec<Vec<f32>> = sizes.map(|n| rng.values_f32(n, -4.0, 4.0)).collect();
            args.extend(k.outputs.iter().map(|_| vec![f32::NAN; rows * cols]));
            call(&module, &k.name, &mut args, rows, cols);
            let (inputs, outputs) = args.split_at(k.inputs.len());
            for (o, &node) in outputs.iter().zip(&k.outputs) {
                for (i, &got) in o.iter().enumerate() {
                    let want = ew_ref(k, inputs, node, (i / cols, i % cols, cols));
                    let what = format!("{} [{rows}x{cols}] element {i} node {node}", k.name);
                    worst = worst.max(check(&what, got, want, *rel, *abs));
                }
            }
        }
        eprintln!("{features}: {} worst relative error {worst:.2e}", k.name);
    }
}

#[test]
fn elementwise_kernels_match_f64_reference_on_the_host() {
    run_elementwise(CpuFeatures::host());
}

#[test]
fn elementwise_kernels_match_f64_reference_on_baseline_x86_64() {
    // No SSE4.1: floor/ceil become calls to the runtime's kiln_rt_floorf/ceilf.
    run_elementwise(CpuFeatures::NONE);
}

#[test]
fn special_values_and_masked_softmax_rows() {
    let kernels = [
        ew("exp", "F", "x0 exp(0)", "1"),
        ew("sigmoid", "F", "x0 sigmoid(0)", "1"),
        ew("relu", "F", "x0 relu(0)", "1"),
        ew("max1", "F", "x0 1 max(0,1)", "2"),
        row("softmax", RowOp::Softmax { log: false }),
    ];
    let module = load(&kernels, CpuFeatures::host());
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let x = vec![-inf, inf, nan, 100.0, -100.0, 88.7, -87.0, 0.0, -0.0];
    let run = |name: &str| {
        let mut args = vec![x.clone(), vec![0.5; x.len()]];
        call(&module, name, &mut args, 1, x.len());
        args.pop().unwrap_or_default()
    };
    let e = run("exp");
    assert_eq!((e[0], e[1], e[3]), (0.0, inf, inf));
    assert!(e[2].is_nan());
    check("exp(-100)", e[4], (-100f64).exp(), 0.02, 0.0); // subnormal: only a few bits
    check("exp(88.7)", e[5], f64::from(88.7f32).exp(), 1e-6, 0.0);
    check("exp(-87)", e[6], (-87f64).exp(), 1e-6, 0.0);
    assert_eq!(&e[7..], &[1.0, 1.0]);
    let s = run("sigmoid");
    assert_eq!((s[0], s[1]), (0.0, 1.0));
    assert!(s[2].is_nan());
    let r = run("relu");
    assert_eq!((r[0], r[1], r[4]), (0.0, inf, 0.0));
    assert!(r[2].is_nan());
    assert!(run("max1")[2].is_nan(), "max propagates NaN");
    // A softmax row with masked (-inf) entries gives them exactly 0.
    let mut args = vec![vec![-inf, 1.0, -inf, 2.0, 3.0], vec![nan; 5]];
    call(&module, "softmax", &mut args, 1, 5);
    assert_eq!((args[1][0], args[1][2]), (0.0, 0.0));
    assert!((args[1].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    // A NaN anywhere in a row makes the whole row NaN.
    let mut args = vec![vec![1.0, nan, 2.0, 0.5, 0.0, -1.0], vec![0.0; 6]];
    call(&module, "softmax", &mut args, 1, 6);
    assert!(args[1].iter().all(|v| v.is_nan()), "{:?}", args[1]);
}

#[test]
fn gelus_are_accurate_across_their_tails() {
    let kernels = [
        ew("gelu_erf", "F", "x0 geluerf(0)", "1"),
        ew("gelu_tanh", "F", "x0 gelutanh(0)", "1"),
    ];
    for features in [CpuFeatures::host(), CpuFeatures::NONE] {
        let module = load(&kernels, features);
        let mut x: Vec<f32> = (-1500..=1500).map(|i| i as f32 * 0.01).collect();
        x.extend([1e-6, -1e-6, 0.0, 30.0, -30.0, f32::INFINITY, f32::NAN]);
        for (name, op) in [
            ("gelu_erf", EwUnary::GeluErf),
            ("gelu_tanh", EwUnary::GeluTanh),
        ] {
            let mut args = vec![x.clone(), vec![0.0; x.len()]];
            call(&module, name, &mut args, 1, x.len());
            let mut worst: f64 = 0.0;
            for (&xi, &got) in x.iter().zip(&args[1]) {
                let want = unary_ref(op, f64::from(xi));
                let rel = check(&format!("{name}({xi})"), got, want, 1e-6, 1e-40);
                if want.abs() > 1e-37 {
                    worst = worst.max(rel); // results in f32's normal range
                }
            }
            eprintln!("{features}: {name} on [-15, 15]: worst relative error {worst:.2e}");
        }
    }
}

#[test]
fn empty_shapes_and_in_place_calls() {
    let kernels = [
        ew("add", "F F", "x0 x1 add(0,1)", "2"),
        ew("scale", "S R", "x0 x1 mul(0,1)", "2"),
        row("softmax", RowOp::Softmax { log: false }),
    ];
    let module = load(&kernels, CpuFeatures::host());
    // Zero rows or columns: nothing is read or written (the buffers are empty).
    for (rows, cols) in [(0, 5), (5, 0), (0, 0)] {
        let mut args = vec![Vec::new(), Vec::new(), Vec::new()];
        call(&module, "add", &mut args, rows, cols);
        call(&module, "scale", &mut args, rows, cols);
        call(&module, "softmax", &mut args[..2], rows, cols);
    }
    // In place: the output is the first input.
    let mut a: Vec<f32> = (0..10).map(|i| i as f32).collect();
    let b: Vec<f32> = vec![0.5; 10];
    let f = module.function("add").unwrap();
    let ptrs = [a.as_mut_ptr(), b.as_ptr().cast_mut(), a.as_mut_ptr()];
    // SAFETY: three pointers to 10 floats each; the kernel reads and writes element i of the
    // aliased buffer in the same iteration, and never writes `b`.
    unsafe { f(ptrs.as_ptr(), 2, 5) };
    assert_eq!(a, (0..10).map(|i| i as f32 + 0.5).collect::<Vec<_>>());
    let mut x = vec![1.0f32, 2.0, 3.0];
    let f = module.function("softmax").unwrap();
    let ptrs = [x.as_mut_ptr(), x.as_mut_ptr()];
    // SAFETY: one 3-float buffer as both input and output; each pass reads an element before
    // (or without) writing it, never past the row.
    unsafe { f(ptrs.as_ptr(), 1, 3) };
    let total: f32 = x.iter().sum();
    assert!(
        (total - 1.0).abs() < 1e-6 && x[2] > x[1] && x[1] > x[0],
        "{x:?}"
    );
}
