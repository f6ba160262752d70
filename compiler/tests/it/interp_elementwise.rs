//! Reference-interpreter tests for the elementwise ops: unary, binary (broadcasting, integer
//! division and modulo signs, shifts, NaN rules) and where. Expected values are hand-computed or
//! derived with numpy 2.4 as noted.

use crate::common::{eval, t, ti};
use kiln_compiler::ir::{BinaryOp as B, Op, UnaryOp as U};
use kiln_runtime::{DType, Tensor};

fn bin(op: B, a: &Tensor, b: &Tensor) -> Tensor {
    eval(Op::Binary(op), &[a, b]).unwrap()
}

fn un(op: U, x: &Tensor) -> Tensor {
    eval(Op::Unary(op), &[x]).unwrap()
}

/// Bitwise equality of floats (so -0 != +0), with every NaN equal to every other.
fn same_bits(got: &[f64], want: &[f64]) {
    let bits = |v: &[f64]| -> Vec<u64> {
        v.iter()
            .map(|x| if x.is_nan() { 1 } else { x.to_bits() })
            .collect()
    };
    let (g, w) = (bits(got), bits(want));
    assert_eq!(g, w, "got {got:?}, want {want:?}");
}

#[test]
fn add_broadcasts_like_numpy() {
    // a = arange(6).reshape(2,1,3)*0.5-1, b = [[10],[20],[30],[40]]; (a+b).ravel() from numpy.
    let a = t(DType::F64, &[2, 1, 3], &[-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]);
    let b = t(DType::F64, &[4, 1], &[10.0, 20.0, 30.0, 40.0]);
    let y = bin(B::Add, &a, &b);
    assert_eq!(y.shape(), &[2, 4, 3]);
    #[rustfmt::skip]
    let want = [9.0, 9.5, 10.0, 19.0, 19.5, 20.0, 29.0, 29.5, 30.0, 39.0, 39.5, 40.0,
                10.5, 11.0, 11.5, 20.5, 21.0, 21.5, 30.5, 31.0, 31.5, 40.5, 41.0, 41.5];
    same_bits(&y.to_f64_vec(), &want);
    // Scalars broadcast against anything, and empty dims stay empty.
    let s = t(DType::F64, &[], &[1.0]);
    assert_eq!(
        bin(B::Sub, &s, &b).to_f64_vec(),
        vec![-9.0, -19.0, -29.0, -39.0]
    );
    let e = t(DType::F64, &[0, 3], &[]);
    assert_eq!(bin(B::Mul, &e, &a).shape(), &[2, 0, 3]);
}

#[test]
fn binary_rejects_bad_inputs() {
    let f = t(DType::F32, &[2], &[1.0, 2.0]);
    let i = ti(DType::I64, &[2], &[1, 2]);
    assert!(eval(Op::Binary(B::Add), &[&f, &i])
        .unwrap_err()
        .contains("dtype"));
    let g = t(DType::F32, &[3], &[1.0, 2.0, 3.0]);
    assert!(eval(Op::Binary(B::Add), &[&f, &g])
        .unwrap_err()
        .contains("broadcast"));
    assert!(eval(Op::Binary(B::And), &[&i, &i]).is_err());
    assert!(eval(Op::Binary(B::BitAnd), &[&f, &f]).is_err());
    assert!(eval(Op::Binary(B::Shl), &[&f, &f]).is_err());
    let bo = Tensor::from_bools(vec![2], vec![true, false]).unwrap();
    for op in [B::Add, B::Max, B::Min, B::Div] {
        assert!(eval(Op::Binary(op), &[&bo, &bo])
            .unwrap_err()
            .contains("bool"));
    }
    assert_eq!(bin(B::Lt, &bo, &bo).to_bool_vec(), vec![false, false]);
    assert_eq!(bin(B::Eq, &bo, &bo).to_bool_vec(), vec![true, true]);
    assert!(eval(Op::Binary(B::Add), &[&f]).is_err());
    // Empty tensors with enormous other dims are refused rather than overflowing strides.
    let huge = t(DType::F32, &[0, 1 << 40, 1 << 40], &[]);
    assert!(eval(Op::Binary(B::Add), &[&huge, &huge])
        .unwrap_err()
        .contains("too many"));
}

