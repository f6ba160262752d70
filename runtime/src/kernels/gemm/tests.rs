//! Tests of the GEMM kernels: every available ISA against an `f64` reference over edge shapes,
//! strides and epilogues, packing, the unpacked entry point, threads, and GELU accuracy.

use super::*;

fn shape(m: usize, n: usize, k: usize) -> Shape {
    Shape { m, n, k }
}

fn mat(data: &[f32], stride: usize) -> Matrix<'_> {
    Matrix { data, stride }
}

fn out(data: &mut [f32], stride: usize) -> MatrixMut<'_> {
    MatrixMut { data, stride }
}

const SIZES: [usize; 11] = [1, 2, 3, 7, 13, 31, 32, 33, 64, 100, 129];
/// Every activation (shared with the convolution tests).
pub(crate) const ACTIVATIONS: [Activation; 4] = [
    Activation::None,
    Activation::Relu,
    Activation::GeluErf,
    Activation::GeluTanh,
];

/// The instruction sets this machine can run (shared with the convolution tests).
pub(crate) fn isas() -> Vec<Isa> {
    [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
        .into_iter()
        .filter(|isa| isa.available())
        .collect()
}

/// Deterministic values in `[-1, 1)` (xorshift; shared with the convolution tests).
pub(crate) fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `erf` in `f64`: `2/√π · e^{-x²} · Σ 2ⁿ x^{2n+1} / (2n+1)!!`, all terms of one sign.
fn erf64(x: f64) -> f64 {
    let (mut term, mut sum) = (x, x);
    let mut n = 0.0;
    while term.abs() > 1e-18 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

/// An activation in `f64` (shared with the convolution tests).
pub(crate) fn act64(act: Activation, x: f64) -> f64 {
    match act {
        Activation::None => x,
        Activation::Relu => x.max(0.0),
        Activation::GeluErf => 0.5 * x * (1.0 + erf64(x / 2f64.sqrt())),
        Activation::GeluTanh => {
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
            0.5 * x * (1.0 + u.tanh())
        }
    }
}

/// One product: shapes, strides, epilogue choice.
#[derive(Debug, Clone, Copy)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    pad: usize,
    bias: bool,
    residual: bool,
    act: Activation,
}

/// Runs `case` on `isa` (packed, or through `gemm` with `b_trans` when `unpacked` is set) and
/// compares with the `f64` reference; padding columns of `C` must stay untouched.
fn check(isa: Isa, case: Case, unpacked: Option<bool>) {
    let Case { m, n, k, pad, .. } = case;
    let (lda, ldb, ldc) = (k + pad, n + pad, n + 2 * pad);
    let a = data(m * lda, 1 + (m * 31 + k) as u64);
    let b = data(k * ldb, 2 + (n * 17 + k) as u64);
    let bias = data(n, 3);
    let residual = data(m * ldc, 4);
    let ep = Epilogue {
        bias: case.bias.then_some(&bias[..]),
        activation: case.act,
        residual: case.residual.then_some(&residual[..]),
    };
    let sentinel = 12345.0f32;
    let mut c = vec![sentinel; m * ldc];
    match unpacked {
        None => {
            let mut packed = vec![f32::NAN; packed_len(k, n)];
            pack::pack_strided(mat(&b, ldb), k, n, &mut packed).unwrap();
            gemm_packed(
                isa,
                shape(m, n, k),
                mat(&a, lda),
                &packed,
                out(&mut c, ldc),
                &ep,
            )
            .unwrap();
        }
        Some(false) => gemm(
            isa,
            shape(m, n, k),
            mat(&a, lda),
            mat(&b, ldb),
            false,
            out(&mut c, ldc),
            &ep,
        )
        .unwrap(),
        Some(true) => {
            let ldt = k + pad;
            let mut bt = vec![0.0f32; n * ldt];
            for p in 0..k {
                for j in 0..n {
                    bt[j * ldt + p] = b[p * ldb + j];
                }
            }
            gemm(
                isa,
                shape(m, n, k),
                mat(&a, lda),
                mat(&bt, ldt),
                true,
                out(&mut c, ldc),
                &ep,
            )
            .unwrap();
        }
    }
    for i in 0..m {
        for j in 0..ldc {
            let got = c[i * ldc + j];
            if j >= n {
                assert_eq!(
                    got, sentinel,
                    "{isa:?} {case:?}: padding C[{i}][{j}] written"
                );
                continue;
            }
            let mut want: f64 = (0..k)
                .map(|p| f64::from(a[i * lda + p]) * f64::from(b[p * ldb + j]))
                .sum();
            if case.bias {
                want += f64::from(bias[j]);
            }
            want = act64(case.act, want);
            if case.residual {
                want += f64::from(residual[i * ldc + j]);
            }
            let tol = 1e-6 * (k as f64 + 8.0) * (1.0 + want.abs());
            assert!(
                (f64::from(got) - want).abs() <= tol,
                "{isa:?} {case:?} unpacked={unpacked:?}: C[{i}][{j}] = {got}, want {want}"
            );
        }
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; `small_products_for_miri` runs the same paths"
)]
fn every_isa_matches_the_reference_on_edge_shapes() {
    for isa in isas() {
        let mut index = 0;
        for &m in &SIZES {
            for &n in &SIZES {
                for k in [
                    SIZES[index % SIZES.len()],
                    SIZES[(index * 7 + 3) % SIZES.len()],
                ] {
                    let e = index % 16;
                    let case = Case {
                        m,
                        n,
                        k,
                        pad: (index % 3) * 3,
                        bias: e & 1 != 0,
                        residual: e & 2 != 0,
                        act: ACTIVATIONS[e / 4],
                    };
                    check(isa, case, None);
                    index += 1;
                }
            }
        }
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; `small_products_for_miri` runs the same paths"
)]
fn every_epilogue_combination_on_every_isa() {
    for isa in isas() {
        for (m, n, k) in [(13, 33, 31), (129, 100, 64), (12, 32, 3)] {
            for e in 0..16 {
                let case = Case {
                    m,
                    n,
                    k,
                    pad: 1,
                    bias: e & 1 != 0,
                    residual: e & 2 != 0,
                    act: ACTIVATIONS[e / 4],
                };
                check(isa, case, None);
            }
        }
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; `small_products_for_miri` runs the same paths"
)]
fn single_rows_with_every_epilogue_and_long_k() {
    // One row over whole panels (a decode step's products take the AVX2 single-row path),
    // odd and even k, k longer than one k-block (accumulating into C), every epilogue.
    for isa in isas() {
        for (n, k) in [(32, 1), (64, 2), (96, 7), (64, 576), (160, 1537)] {
            for e in 0..16 {
                let case = Case {
                    m: 1,
                    n,
                    k,
                    pad: 1,
                    bias: e & 1 != 0,
                    residual: e & 2 != 0,
                    act: ACTIVATIONS[e / 4],
                };
                check(isa, case, None);
            }
        }
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; `small_products_for_miri` runs the same paths"
)]
fn k_zero_gives_the_epilogue_of_zero() {
    for isa in isas() {
        for (m, n) in [(1, 1), (13, 33), (129, 64)] {
            for e in 0..16 {
                let case = Case {
                    m,
                    n,
                    k: 0,
                    pad: 2,
                    bias: e & 1 != 0,
                    residual: e & 2 != 0,
                    act: ACTIVATIONS[e / 4],
                };
                check(isa, case, None);
                check(isa, case, Some(true));
            }
        }
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; `small_products_for_miri` runs the same paths"
)]
fn unpacked_b_plain_and_transposed() {
    for isa in isas() {
        for (i, &(m, n, k)) in [(7, 33, 13), (31, 64, 100), (2, 129, 32), (100, 3, 1)]
            .iter()
            .enumerate()
        {
            for trans in [false, true] {
                let case = Case {
                    m,
                    n,
                    k,
                    pad: i,
                    bias: true,
                    residual: trans,
                    act: ACTIVATIONS[i],
                };
                check(isa, case, Some(trans));
            }
        }
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; `small_products_for_miri` runs the same paths"
)]
fn pack_b_transposed_equals_pack_b_of_the_transpose() {
    for (k, n) in [(1, 1), (3, 33), (100, 64), (129, 31), (70, 65)] {
        let b = data(k * n, 9);
        let mut bt = vec![0.0; n * k];
        for p in 0..k {
            for j in 0..n {
                bt[j * k + p] = b[p * n + j];
            }
        }
        let mut x = vec![f32::NAN; packed_len(k, n)];
        let mut y = vec![f32::NAN; packed_len(k, n)];
        pack_b(&b, k, n, &mut x).unwrap();
        pack_b_transposed(&bt, k, n, &mut y).unwrap();
        assert_eq!(x, y, "k={k} n={n}");
        // Layout: panel j, row p, column c at j·k·NR + p·NR + c; padding is zero.
        let panels = n.div_ceil(NR);
        for j in 0..panels {
            for p in 0..k {
                for col in 0..NR {
                    let want = if j * NR + col < n {
                        b[p * n + j * NR + col]
                    } else {
                        0.0
                    };
                    assert_eq!(x[j * k * NR + p * NR + col], want);
                }
            }
        }
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; `small_products_for_miri` runs the same paths"
)]
fn two_threads_match_the_reference() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        for isa in isas() {
            for (m, n, k) in [
                (128, 384, 384),
                (129, 100, 64),
                (13, 33, 300),
                (300, 20, 40),
            ] {
                let case = Case {
                    m,
                    n,
                    k,
                    pad: 3,
                    bias: true,
                    residual: true,
                    act: Activation::GeluErf,
                };
                check(isa, case, None);
            }
        }
    });
}

