//! Unit tests of the op definition: names, kinds and the generated equality.

use super::*;

#[test]
fn enum_names_round_trip() {
    for u in UnaryOp::ALL {
        assert_eq!(UnaryOp::from_name(u.name()), Some(*u));
    }
    for b in BinaryOp::ALL {
        assert_eq!(BinaryOp::from_name(b.name()), Some(*b));
    }
    for r in ReduceOp::ALL {
        assert_eq!(ReduceOp::from_name(r.name()), Some(*r));
    }
}

#[test]
fn eq_compares_floats_by_bits_and_same_values_by_value() {
    let nan = Op::RmsNorm { eps: f64::NAN };
    assert_eq!(nan, nan.clone());
    assert!(!nan.same_values(&nan.clone()));
    let (zero, neg_zero) = (Op::RmsNorm { eps: 0.0 }, Op::RmsNorm { eps: -0.0 });
    assert_ne!(zero, neg_zero);
    assert!(zero.same_values(&neg_zero));
    assert!(!zero.same_values(&Op::LayerNorm { axis: 0, eps: 0.0 }));
}

#[test]
fn kinds_name_their_ops() {
    let reduce = Op::Reduce {
        op: ReduceOp::LogSumExp,
        axes: vec![],
        keepdims: false,
    };
    assert_eq!(reduce.name(), "reduce_logsumexp");
    assert_eq!(Op::Unary(UnaryOp::BitNot).name(), "bitnot");
    let pool = Op::Pool {
        kind: PoolKind::Avg,
        kernel: vec![],
        strides: vec![],
        pads: vec![],
        dilations: vec![],
        ceil_mode: false,
        count_include_pad: false,
    };
    assert_eq!(pool.name(), "avg_pool");
    assert_eq!(Op::MatMulBias.name(), "matmul_bias");
    assert_eq!(Op::VARIANTS.len(), 40);
    assert_eq!(Op::Rotary.name(), "rotary");
    let lstm = Op::Recurrent {
        cell: RnnCell::Lstm,
        direction: RnnDirection::Forward,
        hidden_size: 1,
        activations: vec![],
        activation_alpha: vec![],
        activation_beta: vec![],
        clip: f64::INFINITY,
        input_forget: false,
        linear_before_reset: false,
        batch_first: false,
        bias: false,
        seq_lens: false,
        initial_h: false,
        initial_c: false,
        peepholes: false,
    };
    assert_eq!(
        (lstm.name(), lstm.num_outputs(), lstm.arity()),
        ("lstm", 3, (3, Some(3)))
    );
}
