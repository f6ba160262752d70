//! Reference-interpreter tests for the reductions: reduce, arg_reduce, softmax, cumsum (matmul's
//! tests sit in `interp/linalg.rs`). Expected values are hand-computed or derived with numpy 2.4
//! as noted.

use crate::common::{eval, t, ti};
use kiln_compiler::ir::{ArgOp, Op, ReduceOp as R};
use kiln_runtime::{DType, Tensor};

fn reduce(op: R, axes: &[i64], keepdims: bool, x: &Tensor) -> Tensor {
    let axes = axes.to_vec();
    eval(Op::Reduce { op, axes, keepdims }, &[x]).unwrap()
}

fn argr(op: ArgOp, axis: i64, keepdims: bool, select_last: bool, x: &Tensor) -> Tensor {
    let a = Op::ArgReduce {
        op,
        axis,
        keepdims,
        select_last,
    };
    eval(a, &[x]).unwrap()
}

/// Element-wise closeness with relative tolerance `rel`; NaN matches NaN, infinities exactly.
fn close(got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= rel * w.abs();
        assert!(ok, "got {got:?}, want {want:?}");
    }
}

/// arange(24).reshape(2,3,4) * 0.5 - 3.
fn cube() -> Tensor {
    let v: Vec<f64> = (0..24).map(|i| i as f64 * 0.5 - 3.0).collect();
    t(DType::F64, &[2, 3, 4], &v)
}

#[test]
fn reduce_axes_negative_keepdims_and_all() {
    let x = cube();
    // numpy: x.sum(axis=-1) and x.sum(axis=(0,2), keepdims=True).
    let s = reduce(R::Sum, &[-1], false, &x);
    assert_eq!(s.shape(), &[2, 3]);
    assert_eq!(s.to_f64_vec(), vec![-9.0, -1.0, 7.0, 15.0, 23.0, 31.0]);
    let k = reduce(R::Sum, &[0, -1], true, &x);
    assert_eq!(k.shape(), &[1, 3, 1]);
    assert_eq!(k.to_f64_vec(), vec![6.0, 22.0, 38.0]);
    let all = reduce(R::Mean, &[], false, &x);
    assert_eq!((all.shape(), all.to_f64_vec()), (&[][..], vec![2.75]));
    assert_eq!(reduce(R::Mean, &[], true, &x).shape(), &[1, 1, 1]);
    // x.prod(axis=1) and x.max(axis=0).
    let p = reduce(R::Prod, &[1], false, &x).to_f64_vec();
    close(
        &p,
        &[3.0, 1.875, -0.0, -1.875, 105.0, 144.375, 192.0, 248.625],
        0.0,
    );
    let m: Vec<f64> = (0..12).map(|i| 3.0 + 0.5 * i as f64).collect();
    assert_eq!(reduce(R::Max, &[0], false, &x).to_f64_vec(), m);
    let min = reduce(R::Min, &[-3], false, &x).to_f64_vec();
    assert_eq!(min[0], -3.0);
    // A rank-0 input reduces over no axes.
    assert_eq!(
        reduce(R::L2, &[], false, &t(DType::F32, &[], &[-3.0])).to_f64_vec(),
        vec![3.0]
    );
    let bad = |axes: Vec<i64>| {
        eval(
            Op::Reduce {
                op: R::Sum,
                axes,
                keepdims: false,
            },
            &[&x],
        )
    };
    assert!(bad(vec![3]).is_err());
    assert!(bad(vec![1, -2]).unwrap_err().contains("twice"));
}