#[test]
fn integer_division_truncates_and_modulo_signs_follow_numpy() {
    for dt in [DType::I64, DType::I32, DType::I8] {
        let a = ti(dt, &[4], &[-7, 7, -7, 7]);
        let b = ti(dt, &[4], &[2, -2, -2, 2]);
        assert_eq!(bin(B::Div, &a, &b).to_i64_vec(), vec![-3, -3, 3, 3]);
        // Python: -7 % 2 == 1, 7 % -2 == -1, -7 % -2 == -1, 7 % 2 == 1.
        assert_eq!(bin(B::Mod, &a, &b).to_i64_vec(), vec![1, -1, -1, 1]);
        // C fmod: sign of the dividend.
        assert_eq!(bin(B::FMod, &a, &b).to_i64_vec(), vec![-1, 1, -1, 1]);
        let z = ti(dt, &[], &[0]);
        for op in [B::Div, B::Mod, B::FMod] {
            let e = eval(Op::Binary(op), &[&a, &z]).unwrap_err();
            assert!(e.contains("integer division by zero"), "{e}");
        }
    }
    // Overflowing quotients wrap like the native type.
    let m = ti(DType::I8, &[1], &[-128]);
    let n1 = ti(DType::I8, &[1], &[-1]);
    assert_eq!(bin(B::Div, &m, &n1).to_i64_vec(), vec![-128]);
    assert_eq!(bin(B::Mod, &m, &n1).to_i64_vec(), vec![0]);
    let u = ti(DType::U8, &[2], &[7, 250]);
    let v = ti(DType::U8, &[2], &[2, 7]);
    assert_eq!(bin(B::Div, &u, &v).to_i64_vec(), vec![3, 35]);
    assert_eq!(bin(B::Mod, &u, &v).to_i64_vec(), vec![1, 5]);
    assert_eq!(bin(B::Sub, &v, &u).to_i64_vec(), vec![251, 13]);
}

#[test]
fn float_mod_and_fmod() {
    // numpy.mod([-4,5,-5,5,-0.,0.],[3,-3,inf,0,3,-3]) = [2,-1,inf,nan,0,-0];
    // numpy.fmod([-7,7,-4],[2,-2,3]) = [-1,1,-1].
    let a = t(DType::F64, &[6], &[-4.0, 5.0, -5.0, 5.0, -0.0, 0.0]);
    let b = t(
        DType::F64,
        &[6],
        &[3.0, -3.0, f64::INFINITY, 0.0, 3.0, -3.0],
    );
    same_bits(
        &bin(B::Mod, &a, &b).to_f64_vec(),
        &[2.0, -1.0, f64::INFINITY, f64::NAN, 0.0, -0.0],
    );
    let c = t(DType::F32, &[3], &[-7.0, 7.0, -4.0]);
    let d = t(DType::F32, &[3], &[2.0, -2.0, 3.0]);
    assert_eq!(bin(B::FMod, &c, &d).to_f64_vec(), vec![-1.0, 1.0, -1.0]);
    assert_eq!(bin(B::Mod, &c, &d).to_f64_vec(), vec![1.0, -1.0, 2.0]);
}

#[test]
fn pow_for_floats_and_integers() {
    let a = t(DType::F64, &[3], &[2.0, 4.0, -8.0]);
    let b = t(DType::F64, &[3], &[0.5, -1.0, 1.0 / 3.0]);
    let y = bin(B::Pow, &a, &b).to_f64_vec();
    assert_eq!(y[0], 2f64.sqrt());
    assert_eq!(y[1], 0.25);
    assert!(y[2].is_nan()); // negative base, fractional exponent (C pow)
    let x = ti(DType::I64, &[4], &[3, -2, 7, 0]);
    let e = ti(DType::I64, &[4], &[4, 3, 0, 0]);
    assert_eq!(bin(B::Pow, &x, &e).to_i64_vec(), vec![81, -8, 1, 1]);
    // 2^10 = 1024 wraps to 0 in i8; 3^5 = 243 wraps to -13; 3^40 wraps in i64 (3^40 mod 2^64,
    // from Python: pow(3, 40, 2**64) = 12157665459056928801, minus 2^64).
    let x8 = ti(DType::I8, &[2], &[2, 3]);
    let e8 = ti(DType::I8, &[2], &[10, 5]);
    assert_eq!(bin(B::Pow, &x8, &e8).to_i64_vec(), vec![0, -13]);
    let big = bin(
        B::Pow,
        &ti(DType::I64, &[], &[3]),
        &ti(DType::I64, &[], &[40]),
    );
    assert_eq!(big.to_i64_vec(), vec![12157665459056928801u64 as i64]);
    let neg = ti(DType::I64, &[1], &[-1]);
    assert!(eval(Op::Binary(B::Pow), &[&x8.cast(DType::I64), &neg]).is_err());
}

