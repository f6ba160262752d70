//! Reference-interpreter tests for conv, conv_transpose and pooling. Unless a test says
//! otherwise, expected values come from the ONNX reference implementation
//! (`onnx.reference.ReferenceEvaluator`, onnx 1.23, opset 19) run on the same inputs, which are
//! built by `seq` below (the generator used the identical formula in numpy float32).

use kiln_compiler::interp::eval_op;
use kiln_compiler::ir::{Bindings, DType, Op, PoolKind};
use kiln_runtime::Tensor;

/// `((i·a) mod m - off) · 0.5` for i in 0..product(shape): small exact values.
fn seq(shape: &[usize], a: usize, m: usize, off: i64) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| ((i * a % m) as i64 - off) as f32 * 0.5)
        .collect();
    Tensor::from_f32(shape.to_vec(), v).unwrap()
}

fn run(op: Op, x: &[&Tensor]) -> Result<Tensor, String> {
    let mut out = eval_op(&op, x, &Bindings::new())?;
    Ok(out.remove(0))
}

fn close(t: &Tensor, shape: &[usize], want: &[f64]) {
    assert_eq!(t.shape(), shape);
    assert_eq!(t.dtype(), DType::F32);
    let got = t.to_f64_vec();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 * (1.0 + w.abs()),
            "element {i}: {g} vs {w}"
        );
    }
    assert_eq!(got.len(), want.len());
}

fn conv(strides: &[i64], pads: &[i64], dilations: &[i64], group: i64) -> Op {
    Op::Conv {
        strides: strides.to_vec(),
        pads: pads.to_vec(),
        dilations: dilations.to_vec(),
        group,
    }
}

fn conv_t(strides: &[i64], pads: &[i64], dilations: &[i64], group: i64, out_pad: &[i64]) -> Op {
    Op::ConvTranspose {
        strides: strides.to_vec(),
        pads: pads.to_vec(),
        dilations: dilations.to_vec(),
        group,
        output_padding: out_pad.to_vec(),
    }
}

fn pool(
    kind: PoolKind,
    kernel: &[i64],
    strides: &[i64],
    pads: &[i64],
    ceil: bool,
    cip: bool,
) -> Op {
    Op::Pool {
        kind,
        kernel: kernel.to_vec(),
        strides: strides.to_vec(),
        pads: pads.to_vec(),
        dilations: vec![1; kernel.len()],
        ceil_mode: ceil,
        count_include_pad: cip,
    }
}

#[test]
fn conv_1d_padding_stride_dilation() {
    // Conv(pads=[1, 2], strides=[2], dilations=[2]).
    let (x, w) = (seq(&[1, 1, 7], 3, 7, 3), seq(&[1, 1, 3], 1, 3, 1));
    let y = run(conv(&[2], &[1, 2], &[2], 1), &[&x, &w]).unwrap();
    close(&y, &[1, 1, 3], &[-0.25, -0.5, 0.25]);
}

#[test]
fn conv_2d_bias_asymmetric_pads_stride() {
    // Conv(pads=[1, 0, 2, 1], strides=[2, 1]) with bias [0.5, -1, 2].
    let (x, w) = (seq(&[1, 2, 5, 5], 7, 11, 5), seq(&[3, 2, 3, 3], 5, 9, 4));
    let b = Tensor::from_f32(vec![3], vec![0.5, -1.0, 2.0]).unwrap();
    let y = run(conv(&[2, 1], &[1, 0, 2, 1], &[1, 1], 1), &[&x, &w, &b]).unwrap();
    let want = [
        4.0, 8.5, -14.5, 11.75, 3.5, 3.5, 3.5, -5.0, -3.5, 10.75, -5.25, 3.25, 2.5, 7.0, -16.0,
        10.25, 2.0, 2.0, 2.0, -6.5, -5.0, 9.25, -6.75, 1.75, 5.5, 10.0, -13.0, 13.25, 5.0, 5.0,
        5.0, -3.5, -2.0, 12.25, -3.75, 4.75,
    ];
    close(&y, &[1, 3, 3, 4], &want);
}

