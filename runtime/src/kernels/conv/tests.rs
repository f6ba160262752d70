//! Tests of the convolution kernel against the reference kernel (`reference::eval_op` of
//! `Op::Conv`): every available ISA over kernel sizes, strides, pads, dilations, groups, batches,
//! bias and activations, both paths, 1-D, several threads, a hand-computed case, and a timing.

use super::*;
use crate::ops::{Bindings, Op};
use crate::{reference, Tensor};

pub(super) use crate::kernels::gemm::tests::{act64, data, isas, ACTIVATIONS};

/// Shapes and attributes of `Op::Conv` for `p`: 1-D (`[N, C, L]`) when `one_d`.
/// A 3×3 convolution with stride 1 and one pixel of padding on every side ("same" size).
pub(super) fn same3x3(n: usize, c: usize, (h, w): (usize, usize), m: usize) -> ConvParams {
    ConvParams {
        n,
        c,
        h,
        w,
        m,
        kh: 3,
        kw: 3,
        strides: [1, 1],
        pads: [1, 1, 1, 1],
        dilations: [1, 1],
        group: 1,
    }
}

fn op_of(p: &ConvParams, one_d: bool) -> (Vec<usize>, Vec<usize>, Op) {
    let i = |v: &[usize]| v.iter().map(|&a| a as i64).collect::<Vec<_>>();
    let (xs, ws, s, pads, d) = if one_d {
        (
            vec![p.n, p.c, p.w],
            vec![p.m, p.c / p.group, p.kw],
            i(&[p.strides[1]]),
            i(&[p.pads[1], p.pads[3]]),
            i(&[p.dilations[1]]),
        )
    } else {
        (
            vec![p.n, p.c, p.h, p.w],
            vec![p.m, p.c / p.group, p.kh, p.kw],
            i(&p.strides),
            i(&p.pads),
            i(&p.dilations),
        )
    };
    let op = Op::Conv {
        strides: s,
        pads,
        dilations: d,
        group: p.group as i64,
    };
    (xs, ws, op)
}

/// The reference kernel's output for `p` (without activation).
pub(super) fn reference_conv(
    p: &ConvParams,
    one_d: bool,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f64> {
    let (xs, ws, op) = op_of(p, one_d);
    let xt = Tensor::from_f32(xs, x.to_vec()).unwrap();
    let wt = Tensor::from_f32(ws, w.to_vec()).unwrap();
    let bt = bias.map(|b| Tensor::from_f32(vec![b.len()], b.to_vec()).unwrap());
    let mut inputs = vec![&xt, &wt];
    inputs.extend(bt.as_ref());
    let out = reference::eval_op(&op, &inputs, &Bindings::new()).unwrap();
    out[0].to_f64_vec()
}

/// Compares `got` with `act(want)` at `~1e-5` relative, scaled by the reduction length.
fn compare(what: &str, got: &[f32], want: &[f64], act: Activation, kg: usize) {
    assert_eq!(got.len(), want.len(), "{what}: output length");
    let scale = (kg as f64).sqrt().max(1.0);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let w = act64(act, w);
        let tol = 1e-5 * scale * (1.0 + w.abs());
        assert!(
            (f64::from(g) - w).abs() <= tol,
            "{what}: out[{i}] = {g}, want {w}"
        );
    }
}

/// Runs `p` on every ISA, once per activation, and compares with the reference.
fn check(p: &ConvParams, one_d: bool, with_bias: bool, acts: &[Activation], seed: u64) {
    if one_d {
        let (xs, ws, op) = op_of(p, true);
        let Op::Conv {
            strides,
            pads,
            dilations,
            group,
        } = &op
        else {
            unreachable!()
        };
        let q = ConvParams::from_shapes(&xs, &ws, strides, pads, dilations, *group).unwrap();
        assert_eq!(&q, p, "from_shapes of a 1-D conv");
    }
    let x = data(p.n * p.c * p.h * p.w, seed);
    let w = data(p.m * (p.c / p.group) * p.kh * p.kw, seed + 1);
    let bias_v = data(p.m, seed + 2);
    let bias = with_bias.then_some(&bias_v[..]);
    let want = reference_conv(p, one_d, &x, &w, bias);
    let packed = pack_weights(&w, p).unwrap();
    assert_eq!(packed.len(), packed_weights_len(p));
    let [n, m, oh, ow] = p.out_shape().unwrap();
    let kg = p.kh * p.kw * p.c / p.group;
    for isa in isas() {
        for &act in acts {
            let mut out = vec![f32::NAN; n * m * oh * ow];
            conv2d(isa, p, &x, &packed, bias, act, &mut out).unwrap();
            compare(&format!("{isa:?} {act:?} {p:?}"), &out, &want, act, kg);
        }
    }
}

