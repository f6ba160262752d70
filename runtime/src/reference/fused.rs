//! Fused ops: LayerNorm, SkipLayerNorm, RmsNorm, MatMulBias, Gelu, Attention, each written out
//! from its definition.
//!
//! Everything is computed in f64 and rounded to the input's float dtype once. Attention lives in
//! its own file (`attention.rs`); this one holds the normalisations, MatMulBias and GELU.

use super::elementwise::element_count;
use super::special::{erfc, sigmoid};
use super::util::{broadcast_indices, broadcast_shapes, normalize_axis, KResult};
use crate::ops::{GeluApprox, Op};
use crate::{DType, Tensor};

/// Checks that `t` is a float tensor of dtype `want` (when given), naming it in errors.
pub(super) fn check_float(name: &str, t: &Tensor, want: Option<DType>) -> KResult<()> {
    let dt = t.dtype();
    match want {
        Some(w) if w != dt => Err(format!("{name} has dtype {dt}, expected {w}")),
        _ if !dt.is_float() => Err(format!("{name} must be a float tensor, got {dt}")),
        _ => Ok(()),
    }
}

/// The values of `t` broadcast (one-directionally) to `shape`, row-major.
pub(super) fn broadcast_to(name: &str, t: &Tensor, shape: &[usize]) -> KResult<Vec<f64>> {
    element_count(shape)?;
    element_count(t.shape())?;
    let fits = broadcast_shapes(&[t.shape(), shape]).is_ok_and(|s| s == shape);
    if !fits {
        return Err(format!(
            "{name} of shape {:?} does not broadcast to {shape:?}",
            t.shape()
        ));
    }
    let v = t.to_f64_vec();
    Ok(broadcast_indices(t.shape(), shape)
        .into_iter()
        .map(|i| v[i])
        .collect())
}

pub(super) fn make(dt: DType, shape: Vec<usize>, v: &[f64]) -> KResult<Tensor> {
    Tensor::from_f64_values(dt, shape, v).map_err(|e| e.to_string())
}

/// Normalises each run of `inner` consecutive elements of `x` (the trailing axes) with
/// `norm(run) -> (shift, divisor)`: `y = (x - shift) / divisor * gamma + beta`, where gamma and
/// beta hold one value per position in the run.
fn normalize_runs(
    x: &[f64],
    inner: usize,
    gamma: &[f64],
    beta: &[f64],
    norm: impl Fn(&[f64]) -> (f64, f64),
) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    if inner == 0 {
        return out;
    }
    for run in x.chunks(inner) {
        let (shift, div) = norm(run);
        for (j, &v) in run.iter().enumerate() {
            out.push((v - shift) / div * gamma[j] + beta[j]);
        }
    }
    out
}

/// The scale, the optional shift and the attributes of a LayerNorm.
#[derive(Debug, Clone, Copy)]
struct LayerNormArgs<'a> {
    gamma: &'a Tensor,
    beta: Option<&'a Tensor>,
    /// The first normalised axis.
    axis: i64,
    eps: f64,
}

/// LayerNorm of the f64 values `xv` of shape `shape` (gamma and beta of dtype `dt`), over
/// the axes `axis..rank`; unrounded. `op` names the op in errors.
fn layer_norm_values(
    op: &str,
    xv: &[f64],
    shape: &[usize],
    dt: DType,
    args: LayerNormArgs<'_>,
) -> KResult<Vec<f64>> {
    let LayerNormArgs {
        gamma,
        beta,
        axis,
        eps,
    } = args;
    check_float(&format!("{op} gamma"), gamma, Some(dt))?;
    let ax = normalize_axis(axis, shape.len())?;
    // gamma and beta broadcast to the normalised dims x.shape[ax..].
    let norm_dims = &shape[ax..];
    let g = broadcast_to(&format!("{op} gamma"), gamma, norm_dims)?;
    let b = match beta {
        Some(t) => {
            check_float(&format!("{op} beta"), t, Some(dt))?;
            broadcast_to(&format!("{op} beta"), t, norm_dims)?
        }
        None => vec![0.0; g.len()],
    };
    // The normalised axes ax..rank are the trailing ones, so each group is a contiguous run.
    let inner: usize = norm_dims.iter().product();
    Ok(normalize_runs(xv, inner, &g, &b, |run| {
        let n = run.len() as f64;
        let mean = run.iter().sum::<f64>() / n;
        let var = run.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        (mean, (var + eps).sqrt())
    }))
}