#[test]
fn max_min_propagate_nan_and_comparisons_with_nan_are_false() {
    let nan = f64::NAN;
    let a = t(DType::F32, &[4], &[1.0, nan, nan, -3.0]);
    let b = t(DType::F32, &[4], &[nan, 2.0, nan, 5.0]);
    for op in [B::Max, B::Min] {
        let y = bin(op, &a, &b).to_f64_vec();
        assert!(y[..3].iter().all(|v| v.is_nan()), "{op:?}: {y:?}");
    }
    assert_eq!(bin(B::Max, &a, &b).to_f64_vec()[3], 5.0);
    assert_eq!(bin(B::Min, &a, &b).to_f64_vec()[3], -3.0);
    for op in [B::Eq, B::Lt, B::Le, B::Gt, B::Ge] {
        let y = bin(op, &a, &b);
        assert_eq!(y.dtype(), DType::Bool);
        assert_eq!(y.to_bool_vec()[..3], [false, false, false], "{op:?}");
    }
    let y: Vec<Vec<bool>> = [B::Eq, B::Lt, B::Le, B::Gt, B::Ge]
        .iter()
        .map(|&op| {
            bin(
                op,
                &ti(DType::I64, &[3], &[1, 2, 3]),
                &ti(DType::I64, &[], &[2]),
            )
            .to_bool_vec()
        })
        .collect();
    let want = [
        [false, true, false],
        [true, false, false],
        [true, true, false],
        [false, false, true],
        [false, true, true],
    ];
    assert_eq!(y, want);
    // Integers keep full i64 precision (2^53 + 1 differs from 2^53).
    let p = ti(DType::I64, &[1], &[(1 << 53) + 1]);
    let q = ti(DType::I64, &[1], &[1 << 53]);
    assert_eq!(bin(B::Gt, &p, &q).to_bool_vec(), vec![true]);
    assert_eq!(bin(B::Max, &p, &q).to_i64_vec(), vec![(1 << 53) + 1]);
}

#[test]
fn logical_bitwise_and_shift_ops() {
    let p = Tensor::from_bools(vec![4], vec![true, true, false, false]).unwrap();
    let q = Tensor::from_bools(vec![4], vec![true, false, true, false]).unwrap();
    assert_eq!(
        bin(B::And, &p, &q).to_bool_vec(),
        vec![true, false, false, false]
    );
    assert_eq!(
        bin(B::Or, &p, &q).to_bool_vec(),
        vec![true, true, true, false]
    );
    assert_eq!(
        bin(B::Xor, &p, &q).to_bool_vec(),
        vec![false, true, true, false]
    );
    let a = ti(DType::I32, &[3], &[0b1100, -1, 6]);
    let b = ti(DType::I32, &[3], &[0b1010, 0xff, 3]);
    assert_eq!(bin(B::BitAnd, &a, &b).to_i64_vec(), vec![0b1000, 0xff, 2]);
    assert_eq!(bin(B::BitOr, &a, &b).to_i64_vec(), vec![0b1110, -1, 7]);
    assert_eq!(bin(B::BitXor, &a, &b).to_i64_vec(), vec![0b0110, -256, 5]);
    // u8: logical shifts within 8 bits; shifts ≥ 8 give 0.
    let u = ti(DType::U8, &[4], &[1, 1, 255, 255]);
    let s = ti(DType::U8, &[4], &[7, 8, 1, 200]);
    assert_eq!(bin(B::Shl, &u, &s).to_i64_vec(), vec![128, 0, 254, 0]);
    assert_eq!(bin(B::Shr, &u, &s).to_i64_vec(), vec![0, 0, 127, 0]);
    // i8: arithmetic right shift; shifts ≥ 8 give 0 (or -1 for negative values).
    let i = ti(DType::I8, &[4], &[-128, -1, 1, 64]);
    let k = ti(DType::I8, &[4], &[7, 100, 100, 1]);
    assert_eq!(bin(B::Shr, &i, &k).to_i64_vec(), vec![-1, -1, 0, 32]);
    assert_eq!(bin(B::Shl, &i, &k).to_i64_vec(), vec![0, 0, 0, -128]);
    // numpy.left_shift(int32(1), 31) = -2147483648; i64 shifts of 63 and 64.
    let one32 = ti(DType::I32, &[], &[1]);
    assert_eq!(
        bin(B::Shl, &one32, &ti(DType::I32, &[], &[31])).to_i64_vec(),
        vec![-(1 << 31)]
    );
    let one = ti(DType::I64, &[2], &[1, 1]);
    let sh = ti(DType::I64, &[2], &[63, 64]);
    assert_eq!(bin(B::Shl, &one, &sh).to_i64_vec(), vec![i64::MIN, 0]);
    let min = ti(DType::I64, &[2], &[i64::MIN, i64::MIN]);
    assert_eq!(bin(B::Shr, &min, &sh).to_i64_vec(), vec![-1, -1]);
    let e = eval(Op::Binary(B::Shl), &[&one, &ti(DType::I64, &[], &[-1])]).unwrap_err();
    assert!(e.contains("negative shift"), "{e}");
}