#[test]
fn conv_2d_grouped_dilated_batched() {
    // Conv(group=2, dilations=[2, 1], pads=[0, 1, 1, 0], strides=[1, 2]) on a batch of 2.
    let (x, w) = (seq(&[2, 4, 4, 4], 5, 13, 6), seq(&[4, 2, 2, 2], 3, 7, 3));
    let y = run(conv(&[1, 2], &[0, 1, 1, 0], &[2, 1], 2), &[&x, &w]).unwrap();
    let want = [
        5.5, 2.0, -5.0, -13.0, 1.5, 4.0, -8.0, 5.0, 2.5, 5.0, -4.5, 1.25, 1.75, 9.5, -3.5, -4.75,
        -0.5, 7.0, -1.5, -5.0, 5.25, 3.0, -0.5, -7.5, -6.5, -4.0, 2.5, 10.25, -2.5, 1.25, 4.0, 5.0,
        -5.0, -4.75, 3.5, 2.0, 2.25, -4.0, 0.25, 7.75, 4.5, -6.0, 2.5, 2.75, -0.5, -5.5, -3.0, 1.5,
    ];
    close(&y, &[2, 4, 3, 2], &want);
}

#[test]
fn conv_1d_depthwise() {
    // Conv(group=3) with C = 3, M = 6: each input channel feeds two output channels.
    let (x, w) = (seq(&[1, 3, 5], 2, 5, 2), seq(&[6, 1, 2], 1, 4, 1));
    let y = run(conv(&[1], &[0, 0], &[1], 3), &[&x, &w]).unwrap();
    let row = [0.5, 0.0, -0.5, 0.25, -0.5, 1.0, 0.0, 0.25];
    close(&y, &[1, 6, 4], &[row, row, row].concat());
}

#[test]
fn conv_rounds_once_to_the_input_dtype() {
    // Hand-derived: 1/3 + 1/3 + 1/3 accumulated in f64 is 1, then rounded to f16 once.
    let x = Tensor::from_f64_values(DType::F16, vec![1, 1, 3], &[1.0; 3]).unwrap();
    let w = Tensor::from_f64_values(DType::F64, vec![1, 1, 3], &[1.0 / 3.0; 3]).unwrap();
    assert!(run(conv(&[1], &[0, 0], &[1], 1), &[&x, &w]).is_err());
    let w = w.cast(DType::F16);
    let y = run(conv(&[1], &[0, 0], &[1], 1), &[&x, &w]).unwrap();
    assert_eq!(y.dtype(), DType::F16);
    assert!((y.to_f64_vec()[0] - 1.0).abs() < 1e-3);
}

#[test]
fn conv_rejects_bad_attributes_and_shapes() {
    let (x, w) = (seq(&[1, 4, 5, 5], 1, 7, 3), seq(&[2, 2, 3, 3], 1, 5, 2));
    let ok = run(conv(&[1, 1], &[0, 0, 0, 0], &[1, 1], 2), &[&x, &w]);
    assert_eq!(ok.unwrap().shape(), &[1, 2, 3, 3]);
    // Channel mismatch (group 1 needs w dim 1 = 4), group not dividing C, zero stride,
    // wrong pads length, negative dilation, kernel larger than the padded input, bad bias.
    assert!(run(conv(&[1, 1], &[0; 4], &[1, 1], 1), &[&x, &w]).is_err());
    assert!(run(conv(&[1, 1], &[0; 4], &[1, 1], 3), &[&x, &w]).is_err());
    assert!(run(conv(&[0, 1], &[0; 4], &[1, 1], 2), &[&x, &w]).is_err());
    assert!(run(conv(&[1, 1], &[0; 2], &[1, 1], 2), &[&x, &w]).is_err());
    assert!(run(conv(&[1, 1], &[0; 4], &[-1, 1], 2), &[&x, &w]).is_err());
    assert!(run(conv(&[1, 1], &[0; 4], &[3, 1], 2), &[&x, &w]).is_err());
    let b = seq(&[3], 1, 3, 1);
    assert!(run(conv(&[1, 1], &[0; 4], &[1, 1], 2), &[&x, &w, &b]).is_err());
    let flat = seq(&[4, 5], 1, 3, 1);
    assert!(run(conv(&[], &[], &[], 1), &[&flat, &seq(&[2, 4], 1, 3, 1)]).is_err());
}

