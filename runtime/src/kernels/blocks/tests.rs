//! Tests of the block-quantized products: the SIMD dequantization equals the scalar definition
//! bit for bit, and every path (dot products and dequantized panels, every ISA, every epilogue,
//! k beyond one k-block) equals an f64 product over the dequantized weights.

use super::*;
use crate::kernels::gemm::tests::{act64, data, isas, ACTIVATIONS};
use crate::kernels::gemm::Activation;

const FORMATS: [BlockFormat; 3] = [BlockFormat::Q4_0, BlockFormat::Q4_1, BlockFormat::Q8_0];

/// `n` rows of `k / BLOCK` blocks with random quants and small random scales (and minimums).
fn weights(format: BlockFormat, n: usize, k: usize, seed: u64) -> Vec<u8> {
    let len = blocks_len(format, k, n).unwrap();
    let mut s = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut bytes: Vec<u8> = (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect();
    let scales = data(2 * len / format.block_bytes() + 2, seed + 1);
    for (i, blk) in bytes.chunks_exact_mut(format.block_bytes()).enumerate() {
        // Products of a few units at most (the f64 erf of the reference diverges far out).
        let unit = if format == BlockFormat::Q8_0 {
            0.005
        } else {
            0.05
        };
        let d = half::f16::from_f32(scales[2 * i] * unit).to_le_bytes();
        blk[..2].copy_from_slice(&d);
        if format == BlockFormat::Q4_1 {
            let m = half::f16::from_f32(scales[2 * i + 1] * 0.3).to_le_bytes();
            blk[2..4].copy_from_slice(&m);
        }
    }
    bytes
}

fn dequantized(format: BlockFormat, w: &[u8], n: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; n * k];
    format.dequantize(w, &mut out);
    out
}

#[test]
fn simd_dequantization_equals_the_scalar_definition_bit_for_bit() {
    if !simd(Isa::Avx2Fma) {
        return;
    }
    for format in FORMATS {
        let blocks = 37;
        let w = weights(format, 1, blocks * BLOCK, 7);
        let want = dequantized(format, &w, 1, blocks * BLOCK);
        let mut got = vec![f32::NAN; blocks * BLOCK];
        // SAFETY: AVX2/FMA checked by `simd`; `w` holds `blocks` blocks, `got` that many
        // elements.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            avx2::dequantize(format, w.as_ptr(), blocks, got.as_mut_ptr())
        };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{format:?}");
    }
}

