//! The native kernels against the reference kernels on random shapes, size-1 and empty dims and
//! negative axes.

use super::*;
use crate::ops::{Bindings, Dim, Op, PoolKind, ReduceOp};
use crate::reference::eval_op;
use crate::test_util::Rng;
use crate::{DType, Tensor};

fn rand_shape(r: &mut Rng, rank: usize, empty: bool) -> Vec<usize> {
    (0..rank)
        .map(|_| {
            if empty && r.one_in(4) {
                0
            } else {
                1 + r.below(4)
            }
        })
        .collect()
}

fn tensor(r: &mut Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f64_values(DType::F32, shape.to_vec(), &r.values(n, -3.0, 3.0)).unwrap()
}

fn reference(op: &Op, xs: &[&Tensor]) -> Vec<Tensor> {
    eval_op(op, xs, &Bindings::new()).unwrap()
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_f64_vec().iter().map(|&v| v as f32).collect()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + y.abs()) || x == y || (x.is_nan() && y.is_nan()),
            "{x} vs {y}"
        );
    }
}

#[test]
fn transpose_and_expand_match_the_reference() {
    let mut r = Rng(1);
    for _ in 0..200 {
        let rank = r.below(5);
        let shape = rand_shape(&mut r, rank, true);
        let x = tensor(&mut r, &shape);
        let mut perm: Vec<i64> = (0..rank as i64).collect();
        for i in (1..rank).rev() {
            perm.swap(i, r.below(i + 1));
        }
        if r.coin() && rank > 0 {
            perm[0] -= rank as i64; // a negative axis
        }
        let want = &reference(&Op::Transpose { perm: perm.clone() }, &[&x])[0];
        let (strides, out) = transpose_strides(&shape, &perm).unwrap();
        assert_eq!(&*out, want.shape());
        let mut dst = vec![0u8; want.to_le_bytes().len()];
        strided_copy(&x.to_le_bytes(), &strides, &out, 4, &mut dst).unwrap();
        assert_eq!(dst, want.to_le_bytes());

        let big: Vec<usize> = shape
            .iter()
            .map(|&d| if d == 1 { 1 + r.below(3) } else { d })
            .collect();
        let lead = [2usize];
        let big: Vec<usize> = lead.iter().chain(&big).copied().collect();
        let op = Op::Expand {
            shape: big.iter().map(|&d| Dim::known(d as i64)).collect(),
        };
        let want = &reference(&op, &[&x])[0];
        let mut dst = vec![0u8; want.to_le_bytes().len()];
        let s = broadcast_strides(&shape, &big).unwrap();
        strided_copy(&x.to_le_bytes(), &s, &big, 4, &mut dst).unwrap();
        assert_eq!(dst, want.to_le_bytes());
    }
    assert!(strided_copy(&[0u8; 4], &[1], &[2], 4, &mut [0u8; 8]).is_err());
}