#[test]
fn every_isa_matches_the_reference_over_kernels_strides_pads_groups() {
    let mut index = 0u64;
    for (kh, kw) in [(1usize, 1usize), (3, 3), (7, 7), (1, 3)] {
        for stride in [1, 2] {
            // (c, m, group): one group (two GEMM panels), two groups, depthwise, and two
            // output channels per group (the direct path with cg > 1).
            for (c, m, group) in [(5, 37, 1), (6, 18, 2), (6, 6, 6), (4, 4, 2)] {
                index += 1;
                let pointwise = kh == 1 && kw == 1 && stride == 1 && !index.is_multiple_of(3);
                let pads = if pointwise {
                    [0; 4]
                } else {
                    [kh / 2, kw / 2 + 1, kh.div_ceil(2) % 2, kw / 2]
                };
                let dilation = if index.is_multiple_of(2) { 2 } else { 1 };
                let p = ConvParams {
                    n: if index.is_multiple_of(2) { 3 } else { 1 },
                    c,
                    h: 13,
                    w: 11 + (index as usize % 3),
                    m,
                    kh,
                    kw,
                    strides: [stride, if index.is_multiple_of(4) { 1 } else { stride }],
                    pads,
                    dilations: [dilation, 1 + (index as usize % 3 == 1) as usize],
                    group,
                };
                let act = ACTIVATIONS[index as usize % 4];
                check(&p, false, index % 3 != 1, &[act], 100 + index);
            }
        }
    }
}

#[test]
fn every_activation_with_and_without_bias_on_both_paths() {
    for (c, m, group) in [(7, 40, 1), (8, 8, 8)] {
        for with_bias in [false, true] {
            let p = ConvParams {
                group,
                ..same3x3(2, c, (9, 10), m)
            };
            check(&p, false, with_bias, &ACTIVATIONS, 7 + m as u64);
        }
    }
}

#[test]
fn one_dimensional_convolutions_match_the_reference() {
    for (c, m, group, k, stride, pads, dilation) in [
        (6, 20, 1, 3, 2, [2, 1], 2),
        (8, 8, 8, 5, 1, [2, 2], 1),
        (4, 12, 2, 1, 1, [0, 0], 1),
        (3, 9, 1, 4, 3, [0, 3], 1),
    ] {
        let p = ConvParams::conv1d(Conv1d {
            n: 2,
            c,
            l: 23,
            m,
            k,
            stride,
            pads,
            dilation,
            group,
        });
        check(&p, true, true, &[Activation::Relu], 40 + k as u64);
    }
}

#[test]
fn large_images_split_into_blocks_match_under_several_thread_counts() {
    let cases = [
        // Many row blocks on the im2col path, strided, with a ragged last block.
        (16, 40, 3, [1, 2], [1, 0, 2, 1], 1),
        // The pointwise path (1×1, stride 1, no pads) with two groups.
        (32, 48, 1, [1, 1], [0; 4], 2),
    ];
    for (c, m, k, strides, pads, group) in cases {
        let p = ConvParams {
            n: 2,
            c,
            h: 37,
            w: 41,
            m,
            kh: k,
            kw: k,
            strides,
            pads,
            dilations: [1, 1],
            group,
        };
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| check(&p, false, true, &[Activation::GeluTanh], 9));
        }
    }
}

#[test]
fn a_hand_computed_convolution() {
    // x = 1..=9 as a 3×3 image; w[m] is the 2×2 kernel of all (m + 1); bias m. Each output
    // pixel sums a 2×2 window: [1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9] = [12, 16, 24, 28].
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    for m in [1, 8] {
        let p = ConvParams {
            n: 1,
            c: 1,
            h: 3,
            w: 3,
            m,
            kh: 2,
            kw: 2,
            strides: [1, 1],
            pads: [0; 4],
            dilations: [1, 1],
            group: 1,
        };
        let w: Vec<f32> = (0..m).flat_map(|mm| [(mm + 1) as f32; 4]).collect();
        let bias: Vec<f32> = (0..m).map(|mm| mm as f32).collect();
        let packed = pack_weights(&w, &p).unwrap();
        for isa in isas() {
            let mut out = vec![0.0; m * 4];
            conv2d(
                isa,
                &p,
                &x,
                &packed,
                Some(&bias),
                Activation::None,
                &mut out,
            )
            .unwrap();
            for mm in 0..m {
                let want = [12.0, 16.0, 24.0, 28.0].map(|v| v * (mm + 1) as f32 + mm as f32);
                assert_eq!(out[mm * 4..mm * 4 + 4], want, "{isa:?} m={m} channel {mm}");
            }
        }
    }
}

#[test]
fn resnet_layer_timing_against_the_reference() {
    let p = same3x3(1, 64, (56, 56), 64);
    let x = data(64 * 56 * 56, 1);
    let w = data(64 * 64 * 9, 2);
    let bias = data(64, 3);
    let packed = pack_weights(&w, &p).unwrap();
    let mut out = vec![0.0; 64 * 56 * 56];
    for isa in isas() {
        let mut run = || {
            conv2d(
                isa,
                &p,
                &x,
                &packed,
                Some(&bias),
                Activation::Relu,
                &mut out,
            )
        };
        // A warm-up run, then the timed one.
        run().unwrap();
        let start = std::time::Instant::now();
        run().unwrap();
        println!(
            "conv 1×64×56×56, 3×3, M=64 on {isa:?}: {:?}",
            start.elapsed()
        );
    }
    // The reference for 8 of the 64 output channels (it is slow), extrapolated.
    let p8 = ConvParams { m: 8, ..p };
    let start = std::time::Instant::now();
    let want = reference_conv(&p8, false, &x, &w[..8 * 64 * 9], Some(&bias[..8]));
    println!(
        "reference kernel, same conv: {:?} (measured on 8 output channels × 8)",
        start.elapsed() * 8
    );
    compare(
        "resnet layer",
        &out[..want.len()],
        &want,
        Activation::Relu,
        576,
    );
}