#[test]
fn float_results_are_rounded_once_to_the_output_dtype() {
    // numpy: float16(2048) + float16(1) = 2048 (tie to even), + float16(3) = 2052.
    let a = t(DType::F16, &[2], &[2048.0, 2048.0]);
    let b = t(DType::F16, &[2], &[1.0, 3.0]);
    assert_eq!(bin(B::Add, &a, &b).to_f64_vec(), vec![2048.0, 2052.0]);
    // f32 exp is the correctly rounded f64 exp.
    let x = t(DType::F32, &[3], &[0.1, -2.5, 10.0]);
    let want: Vec<f64> = x
        .to_f64_vec()
        .iter()
        .map(|v| v.exp() as f32 as f64)
        .collect();
    assert_eq!(un(U::Exp, &x).to_f64_vec(), want);
    assert_eq!(un(U::Exp, &x).dtype(), DType::F32);
    // bf16: 1 + 2^-8 is a tie between 1 and 1 + 2^-7; to even gives 1.
    let c = t(DType::BF16, &[1], &[1.0]);
    let d = t(DType::BF16, &[1], &[1.0 / 256.0]);
    assert_eq!(bin(B::Add, &c, &d).to_f64_vec(), vec![1.0]);
}

#[test]
fn rounding_and_sign() {
    // numpy.round([0.5,1.5,2.5,-0.5,-1.5,2.4999,-2.5]) = [0,2,2,-0,-2,2,-2].
    let x = t(DType::F64, &[7], &[0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, -2.5]);
    same_bits(
        &un(U::Round, &x).to_f64_vec(),
        &[0.0, 2.0, 2.0, -0.0, -2.0, 2.0, -2.0],
    );
    assert_eq!(un(U::Floor, &x).to_f64_vec()[3], -1.0);
    assert_eq!(un(U::Ceil, &x).to_f64_vec()[3], -0.0);
    // numpy.sign([-3, -0., 0, nan, inf]) = [-1, 0, 0, nan, 1].
    let s = t(
        DType::F32,
        &[5],
        &[-3.0, -0.0, 0.0, f64::NAN, f64::INFINITY],
    );
    same_bits(
        &un(U::Sign, &s).to_f64_vec(),
        &[-1.0, 0.0, 0.0, f64::NAN, 1.0],
    );
    let i = ti(DType::I64, &[3], &[-5, 0, 9]);
    assert_eq!(un(U::Sign, &i).to_i64_vec(), vec![-1, 0, 1]);
}

#[test]
fn integer_unary_ops_wrap() {
    let x = ti(DType::I8, &[4], &[-128, -5, 0, 127]);
    assert_eq!(un(U::Neg, &x).to_i64_vec(), vec![-128, 5, 0, -127]);
    assert_eq!(un(U::Abs, &x).to_i64_vec(), vec![-128, 5, 0, 127]);
    assert_eq!(un(U::Relu, &x).to_i64_vec(), vec![0, 0, 0, 127]);
    // numpy: ~int8(5) = -6, ~uint8(5) = 250; -uint8(5) = 251.
    assert_eq!(un(U::BitNot, &x).to_i64_vec(), vec![127, 4, -1, -128]);
    let u = ti(DType::U8, &[2], &[5, 0]);
    assert_eq!(un(U::BitNot, &u).to_i64_vec(), vec![250, 255]);
    assert_eq!(un(U::Neg, &u).to_i64_vec(), vec![251, 0]);
    assert_eq!(
        un(U::Neg, &ti(DType::I64, &[1], &[i64::MIN])).to_i64_vec(),
        vec![i64::MIN]
    );
    // Float-only ops reject integers; Not takes bool only; BitNot integers only.
    assert!(eval(Op::Unary(U::Exp), &[&x]).is_err());
    assert!(eval(Op::Unary(U::Not), &[&x]).is_err());
    assert!(eval(Op::Unary(U::BitNot), &[&t(DType::F32, &[1], &[1.0])]).is_err());
    assert!(eval(Op::Unary(U::IsNan), &[&x]).is_err());
    let b = Tensor::from_bools(vec![2], vec![true, false]).unwrap();
    assert_eq!(un(U::Not, &b).to_bool_vec(), vec![false, true]);
    assert!(eval(Op::Unary(U::Neg), &[&b]).is_err());
}