#[test]
fn concat_split_and_where_match_the_reference() {
    let mut r = Rng(2);
    for _ in 0..200 {
        let rank = 1 + r.below(4);
        let base = rand_shape(&mut r, rank, true);
        let axis = r.below(rank);
        let parts: Vec<Tensor> = (0..1 + r.below(3))
            .map(|_| {
                let mut s = base.clone();
                s[axis] = r.below(4);
                tensor(&mut r, &s)
            })
            .collect();
        let refs: Vec<&Tensor> = parts.iter().collect();
        let neg = axis as i64 - rank as i64;
        let want = &reference(&Op::Concat { axis: neg }, &refs)[0];
        let bytes: Vec<Vec<u8>> = parts.iter().map(|p| p.to_le_bytes()).collect();
        let args: Vec<(&[u8], &[usize])> = bytes
            .iter()
            .zip(&parts)
            .map(|(b, p)| (&b[..], p.shape()))
            .collect();
        let mut dst = vec![0u8; want.to_le_bytes().len()];
        concat(&args, axis, 4, &mut dst).unwrap();
        assert_eq!(dst, want.to_le_bytes());

        let mut outs: Vec<Vec<u8>> = bytes.iter().map(|b| vec![0u8; b.len()]).collect();
        let mut o: Vec<(&mut [u8], &[usize])> = outs
            .iter_mut()
            .zip(&parts)
            .map(|(b, p)| (&mut b[..], p.shape()))
            .collect();
        split(&want.to_le_bytes(), &mut o, axis, 4).unwrap();
        assert_eq!(outs, bytes);

        let out = want.shape().to_vec();
        let cshape: Vec<usize> = out.iter().map(|&d| if r.coin() { 1 } else { d }).collect();
        let cn: usize = cshape.iter().product();
        let cond = Tensor::from_le_bytes(
            DType::Bool,
            cshape.clone(),
            &(0..cn).map(|_| r.coin() as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        let y = tensor(&mut r, &out[1..]);
        let w = &reference(&Op::Where, &[&cond, want, &y])[0];
        let mut dst = vec![0u8; w.to_le_bytes().len()];
        where_select(
            (&cond.to_le_bytes(), &cshape),
            (&want.to_le_bytes(), &out),
            (&y.to_le_bytes(), y.shape()),
            &out,
            4,
            &mut dst,
        )
        .unwrap();
        assert_eq!(dst, w.to_le_bytes());
    }
}

#[test]
fn pooling_reductions_and_softmax_match_the_reference() {
    let mut r = Rng(3);
    for i in 0..150 {
        let x_shape = [
            1 + r.below(2),
            1 + r.below(3),
            1 + r.below(7),
            1 + r.below(7),
        ];
        let x = tensor(&mut r, &x_shape);
        let kind = if r.coin() {
            PoolKind::Max
        } else {
            PoolKind::Avg
        };
        let k = [1 + r.below(3), 1 + r.below(3)];
        let p = [r.below(k[0]), r.below(k[1]), r.below(k[0]), r.below(k[1])];
        let op = Op::Pool {
            kind,
            kernel: k.iter().map(|&v| v as i64).collect(),
            strides: vec![1 + r.below(2) as i64, 1 + r.below(2) as i64],
            pads: p.iter().map(|&v| v as i64).collect(),
            dilations: vec![1, 1 + (i % 2) as i64],
            ceil_mode: r.coin(),
            count_include_pad: r.coin(),
        };
        let Op::Pool {
            strides,
            dilations,
            count_include_pad,
            ..
        } = &op
        else {
            unreachable!()
        };
        let params = Pool2d {
            kind,
            kernel: k,
            strides: [strides[0] as usize, strides[1] as usize],
            pads: p,
            dilations: [dilations[0] as usize, dilations[1] as usize],
            count_include_pad: *count_include_pad,
        };
        if let Ok(want) = eval_op(&op, &[&x], &Bindings::new()) {
            let mut y = vec![0f32; want[0].to_f64_vec().len()];
            pool2d(&params, &f32s(&x), &x_shape, &mut y, want[0].shape()).unwrap();
            close(&y, &f32s(&want[0]));
        }

        let rank = 1 + r.below(4);
        let shape = rand_shape(&mut r, rank, true);
        let x = tensor(&mut r, &shape);
        let lo = r.below(rank);
        let hi = lo + r.below(rank - lo);
        let axes: Vec<i64> = (lo..=hi)
            .map(|a| a as i64 - if r.coin() { rank as i64 } else { 0 })
            .collect();
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            let o = Op::Reduce {
                op,
                axes: axes.clone(),
                keepdims: r.coin(),
            };
            let want = &reference(&o, &[&x])[0];
            let mut y = vec![0f32; want.to_f64_vec().len()];
            reduce(op, &f32s(&x), reduce_block(&shape, &axes).unwrap(), &mut y).unwrap();
            close(&y, &f32s(want));
        }
        let axis = lo as i64 - rank as i64;
        for log in [false, true] {
            let o = if log {
                Op::LogSoftmax { axis }
            } else {
                Op::Softmax { axis }
            };
            let want = &reference(&o, &[&x])[0];
            let mut y = vec![0f32; want.to_f64_vec().len()];
            let block = (
                shape[..lo].iter().product(),
                shape[lo],
                shape[lo + 1..].iter().product(),
            );
            softmax_axis(&f32s(&x), block, log, &mut y).unwrap();
            close(&y, &f32s(want));
        }
    }
    assert!(reduce_block(&[2, 3, 4], &[0, 2]).is_err());
}

#[test]
fn slice_strides_match_the_reference_slice() {
    let mut r = Rng(77);
    for _ in 0..200 {
        let rank = 1 + r.below(4);
        let shape = rand_shape(&mut r, rank, true);
        let x = tensor(&mut r, &shape);
        // Random positive steps, starts and ends (negative, past the end, clamped).
        let axis = r.below(rank);
        let dim = shape[axis] as i64;
        let start = r.below(2 * dim as usize + 3) as i64 - dim - 1;
        let end = if r.coin() {
            i64::MAX
        } else {
            r.below(2 * dim as usize + 3) as i64 - dim - 1
        };
        let step = 1 + r.below(3) as i64;
        let op = Op::Slice {
            axes: vec![axis as i64 - if r.coin() { rank as i64 } else { 0 }],
            starts: vec![Dim::known(start)],
            ends: vec![Dim::known(end)],
            steps: vec![step],
        };
        let want = &reference(&op, &[&x])[0];
        let (first, count) = crate::reference::slice_axis(start, end, step, shape[axis]);
        let listed = [(axis, first as usize, step as usize, count)];
        let (off, strides, out) = slice_strides(&shape, &listed).unwrap();
        assert_eq!(&*out, want.shape(), "{shape:?} {op:?}");
        let mut dst = vec![0u8; want.to_le_bytes().len()];
        let src = x.to_le_bytes();
        strided_copy(
            src.get(off * 4..).unwrap_or(&[]),
            &strides,
            &out,
            4,
            &mut dst,
        )
        .unwrap();
        assert_eq!(dst, want.to_le_bytes(), "{shape:?} {op:?}");
    }
}

#[test]
fn int_to_f32_cast_matches_the_reference_cast() {
    let values = [
        0i64,
        1,
        -1,
        7,
        -123_456_789,
        (1 << 53) + 1,
        i64::MAX,
        i64::MIN,
    ];
    let t = Tensor::from_i64(vec![values.len()], values.to_vec()).unwrap();
    let want = t.cast(DType::F32).to_le_bytes();
    let mut got = vec![0f32; values.len()];
    cast_int_to_f32(DType::I64, &t.to_le_bytes(), &mut got).unwrap();
    let got: Vec<u8> = got.iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!(got, want);
    let t32 = t.cast(DType::I32);
    let mut got = vec![0f32; values.len()];
    cast_int_to_f32(DType::I32, &t32.to_le_bytes(), &mut got).unwrap();
    let want: Vec<f32> = t32
        .cast(DType::F32)
        .to_f64_vec()
        .iter()
        .map(|&x| x as f32)
        .collect();
    assert_eq!(got, want);
    assert!(cast_int_to_f32(DType::F32, &[0; 4], &mut [0.0]).is_err());
    assert!(
        cast_int_to_f32(DType::I64, &[0; 4], &mut [0.0]).is_err(),
        "short input"
    );
}
