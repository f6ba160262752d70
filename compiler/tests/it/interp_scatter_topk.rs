//! Reference-interpreter tests for topk, scatter_elements, scatter_nd and cumprod, with
//! hand-computed expected values (ONNX semantics: ties lower index first, last write wins,
//! reductions applied in index order, out-of-range indices are errors).

use crate::common::{t, ti};
use kiln_compiler::interp::eval_op;
use kiln_compiler::ir::{Bindings, Op, ScatterReduction as R};
use kiln_runtime::{DType, Tensor};

fn eval(op: Op, xs: &[&Tensor]) -> Result<Vec<Tensor>, String> {
    eval_op(&op, xs, &Bindings::new())
}

/// `(values, indices, values' shape)` of a topk.
fn topk(x: &Tensor, k: i64, axis: i64, largest: bool) -> (Vec<f64>, Vec<i64>, Vec<usize>) {
    let op = Op::TopK {
        k,
        axis,
        largest,
        sorted: true,
    };
    let out = eval(op, &[x]).unwrap();
    assert_eq!(out[1].dtype(), DType::I64);
    assert_eq!(out[0].dtype(), x.dtype());
    assert_eq!(out[0].shape(), out[1].shape());
    (
        out[0].to_f64_vec(),
        out[1].to_i64_vec(),
        out[0].shape().to_vec(),
    )
}

#[test]
fn topk_largest_and_smallest_along_either_axis() {
    let x = t(
        DType::F32,
        &[2, 4],
        &[0.0, 3.0, 1.0, 2.0, 7.0, 5.0, 6.0, 4.0],
    );
    assert_eq!(
        topk(&x, 2, -1, true),
        (vec![3.0, 2.0, 7.0, 6.0], vec![1, 3, 0, 2], vec![2, 2])
    );
    assert_eq!(
        topk(&x, 3, 1, false),
        (
            vec![0.0, 1.0, 2.0, 4.0, 5.0, 6.0],
            vec![0, 2, 3, 3, 1, 2],
            vec![2, 3]
        )
    );
    assert_eq!(
        topk(&x, 1, 0, true),
        (vec![7.0, 5.0, 6.0, 4.0], vec![1, 1, 1, 1], vec![1, 4])
    );
    // k = dim sorts the whole axis; k = 0 gives empty outputs.
    assert_eq!(topk(&x, 4, 1, true).1, vec![1, 3, 2, 0, 0, 2, 1, 3]);
    assert_eq!(topk(&x, 0, 1, true).2, vec![2, 0]);
}

#[test]
fn topk_ties_keep_the_lower_index_first() {
    let x = ti(DType::I32, &[6], &[2, 5, 2, 5, 1, 5]);
    assert_eq!(topk(&x, 4, 0, true).1, vec![1, 3, 5, 0]);
    assert_eq!(topk(&x, 3, 0, false).1, vec![4, 0, 2]);
    let z = t(DType::F64, &[3], &[0.0, -0.0, 0.0]);
    assert_eq!(topk(&z, 3, 0, true).1, vec![0, 1, 2]);
}

#[test]
fn topk_orders_nan_above_infinity_and_rejects_bad_k() {
    let x = t(DType::F16, &[4], &[f64::INFINITY, f64::NAN, -1.0, f64::NAN]);
    let (v, i, _) = topk(&x, 2, 0, true);
    assert!(v.iter().all(|v| v.is_nan()));
    assert_eq!(i, vec![1, 3]);
    assert_eq!(topk(&x, 2, 0, false).1, vec![2, 0]);
    let big = ti(DType::I64, &[2], &[i64::MAX, i64::MAX - 1]);
    let out = eval(
        Op::TopK {
            k: 1,
            axis: 0,
            largest: false,
            sorted: false,
        },
        &[&big],
    )
    .unwrap();
    assert_eq!(out[0].to_i64_vec(), vec![i64::MAX - 1]);
    for k in [-1, 5] {
        let op = Op::TopK {
            k,
            axis: 0,
            largest: true,
            sorted: true,
        };
        assert!(eval(op, &[&x]).is_err());
    }
}