#[test]
fn reduce_norms_and_logs() {
    // y = [[1.5,-2,3],[0.5,4,-1]]; numpy: abs(y).sum(1), sqrt((y*y).sum(1)), (y*y).sum(1),
    // log(abs(y).sum(0)), log(exp(y).sum(1)).
    let y = t(DType::F64, &[2, 3], &[1.5, -2.0, 3.0, 0.5, 4.0, -1.0]);
    assert_eq!(reduce(R::L1, &[1], false, &y).to_f64_vec(), vec![6.5, 5.5]);
    let l2 = reduce(R::L2, &[1], false, &y).to_f64_vec();
    close(&l2, &[3.905124837953327, 4.153311931459037], 1e-15);
    assert_eq!(
        reduce(R::SumSquare, &[1], false, &y).to_f64_vec(),
        vec![15.25, 17.25]
    );
    let ya = t(DType::F64, &[2, 3], &[1.5, 2.0, 3.0, 0.5, 4.0, 1.0]);
    let ls = reduce(R::LogSum, &[0], false, &ya).to_f64_vec();
    close(
        &ls,
        &[
            std::f64::consts::LN_2,
            1.791759469228055,
            1.3862943611198906,
        ],
        1e-15,
    );
    let lse = reduce(R::LogSumExp, &[1], false, &y).to_f64_vec();
    close(&lse, &[3.2069069336734133, 4.036269565124779], 1e-14);
    // Stable for large inputs (1000 + ln 2), and all -inf gives -inf.
    let inf = f64::INFINITY;
    let big = t(
        DType::F64,
        &[3, 2],
        &[1000.0, 1000.0, -inf, -inf, -inf, 0.0],
    );
    let r = reduce(R::LogSumExp, &[1], false, &big).to_f64_vec();
    close(&r, &[1000.6931471805599, -inf, 0.0], 1e-15);
}

#[test]
fn empty_reductions_give_identities() {
    let inf = f64::INFINITY;
    let e = t(DType::F32, &[2, 0], &[]);
    let want = [
        (R::Sum, 0.0),
        (R::Prod, 1.0),
        (R::Max, -inf),
        (R::Min, inf),
        (R::Mean, f64::NAN),
        (R::L1, 0.0),
        (R::L2, 0.0),
        (R::SumSquare, 0.0),
        (R::LogSum, -inf),
        (R::LogSumExp, -inf),
    ];
    for (op, v) in want {
        let y = reduce(op, &[1], false, &e);
        assert_eq!(y.shape(), &[2]);
        close(&y.to_f64_vec(), &[v, v], 0.0);
    }
    // Integers: Max/Min of nothing are the dtype's extremes; Sum 0, Prod 1.
    let ei = ti(DType::I8, &[0, 3], &[]);
    assert_eq!(reduce(R::Max, &[0], false, &ei).to_i64_vec(), vec![-128; 3]);
    assert_eq!(reduce(R::Min, &[0], false, &ei).to_i64_vec(), vec![127; 3]);
    assert_eq!(reduce(R::Sum, &[0], true, &ei).to_i64_vec(), vec![0; 3]);
    assert_eq!(reduce(R::Prod, &[], false, &ei).to_i64_vec(), vec![1]);
    // Reducing away an empty dim whose result would be too large is an error, not a panic.
    let huge = t(DType::F32, &[0, 1 << 40, 1 << 40], &[]);
    let op = Op::Reduce {
        op: R::Sum,
        axes: vec![0],
        keepdims: false,
    };
    assert!(eval(op, &[&huge]).unwrap_err().contains("too many"));
    // Reducing a non-reduced empty dim gives an empty result.
    assert_eq!(reduce(R::Sum, &[0], false, &e).shape(), &[0]);
}

#[test]
fn reduce_nan_and_integer_rules() {
    let nan = f64::NAN;
    let x = t(DType::F64, &[2, 3], &[1.0, nan, 3.0, -1.0, -2.0, -3.0]);
    close(
        &reduce(R::Max, &[1], false, &x).to_f64_vec(),
        &[nan, -1.0],
        0.0,
    );
    close(
        &reduce(R::Min, &[1], false, &x).to_f64_vec(),
        &[nan, -3.0],
        0.0,
    );
    close(
        &reduce(R::Sum, &[1], false, &x).to_f64_vec(),
        &[nan, -6.0],
        0.0,
    );
    close(
        &reduce(R::LogSumExp, &[1], false, &x).to_f64_vec()[..1],
        &[nan],
        0.0,
    );
    // i8 sums wrap (numpy: int8(100) + int8(100) = -56); integer means truncate toward zero
    // (numpy mean([-7, 0]) = -3.5 → astype(int) = -3).
    let i = ti(DType::I8, &[2, 2], &[100, 100, -7, 0]);
    assert_eq!(reduce(R::Sum, &[1], false, &i).to_i64_vec(), vec![-56, -7]);
    assert_eq!(reduce(R::Mean, &[1], false, &i).to_i64_vec(), vec![100, -3]);
    assert_eq!(reduce(R::Max, &[0], false, &i).to_i64_vec(), vec![100, 100]);
    let big = ti(DType::I64, &[2], &[i64::MAX, i64::MAX - 2]);
    assert_eq!(
        reduce(R::Mean, &[], false, &big).to_i64_vec(),
        vec![i64::MAX - 1]
    );
    assert_eq!(
        reduce(R::Prod, &[], false, &ti(DType::I32, &[3], &[-2, 3, 4])).to_i64_vec(),
        vec![-24]
    );
    // Bools are not numbers here (as in the type inference).
    let b = Tensor::from_bools(vec![2, 2], vec![true, false, false, false]).unwrap();
    let keepdims = false;
    for op in [R::Max, R::Sum] {
        let e = eval(
            Op::Reduce {
                op,
                axes: vec![],
                keepdims,
            },
            &[&b],
        );
        assert!(e.unwrap_err().contains("bool"));
    }
    let a = Op::ArgReduce {
        op: ArgOp::ArgMax,
        axis: 0,
        keepdims,
        select_last: false,
    };
    assert!(eval(a, &[&b]).unwrap_err().contains("bool"));
}