#[test]
fn the_scalar_definition_matches_ggml_on_known_blocks() {
    // Q4_1: d = 0.5, m = -1, qs[0] = 0x3A → element 0 = 10·0.5 − 1 = 4, element 16 = 3·0.5 − 1.
    let mut b = vec![0u8; 20];
    b[..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
    b[2..4].copy_from_slice(&half::f16::from_f32(-1.0).to_le_bytes());
    b[4] = 0x3A;
    let mut out = [0f32; BLOCK];
    BlockFormat::Q4_1.dequantize_block(&b, &mut out);
    assert_eq!((out[0], out[16], out[1]), (4.0, 0.5, -1.0));
    // Q4_0: d = 2, qs[0] = 0x0F → 7·2 = 14 and (0 − 8)·2 = −16.
    let mut b = vec![0u8; 18];
    b[..2].copy_from_slice(&half::f16::from_f32(2.0).to_le_bytes());
    b[2] = 0x0F;
    BlockFormat::Q4_0.dequantize_block(&b, &mut out);
    assert_eq!((out[0], out[16], out[1]), (14.0, -16.0, -16.0));
    // Q8_0: d = 0.25, q = −128 and 127.
    let mut b = vec![0u8; 34];
    b[..2].copy_from_slice(&half::f16::from_f32(0.25).to_le_bytes());
    b[2] = 0x80;
    b[33] = 127;
    BlockFormat::Q8_0.dequantize_block(&b, &mut out);
    assert_eq!((out[0], out[31], out[1]), (-32.0, 31.75, 0.0));
}

#[allow(clippy::too_many_arguments)]
fn check(
    isa: Isa,
    format: BlockFormat,
    m: usize,
    n: usize,
    k: usize,
    act: Activation,
    bias: bool,
    residual: bool,
) {
    let (lda, ldc) = (k + 3, n + 2);
    let a = data(m * lda, 11 + m as u64);
    let w = weights(format, n, k, 13 + n as u64);
    let wf = dequantized(format, &w, n, k);
    let b = data(n, 17);
    let r = data(m * ldc, 19);
    let mut c = vec![f32::NAN; m * ldc];
    let ep = Epilogue {
        bias: bias.then_some(&b[..]),
        activation: act,
        residual: residual.then_some(&r[..]),
    };
    gemm_blocks(
        isa,
        Shape { m, n, k },
        Matrix {
            data: &a,
            stride: lda,
        },
        &w,
        format,
        MatrixMut {
            data: &mut c,
            stride: ldc,
        },
        &ep,
    )
    .unwrap();
    for i in 0..m {
        for j in 0..n {
            let mut s: f64 = (0..k)
                .map(|p| f64::from(a[i * lda + p]) * f64::from(wf[j * k + p]))
                .sum();
            let scale: f64 = (0..k)
                .map(|p| (f64::from(a[i * lda + p]) * f64::from(wf[j * k + p])).abs())
                .sum();
            if bias {
                s += f64::from(b[j]);
            }
            s = act64(act, s);
            if residual {
                s += f64::from(r[i * ldc + j]);
            }
            let got = f64::from(c[i * ldc + j]);
            let tol = 1e-5 * (scale + 1.0);
            assert!(
                (got - s).abs() <= tol,
                "{isa:?} {format:?} m={m} n={n} k={k} {act:?} at ({i},{j}): {got} vs {s}"
            );
        }
        for j in n..ldc {
            if i + 1 < m {
                assert!(c[i * ldc + j].is_nan(), "wrote past the row at ({i},{j})");
            }
        }
    }
}

#[test]
fn every_path_equals_the_dequantized_product() {
    for isa in isas() {
        for format in FORMATS {
            for &(m, n, k) in &[
                (1, 1, 32),
                (1, 70, 96),
                (3, 33, 64),
                (4, 40, 32),
                (5, 33, 96),
                (13, 70, 64),
                (40, 65, 160),
            ] {
                check(isa, format, m, n, k, Activation::None, true, false);
            }
        }
    }
}

#[test]
fn every_epilogue_on_both_paths() {
    for isa in isas() {
        for act in ACTIVATIONS {
            for (bias, residual) in [(false, false), (true, true), (false, true)] {
                check(isa, BlockFormat::Q4_1, 2, 37, 64, act, bias, residual);
                check(isa, BlockFormat::Q8_0, 14, 37, 64, act, bias, residual);
            }
        }
    }
}

#[test]
fn a_reduction_longer_than_one_k_block_and_threads() {
    // k > 2048 makes the panel path block over k (accumulating into C); n large enough to
    // split between threads on the dot path.
    for isa in isas() {
        check(
            isa,
            BlockFormat::Q4_0,
            7,
            64,
            2048 + 96,
            Activation::None,
            true,
            true,
        );
        check(
            isa,
            BlockFormat::Q4_1,
            1,
            1024,
            1024,
            Activation::Relu,
            false,
            true,
        );
    }
}

#[test]
fn bad_sizes_are_errors() {
    let a = vec![0f32; 64];
    let mut c = vec![0f32; 4];
    let run = |k: usize, w: &[u8], c: &mut [f32]| {
        gemm_blocks(
            Isa::Portable,
            Shape { m: 1, n: 2, k },
            Matrix {
                data: &a,
                stride: k,
            },
            w,
            BlockFormat::Q4_1,
            MatrixMut { data: c, stride: 2 },
            &Epilogue::default(),
        )
    };
    assert_eq!(
        run(40, &[0u8; 100], &mut c),
        Err(GemmError::PartialBlock { k: 40, block: 32 })
    );
    assert!(matches!(
        run(32, &[0u8; 39], &mut c),
        Err(GemmError::TooShort { operand: "w", .. })
    ));
    assert!(matches!(
        run(64, &[0u8; 80], &mut c[..1]),
        Err(GemmError::TooShort { operand: "c", .. })
    ));
}
