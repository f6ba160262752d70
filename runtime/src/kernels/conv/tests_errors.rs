//! Error tests of the convolution kernel: inconsistent parameters, wrong buffer lengths and bad
//! attributes are typed errors, never panics; an empty batch does nothing.

use super::tests::{isas, same3x3};
use super::*;

fn base() -> ConvParams {
    same3x3(2, 4, (6, 5), 8)
}

/// Runs `conv2d` on `p` with buffers sized for `base()` and returns its result.
fn run(p: &ConvParams) -> Result<(), ConvError> {
    let b = base();
    let x = vec![0.0; b.n * b.c * b.h * b.w];
    let packed = vec![0.0; packed_weights_len(&b)];
    let mut out = vec![0.0; b.n * b.m * b.h * b.w];
    conv2d(
        Isa::Portable,
        p,
        &x,
        &packed,
        None,
        Activation::None,
        &mut out,
    )
}

#[test]
fn zero_sizes_are_errors() {
    type Edit = fn(&mut ConvParams);
    let cases: [(&str, Edit); 9] = [
        ("c", |p| p.c = 0),
        ("m", |p| p.m = 0),
        ("h", |p| p.h = 0),
        ("w", |p| p.w = 0),
        ("kh", |p| p.kh = 0),
        ("kw", |p| p.kw = 0),
        ("group", |p| p.group = 0),
        ("strides", |p| p.strides[1] = 0),
        ("dilations", |p| p.dilations[0] = 0),
    ];
    for (field, edit) in cases {
        let mut p = base();
        edit(&mut p);
        assert_eq!(run(&p), Err(ConvError::ZeroSize { field }), "{field}");
    }
    let mut p = base();
    p.c = 0;
    assert_eq!(packed_weights_len(&p), 0);
    assert_eq!(
        pack_weights(&[], &p),
        Err(ConvError::ZeroSize { field: "c" })
    );
}

#[test]
fn groups_must_divide_both_channel_counts() {
    for (c, m, group) in [(4, 6, 4), (6, 8, 4), (3, 3, 2)] {
        let p = ConvParams {
            c,
            m,
            group,
            ..base()
        };
        let want = Err(ConvError::Group { group, c, m });
        assert_eq!(run(&p), want);
        assert_eq!(pack_weights(&[0.0; 64], &p).map(|_| ()), want);
        assert_eq!(packed_weights_len(&p), 0);
    }
}

#[test]
fn an_empty_output_is_an_error() {
    let p = ConvParams {
        pads: [0; 4],
        h: 2,
        ..base()
    };
    assert_eq!(
        run(&p),
        Err(ConvError::EmptyOutput {
            axis: "height",
            span: 3,
            padded: 2
        })
    );
    let p = ConvParams {
        dilations: [1, 4],
        ..base()
    };
    assert_eq!(
        run(&p),
        Err(ConvError::EmptyOutput {
            axis: "width",
            span: 9,
            padded: 7
        })
    );
    assert!(p.out_w().is_err() && p.out_h() == Ok(6));
}

#[test]
fn huge_sizes_overflow_without_panicking() {
    let p = ConvParams {
        h: usize::MAX,
        pads: [1, 0, 0, 0],
        ..base()
    };
    assert!(matches!(run(&p), Err(ConvError::Overflow { .. })));
    let p = ConvParams {
        n: usize::MAX / 2,
        ..base()
    };
    assert!(matches!(run(&p), Err(ConvError::Overflow { .. })));
    let p = ConvParams {
        kh: usize::MAX / 2,
        kw: 4,
        pads: [usize::MAX / 2; 4],
        ..base()
    };
    assert_eq!(packed_weights_len(&p), 0);
    assert!(matches!(run(&p), Err(ConvError::Overflow { .. })));
    let p = ConvParams {
        dilations: [usize::MAX, 1],
        ..base()
    };
    assert!(matches!(run(&p), Err(ConvError::Overflow { .. })));
}