#[test]
fn conv_transpose_1d_stride_output_padding() {
    // ConvTranspose(strides=[2], output_padding=[1], pads=[1, 0]): O = 2·3 + 1 + 3 - 1 = 9.
    let (x, w) = (seq(&[1, 1, 4], 1, 4, 1), seq(&[1, 1, 3], 2, 5, 2));
    let y = run(conv_t(&[2], &[1, 0], &[1], 1, &[1]), &[&x, &w]).unwrap();
    close(
        &y,
        &[1, 1, 9],
        &[0.0, -0.5, 0.0, -0.5, 0.0, -0.5, 0.0, 1.0, 0.0],
    );
}

#[test]
fn conv_transpose_2d_bias_dilation_output_padding() {
    // ConvTranspose(strides=[2, 3], output_padding=[1, 0], pads=[0, 1, 1, 1],
    // dilations=[1, 2]) with bias [1, -0.5]; also checked against a naive numpy scatter.
    let (x, w) = (seq(&[1, 2, 3, 3], 5, 7, 3), seq(&[2, 2, 2, 3], 3, 5, 2));
    let b = Tensor::from_f32(vec![2], vec![1.0, -0.5]).unwrap();
    let op = conv_t(&[2, 3], &[0, 1, 1, 1], &[1, 2], 1, &[1, 0]);
    let y = run(op, &[&x, &w, &b]).unwrap();
    let want = [
        1.0, 0.25, 0.5, 1.75, 0.5, 0.25, 0.5, 2.5, 1.0, 1.0, 1.0, 3.0, 2.5, 0.5, -0.5, 0.5, 1.75,
        1.0, 1.0, 1.0, -0.25, 1.5, 1.25, 1.25, 0.25, -0.25, 1.0, 1.0, 1.25, 3.0, 1.75, 0.75, 3.0,
        -0.25, 0.25, 1.0, 1.0, 1.75, 2.5, 1.25, 0.25, 0.5, 1.75, 0.5, 1.0, 1.0, 1.5, -0.5, 1.0,
        1.0, 3.0, 2.5, 0.5, 1.0, -0.5, 0.25, -1.0, -2.0, -1.0, 1.0, 1.5, -0.5, -0.5, -0.5, 1.0,
        -1.0, -1.25, -1.0, 0.25, -1.0, -1.25, -0.5, -0.5, 0.0, -0.25, -2.0, -1.25, -1.75, 1.5,
        -0.75, -0.5, -0.5, 0.25, -0.75, -0.5, -1.75, -1.25, -0.25, -0.25, -0.5, -0.5, -0.25, -1.25,
        -2.0, 0.25, -1.0, -2.0, -1.0, -0.5, -0.5, -0.5, -0.5, 0.25, 1.0, -1.0, -1.25, -1.0, -0.5,
    ];
    close(&y, &[1, 2, 6, 9], &want);
}

