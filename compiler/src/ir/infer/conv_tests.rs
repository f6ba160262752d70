//! Tests for the sliding-window ops' inference (conv, conv_transpose, pool), kept apart from
//! `conv.rs` to keep both files short.

use super::super::op::{Op, PoolKind};
use super::testing::{err, ok};

fn conv(strides: &[i64], pads: &[i64], group: i64) -> Op {
    Op::Conv {
        strides: strides.to_vec(),
        pads: pads.to_vec(),
        dilations: vec![1; strides.len()],
        group,
    }
}

fn conv_t(strides: &[i64], pads: &[i64], group: i64, output_padding: &[i64]) -> Op {
    Op::ConvTranspose {
        strides: strides.to_vec(),
        pads: pads.to_vec(),
        dilations: vec![1; strides.len()],
        group,
        output_padding: output_padding.to_vec(),
    }
}

fn pool(kind: PoolKind, kernel: &[i64], strides: &[i64], pads: &[i64], ceil_mode: bool) -> Op {
    Op::Pool {
        kind,
        kernel: kernel.to_vec(),
        strides: strides.to_vec(),
        pads: pads.to_vec(),
        dilations: vec![1; kernel.len()],
        ceil_mode,
        count_include_pad: false,
    }
}

#[test]
fn conv_output_sizes() {
    let op = conv(&[2, 2], &[3, 3, 3, 3], 1);
    assert_eq!(
        ok(&op, &["f32[batch, 3, 224, 224]", "f32[64, 3, 7, 7]"]),
        "f32[batch, 64, 112, 112]"
    );
    let same = conv(&[1], &[1, 1], 1);
    assert_eq!(
        ok(&same, &["f32[1, 8, seq]", "f32[16, 8, 3]", "f32[16]"]),
        "f32[1, 16, seq]"
    );
    let strided = conv(&[2], &[0, 0], 1);
    assert_eq!(
        ok(&strided, &["f32[1, 8, seq+2]", "f32[16, 8, 2]"]),
        "f32[1, 16, seq/2+1]"
    );
    let dilated = Op::Conv {
        strides: vec![1],
        pads: vec![0, 0],
        dilations: vec![2],
        group: 1,
    };
    assert_eq!(
        ok(&dilated, &["f16[n, 4, 10]", "f16[4, 4, 3]"]),
        "f16[n, 4, 6]"
    );
}

#[test]
fn conv_groups() {
    let op = conv(&[1], &[0, 0], 2);
    assert_eq!(
        ok(&op, &["f32[n, 8, 10]", "f32[16, 4, 3]"]),
        "f32[n, 16, 8]"
    );
    let dw = conv(&[1], &[1, 1], 8);
    assert_eq!(
        ok(&dw, &["f32[n, 8, len]", "f32[8, 1, 3]"]),
        "f32[n, 8, len]"
    );
    assert_eq!(
        err(&conv(&[1], &[0, 0], 1), &["f32[n, 3, 10]", "f32[16, 4, 3]"]),
        "conv: input 0 has 3 channels but the weights [16, 4, 3] with group 1 expect 4"
    );
    assert_eq!(
        err(&conv(&[1], &[0, 0], 4), &["f32[n, 8, 10]", "f32[6, 2, 3]"]),
        "conv: 6 output channels are not divisible by group 4"
    );
    assert_eq!(
        err(&conv(&[1], &[0, 0], 0), &["f32[n, 8, 10]", "f32[6, 2, 3]"]),
        "conv: group must be at least 1, got 0"
    );
}

#[test]
fn conv_attribute_and_input_errors() {
    let (x, w) = ("f32[n, 8, 10, 10]", "f32[16, 8, 3, 3]");
    assert_eq!(
        err(&conv(&[1], &[0, 0], 1), &[x, w]),
        "conv: strides has 1 entries, expected 2"
    );
    assert_eq!(
        err(&conv(&[1, 0], &[0, 0, 0, 0], 1), &[x, w]),
        "conv: strides must be positive, got 0 in [1, 0]"
    );
    assert_eq!(
        err(&conv(&[1, 1], &[0, -1, 0, 0], 1), &[x, w]),
        "conv: pads must be non-negative, got -1 in [0, -1, 0, 0]"
    );
    let ok_op = conv(&[1, 1], &[0, 0, 0, 0], 1);
    assert_eq!(
        err(&ok_op, &[x, w, "f32[8]"]),
        "conv: input 2 (bias) has shape [8], expected [16] (one per output channel)"
    );
    assert!(err(&ok_op, &[x, w, "f32[1, 16]"]).contains("input 2 has rank 2"));
    assert!(err(&ok_op, &[x, w, "f16[16]"]).contains("input 2 has dtype f16"));
    assert!(err(&ok_op, &["i32[n, 8, 10, 10]", w]).contains("expected a float dtype"));
    assert!(err(&ok_op, &[x, "f32[16, 8, 3]"]).contains("input 1 (weights) has rank 3"));
    assert!(err(&ok_op, &["f32[8, 10]", w]).contains("expected at least 3"));
    assert_eq!(
        err(&conv(&[1], &[0, 0], 1), &["f32[1, 1, 2]", "f32[1, 1, 5]"]),
        "conv: spatial dim 0: input size 2 plus pads 0+0 is smaller than the effective kernel \
         size 5"
    );
    assert!(err(&conv(&[1], &[0, 0], 1), &["f32[1, 1, 2]", "f32[1, 1, 0]"]).contains("kernel"));
}