#[test]
fn every_buffer_length_is_checked() {
    let p = base();
    let (x, out_len) = (vec![0.0; 2 * 4 * 6 * 5], 2 * 8 * 6 * 5);
    let w = vec![0.0; 8 * 4 * 9];
    let packed = pack_weights(&w, &p).unwrap();
    let bias = vec![0.0; 8];
    let mut out = vec![0.0; out_len];
    let len = |operand, len, expected| {
        Err(ConvError::Length {
            operand,
            len,
            expected,
        })
    };
    let act = Activation::Relu;
    for isa in isas() {
        let run = |x: &[f32], pw: &[f32], b: &[f32], out: &mut [f32]| {
            conv2d(isa, &p, x, pw, Some(b), act, out)
        };
        assert_eq!(run(&x, &packed, &bias, &mut out), Ok(()));
        assert_eq!(run(&x[1..], &packed, &bias, &mut out), len("x", 239, 240));
        assert_eq!(
            run(&x, &packed[1..], &bias, &mut out),
            len("packed_w", packed.len() - 1, packed.len())
        );
        assert_eq!(run(&x, &packed, &bias[..7], &mut out), len("bias", 7, 8));
        let mut long = vec![0.0; out_len + 1];
        assert_eq!(run(&x, &packed, &bias, &mut long), len("out", 481, 480));
    }
    assert_eq!(
        pack_weights(&w[1..], &p),
        len("w", 287, 288).map(|()| vec![])
    );
}

#[test]
fn an_empty_batch_does_nothing() {
    let p = ConvParams { n: 0, ..base() };
    let packed = vec![0.0; packed_weights_len(&p)];
    let r = conv2d(
        Isa::Portable,
        &p,
        &[],
        &packed,
        None,
        Activation::None,
        &mut [],
    );
    assert_eq!(r, Ok(()));
    assert_eq!(p.out_shape(), Ok([0, 8, 6, 5]));
}

#[test]
fn bad_shapes_and_attributes_from_onnx_are_errors() {
    let s1 = [1i64];
    // Three spatial dims, mismatched ranks, wrong attribute lengths.
    let unsupported = [
        (
            vec![1, 2, 3, 4, 5],
            vec![1, 2, 3, 3, 3],
            vec![1i64; 3],
            vec![0i64; 6],
        ),
        (vec![1, 2], vec![1, 2], vec![], vec![]),
        (vec![1, 2, 8], vec![1, 2, 3, 3], vec![1], vec![0, 0]),
        (vec![1, 2, 8], vec![1, 2, 3], vec![1, 1], vec![0, 0]),
        (vec![1, 2, 8], vec![1, 2, 3], vec![1], vec![0]),
    ];
    for (xs, ws, strides, pads) in unsupported {
        let d = vec![1i64; strides.len()];
        let r = ConvParams::from_shapes(&xs, &ws, &strides, &pads, &d, 1);
        assert!(
            matches!(r, Err(ConvError::Unsupported { .. })),
            "{xs:?} {ws:?}"
        );
    }
    let xs = [1, 4, 8];
    let r = ConvParams::from_shapes(&xs, &[2, 4, 3], &[-1], &[0, 0], &s1, 1);
    assert_eq!(
        r,
        Err(ConvError::NegativeAttribute {
            name: "strides",
            value: -1
        })
    );
    let r = ConvParams::from_shapes(&xs, &[2, 4, 3], &s1, &[0, -2], &s1, 1);
    assert_eq!(
        r,
        Err(ConvError::NegativeAttribute {
            name: "pads",
            value: -2
        })
    );
    let r = ConvParams::from_shapes(&xs, &[2, 2, 3], &s1, &[0, 0], &s1, -1);
    assert_eq!(
        r,
        Err(ConvError::NegativeAttribute {
            name: "group",
            value: -1
        })
    );
    let r = ConvParams::from_shapes(&xs, &[2, 4, 3], &s1, &[0, 0], &s1, 2);
    assert_eq!(
        r,
        Err(ConvError::WeightShape {
            w_shape: vec![2, 4, 3],
            channels_per_group: 2
        })
    );
    let r = ConvParams::from_shapes(
        &[1, 4, 8, 9],
        &[6, 2, 3, 1],
        &[1, 2],
        &[1, 0, 0, 2],
        &[2, 1],
        2,
    );
    assert_eq!(
        r,
        Ok(ConvParams {
            n: 1,
            c: 4,
            h: 8,
            w: 9,
            m: 6,
            kh: 3,
            kw: 1,
            strides: [1, 2],
            pads: [1, 0, 0, 2],
            dilations: [2, 1],
            group: 2
        })
    );
}
