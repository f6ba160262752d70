//! Tests for the data-movement ops' inference in `movement.rs` (reshape, transpose, expand,
//! concat, split, pad, tile, trilu, shape_of).

use super::super::op::{Op, PadMode};
use super::testing::{dims, err, ok};

fn reshape(target: &str) -> Op {
    Op::Reshape {
        shape: dims(target),
    }
}

fn split(axis: i64, sizes: &str) -> Op {
    Op::Split {
        axis,
        sizes: dims(sizes),
    }
}

fn pad(pads: &[i64]) -> Op {
    Op::Pad {
        pads: pads.to_vec(),
        mode: PadMode::Constant,
        value: 0.0,
    }
}

#[test]
fn reshape_compares_element_counts() {
    assert_eq!(
        ok(&reshape("batch*seq, 384"), &["f32[batch, seq, 384]"]),
        "f32[batch*seq, 384]"
    );
    assert_eq!(
        ok(&reshape("batch, seq, 6, 64"), &["f16[batch, seq, 384]"]),
        "f16[batch, seq, 6, 64]"
    );
    assert_eq!(ok(&reshape(""), &["i64[1, 1]"]), "i64[]");
    assert_eq!(
        err(&reshape("batch, 100"), &["f32[batch, seq, 384]"]),
        "reshape: reshape from [batch, seq, 384] (384*batch*seq elements) to [batch, 100] \
         (100*batch elements)"
    );
    assert_eq!(
        err(&reshape("-1, 4"), &["f32[2, 2]"]),
        "reshape: dim 0 of the target shape [-1, 4] is negative"
    );
}

#[test]
fn transpose_permutes() {
    let t = |perm: &[i64]| Op::Transpose {
        perm: perm.to_vec(),
    };
    assert_eq!(
        ok(&t(&[0, 2, 1, 3]), &["f32[batch, seq, heads, 64]"]),
        "f32[batch, heads, seq, 64]"
    );
    assert_eq!(ok(&t(&[-1, 0]), &["u8[a, b]"]), "u8[b, a]");
    assert_eq!(ok(&t(&[]), &["u8[]"]), "u8[]");
    assert_eq!(
        err(&t(&[0, 0]), &["f32[2, 3]"]),
        "transpose: perm [0, 0] lists axis 0 more than once"
    );
    assert_eq!(
        err(&t(&[0, -2]), &["f32[2, 3]"]),
        "transpose: perm [0, -2] lists axis 0 more than once"
    );
    assert_eq!(
        err(&t(&[1, 0]), &["f32[2, 3, 4]"]),
        "transpose: perm [1, 0] has 2 entries, expected 3 (the rank of [2, 3, 4])"
    );
    assert_eq!(
        err(&t(&[0, 2]), &["f32[2, 3]"]),
        "transpose: axis 2 is out of range for rank 2"
    );
}

#[test]
fn expand_broadcasts_both_ways() {
    let e = |target: &str| Op::Expand {
        shape: dims(target),
    };
    assert_eq!(ok(&e("batch, 1, 4"), &["f32[3, 1]"]), "f32[batch, 3, 4]");
    assert_eq!(ok(&e("1"), &["f32[seq, 2]"]), "f32[seq, 2]");
    assert_eq!(
        err(&e("batch, 3"), &["f32[batch, 4]"]),
        "expand: cannot broadcast [batch, 4] with [batch, 3]"
    );
    assert!(err(&e("-2"), &["f32[2]"]).contains("negative"));
}