#[test]
fn conv_transpose_sizes_and_errors() {
    let op = conv_t(&[2, 2], &[1, 1, 1, 1], 1, &[0, 0]);
    assert_eq!(
        ok(&op, &["f32[n, 16, 7, 7]", "f32[16, 8, 4, 4]", "f32[8]"]),
        "f32[n, 8, 14, 14]"
    );
    let sym = conv_t(&[2], &[1, 1], 2, &[1]);
    assert_eq!(
        ok(&sym, &["f32[n, 4, len]", "f32[4, 2, 3]"]),
        "f32[n, 4, 2*len]"
    );
    assert_eq!(
        err(&sym, &["f32[n, 5, len]", "f32[4, 2, 3]"]),
        "conv_transpose: input 0 has 5 channels but the weights [4, 2, 3] expect 4"
    );
    assert_eq!(
        err(
            &conv_t(&[2], &[1, 1], 4, &[0]),
            &["f32[n, 6, len]", "f32[6, 2, 3]"]
        ),
        "conv_transpose: 6 input channels are not divisible by group 4"
    );
    assert!(err(
        &conv_t(&[2], &[0, 0], 1, &[2]),
        &["f32[n, 4, 3]", "f32[4, 2, 3]"]
    )
    .contains("output_padding 2 of spatial dim 0"));
    assert_eq!(
        err(
            &conv_t(&[2], &[0, 0], 1, &[]),
            &["f32[n, 4, 3]", "f32[4, 2, 3]"]
        ),
        "conv_transpose: output_padding has 0 entries, expected 1"
    );
    assert!(err(
        &conv_t(&[1], &[5, 5], 1, &[0]),
        &["f32[n, 4, 3]", "f32[4, 2, 3]"]
    )
    .contains("is negative"));
    assert!(err(&sym, &["f32[n, 4, len]", "f32[4, 2, 3]", "f32[2]"]).contains("expected [4]"));
}

#[test]
fn pool_sizes() {
    let mp = pool(PoolKind::Max, &[3, 3], &[2, 2], &[1, 1, 1, 1], false);
    assert_eq!(
        ok(&mp, &["f32[batch, 64, 112, 112]"]),
        "f32[batch, 64, 56, 56]"
    );
    let ceil = pool(PoolKind::Avg, &[3], &[2], &[0, 0], true);
    assert_eq!(ok(&ceil, &["f32[1, 1, 6]"]), "f32[1, 1, 3]");
    let floor = pool(PoolKind::Avg, &[3], &[2], &[0, 0], false);
    assert_eq!(ok(&floor, &["f32[1, 1, 6]"]), "f32[1, 1, 2]");
    // ceil gives 4 windows, but the last would start in the right pad: 3.
    let edge = pool(PoolKind::Max, &[2], &[2], &[1, 1], true);
    assert_eq!(ok(&edge, &["f32[1, 1, 5]"]), "f32[1, 1, 3]");
    let sym = pool(PoolKind::Max, &[2], &[2], &[0, 0], false);
    assert_eq!(ok(&sym, &["i8[batch, c, 2*seq]"]), "i8[batch, c, seq]");
}

#[test]
fn pool_errors() {
    let avg = pool(PoolKind::Avg, &[2], &[2], &[0, 0], false);
    assert_eq!(
        err(&avg, &["i32[1, 1, 4]"]),
        "avg_pool: input 0 has dtype i32, expected a float dtype"
    );
    let mp = pool(PoolKind::Max, &[2], &[2], &[0, 0], false);
    assert!(err(&mp, &["bool[1, 1, 4]"]).contains("dtype bool"));
    assert_eq!(
        err(
            &pool(PoolKind::Max, &[0], &[1], &[0, 0], false),
            &["f32[1, 1, 4]"]
        ),
        "max_pool: kernel must be positive, got 0 in [0]"
    );
    assert_eq!(
        err(
            &pool(PoolKind::Max, &[2, 2], &[1], &[0, 0], false),
            &["f32[1, 1, 4]"]
        ),
        "max_pool: kernel has 2 entries, expected 1"
    );
    assert_eq!(
        err(
            &pool(PoolKind::Max, &[2], &[1], &[0], false),
            &["f32[1, 1, 4]"]
        ),
        "max_pool: pads has 1 entries, expected 2"
    );
    assert!(err(&mp, &["f32[1, 1, 1]"]).contains("smaller than the effective kernel"));
    assert!(err(&mp, &["f32[4]"]).contains("expected at least 3"));
}
