//! The code generator through its public API, as a transformer layer uses it: one object holding
//! bias + GELU, residual + LayerNorm (with the sum written out) and a masked softmax, compiled,
//! loaded by `kiln_runtime::code::CodeModule`, shared across threads and checked against f64
//! references. (Every op, access, shape class and error case is covered by the unit tests in
//! `src/codegen/tests/`.)

use std::sync::Arc;

use kiln_compiler::codegen::{
    compile_object, Access, ElementwiseKernel, EwBinary, EwNode, EwUnary, GenKernel, RowKernel,
    RowOp,
};
use kiln_runtime::code::CodeModule;
use kiln_runtime::CpuFeatures;

fn layer_kernels() -> Vec<GenKernel> {
    vec![
        GenKernel::Elementwise(ElementwiseKernel {
            name: "bias_gelu".into(),
            inputs: vec![Access::Full, Access::Row],
            nodes: vec![
                EwNode::Input(0),
                EwNode::Input(1),
                EwNode::Binary(EwBinary::Add, 0, 1),
                EwNode::Unary(EwUnary::GeluErf, 2),
            ],
            outputs: vec![3],
        }),
        GenKernel::Row(RowKernel {
            name: "residual_layer_norm".into(),
            op: RowOp::LayerNorm {
                eps: 1e-12,
                skip: Some(Access::Full),
                beta: true,
                sum_out: true,
            },
        }),
        GenKernel::Row(RowKernel {
            name: "masked_softmax".into(),
            op: RowOp::Softmax { log: false },
        }),
    ]
}

/// Deterministic pseudo-random values in [-2, 2).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 40) as f32 / (1u64 << 22) as f32 - 2.0
        })
        .collect()
}

/// Calls `name` with one pointer per buffer.
fn call(module: &CodeModule, name: &str, args: &mut [&mut [f32]], rows: usize, cols: usize) {
    let f = module.function(name).expect("kernel exported");
    let ptrs: Vec<*mut f32> = args.iter_mut().map(|a| a.as_mut_ptr()).collect();
    // SAFETY: the buffers have the lengths the kernel's arguments need for `rows × cols`
    // (checked by the callers below), and the module outlives the call.
    unsafe { f(ptrs.as_ptr(), rows as u64, cols as u64) }
}

fn close(got: &[f32], want: &[f64], rel: f64, abs: f64, what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs();
        assert!(err <= rel * w.abs() + abs, "{what}[{i}]: got {g}, want {w}");
    }
}

/// Runs the three kernels of a layer on `module` and checks them.
fn run_layer(module: &CodeModule, seed: u64) {
    let (tokens, hidden, ffn) = (9, 96, 387);
    // bias + exact GELU over the FFN activations.
    let x = data(tokens * ffn, seed);
    let bias = data(ffn, seed + 1);
    let mut y = vec![0.0; tokens * ffn];
    call(
        module,
        "bias_gelu",
        &mut [&mut x.clone(), &mut bias.clone(), &mut y],
        tokens,
        ffn,
    );
    let want: Vec<f64> = (0..tokens * ffn)
        .map(|i| {
            let v = f64::from(x[i]) + f64::from(bias[i % ffn]);
            v * 0.5 * (1.0 + erf(v / 2f64.sqrt()))
        })
        .collect();
    close(&y, &want, 1e-5, 1e-6, "bias_gelu");

    // residual + LayerNorm, writing the sum too.
    let (h, skip) = (
        data(tokens * hidden, seed + 2),
        data(tokens * hidden, seed + 3),
    );
    let (gamma, beta) = (data(hidden, seed + 4), data(hidden, seed + 5));
    let (mut out, mut sum) = (vec![0.0; tokens * hidden], vec![0.0; tokens * hidden]);
    let mut args = [
        &mut h.clone()[..],
        &mut skip.clone(),
        &mut gamma.clone(),
        &mut beta.clone(),
        &mut out,
        &mut sum,
    ];
    call(module, "residual_layer_norm", &mut args, tokens, hidden);
    for r in 0..tokens {
        let s: Vec<f64> = (0..hidden)
            .map(|c| f64::from(h[r * hidden + c]) + f64::from(skip[r * hidden + c]))
            .collect();
        let mean = s.iter().sum::<f64>() / hidden as f64;
        let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / hidden as f64;
        let want: Vec<f64> = (0..hidden)
            .map(|c| {
                (s[c] - mean) / (var + 1e-12).sqrt() * f64::from(gamma[c]) + f64::from(beta[c])
            })
            .collect();
        let span = r * hidden..(r + 1) * hidden;
        close(&out[span.clone()], &want, 1e-5, 1e-5, "layer_norm");
        close(&sum[span], &s, 1e-7, 0.0, "sum");
    }

    // Softmax over attention scores with a causal mask of -inf.
    let (heads, seq) = (3, tokens);
    let mut scores = data(heads * seq * seq, seed + 6);
    for (i, v) in scores.iter_mut().enumerate() {
        if i % seq > (i / seq) % seq {
            *v = f32::NEG_INFINITY;
        }
    }
    let mut probs = vec![0.0; scores.len()];
    call(
        module,
        "masked_softmax",
        &mut [&mut scores.clone(), &mut probs],
        heads * seq,
        seq,
    );
    for (row, got) in scores.chunks(seq).zip(probs.chunks(seq)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f64> = row
            .iter()
            .map(|&v| (f64::from(v) - f64::from(max)).exp())
            .collect();
        let total: f64 = e.iter().sum();
        let want: Vec<f64> = e.iter().map(|v| v / total).collect();
        close(got, &want, 1e-6, 0.0, "softmax");
    }
}

/// erf by its Maclaurin series (accurate to ~1e-13 on the |x| < 3 the data here produce).
fn erf(x: f64) -> f64 {
    assert!(x.abs() < 3.0, "reference erf only covers |x| < 3");
    let (mut term, mut sum) = (x, x);
    for n in 1..200 {
        term *= -x * x / f64::from(n);
        sum += term / (2.0 * f64::from(n) + 1.0);
    }
    sum * std::f64::consts::FRAC_2_SQRT_PI
}

#[test]
fn a_transformer_layers_kernels_run_from_one_object_on_several_threads() {
    let object = compile_object(&layer_kernels(), CpuFeatures::host()).unwrap();
    let module = Arc::new(CodeModule::load(&object).unwrap());
    let names: Vec<&str> = module.symbols().collect();
    assert_eq!(
        names,
        ["bias_gelu", "masked_softmax", "residual_layer_norm"]
    );
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let module = Arc::clone(&module);
            std::thread::spawn(move || run_layer(&module, 100 * t + 1))
        })
        .collect();
    for t in threads {
        t.join().expect("layer thread");
    }
}

#[test]
fn compilation_is_deterministic_and_portable_objects_load_here() {
    let kernels = layer_kernels();
    let a = compile_object(&kernels, CpuFeatures::NONE).unwrap();
    let b = compile_object(&kernels, CpuFeatures::NONE).unwrap();
    assert_eq!(a, b, "same kernels, same object bytes");
    run_layer(&CodeModule::load(&a).unwrap(), 7);
}