#[test]
fn concat_sums_the_axis() {
    let c = |axis| Op::Concat { axis };
    assert_eq!(
        ok(
            &c(1),
            &[
                "f32[batch, seq, 4]",
                "f32[batch, 1, 4]",
                "f32[batch, past, 4]"
            ]
        ),
        "f32[batch, past+seq+1, 4]"
    );
    assert_eq!(ok(&c(-1), &["i64[2]"]), "i64[2]");
    assert_eq!(
        err(&c(1), &["f32[batch, 2]", "f32[n, 3]"]),
        "concat: input 1 has shape [n, 3] but input 0 has [batch, 2]: dim 0 differs (n vs batch) \
         outside the concat axis 1"
    );
    assert_eq!(
        err(&c(0), &["f32[2]", "i32[2]"]),
        "concat: input 1 has dtype i32, expected the dtype of input 0 (f32)"
    );
    assert_eq!(
        err(&c(0), &["f32[2]", "f32[2, 2]"]),
        "concat: input 1 has rank 2 ([2, 2]), expected 1 (the rank of input 0, [2])"
    );
    assert_eq!(
        err(&c(0), &["f32[]", "f32[]"]),
        "concat: axis 0 is out of range for rank 0"
    );
}

#[test]
fn split_sizes_must_sum() {
    assert_eq!(
        ok(&split(-1, "384, 384, 384"), &["f32[batch, seq, 1152]"]),
        "f32[batch, seq, 384]; f32[batch, seq, 384]; f32[batch, seq, 384]"
    );
    assert_eq!(
        ok(&split(0, "seq, 1"), &["f32[seq+1, 2]"]),
        "f32[seq, 2]; f32[1, 2]"
    );
    assert_eq!(
        err(&split(0, "2, 3"), &["f32[6]"]),
        "split: sizes [2, 3] sum to 5, but axis 0 of [6] has size 6"
    );
    assert!(err(&split(0, "seq, 1"), &["f32[seq]"]).contains("sum to seq+1"));
    assert!(err(&split(0, "-1, 7"), &["f32[6]"]).contains("negative"));
    assert_eq!(
        err(&split(0, ""), &["f32[6]"]),
        "split: sizes is empty; split needs at least one output"
    );
    assert!(err(&split(2, "1"), &["f32[1]"]).contains("out of range"));
}

#[test]
fn pad_and_tile() {
    assert_eq!(
        ok(&pad(&[0, 1, 0, 2]), &["f32[batch, seq]"]),
        "f32[batch, seq+3]"
    );
    assert_eq!(ok(&pad(&[-1, 0, -1, 0]), &["f32[4, 5]"]), "f32[2, 5]");
    assert_eq!(
        err(&pad(&[0, 1]), &["f32[4, 5]"]),
        "pad: pads has 2 entries, expected 4"
    );
    assert_eq!(
        err(&pad(&[-3, -2]), &["f32[4]"]),
        "pad: pads -3 and -2 crop dim 0 (4) of [4] below zero"
    );
    let tile = |r: &[i64]| Op::Tile {
        repeats: r.to_vec(),
    };
    assert_eq!(
        ok(&tile(&[2, 1, 3]), &["i32[batch, seq, 4]"]),
        "i32[2*batch, seq, 12]"
    );
    assert_eq!(
        err(&tile(&[2]), &["i32[batch, seq]"]),
        "tile: repeats has 1 entries, expected 2"
    );
    assert!(err(&tile(&[-1]), &["i32[4]"]).contains("non-negative"));
}

#[test]
fn trilu_and_shape_of() {
    let tri = Op::Trilu { upper: true, k: 1 };
    assert_eq!(
        ok(&tri, &["bool[batch, seq, seq]"]),
        "bool[batch, seq, seq]"
    );
    assert_eq!(
        err(&tri, &["f32[seq]"]),
        "trilu: input 0 has rank 1 ([seq]), expected at least 2"
    );
    let shape = |start, end| Op::ShapeOf { start, end };
    let x = "f32[batch, seq, 384]";
    assert_eq!(ok(&shape(0, None), &[x]), "i64[3]");
    assert_eq!(ok(&shape(-2, None), &[x]), "i64[2]");
    assert_eq!(ok(&shape(1, Some(-1)), &[x]), "i64[1]");
    assert_eq!(ok(&shape(2, Some(1)), &[x]), "i64[0]");
    assert_eq!(ok(&shape(-10, Some(10)), &[x]), "i64[3]");
    assert_eq!(ok(&shape(i64::MIN, Some(i64::MAX)), &[x]), "i64[3]");
    assert_eq!(ok(&shape(0, None), &["bool[]"]), "i64[0]");
}