pub fn layer_norm(
    x: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    axis: i64,
    eps: f64,
) -> KResult<Tensor> {
    let dt = x.dtype();
    check_float("layer_norm input", x, None)?;
    let shape = x.shape();
    let xv = x.to_f64_vec();
    let args = LayerNormArgs {
        gamma,
        beta,
        axis,
        eps,
    };
    let out = layer_norm_values("layer_norm", &xv, shape, dt, args)?;
    make(dt, shape.to_vec(), &out)
}

/// `(y, sum)` with `sum = x + skip` (skip broadcast to x's shape) and `y` the LayerNorm of the
/// unrounded sum; each rounded to x's dtype once.
pub fn skip_layer_norm(
    x: &Tensor,
    skip: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    axis: i64,
    eps: f64,
) -> KResult<Vec<Tensor>> {
    let dt = x.dtype();
    check_float("skip_layer_norm input", x, None)?;
    check_float("skip_layer_norm skip", skip, Some(dt))?;
    let shape = x.shape();
    let s = broadcast_to("skip_layer_norm skip", skip, shape)?;
    let sum: Vec<f64> = x.to_f64_vec().iter().zip(&s).map(|(a, b)| a + b).collect();
    let args = LayerNormArgs {
        gamma,
        beta,
        axis,
        eps,
    };
    let y = layer_norm_values("skip_layer_norm", &sum, shape, dt, args)?;
    Ok(vec![
        make(dt, shape.to_vec(), &y)?,
        make(dt, shape.to_vec(), &sum)?,
    ])
}

/// `matmul(a, b) + bias` (bias broadcast to the product's shape), rounded once.
pub fn matmul_bias(a: &Tensor, b: &Tensor, bias: &Tensor) -> KResult<Tensor> {
    let dt = a.dtype();
    check_float("matmul_bias input", a, None)?;
    check_float("matmul_bias bias", bias, Some(dt))?;
    let (shape, mut y) = super::linalg::matmul_f64(a, b)?;
    let bv = broadcast_to("matmul_bias bias", bias, &shape)?;
    for (v, c) in y.iter_mut().zip(bv) {
        *v += c;
    }
    make(dt, shape, &y)
}

pub fn rms_norm(x: &Tensor, gamma: &Tensor, eps: f64) -> KResult<Tensor> {
    let dt = x.dtype();
    check_float("rms_norm input", x, None)?;
    check_float("rms_norm gamma", gamma, Some(dt))?;
    let shape = x.shape();
    let Some(&inner) = shape.last() else {
        return Err("rms_norm needs an input of rank ≥ 1".to_string());
    };
    let g = broadcast_to("rms_norm gamma", gamma, &[inner])?;
    let zeros = vec![0.0; g.len()];
    let out = normalize_runs(&x.to_f64_vec(), inner, &g, &zeros, |run| {
        let mean_sq = run.iter().map(|v| v * v).sum::<f64>() / run.len() as f64;
        (0.0, (mean_sq + eps).sqrt())
    });
    make(dt, shape.to_vec(), &out)
}

/// One GELU value, evaluated without cancellation for very negative x: `1 + erf(x/√2)` as
/// `erfc(-x/√2)`, and `1 + tanh(u)` as the identical `2·sigmoid(2u)`. Both formulas give -0 at
/// -inf (their limit) instead of the NaN of `-inf · 0`.
fn gelu1(x: f64, approx: GeluApprox) -> f64 {
    if x == f64::NEG_INFINITY {
        return -0.0;
    }
    match approx {
        GeluApprox::None => 0.5 * x * erfc(-x / std::f64::consts::SQRT_2),
        GeluApprox::Tanh => {
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
            x * sigmoid(2.0 * u)
        }
    }
}

pub fn gelu(x: &Tensor, approx: GeluApprox) -> KResult<Tensor> {
    check_float("gelu input", x, None)?;
    let out: Vec<f64> = x
        .to_f64_vec()
        .into_iter()
        .map(|v| gelu1(v, approx))
        .collect();
    make(x.dtype(), x.shape().to_vec(), &out)
}