#[test]
fn argmax_argmin_first_last_and_nan() {
    let x = t(
        DType::F64,
        &[2, 4],
        &[1.0, 5.0, 5.0, -2.0, 0.0, -2.0, 7.0, -2.0],
    );
    assert_eq!(
        argr(ArgOp::ArgMax, 1, false, false, &x).to_i64_vec(),
        vec![1, 2]
    );
    assert_eq!(
        argr(ArgOp::ArgMax, -1, false, true, &x).to_i64_vec(),
        vec![2, 2]
    );
    assert_eq!(
        argr(ArgOp::ArgMin, -1, false, false, &x).to_i64_vec(),
        vec![3, 1]
    );
    assert_eq!(
        argr(ArgOp::ArgMin, 1, false, true, &x).to_i64_vec(),
        vec![3, 3]
    );
    let k = argr(ArgOp::ArgMax, 0, true, false, &x);
    assert_eq!((k.shape(), k.dtype()), (&[1, 4][..], DType::I64));
    assert_eq!(k.to_i64_vec(), vec![0, 0, 1, 0]);
    // numpy: argmax([1, nan, 3, nan]) = 1, argmin([1, nan, 0]) = 1.
    let n = t(DType::F32, &[4], &[1.0, f64::NAN, 3.0, f64::NAN]);
    assert_eq!(
        argr(ArgOp::ArgMax, 0, false, false, &n).to_i64_vec(),
        vec![1]
    );
    assert_eq!(
        argr(ArgOp::ArgMin, 0, false, false, &n).to_i64_vec(),
        vec![1]
    );
    assert_eq!(
        argr(ArgOp::ArgMax, 0, false, true, &n).to_i64_vec(),
        vec![3]
    );
    let i = ti(DType::I64, &[3], &[(1 << 53) + 1, 1 << 53, -4]);
    assert_eq!(
        argr(ArgOp::ArgMax, 0, false, false, &i).to_i64_vec(),
        vec![0]
    );
    let empty = t(DType::F32, &[2, 0], &[]);
    let a = Op::ArgReduce {
        op: ArgOp::ArgMax,
        axis: 1,
        keepdims: false,
        select_last: false,
    };
    assert!(eval(a.clone(), &[&empty]).unwrap_err().contains("empty"));
    assert!(eval(a, &[&t(DType::F32, &[], &[1.0])]).is_err());
}