/// The paths of the tests above on shapes small enough for Miri (which runs only the portable
/// kernel): partial and full tiles and panels, k = 0, every epilogue, the unpacked entry point
/// plain and transposed, packing, and (natively) one product split between two threads.
#[test]
fn small_products_for_miri() {
    for isa in isas() {
        for (i, &(m, n, k)) in [(1, 1, 1), (5, 33, 7), (4, 32, 3), (3, 2, 0)]
            .iter()
            .enumerate()
        {
            for e in [0, 7, 10, 13] {
                let case = Case {
                    m,
                    n,
                    k,
                    pad: i % 2,
                    bias: e & 1 != 0,
                    residual: e & 2 != 0,
                    act: ACTIVATIONS[e / 4],
                };
                check(isa, case, None);
                check(isa, case, Some(e % 2 == 0));
            }
        }
        // 64 × 64 × 32 = 2 · PARALLEL_THRESHOLD multiply-adds: two tasks. (Minutes under Miri.)
        if cfg!(miri) {
            continue;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let case = Case {
            m: 64,
            n: 64,
            k: 32,
            pad: 1,
            bias: true,
            residual: true,
            act: Activation::GeluTanh,
        };
        pool.install(|| check(isa, case, None));
    }
    let (k, n) = (3, 33);
    let b = data(k * n, 9);
    let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
    let (mut x, mut y) = (
        vec![f32::NAN; packed_len(k, n)],
        vec![0.0; packed_len(k, n)],
    );
    pack_b(&b, k, n, &mut x).unwrap();
    pack_b_transposed(&bt, k, n, &mut y).unwrap();
    assert_eq!(x, y);
}

#[test]
fn bad_lengths_and_strides_are_errors() {
    let isa = Isa::Portable;
    let ep = Epilogue::default();
    let (a, b, mut c) = (vec![0.0; 6], vec![0.0; packed_len(3, 2)], vec![0.0; 4]);
    let short = gemm_packed(
        isa,
        shape(2, 2, 3),
        mat(&a[..5], 3),
        &b,
        out(&mut c, 2),
        &ep,
    );
    assert!(matches!(
        short,
        Err(GemmError::TooShort { operand: "a", .. })
    ));
    let stride = gemm_packed(isa, shape(2, 2, 3), mat(&a, 2), &b, out(&mut c, 2), &ep);
    assert!(matches!(
        stride,
        Err(GemmError::BadStride { operand: "a", .. })
    ));
    let packed = gemm_packed(
        isa,
        shape(2, 2, 3),
        mat(&a, 3),
        &b[..10],
        out(&mut c, 2),
        &ep,
    );
    assert!(matches!(
        packed,
        Err(GemmError::TooShort {
            operand: "b_packed",
            ..
        })
    ));
    let bias = Epilogue {
        bias: Some(&a[..1]),
        ..Epilogue::default()
    };
    let short_bias = gemm_packed(isa, shape(2, 2, 3), mat(&a, 3), &b, out(&mut c, 2), &bias);
    assert!(matches!(
        short_bias,
        Err(GemmError::TooShort {
            operand: "bias",
            ..
        })
    ));
    let unpacked = gemm(
        isa,
        shape(2, 2, 3),
        mat(&a, 3),
        mat(&a[..5], 2),
        false,
        out(&mut c, 2),
        &ep,
    );
    assert!(matches!(
        unpacked,
        Err(GemmError::TooShort { operand: "b", .. })
    ));
    assert!(pack_b(&a, 3, 2, &mut c).is_err());
}

#[test]
#[cfg_attr(miri, ignore = "16,001 points per function: too slow under Miri")]
fn erf_and_gelu_are_accurate() {
    let xs: Vec<f32> = (-8000..=8000).map(|i| i as f32 * 1e-3).collect();
    let mut worst = 0.0f64;
    for &x in &xs {
        worst =
            worst.max((f64::from(crate::kernels::numerics::erf(x)) - erf64(f64::from(x))).abs());
    }
    assert!(worst <= 1e-6, "scalar erf max error {worst}");
    for &x in &xs {
        let x64 = f64::from(x);
        let scale = 1.0 + x64.abs();
        let e = (f64::from(gelu_erf(x)) - act64(Activation::GeluErf, x64)).abs();
        assert!(e <= 1e-6 * scale, "gelu_erf({x}) off by {e}");
        let t = (f64::from(gelu_tanh(x)) - act64(Activation::GeluTanh, x64)).abs();
        assert!(t <= 1e-6 * scale, "gelu_tanh({x}) off by {t}");
    }
    // The vector versions, through the epilogue of a k = 1 product with A = 1: C = act(B).
    let n = xs.len();
    let ones = vec![1.0f32; 3];
    for isa in isas() {
        for act in [Activation::GeluErf, Activation::GeluTanh] {
            let ep = Epilogue {
                activation: act,
                ..Epilogue::default()
            };
            let mut c = vec![0.0; 3 * n];
            gemm(
                isa,
                shape(3, n, 1),
                mat(&ones, 1),
                mat(&xs, n),
                false,
                out(&mut c, n),
                &ep,
            )
            .unwrap();
            for (j, &x) in xs.iter().enumerate() {
                let want = act64(act, f64::from(x));
                let e = (f64::from(c[2 * n + j]) - want).abs();
                let tol = 1e-6 * (1.0 + f64::from(x).abs());
                assert!(e <= tol, "{isa:?} {act:?}({x}) off by {e}");
            }
        }
    }
}

#[test]
fn vector_erf_matches_the_reference() {
    #[cfg(target_arch = "x86_64")]
    {
        let xs: Vec<f32> = (-8000..=8000).map(|i| i as f32 * 1e-3).collect();
        if Isa::Avx512.available() {
            for chunk in xs.chunks_exact(16) {
                // SAFETY: AVX-512F is available (checked above); `chunk` has 16 values.
                let got: [f32; 16] = unsafe {
                    let v = std::arch::x86_64::_mm512_loadu_ps(chunk.as_ptr());
                    std::mem::transmute(avx512::erf(v))
                };
                for (&x, &g) in chunk.iter().zip(&got) {
                    let e = (f64::from(g) - erf64(f64::from(x))).abs();
                    assert!(e <= 1e-6, "avx512 erf({x}) off by {e}");
                }
            }
        }
        if Isa::Avx2Fma.available() {
            for chunk in xs.chunks_exact(8) {
                // SAFETY: AVX2 and FMA are available (checked above); `chunk` has 8 values.
                let got: [f32; 8] = unsafe {
                    let v = std::arch::x86_64::_mm256_loadu_ps(chunk.as_ptr());
                    std::mem::transmute(avx2::erf(v))
                };
                for (&x, &g) in chunk.iter().zip(&got) {
                    let e = (f64::from(g) - erf64(f64::from(x))).abs();
                    assert!(e <= 1e-6, "avx2 erf({x}) off by {e}");
                }
            }
        }
    }
}