/// `op` is an `Op::Attention`; `x` holds its inputs in the documented order.
pub fn attention(op: &Op, x: &[&Tensor]) -> KResult<Tensor> {
    super::attention::attention(op, x)
}

#[cfg(test)]
mod tests {
    use super::{layer_norm, matmul_bias, rms_norm, skip_layer_norm};
    use crate::{DType, Tensor};

    fn t(dt: DType, shape: &[usize], v: &[f64]) -> Tensor {
        Tensor::from_f64_values(dt, shape.to_vec(), v).unwrap()
    }

    fn close(got: &[f64], want: &[f64], rel: f64) {
        assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= rel * w.abs(), "got {got:?}, want {want:?}");
        }
    }

    /// Deterministic, irregular test values in [-1, 1].
    fn values(n: usize, seed: usize) -> Vec<f64> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104729) % 1009) as f64 / 504.0 - 1.0)
            .collect()
    }

    #[test]
    fn layer_norm_matches_numpy_and_manual() {
        // numpy: m = x.mean(-1), v = ((x-m)**2).mean(-1), (x-m)/sqrt(v+1e-5)*g + b.
        let x = t(
            DType::F64,
            &[2, 4],
            &[1.0, 2.0, 4.0, -1.0, 0.5, 0.5, 0.5, 0.5],
        );
        let g = t(DType::F64, &[4], &[1.0, 0.5, 2.0, -1.0]);
        let b = t(DType::F64, &[4], &[0.1, 0.2, 0.3, 0.4]);
        let y = layer_norm(&x, &g, Some(&b), -1, 1e-5).unwrap().to_f64_vec();
        #[rustfmt::skip]
        let want = [-0.17734967142114058, 0.33867483571057033, 3.073496714211406,
                    1.786748357105703, 0.1, 0.2, 0.3, 0.4];
        close(&y, &want, 1e-14);
        // Over axes 1..3 of a [2, 3, 2] f32 tensor, gamma [3, 2], no beta; manual computation.
        let x32 = t(DType::F32, &[2, 3, 2], &values(12, 1));
        let g32 = t(DType::F32, &[3, 2], &values(6, 2));
        let y = layer_norm(&x32, &g32, None, 1, 1e-3).unwrap();
        assert_eq!((y.shape(), y.dtype()), (&[2, 3, 2][..], DType::F32));
        let (xr, gr) = (x32.to_f64_vec(), g32.to_f64_vec());
        let mut want = Vec::new();
        for run in xr.chunks(6) {
            let mean = run.iter().sum::<f64>() / 6.0;
            let var = run.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0;
            for (v, g) in run.iter().zip(&gr) {
                want.push(((v - mean) / (var + 1e-3).sqrt() * g) as f32 as f64);
            }
        }
        close(&y.to_f64_vec(), &want, 1e-6);
        let bad = t(DType::F32, &[4], &[1.0; 4]);
        let err = layer_norm(&x32, &bad, None, 1, 1e-3).unwrap_err();
        assert!(err.contains("broadcast"), "{err}");
        assert!(layer_norm(&x32, &g, None, 1, 1e-3)
            .unwrap_err()
            .contains("dtype"));
        assert!(layer_norm(&x32, &g32, Some(&g), 1, 1e-3)
            .unwrap_err()
            .contains("dtype"));
        assert!(layer_norm(&x32, &x32, None, 3, 0.0).is_err());
        // gamma/beta broadcast to the normalised dims only: [3, 2] is too big for axis -1, and
        // a [2] gamma stretches over [3, 2].
        assert!(layer_norm(&x32, &g32, None, -1, 1e-3).is_err());
        let g2 = t(DType::F32, &[2], &[1.0, -1.0]);
        let y2 = layer_norm(&x32, &g2, Some(&g2), 1, 1e-3)
            .unwrap()
            .to_f64_vec();
        let y1 = layer_norm(&x32, &t(DType::F32, &[], &[1.0]), None, 1, 1e-3).unwrap();
        let y1 = y1.to_f64_vec();
        for (i, (a, n)) in y2.iter().zip(&y1).enumerate() {
            // n·1 + 1 at even positions, n·(-1) + (-1) at odd ones.
            let want = if i % 2 == 0 { n + 1.0 } else { -n - 1.0 };
            assert!((a - want).abs() < 1e-6, "{i}: {a} vs {want}");
        }
    }

    #[test]
    fn rms_norm_matches_numpy_and_manual() {
        // numpy: x / sqrt((x*x).mean(-1) + 1e-6) * g.
        let x = t(
            DType::F64,
            &[2, 4],
            &[1.0, 2.0, 4.0, -1.0, 0.5, 0.5, 0.5, 0.5],
        );
        let g = t(DType::F64, &[4], &[1.0, 0.5, 2.0, -1.0]);
        let y = rms_norm(&x, &g, 1e-6).unwrap().to_f64_vec();
        #[rustfmt::skip]
        let want = [0.4264013939474596, 0.4264013939474596, 3.4112111515796766,
                    0.4264013939474596, 0.9999980000060001, 0.49999900000300007,
                    1.9999960000120003, -0.9999980000060001];
        close(&y, &want, 1e-14);
        let xv = values(15, 3);
        let x = t(DType::F64, &[5, 3], &xv);
        let g = t(DType::F64, &[3], &[2.0, -1.0, 0.5]);
        let y = rms_norm(&x, &g, 0.01).unwrap().to_f64_vec();
        let mut want = Vec::new();
        for row in xv.chunks(3) {
            let ms = (row[0] * row[0] + row[1] * row[1] + row[2] * row[2]) / 3.0;
            let r = 1.0 / (ms + 0.01).sqrt();
            want.extend([row[0] * r * 2.0, -(row[1] * r), row[2] * r * 0.5]);
        }
        close(&y, &want, 1e-14);
        assert!(rms_norm(&t(DType::F64, &[], &[1.0]), &g, 0.0).is_err());
        assert!(rms_norm(&x, &t(DType::F64, &[2], &[1.0; 2]), 0.0).is_err());
        // gamma spans the last dim only (as the type inference requires).
        assert!(rms_norm(&x, &t(DType::F64, &[1, 3], &[1.0; 3]), 0.0).is_err());
        assert_eq!(
            rms_norm(&x, &t(DType::F64, &[], &[1.0]), 0.0)
                .unwrap()
                .shape(),
            &[5, 3]
        );
    }

    #[test]
    fn matmul_bias_by_hand() {
        // [[1, 2], [3, 4]] @ [[1, 0, -1], [2, 1, 0]] = [[5, 2, -1], [11, 4, -3]].
        let a = t(DType::F32, &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let b = t(DType::F32, &[2, 3], &[1.0, 0.0, -1.0, 2.0, 1.0, 0.0]);
        let bias = t(DType::F32, &[3], &[10.0, 20.0, 30.0]);
        let y = matmul_bias(&a, &b, &bias).unwrap();
        assert_eq!((y.shape(), y.dtype()), (&[2, 3][..], DType::F32));
        assert_eq!(y.to_f64_vec(), [15.0, 22.0, 29.0, 21.0, 24.0, 27.0]);
        // A [2, 1] bias stretches over the columns; a rank-1 left operand drops its row.
        let col = t(DType::F32, &[2, 1], &[100.0, 200.0]);
        let y = matmul_bias(&a, &b, &col).unwrap().to_f64_vec();
        assert_eq!(y, [105.0, 102.0, 99.0, 211.0, 204.0, 197.0]);
        let v = t(DType::F32, &[2], &[1.0, -1.0]);
        let y = matmul_bias(&v, &b, &bias).unwrap();
        assert_eq!(
            (y.shape(), y.to_f64_vec()),
            (&[3][..], vec![9.0, 19.0, 29.0])
        );
        // Rounded once: [1, 2^-30]·[1, 1] = 1 + 2^-30 is 1 in f32, so matmul then add gives 0;
        // the fused op adds -1 to the exact product first.
        let tiny = 2f64.powi(-30);
        let a = t(DType::F32, &[1, 2], &[1.0, tiny]);
        let b = t(DType::F32, &[2, 1], &[1.0, 1.0]);
        let m1 = t(DType::F32, &[1], &[-1.0]);
        assert_eq!(matmul_bias(&a, &b, &m1).unwrap().to_f64_vec(), [tiny]);
        let two_step = super::super::linalg::matmul(&a, &b).unwrap().to_f64_vec()[0] - 1.0;
        assert_eq!(two_step, 0.0);
        // Errors: a bias that would widen the product, a dtype mismatch, integers.
        let wide = t(DType::F32, &[2, 1, 3], &[0.0; 6]);
        let a = t(DType::F32, &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let b = t(DType::F32, &[2, 3], &[1.0, 0.0, -1.0, 2.0, 1.0, 0.0]);
        assert!(matmul_bias(&a, &b, &wide)
            .unwrap_err()
            .contains("broadcast"));
        let b64 = t(DType::F64, &[3], &[0.0; 3]);
        assert!(matmul_bias(&a, &b, &b64).unwrap_err().contains("dtype"));
        let i = Tensor::from_i64_values(DType::I32, vec![1, 1], &[2]).unwrap();
        assert!(matmul_bias(&i, &i, &i).is_err());
    }

    #[test]
    fn skip_layer_norm_by_hand() {
        // sum = x + skip (skip [4] broadcast) = [[2, 2, 2, 4], [0, 0, 0, 0]]. Row 0: mean 2.5,
        // deviations [-0.5, -0.5, -0.5, 1.5], variance 0.75, + eps 0.25 → divisor 1. Row 1:
        // deviations 0, so y = beta.
        let x = t(
            DType::F32,
            &[2, 4],
            &[1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 0.0],
        );
        let skip = t(DType::F32, &[4], &[1.0, 0.0, -1.0, 0.0]);
        let g = t(DType::F32, &[4], &[1.0, 2.0, -1.0, 0.5]);
        let b = t(DType::F32, &[4], &[0.0, 1.0, 0.0, -1.0]);
        let out = skip_layer_norm(&x, &skip, &g, Some(&b), -1, 0.25).unwrap();
        let [y, sum] = out.as_slice() else {
            panic!("two outputs expected, got {}", out.len())
        };
        assert_eq!((y.shape(), y.dtype()), (&[2, 4][..], DType::F32));
        assert_eq!((sum.shape(), sum.dtype()), (&[2, 4][..], DType::F32));
        assert_eq!(sum.to_f64_vec(), [2.0, 2.0, 2.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(y.to_f64_vec(), [-0.5, 0.0, 0.5, -0.25, 0.0, 1.0, 0.0, -1.0]);
        // Same as layer_norm of the sum; without beta; over axes 0..2.
        for (beta, axis) in [(Some(&b), -1), (None, -1), (None, 0)] {
            let g = if axis == 0 {
                t(DType::F32, &[], &[1.5])
            } else {
                g.clone()
            };
            let out = skip_layer_norm(&x, &skip, &g, beta, axis, 1e-3).unwrap();
            let want = layer_norm(&out[1], &g, beta, axis, 1e-3).unwrap();
            close(&out[0].to_f64_vec(), &want.to_f64_vec(), 1e-6);
        }
        // y normalises the unrounded sum: [1, 1] + [2^-30, 0] rounds to [1, 1] in f32 (whose
        // layer_norm with eps 0 is 0/0), but the exact sum normalises to [1, -1].
        let x = t(DType::F32, &[2], &[1.0, 1.0]);
        let skip = t(DType::F32, &[2], &[2f64.powi(-30), 0.0]);
        let one = t(DType::F32, &[], &[1.0]);
        let out = skip_layer_norm(&x, &skip, &one, None, 0, 0.0).unwrap();
        assert_eq!(out[1].to_f64_vec(), [1.0, 1.0]);
        assert_eq!(out[0].to_f64_vec(), [1.0, -1.0]);
        // Errors: a skip that does not broadcast to x, dtype mismatches.
        let x = t(DType::F32, &[2, 4], &[0.0; 8]);
        let bad = t(DType::F32, &[3], &[0.0; 3]);
        let err = skip_layer_norm(&x, &bad, &g, None, -1, 1e-5).unwrap_err();
        assert!(err.contains("skip") && err.contains("broadcast"), "{err}");
        let wide = t(DType::F32, &[2, 2, 4], &[0.0; 16]);
        assert!(skip_layer_norm(&x, &wide, &g, None, -1, 1e-5).is_err());
        let s64 = t(DType::F64, &[4], &[0.0; 4]);
        assert!(skip_layer_norm(&x, &s64, &g, None, -1, 1e-5)
            .unwrap_err()
            .contains("dtype"));
        let err = skip_layer_norm(&x, &x, &s64, None, -1, 1e-5).unwrap_err();
        assert!(err.contains("skip_layer_norm gamma"), "{err}");
    }
}