#[test]
fn softmax_and_log_softmax() {
    let y = t(DType::F64, &[2, 3], &[1.5, -2.0, 3.0, 0.5, 4.0, -1.0]);
    // numpy: exp(y) / exp(y).sum(axis, keepdims=True) for axis 1 and 0.
    #[rustfmt::skip]
    let want1 = [0.18142608857948594, 0.0054785931596462575, 0.8130953182608678,
                 0.029121761537478405, 0.9643802951468597, 0.006497943315661941];
    #[rustfmt::skip]
    let want0 = [0.7310585786300049, 0.0024726231566347748, 0.9820137900379085,
                 0.26894142136999516, 0.9975273768433652, 0.01798620996209156];
    close(
        &eval(Op::Softmax { axis: -1 }, &[&y]).unwrap().to_f64_vec(),
        &want1,
        1e-14,
    );
    close(
        &eval(Op::Softmax { axis: 0 }, &[&y]).unwrap().to_f64_vec(),
        &want0,
        1e-14,
    );
    // numpy: (y - max) - log(sum(exp(y - max))) along axis 1.
    #[rustfmt::skip]
    let wantl = [-1.706906933673413, -5.206906933673413, -0.2069069336734131,
                 -3.5362695651247793, -0.03626956512477912, -5.036269565124779];
    close(
        &eval(Op::LogSoftmax { axis: 1 }, &[&y])
            .unwrap()
            .to_f64_vec(),
        &wantl,
        1e-14,
    );
    // Shift-invariant and stable: softmax([1000, 1001, 1002]) = softmax([0, 1, 2]); sums to 1.
    let big = eval(
        Op::Softmax { axis: 0 },
        &[&t(DType::F32, &[3], &[1000.0, 1001.0, 1002.0])],
    );
    let small = eval(
        Op::Softmax { axis: 0 },
        &[&t(DType::F32, &[3], &[0.0, 1.0, 2.0])],
    );
    let (big, small) = (big.unwrap().to_f64_vec(), small.unwrap().to_f64_vec());
    assert_eq!(big, small);
    assert!((big.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    let lbig = eval(
        Op::LogSoftmax { axis: 0 },
        &[&t(DType::F64, &[2], &[-1e308, 1e308])],
    );
    assert_eq!(lbig.unwrap().to_f64_vec(), vec![f64::NEG_INFINITY, 0.0]);
    // A row of all -inf is NaN (as numpy's formula gives); other rows are unaffected.
    let inf = f64::INFINITY;
    let m = t(DType::F64, &[2, 2], &[-inf, -inf, -inf, 0.0]);
    let s = eval(Op::Softmax { axis: 1 }, &[&m]).unwrap().to_f64_vec();
    close(&s, &[f64::NAN, f64::NAN, 0.0, 1.0], 0.0);
    assert!(eval(Op::Softmax { axis: 2 }, &[&m]).is_err());
    assert!(eval(Op::Softmax { axis: 0 }, &[&ti(DType::I64, &[1], &[1])]).is_err());
}

#[test]
fn cumsum_inclusive_exclusive_reverse() {
    let x = t(DType::F64, &[4], &[1.0, 2.0, 3.0, 4.0]);
    let run = |exclusive, reverse, x: &Tensor, axis| {
        eval(
            Op::CumSum {
                axis,
                exclusive,
                reverse,
            },
            &[x],
        )
        .unwrap()
        .to_f64_vec()
    };
    assert_eq!(run(false, false, &x, 0), vec![1.0, 3.0, 6.0, 10.0]);
    assert_eq!(run(true, false, &x, 0), vec![0.0, 1.0, 3.0, 6.0]);
    assert_eq!(run(false, true, &x, -1), vec![10.0, 9.0, 7.0, 4.0]);
    assert_eq!(run(true, true, &x, 0), vec![9.0, 7.0, 4.0, 0.0]);
    // numpy: cumsum(y, axis=0) and cumsum(y, axis=-1).
    let y = t(DType::F64, &[2, 3], &[1.5, -2.0, 3.0, 0.5, 4.0, -1.0]);
    assert_eq!(
        run(false, false, &y, 0),
        vec![1.5, -2.0, 3.0, 2.0, 2.0, 2.0]
    );
    assert_eq!(
        run(false, false, &y, -1),
        vec![1.5, -0.5, 2.5, 0.5, 4.5, 3.5]
    );
    let i = ti(DType::I8, &[3], &[100, 100, 1]);
    let ci = eval(
        Op::CumSum {
            axis: 0,
            exclusive: false,
            reverse: false,
        },
        &[&i],
    )
    .unwrap();
    assert_eq!(
        (ci.dtype(), ci.to_i64_vec()),
        (DType::I8, vec![100, -56, -55])
    );
    assert!(eval(
        Op::CumSum {
            axis: 1,
            exclusive: false,
            reverse: false
        },
        &[&x]
    )
    .is_err());
}
