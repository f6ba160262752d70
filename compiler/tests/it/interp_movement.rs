//! Reference-interpreter tests for the data-movement ops. Expected values were computed with
//! numpy (`np.transpose`, `np.take`, slicing, `np.pad`, `np.tile`, `np.triu`/`np.tril`,
//! `np.take_along_axis`) or by hand, and pasted as literals; each test says which.

use kiln_compiler::interp::eval_op;
use kiln_compiler::ir::{Bindings, DType, Dim, Op, PadMode};
use kiln_runtime::{Tensor, TensorData};

fn run(op: Op, x: &[&Tensor]) -> Result<Tensor, String> {
    run_b(op, x, &Bindings::new())
}

fn run_b(op: Op, x: &[&Tensor], b: &Bindings) -> Result<Tensor, String> {
    let mut out = eval_op(&op, x, b)?;
    assert_eq!(out.len(), 1, "{op:?} gave {} outputs", out.len());
    Ok(out.remove(0))
}

fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_i64(shape.to_vec(), v.to_vec()).unwrap()
}

/// `arange(n)` as i64 with `shape`.
fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    i64s(shape, &(0..n as i64).collect::<Vec<_>>())
}

fn check(t: &Tensor, shape: &[usize], v: &[i64]) {
    assert_eq!(t.shape(), shape);
    assert_eq!(t.to_i64_vec(), v);
}

fn dims(v: &[i64]) -> Vec<Dim> {
    v.iter().map(|&d| Dim::known(d)).collect()
}