#[test]
fn float_unary_functions() {
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let x = t(DType::F64, &[5], &[-inf, -1.0, 0.0, inf, nan]);
    assert_eq!(
        un(U::IsNan, &x).to_bool_vec(),
        vec![false, false, false, false, true]
    );
    assert_eq!(
        un(U::IsInf, &x).to_bool_vec(),
        vec![true, false, false, true, false]
    );
    same_bits(&un(U::Relu, &x).to_f64_vec(), &[0.0, 0.0, 0.0, inf, nan]);
    // erf reference values (mpmath, 40 digits).
    let e = t(DType::F64, &[7], &[0.5, 1.0, 2.0, -3.0, inf, -inf, nan]);
    let want = [
        0.5204998778130465,
        0.8427007929497149,
        0.9953222650189527,
        -0.9999779095030014,
    ];
    let got = un(U::Erf, &e).to_f64_vec();
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-15 * w.abs(), "erf: {g} vs {w}");
    }
    same_bits(&got[4..], &[1.0, -1.0, nan]);
    // Stable sigmoid / softplus at extreme arguments; ln(1+e^1) = 1.3132616875182228 (mpmath).
    let s = t(DType::F64, &[4], &[-1000.0, 1000.0, 0.0, 1.0]);
    assert_eq!(un(U::Sigmoid, &s).to_f64_vec()[..3], [0.0, 1.0, 0.5]);
    let sp = un(U::Softplus, &s).to_f64_vec();
    assert_eq!(sp[..2], [0.0, 1000.0]);
    assert!((sp[3] - 1.3132616875182228).abs() < 1e-15);
    let r = t(DType::F64, &[3], &[4.0, 0.25, 0.0]);
    assert_eq!(un(U::Rsqrt, &r).to_f64_vec(), vec![0.5, 2.0, inf]);
    assert_eq!(un(U::Reciprocal, &r).to_f64_vec(), vec![0.25, 4.0, inf]);
    assert_eq!(un(U::Softsign, &r).to_f64_vec(), vec![0.8, 0.2, 0.0]);
    assert!(un(U::Log, &t(DType::F64, &[1], &[-1.0])).to_f64_vec()[0].is_nan());
}

#[test]
fn where_broadcasts_all_three() {
    let c = Tensor::from_bools(vec![2, 1], vec![true, false]).unwrap();
    let x = ti(DType::I64, &[3], &[(1 << 60) + 1, 2, 3]);
    let y = ti(DType::I64, &[], &[-1]);
    let w = eval(Op::Where, &[&c, &x, &y]).unwrap();
    assert_eq!(w.shape(), &[2, 3]);
    assert_eq!(w.to_i64_vec(), vec![(1 << 60) + 1, 2, 3, -1, -1, -1]);
    let xf = t(DType::F16, &[1, 2], &[0.5, 1.5]);
    let yf = t(DType::F16, &[2, 1], &[-1.0, -2.0]);
    let c2 = Tensor::from_bools(vec![2], vec![false, true]).unwrap();
    let w2 = eval(Op::Where, &[&c2, &xf, &yf]).unwrap();
    assert_eq!(w2.dtype(), DType::F16);
    assert_eq!(w2.to_f64_vec(), vec![-1.0, 1.5, -2.0, 1.5]);
    assert!(eval(Op::Where, &[&x, &x, &y]).unwrap_err().contains("bool"));
    assert!(eval(Op::Where, &[&c, &x, &xf])
        .unwrap_err()
        .contains("dtype"));
    let c3 = Tensor::from_bools(vec![4], vec![true; 4]).unwrap();
    assert!(eval(Op::Where, &[&c3, &x, &y]).is_err());
}