#[test]
fn conv_transpose_grouped() {
    // ConvTranspose(group=2, strides=[2]) with C = 4, w [4, 1, 2], so M = 2. The ONNX
    // reference's grouped path fails, so the expected values are its ungrouped results per
    // group, concatenated along channels (and match a naive numpy scatter).
    let (x, w) = (seq(&[1, 4, 3], 3, 5, 2), seq(&[4, 1, 2], 1, 3, 1));
    let y = run(conv_t(&[2], &[0, 0], &[1], 2, &[0]), &[&x, &w]).unwrap();
    let want = [
        1.0, -0.5, -0.25, 0.0, -0.25, 0.5, 0.0, 0.25, 0.5, -0.25, -0.25, 0.5,
    ];
    close(&y, &[1, 2, 6], &want);
    assert!(run(conv_t(&[2], &[0, 0], &[1], 3, &[0]), &[&x, &w]).is_err());
    assert!(run(conv_t(&[2], &[0, 0], &[1], 2, &[0, 0]), &[&x, &w]).is_err());
    // w dim 0 must equal the input channels.
    let w3 = seq(&[3, 1, 2], 1, 3, 1);
    assert!(run(conv_t(&[2], &[0, 0], &[1], 1, &[0]), &[&x, &w3]).is_err());
}

#[test]
fn max_and_avg_pool_with_pads() {
    // kernel 3x3, strides 2, pads 1 on every side, over a 5x5 input.
    let x = seq(&[1, 1, 5, 5], 7, 17, 8);
    let y = run(
        pool(PoolKind::Max, &[3, 3], &[2, 2], &[1; 4], false, false),
        &[&x],
    )
    .unwrap();
    close(
        &y,
        &[1, 1, 3, 3],
        &[0.0, 3.5, 2.0, 1.0, 4.0, 3.0, 1.5, 1.5, 3.5],
    );
    let y = run(
        pool(PoolKind::Avg, &[3, 3], &[2, 2], &[1; 4], false, true),
        &[&x],
    )
    .unwrap();
    let want = [
        -0.8888888955116272,
        0.2777777910232544,
        0.0,
        -0.8333333134651184,
        0.2222222238779068,
        0.5,
        -0.2222222238779068,
        -0.6111111044883728,
        0.6666666865348816,
    ];
    close(&y, &[1, 1, 3, 3], &want);
    let y = run(
        pool(PoolKind::Avg, &[3, 3], &[2, 2], &[1; 4], false, false),
        &[&x],
    )
    .unwrap();
    let want = [
        -2.0,
        0.4166666567325592,
        0.0,
        -1.25,
        0.2222222238779068,
        0.75,
        -0.5,
        -0.9166666865348816,
        1.5,
    ];
    close(&y, &[1, 1, 3, 3], &want);
}

#[test]
fn pool_ceil_mode() {
    // MaxPool(kernel [3, 3], strides [2, 2], ceil_mode=1) on 6x6: 3x3 instead of floor's 2x2.
    let x = seq(&[1, 2, 6, 6], 5, 19, 9);
    let y = run(
        pool(PoolKind::Max, &[3, 3], &[2, 2], &[0; 4], true, false),
        &[&x],
    )
    .unwrap();
    let want = [
        3.5, 4.5, 4.0, 3.5, 4.5, 3.0, 4.0, 4.5, 4.5, 4.0, 3.5, 4.5, 4.0, 3.5, 4.5, 4.0, 4.0, 3.5,
    ];
    close(&y, &[1, 2, 3, 3], &want);
    // AveragePool(kernel [2, 2], strides [2, 2], pads [1, 1, 0, 0], ceil_mode=1): the last
    // window on each axis reaches position 6, past the padded input, which never counts.
    let op = |cip| pool(PoolKind::Avg, &[2, 2], &[2, 2], &[1, 1, 0, 0], true, cip);
    let want_incl = [
        -1.125, -0.375, -0.25, -0.75, -0.5, 0.375, 0.625, 2.0, 0.25, -0.5, -0.25, -1.25, 2.0,
        -1.75, 3.25, -2.5, 0.0, -0.5, -0.375, 1.5, -0.625, 0.125, 0.375, 1.75, 0.125, -0.75, -0.5,
        -1.5, -0.5, 2.75, -1.75, 2.0,
    ];
    close(&run(op(true), &[&x]).unwrap(), &[1, 2, 4, 4], &want_incl);
    let want_excl = [
        -4.5, -0.75, -0.5, -1.5, -1.0, 0.375, 0.625, 2.0, 0.5, -0.5, -0.25, -1.25, 4.0, -1.75,
        3.25, -2.5, 0.0, -1.0, -0.75, 3.0, -1.25, 0.125, 0.375, 1.75, 0.25, -0.75, -0.5, -1.5,
        -1.0, 2.75, -1.75, 2.0,
    ];
    close(&run(op(false), &[&x]).unwrap(), &[1, 2, 4, 4], &want_excl);
}