fn bind(pairs: &[(&str, i64)]) -> Bindings {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

fn tr(perm: &[i64]) -> Op {
    Op::Transpose {
        perm: perm.to_vec(),
    }
}

fn tile(repeats: &[i64]) -> Op {
    Op::Tile {
        repeats: repeats.to_vec(),
    }
}

fn trilu(upper: bool, k: i64) -> Op {
    Op::Trilu { upper, k }
}

fn slice_op(axes: &[i64], starts: &[i64], ends: &[i64], steps: &[i64]) -> Op {
    Op::Slice {
        axes: axes.to_vec(),
        starts: dims(starts),
        ends: dims(ends),
        steps: steps.to_vec(),
    }
}

#[test]
fn reshape_evaluates_symbolic_dims() {
    // [b, 2*s] with b = 3, s = 2 is [3, 4]: the same 12 elements, row-major.
    let shape = vec![Dim::sym("b"), Dim::sym("s").mul(&Dim::known(2))];
    let x = iota(&[2, 6]);
    let op = Op::Reshape { shape };
    let y = run_b(op.clone(), &[&x], &bind(&[("b", 3), ("s", 2)])).unwrap();
    check(&y, &[3, 4], &(0..12).collect::<Vec<_>>());
    assert!(run_b(op.clone(), &[&x], &bind(&[("b", 3), ("s", 3)])).is_err());
    let e = run_b(op, &[&x], &bind(&[("b", 3)])).unwrap_err();
    assert!(e.contains("symbol `s`"), "{e}");
    let neg = Op::Reshape {
        shape: dims(&[-12]),
    };
    assert!(run(neg, &[&x]).is_err());
}

#[test]
fn transpose_with_negative_perm() {
    // numpy: np.transpose(np.arange(24).reshape(2, 3, 4), (2, 0, 1)).
    let y = run(tr(&[-1, 0, 1]), &[&iota(&[2, 3, 4])]).unwrap();
    let want = [
        0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23,
    ];
    check(&y, &[4, 2, 3], &want);
    assert!(run(tr(&[0, 0, 1]), &[&iota(&[2, 3, 4])]).is_err());
    assert!(run(tr(&[1, 0]), &[&iota(&[2, 3, 4])]).is_err());
}

#[test]
fn big_i64_values_survive_transpose_and_gather() {
    // Values that f64 cannot represent; any conversion through f64 would change them.
    let big = [i64::MAX, (1 << 53) + 1, i64::MIN, -(1 << 53) - 1];
    let x = i64s(&[2, 2], &big);
    let t = run(tr(&[1, 0]), &[&x]).unwrap();
    check(&t, &[2, 2], &[big[0], big[2], big[1], big[3]]);
    let idx = i64s(&[3], &[-1, 0, 1]);
    let g = run(Op::Gather { axis: 1 }, &[&x, &idx]).unwrap();
    check(
        &g,
        &[2, 3],
        &[big[1], big[0], big[1], big[3], big[2], big[3]],
    );
}

#[test]
fn transpose_moves_every_dtype_exactly() {
    // Hand-derived: the transpose of [[0, 1, 2], [3, 4, 5]] is [[0, 3], [1, 4], [2, 5]].
    for d in DType::ALL {
        let x = Tensor::from_f64_values(d, vec![2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let y = run(tr(&[1, 0]), &[&x]).unwrap();
        let want = Tensor::from_f64_values(d, vec![3, 2], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(y, want.unwrap(), "{d}");
    }
}

#[test]
fn expand_broadcasts_both_ways() {
    // numpy: np.broadcast_to(np.arange(3).reshape(3, 1), (2, 3, 4)); target [2, 1, 4].
    let expand = |s: &[i64]| Op::Expand { shape: dims(s) };
    let y = run(expand(&[2, 1, 4]), &[&iota(&[3, 1])]).unwrap();
    let row: Vec<i64> = [0, 1, 2].iter().flat_map(|&v| [v; 4]).collect();
    check(&y, &[2, 3, 4], &[row.clone(), row].concat());
    assert!(run(expand(&[2, 4]), &[&iota(&[3, 1])]).is_err());
}

#[test]
fn slice_negative_steps_and_clamped_ends() {
    // numpy on r = np.arange(10): r[9::-1], r[8:1:-3], r[2:1000:3], r[-100:3], r[100::-4].
    let r = iota(&[10]);
    let cases: [(i64, i64, i64, &[i64]); 5] = [
        (-1, i64::MIN, -1, &[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
        (8, 1, -3, &[8, 5, 2]),
        (2, 1000, 3, &[2, 5, 8]),
        (-100, 3, 1, &[0, 1, 2]),
        (100, -100, -4, &[9, 5, 1]),
    ];
    for (start, end, step, want) in cases {
        let y = run(slice_op(&[0], &[start], &[end], &[step]), &[&r]).unwrap();
        check(&y, &[want.len()], want);
    }
    // Empty results: start past end for the step's direction.
    let y = run(slice_op(&[0], &[5], &[2], &[1]), &[&r]).unwrap();
    check(&y, &[0], &[]);
    assert!(run(slice_op(&[0], &[0], &[5], &[0]), &[&r])
        .unwrap_err()
        .contains("step"));
}

#[test]
fn slice_negative_axis_and_symbolic_bounds() {
    // numpy: np.arange(12).reshape(3, 4)[0:-1, -3::2] = [[1, 3], [5, 7]].
    let m = iota(&[3, 4]);
    let op = slice_op(&[-1, 0], &[-3, 0], &[i64::MAX, -1], &[2, 1]);
    check(&run(op, &[&m]).unwrap(), &[2, 2], &[1, 3, 5, 7]);
    // Rows s..s+1 with s = 1 (hand-derived: row 1 of the matrix).
    let op = Op::Slice {
        axes: vec![0],
        starts: vec![Dim::sym("s")],
        ends: vec![Dim::sym("s").add(&Dim::known(1))],
        steps: vec![1],
    };
    let y = run_b(op, &[&m], &bind(&[("s", 1)])).unwrap();
    check(&y, &[1, 4], &[4, 5, 6, 7]);
    // ONNX's slice_neg_steps test: (20, 10, 5) with steps [-1, -3, -2] gives (19, 3, 2).
    let op = slice_op(&[0, 1, 2], &[20, 10, 4], &[0, 0, 1], &[-1, -3, -2]);
    assert_eq!(
        run(op, &[&iota(&[20, 10, 5])]).unwrap().shape(),
        &[19, 3, 2]
    );
}

#[test]
fn bools_through_slice_and_concat() {
    // Hand-derived: reverse [t, f, f], then join with [t] and [f, t].
    let x = Tensor::from_bools(vec![3], vec![true, false, false]).unwrap();
    let r = run(slice_op(&[0], &[-1], &[i64::MIN], &[-1]), &[&x]).unwrap();
    assert_eq!(r.data(), &TensorData::Bool(vec![false, false, true]));
    let a = Tensor::from_bools(vec![1], vec![true]).unwrap();
    let b = Tensor::from_bools(vec![2], vec![false, true]).unwrap();
    let y = run(Op::Concat { axis: -1 }, &[&r, &a, &b]).unwrap();
    let want = vec![false, false, true, true, false, true];
    assert_eq!(y.data(), &TensorData::Bool(want));
}

#[test]
fn concat_negative_axis_and_errors() {
    // Hand-derived: [[0, 1], [2, 3]] ++ [[0, 1, 2], [3, 4, 5]] along the last axis.
    let y = run(Op::Concat { axis: -1 }, &[&iota(&[2, 2]), &iota(&[2, 3])]).unwrap();
    check(&y, &[2, 5], &[0, 1, 0, 1, 2, 2, 3, 3, 4, 5]);
    let y = run(Op::Concat { axis: 0 }, &[&iota(&[1, 2]), &iota(&[2, 2])]).unwrap();
    check(&y, &[3, 2], &[0, 1, 0, 1, 2, 3]);
    assert!(run(Op::Concat { axis: 0 }, &[&iota(&[2, 2]), &iota(&[2, 3])]).is_err());
    let f = Tensor::from_f32(vec![2, 2], vec![0.0; 4]).unwrap();
    assert!(run(Op::Concat { axis: 0 }, &[&iota(&[2, 2]), &f]).is_err());
    assert!(run(Op::Concat { axis: 0 }, &[]).is_err());
}

#[test]
fn split_with_symbolic_sizes() {
    // Hand-derived: columns [0, n) and [n, 4) of arange(8).reshape(2, 4) with n = 1.
    let sizes = vec![Dim::sym("n"), Dim::known(4).sub(&Dim::sym("n"))];
    let op = Op::Split { axis: -1, sizes };
    let ys = eval_op(&op, &[&iota(&[2, 4])], &bind(&[("n", 1)])).unwrap();
    check(&ys[0], &[2, 1], &[0, 4]);
    check(&ys[1], &[2, 3], &[1, 2, 3, 5, 6, 7]);
    let bad = Op::Split {
        axis: 1,
        sizes: dims(&[1, 2]),
    };
    assert!(eval_op(&bad, &[&iota(&[2, 4])], &Bindings::new()).is_err());
}

#[test]
fn gather_negative_indices_and_range_error() {
    // numpy: np.take(np.arange(6).reshape(3, 2), [[-1, 0], [1, -3]], axis=0).
    let idx = i64s(&[2, 2], &[-1, 0, 1, -3]);
    let y = run(Op::Gather { axis: 0 }, &[&iota(&[3, 2]), &idx]).unwrap();
    check(&y, &[2, 2, 2], &[4, 5, 0, 1, 2, 3, 0, 1]);
    // numpy: np.take(np.arange(12).reshape(2, 2, 3), [2, -1, 0], axis=-1), i32 indices.
    let idx = Tensor::new(vec![3], TensorData::I32(vec![2, -1, 0])).unwrap();
    let y = run(Op::Gather { axis: -1 }, &[&iota(&[2, 2, 3]), &idx]).unwrap();
    check(&y, &[2, 2, 3], &[2, 2, 0, 5, 5, 3, 8, 8, 6, 11, 11, 9]);
    let bad = i64s(&[2], &[0, 3]);
    let e = run(Op::Gather { axis: 0 }, &[&iota(&[3, 2]), &bad]).unwrap_err();
    assert!(e.contains('3') && e.contains("-3..=2"), "{e}");
    let bad = i64s(&[1], &[-4]);
    let e = run(Op::Gather { axis: 0 }, &[&iota(&[3, 2]), &bad]).unwrap_err();
    assert!(e.contains("-4"), "{e}");
    let f = Tensor::from_f32(vec![1], vec![0.0]).unwrap();
    assert!(run(Op::Gather { axis: 0 }, &[&iota(&[3]), &f]).is_err());
}

#[test]
fn gather_elements_follows_onnx() {
    // ONNX GatherElements doc example (axis 0) and np.take_along_axis for the rest.
    let data = i64s(&[3, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let idx = i64s(&[2, 3], &[1, 2, 0, 2, 0, 0]);
    let y = run(Op::GatherElements { axis: 0 }, &[&data, &idx]).unwrap();
    check(&y, &[2, 3], &[4, 8, 3, 7, 2, 3]);
    // Negative indices, axis -1, indices smaller than data on axis 0:
    // np.take_along_axis(data[:2], [[2, 0], [1, 0]], 1) = [[3, 1], [5, 4]].
    let idx = i64s(&[2, 2], &[-1, 0, 1, -3]);
    let y = run(Op::GatherElements { axis: -1 }, &[&data, &idx]).unwrap();
    check(&y, &[2, 2], &[3, 1, 5, 4]);
    let bad = i64s(&[1, 1], &[3]);
    let e = run(Op::GatherElements { axis: 1 }, &[&data, &bad]).unwrap_err();
    assert!(e.contains("index 3"), "{e}");
    let flat = i64s(&[3], &[0; 3]);
    assert!(run(Op::GatherElements { axis: 0 }, &[&data, &flat]).is_err());
}

fn pad_op(pads: &[i64], mode: PadMode, value: f64) -> Op {
    Op::Pad {
        pads: pads.to_vec(),
        mode,
        value,
    }
}

#[test]
fn pad_all_four_modes() {
    // numpy on x = [[1, 2, 3], [4, 5, 6]] with np.pad(x, ((b0, e0), (b1, e1)), mode).
    let x = i64s(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let xf = x.cast(DType::F32);
    // constant 1.5, ((1, 1), (2, 0)); on i64 the value truncates to 1.
    let y = run(pad_op(&[1, 2, 1, 0], PadMode::Constant, 1.5), &[&xf]).unwrap();
    let h = 1.5;
    let want = [
        h, h, h, h, h, h, h, 1.0, 2.0, 3.0, h, h, 4.0, 5.0, 6.0, h, h, h, h, h,
    ];
    assert_eq!(y, Tensor::from_f32(vec![4, 5], want.to_vec()).unwrap());
    let y = run(pad_op(&[0, 1, 0, 0], PadMode::Constant, 1.5), &[&x]).unwrap();
    check(&y, &[2, 4], &[1, 1, 2, 3, 1, 4, 5, 6]);
    // reflect ((1, 1), (2, 1))
    let y = run(pad_op(&[1, 2, 1, 1], PadMode::Reflect, 0.0), &[&x]).unwrap();
    let want = [
        6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2,
    ];
    check(&y, &[4, 6], &want);
    // edge ((0, 1), (2, 3))
    let y = run(pad_op(&[0, 2, 1, 3], PadMode::Edge, 0.0), &[&x]).unwrap();
    let want = [
        1, 1, 1, 2, 3, 3, 3, 3, 4, 4, 4, 5, 6, 6, 6, 6, 4, 4, 4, 5, 6, 6, 6, 6,
    ];
    check(&y, &[3, 8], &want);
    // wrap ((1, 0), (4, 2)): pads larger than the dim wrap around repeatedly.
    let y = run(pad_op(&[1, 4, 0, 2], PadMode::Wrap, 0.0), &[&x]).unwrap();
    let want = [
        6, 4, 5, 6, 4, 5, 6, 4, 5, 3, 1, 2, 3, 1, 2, 3, 1, 2, 6, 4, 5, 6, 4, 5, 6, 4, 5,
    ];
    check(&y, &[3, 9], &want);
}

#[test]
fn pad_negative_pads_crop_first() {
    // x = np.arange(1, 13).reshape(3, 4); negative pads crop, then numpy pads the rest:
    // np.pad(x[1:, :2], ((0, 1), (1, 0))) and np.pad(x[:, 1:], ((0, 0), (0, 2)), 'reflect').
    let x = i64s(&[3, 4], &(1..=12).collect::<Vec<_>>());
    let y = run(pad_op(&[-1, 1, 1, -2], PadMode::Constant, 0.0), &[&x]).unwrap();
    check(&y, &[3, 3], &[0, 5, 6, 0, 9, 10, 0, 0, 0]);
    let y = run(pad_op(&[0, -1, 0, 2], PadMode::Reflect, 0.0), &[&x]).unwrap();
    check(
        &y,
        &[3, 5],
        &[2, 3, 4, 3, 2, 6, 7, 8, 7, 6, 10, 11, 12, 11, 10],
    );
    assert!(run(pad_op(&[0, -3, 0, -2], PadMode::Constant, 0.0), &[&x]).is_err());
}

#[test]
fn pad_mode_errors() {
    let x = iota(&[2, 3]);
    // reflect needs pads smaller than the dim; edge and wrap need a non-empty dim.
    assert!(run(pad_op(&[2, 0, 0, 0], PadMode::Reflect, 0.0), &[&x]).is_err());
    assert!(run(pad_op(&[0, 0, 0, 3], PadMode::Reflect, 0.0), &[&x]).is_err());
    let empty = iota(&[0, 3]);
    assert!(run(pad_op(&[1, 0, 0, 0], PadMode::Edge, 0.0), &[&empty]).is_err());
    assert!(run(pad_op(&[0, 0, 1, 0], PadMode::Wrap, 0.0), &[&empty]).is_err());
    let y = run(pad_op(&[1, 0, 0, 0], PadMode::Constant, 7.0), &[&empty]).unwrap();
    check(&y, &[1, 3], &[7, 7, 7]);
    assert!(run(pad_op(&[1, 0], PadMode::Constant, 0.0), &[&x]).is_err());
}

#[test]
fn range_with_symbolic_bindings() {
    // Hand-derived: range(0, n, 2) with n = 7, and range(10, 3, -3); as f32 and i32.
    let op = Op::Range {
        start: Dim::known(0),
        limit: Dim::sym("n"),
        delta: Dim::known(2),
        dtype: DType::F32,
    };
    let y = run_b(op, &[], &bind(&[("n", 7)])).unwrap();
    assert_eq!(
        y,
        Tensor::from_f32(vec![4], vec![0.0, 2.0, 4.0, 6.0]).unwrap()
    );
    let op = |start: i64, limit: i64, delta: i64| Op::Range {
        start: Dim::known(start),
        limit: Dim::known(limit),
        delta: Dim::known(delta),
        dtype: DType::I32,
    };
    let y = run(op(10, 3, -3), &[]).unwrap();
    assert_eq!(y.data(), &TensorData::I32(vec![10, 7, 4]));
    check(&run(op(5, 1, 1), &[]).unwrap(), &[0], &[]);
    assert!(run(op(0, 5, 0), &[]).is_err());
}

#[test]
fn tile_repeats_each_axis() {
    // numpy: np.tile([[1, 2, 3], [4, 5, 6]], (2, 2)).
    let x = i64s(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let y = run(tile(&[2, 2]), &[&x]).unwrap();
    let want = [
        1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6,
    ];
    check(&y, &[4, 6], &want);
    check(&run(tile(&[0, 1]), &[&x]).unwrap(), &[0, 3], &[]);
    assert!(run(tile(&[-1, 1]), &[&x]).is_err());
    assert!(run(tile(&[2]), &[&x]).is_err());
}

#[test]
fn trilu_upper_lower_and_bool() {
    // numpy: np.triu(t, 1) and np.tril(t, -1) for t = np.arange(1, 13).reshape(3, 4).
    let t = i64s(&[3, 4], &(1..=12).collect::<Vec<_>>());
    let y = run(trilu(true, 1), &[&t]).unwrap();
    check(&y, &[3, 4], &[0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12]);
    let y = run(trilu(false, -1), &[&t]).unwrap();
    check(&y, &[3, 4], &[0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0]);
    // Hand-derived, batched bool: the upper triangle (k = 0) of an all-true [2, 3] per batch.
    let b = Tensor::from_bools(vec![2, 2, 3], vec![true; 12]).unwrap();
    let y = run(trilu(true, 0), &[&b]).unwrap();
    let one = [true, true, true, false, true, true];
    assert_eq!(y.data(), &TensorData::Bool([one, one].concat()));
    assert!(run(trilu(true, 0), &[&iota(&[3])]).is_err());
}

#[test]
fn shape_of_clamps_bounds() {
    // Hand-derived from the shape [2, 3, 4, 5].
    let x = iota(&[2, 3, 4, 5]);
    let shape_of = |start: i64, end: Option<i64>| run(Op::ShapeOf { start, end }, &[&x]).unwrap();
    check(&shape_of(0, None), &[4], &[2, 3, 4, 5]);
    check(&shape_of(-2, None), &[2], &[4, 5]);
    check(&shape_of(1, Some(-1)), &[2], &[3, 4]);
    check(&shape_of(-10, Some(100)), &[4], &[2, 3, 4, 5]);
    check(&shape_of(3, Some(1)), &[0], &[]);
}
