//! Row kernels against f64 references: every LayerNorm variant (skip none/Row/Full, beta,
//! sum output), RmsNorm, softmax and log-softmax, on the host's features and baseline x86-64.

use kiln_runtime::code::CodeModule;
use kiln_runtime::CpuFeatures;

use super::super::{Access, GenKernel, RowKernel, RowOp};
use super::*;

pub(super) fn row(name: &str, op: RowOp) -> GenKernel {
    GenKernel::Row(RowKernel {
        name: name.into(),
        op,
    })
}

pub(super) fn layer_norm(skip: Option<Access>, beta: bool, sum_out: bool) -> RowOp {
    RowOp::LayerNorm {
        eps: 1e-5,
        skip,
        beta,
        sum_out,
    }
}

/// Every LayerNorm variant, RmsNorm, softmax and log-softmax.
pub(super) fn row_kernels() -> Vec<GenKernel> {
    let mut out = Vec::new();
    for (s, skip) in [
        ("none", None),
        ("row", Some(Access::Row)),
        ("full", Some(Access::Full)),
    ] {
        for (beta, sum_out) in [(false, false), (false, true), (true, false), (true, true)] {
            let name = format!("ln_{s}_{}_{}", u8::from(beta), u8::from(sum_out));
            out.push(row(&name, layer_norm(skip, beta, sum_out)));
        }
    }
    out.push(row("rms", RowOp::RmsNorm { eps: 1e-6 }));
    out.push(row("softmax", RowOp::Softmax { log: false }));
    out.push(row("log_softmax", RowOp::Softmax { log: true }));
    out
}

/// The reference outputs of a row kernel for one row: y, and `x + skip` (LayerNorm's sum).
fn row_ref(op: RowOp, x: &[f64], skip: &[f64], gamma: &[f64], beta: &[f64]) -> [Vec<f64>; 2] {
    let n = x.len() as f64;
    match op {
        RowOp::LayerNorm { eps, .. } => {
            let s: Vec<f64> = x.iter().zip(skip).map(|(a, b)| a + b).collect();
            let mean = s.iter().sum::<f64>() / n;
            let var = s.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            let rstd = 1.0 / (var + f64::from(eps)).sqrt();
            let y = s
                .iter()
                .zip(gamma)
                .zip(beta)
                .map(|((v, g), b)| (v - mean) * rstd * g + b);
            [y.collect(), s]
        }
        RowOp::RmsNorm { eps } => {
            let rstd = 1.0 / (x.iter().map(|v| v * v).sum::<f64>() / n + f64::from(eps)).sqrt();
            [
                x.iter().zip(gamma).map(|(v, g)| v * rstd * g).collect(),
                vec![],
            ]
        }
        RowOp::Softmax { log } => {
            let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = x.iter().map(|v| (v - max).exp()).sum();
            let y = x.iter().map(|v| {
                if log {
                    v - max - total.ln()
                } else {
                    (v - max).exp() / total
                }
            });
            [y.collect(), vec![]]
        }
    }
}

/// Runs row kernel `k` on random data of shape `rows × cols` (x offset by `offset`) and checks
/// every output; returns the worst relative error.
fn check_row_kernel(
    module: &CodeModule,
    k: &RowKernel,
    shape: (usize, usize),
    offset: f32,
    tol: (f64, f64),
) -> f64 {
    let (rows, cols) = shape;
    let mut rng = Rng(0x1234_5678 + (rows * 1000 + cols) as u64);
    let x: Vec<f32> = rng
        .values_f32(rows * cols, -6.0, 6.0)
        .iter()
        .map(|v| v + offset)
        .collect();
    let mut args = vec![x];
    let (mut skip, mut beta, mut outputs) = (None, false, 1);
    match k.op {
        RowOp::LayerNorm {
            skip: s,
            beta: b,
            sum_out,
            ..
        } => {
            (skip, beta, outputs) = (s, b, 1 + usize::from(sum_out));
            if let Some(a) = s {
                args.push(rng.values_f32(
                    if a == Access::Full { rows * cols } else { cols },
                    -2.0,
                    2.0,
                ));
            }
            args.push(rng.values_f32(cols, 0.5, 1.5));
            if b {
                args.push(rng.values_f32(cols, -1.0, 1.0));
            }
        }
        RowOp::RmsNorm { .. } => args.push(rng.values_f32(cols, 0.5, 1.5)),
        RowOp::Softmax { .. } => {}
    }
    let n_in = args.len();
    args.extend((0..outputs).map(|_| vec![f32::NAN; rows * cols]));
    call(module, &k.name, &mut args, rows, cols);
    let wide = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
    let mut worst: f64 = 0.0;
    for r in 0..rows {
        let span = r * cols..(r + 1) * cols;
        let x = wide(&args[0][span.clone()]);
        let skip_v = match skip {
            Some(Access::Full) => wide(&args[1][span.clone()]),
            Some(_) => wide(&args[1]),
            None => vec![0.0; cols],
        };
        let g = 1 + usize::from(skip.is_some());
        let gamma = if n_in > 1 { wide(&args[g]) } else { vec![] };
        let beta_v = if beta {
            wide(&args[g + 1])
        } else {
            vec![0.0; cols]
        };
        let want = row_ref(k.op, &x, &skip_v, &gamma, &beta_v);
        for (j, out) in args[n_in..].iter().enumerate() {
            for (c, (&got, &w)) in out[span.clone()].iter().zip(&want[j]).enumerate() {
                let what = format!("{} [{rows}x{cols}] output {j} ({r},{c})", k.name);
                worst = worst.max(check(&what, got, w, tol.0, tol.1));
            }
        }
    }
    worst
}

fn run_rows(features: CpuFeatures) {
    let kernels = row_kernels();
    let module = load(&kernels, features);
    for kernel in &kernels {
        let GenKernel::Row(k) = kernel else {
            unreachable!()
        };
        // Softmax to 1e-6 relative; normalisations to 1e-5 (their outputs pass through zero).
        let tol = match k.op {
            RowOp::Softmax { log: false } => (1e-6, 1e-30),
            RowOp::Softmax { log: true } => (1e-6, 2e-6),
            _ => (1e-5, 1e-5),
        };
        let worst = SHAPES
            .iter()
            .map(|&shape| check_row_kernel(&module, k, shape, 0.0, tol))
            .fold(0.0, f64::max);
        eprintln!("{features}: {} worst relative error {worst:.2e}", k.name);
    }
}

#[test]
fn row_kernels_match_f64_reference_on_the_host() {
    run_rows(CpuFeatures::host());
}

#[test]
fn row_kernels_match_f64_reference_on_baseline_x86_64() {
    run_rows(CpuFeatures::NONE);
}

#[test]
fn layer_norm_of_rows_with_a_large_mean_keeps_its_precision() {
    // A one-pass E[x²] - E[x]² variance would lose every digit at an offset of 1000.
    let kernels = [row("ln", layer_norm(Some(Access::Row), true, true))];
    let module = load(&kernels, CpuFeatures::host());
    let GenKernel::Row(k) = &kernels[0] else {
        unreachable!()
    };
    check_row_kernel(&module, k, (4, 768), 1000.0, (1e-4, 1e-4));
}