#[test]
fn pool_ceil_mode_drops_a_window_starting_in_the_end_pad() {
    // D = 5, kernel 2, stride 3, pads [0, 1]: ceil((5 + 1 - 2) / 3) + 1 = 3, but the third
    // window would start at 6 ≥ 5 + 0, so the output has 2 positions.
    let x = seq(&[1, 1, 5], 2, 5, 2);
    let y = run(pool(PoolKind::Max, &[2], &[3], &[0, 1], true, false), &[&x]).unwrap();
    close(&y, &[1, 1, 2], &[0.0, 0.5]);
    let y = run(pool(PoolKind::Avg, &[2], &[3], &[0, 1], true, true), &[&x]).unwrap();
    close(&y, &[1, 1, 2], &[-0.5, 0.0]);
}

#[test]
fn max_pool_dilated_and_nan() {
    // MaxPool(kernel [2], strides [2], dilations [3], pads [1, 1]) on 9 elements.
    let x = seq(&[1, 1, 9], 4, 9, 4);
    let mut op = pool(PoolKind::Max, &[2], &[2], &[1, 1], false, false);
    if let Op::Pool { dilations, .. } = &mut op {
        *dilations = vec![3];
    }
    close(&run(op, &[&x]).unwrap(), &[1, 1, 4], &[2.0, 1.5, 1.0, 0.5]);
    // Hand-derived: max is NaN-propagating, like the IR's other maxima.
    let x = Tensor::from_f32(vec![1, 1, 4], vec![1.0, f32::NAN, 3.0, 2.0]).unwrap();
    let y = run(
        pool(PoolKind::Max, &[2], &[2], &[0, 0], false, false),
        &[&x],
    )
    .unwrap();
    let v = y.to_f64_vec();
    assert!(v[0].is_nan() && v[1] == 3.0);
}

#[test]
fn pool_rejects_bad_attributes_and_empty_windows() {
    let x = seq(&[1, 1, 4, 4], 1, 5, 2);
    let max = |k: &[i64], s: &[i64], p: &[i64]| pool(PoolKind::Max, k, s, p, false, false);
    assert!(run(max(&[2, 2], &[0, 1], &[0; 4]), &[&x]).is_err());
    assert!(run(max(&[2], &[1, 1], &[0; 4]), &[&x]).is_err());
    assert!(run(max(&[2, 2], &[1, 1], &[0; 2]), &[&x]).is_err());
    assert!(run(max(&[2, 0], &[1, 1], &[0; 4]), &[&x]).is_err());
    assert!(run(max(&[5, 1], &[1, 1], &[0; 4]), &[&x]).is_err());
    assert!(run(max(&[2, 2], &[1, 1], &[-1, 0, 0, 0]), &[&x]).is_err());
    assert!(run(max(&[2], &[1], &[0; 2]), &[&seq(&[4, 4], 1, 5, 2)]).is_err());
    // A window entirely in the padding has no maximum and no real-element average.
    assert!(run(max(&[1, 1], &[1, 1], &[1, 0, 0, 0]), &[&x]).is_err());
    let avg = |cip| pool(PoolKind::Avg, &[1, 1], &[1, 1], &[1, 0, 0, 0], false, cip);
    assert!(run(avg(false), &[&x]).is_err());
    // With count_include_pad the padded row averages to 0 (hand-derived).
    let y = run(avg(true), &[&x]).unwrap();
    assert_eq!(y.shape(), &[1, 1, 5, 4]);
    assert!(y.to_f64_vec()[..4].iter().all(|&v| v == 0.0));
}