fn scatter_el(
    axis: i64,
    reduction: R,
    d: &Tensor,
    i: &Tensor,
    u: &Tensor,
) -> Result<Tensor, String> {
    let op = Op::ScatterElements { axis, reduction };
    eval(op, &[d, i, u]).map(|mut v| v.remove(0))
}

#[test]
fn scatter_elements_with_every_reduction() {
    // data [[1, 2, 3], [4, 5, 6]]; along axis 1, row 0 writes col -1 then col 0, row 1 col 1
    // twice (duplicates).
    let d = t(DType::F32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let i = ti(DType::I64, &[2, 2], &[-1, 0, 1, 1]);
    let u = t(DType::F32, &[2, 2], &[10.0, 20.0, 7.0, 3.0]);
    let run = |r| scatter_el(1, r, &d, &i, &u).unwrap().to_f64_vec();
    assert_eq!(run(R::None), vec![20.0, 2.0, 10.0, 4.0, 3.0, 6.0]);
    assert_eq!(run(R::Add), vec![21.0, 2.0, 13.0, 4.0, 15.0, 6.0]);
    assert_eq!(run(R::Mul), vec![20.0, 2.0, 30.0, 4.0, 105.0, 6.0]);
    assert_eq!(run(R::Max), vec![20.0, 2.0, 10.0, 4.0, 7.0, 6.0]);
    assert_eq!(run(R::Min), vec![1.0, 2.0, 3.0, 4.0, 3.0, 6.0]);
}

#[test]
fn scatter_elements_axis_0_integers_and_bool() {
    // ONNX example: axis 0, indices [[1, 0, 2], [0, 2, 1]].
    let d = ti(DType::I32, &[3, 3], &[0; 9]);
    let i = ti(DType::I32, &[2, 3], &[1, 0, 2, 0, 2, 1]);
    let u = ti(DType::I32, &[2, 3], &[10, 11, 12, 20, 21, 22]);
    let y = scatter_el(0, R::None, &d, &i, &u).unwrap();
    assert_eq!(y.to_i64_vec(), vec![20, 11, 0, 10, 0, 22, 0, 21, 12]);
    let y = scatter_el(0, R::Add, &y, &i, &u).unwrap();
    assert_eq!(y.to_i64_vec(), vec![40, 22, 0, 20, 0, 44, 0, 42, 24]);
    let b = Tensor::from_bools(vec![3], vec![false; 3]).unwrap();
    let bi = ti(DType::I64, &[1], &[-2]);
    let bu = Tensor::from_bools(vec![1], vec![true]).unwrap();
    let y = scatter_el(0, R::None, &b, &bi, &bu).unwrap();
    assert_eq!(y.to_bool_vec(), vec![false, true, false]);
    assert!(scatter_el(0, R::Add, &b, &bi, &bu).is_err());
}

#[test]
fn scatter_elements_rejects_out_of_range_indices() {
    let d = t(DType::F32, &[2, 3], &[0.0; 6]);
    let u = t(DType::F32, &[1, 1], &[1.0]);
    for bad in [3, -4, i64::MAX, i64::MIN] {
        let i = ti(DType::I64, &[1, 1], &[bad]);
        let e = scatter_el(1, R::None, &d, &i, &u).unwrap_err();
        assert!(e.contains("out of range"), "{e}");
    }
    let big = ti(DType::I64, &[3, 1], &[0, 0, 0]);
    let u3 = t(DType::F32, &[3, 1], &[1.0; 3]);
    assert!(scatter_el(1, R::None, &d, &big, &u3).is_err());
    assert!(scatter_el(1, R::None, &d, &big, &u).is_err());
}

fn scatter_nd(reduction: R, d: &Tensor, i: &Tensor, u: &Tensor) -> Result<Tensor, String> {
    eval(Op::ScatterND { reduction }, &[d, i, u]).map(|mut v| v.remove(0))
}

#[test]
fn scatter_nd_writes_slices_and_elements() {
    // data [4, 2]: rows 1 and -1 replaced (q = 1, slices of shape [2]).
    let d = t(
        DType::F64,
        &[4, 2],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    );
    let rows = ti(DType::I64, &[2, 1], &[1, -1]);
    let u = t(DType::F64, &[2, 2], &[10.0, 20.0, 30.0, 40.0]);
    let y = scatter_nd(R::None, &d, &rows, &u).unwrap();
    assert_eq!(
        y.to_f64_vec(),
        vec![1.0, 2.0, 10.0, 20.0, 5.0, 6.0, 30.0, 40.0]
    );
    let y = scatter_nd(R::Mul, &d, &rows, &u).unwrap();
    assert_eq!(
        y.to_f64_vec(),
        vec![1.0, 2.0, 30.0, 80.0, 5.0, 6.0, 210.0, 320.0]
    );
    // q = 2 addresses elements; a duplicate with add sums both updates.
    let el = ti(DType::I64, &[3, 2], &[0, 1, 3, 0, 0, 1]);
    let ue = t(DType::F64, &[3], &[100.0, -7.0, 1.0]);
    let y = scatter_nd(R::Add, &d, &el, &ue).unwrap();
    assert_eq!(
        y.to_f64_vec(),
        vec![1.0, 103.0, 3.0, 4.0, 5.0, 6.0, 0.0, 8.0]
    );
    let y = scatter_nd(R::None, &d, &el, &ue).unwrap();
    assert_eq!(y.to_f64_vec()[1], 1.0);
    let y = scatter_nd(R::Min, &d, &el, &ue).unwrap();
    assert_eq!(y.to_f64_vec()[..2], [1.0, 1.0]);
    let y = scatter_nd(R::Max, &d, &el, &ue).unwrap();
    assert_eq!(y.to_f64_vec()[6], 7.0);
}

#[test]
fn scatter_nd_rejects_bad_indices_and_shapes() {
    let d = ti(DType::I64, &[2, 2], &[1, 2, 3, 4]);
    let u = ti(DType::I64, &[1], &[9]);
    for bad in [[2, 0], [0, -3]] {
        let i = ti(DType::I64, &[1, 2], &bad);
        assert!(scatter_nd(R::None, &d, &i, &u)
            .unwrap_err()
            .contains("out of range"));
    }
    let i = ti(DType::I64, &[1, 3], &[0, 0, 0]);
    assert!(scatter_nd(R::None, &d, &i, &u).is_err());
    let i = ti(DType::I64, &[1, 1], &[0]);
    assert!(scatter_nd(R::None, &d, &i, &u).is_err());
    let y = scatter_nd(R::Mul, &d, &ti(DType::I64, &[1, 2], &[1, 1]), &u).unwrap();
    assert_eq!(y.to_i64_vec(), vec![1, 2, 3, 36]);
}

fn cumprod(x: &Tensor, axis: i64, exclusive: bool, reverse: bool) -> Tensor {
    let op = Op::CumProd {
        axis,
        exclusive,
        reverse,
    };
    eval(op, &[x]).unwrap().remove(0)
}

#[test]
fn cumprod_exclusive_and_reverse() {
    let x = t(DType::F32, &[4], &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(
        cumprod(&x, 0, false, false).to_f64_vec(),
        vec![1.0, 2.0, 6.0, 24.0]
    );
    assert_eq!(
        cumprod(&x, 0, true, false).to_f64_vec(),
        vec![1.0, 1.0, 2.0, 6.0]
    );
    assert_eq!(
        cumprod(&x, -1, false, true).to_f64_vec(),
        vec![24.0, 24.0, 12.0, 4.0]
    );
    assert_eq!(
        cumprod(&x, 0, true, true).to_f64_vec(),
        vec![24.0, 12.0, 4.0, 1.0]
    );
    let m = ti(DType::I8, &[2, 3], &[1, 2, 3, 4, 5, 100]);
    let y = cumprod(&m, 1, false, false);
    // 4·5·100 = 2000 wraps to -48 in i8.
    assert_eq!(
        (y.dtype(), y.to_i64_vec()),
        (DType::I8, vec![1, 2, 6, 4, 20, -48])
    );
    assert_eq!(
        cumprod(&m, 0, false, false).to_i64_vec(),
        vec![1, 2, 3, 4, 10, 44]
    );
    let b = Tensor::from_bools(vec![1], vec![true]).unwrap();
    let op = Op::CumProd {
        axis: 0,
        exclusive: false,
        reverse: false,
    };
    assert!(eval(op.clone(), &[&b]).is_err());
    assert!(eval(op, &[&m]).is_ok());
}
