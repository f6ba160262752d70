//! Tests for the inference in `recurrent.rs`: LSTM, GRU and RNN layers over symbolic sequence and
//! batch dims, both layouts, bidirectional outputs, every optional input, and the refusals
//! (shapes, dtypes, attributes that do not fit the cell).

use super::super::op::{Op, RnnActivation, RnnCell, RnnDirection};
use super::testing::{err, ok};

/// A layer with default activations, `flags` = b, sequence_lens, initial_h, initial_c, p.
fn layer(cell: RnnCell, direction: RnnDirection, batch_first: bool, flags: [bool; 5]) -> Op {
    use RnnActivation::{Sigmoid, Tanh};
    let per: &[RnnActivation] = match cell {
        RnnCell::Lstm => &[Sigmoid, Tanh, Tanh],
        RnnCell::Gru => &[Sigmoid, Tanh],
        RnnCell::Rnn => &[Tanh],
    };
    let dirs = if direction == RnnDirection::Bidirectional {
        2
    } else {
        1
    };
    let activations: Vec<RnnActivation> =
        per.iter().copied().cycle().take(per.len() * dirs).collect();
    let n = activations.len();
    Op::Recurrent {
        cell,
        direction,
        hidden_size: 16,
        activations,
        activation_alpha: vec![0.0; n],
        activation_beta: vec![0.0; n],
        clip: f64::INFINITY,
        input_forget: false,
        linear_before_reset: false,
        batch_first,
        bias: flags[0],
        seq_lens: flags[1],
        initial_h: flags[2],
        initial_c: flags[3],
        peepholes: flags[4],
    }
}

const NONE: [bool; 5] = [false; 5];

#[test]
fn lstm_with_every_input() {
    let op = layer(RnnCell::Lstm, RnnDirection::Forward, false, [true; 5]);
    let ins = [
        "f32[seq, batch, 8]",
        "f32[1, 64, 8]",
        "f32[1, 64, 16]",
        "f32[1, 128]",
        "i32[batch]",
        "f32[1, batch, 16]",
        "f32[1, batch, 16]",
        "f32[1, 48]",
    ];
    assert_eq!(
        ok(&op, &ins),
        "f32[seq, 1, batch, 16]; f32[1, batch, 16]; f32[1, batch, 16]"
    );
}

#[test]
fn bidirectional_gru_and_batch_first_rnn() {
    let gru = layer(RnnCell::Gru, RnnDirection::Bidirectional, false, NONE);
    let ins = ["f16[t, 3, 8]", "f16[2, 48, 8]", "f16[2, 48, 16]"];
    assert_eq!(ok(&gru, &ins), "f16[t, 2, 3, 16]; f16[2, 3, 16]");
    let rnn = layer(
        RnnCell::Rnn,
        RnnDirection::Reverse,
        true,
        [false, true, true, false, false],
    );
    let ins = [
        "f32[b, t, 8]",
        "f32[1, 16, 8]",
        "f32[1, 16, 16]",
        "i64[b]",
        "f32[b, 1, 16]",
    ];
    assert_eq!(ok(&rnn, &ins), "f32[b, t, 1, 16]; f32[b, 1, 16]");
}

#[test]
fn mismatched_inputs_are_refused() {
    let op = layer(RnnCell::Lstm, RnnDirection::Forward, false, NONE);
    assert_eq!(
        err(&op, &["f32[s, b, 8]", "f32[1, 48, 8]", "f32[1, 64, 16]"]),
        "lstm: input 1 (w) has shape [1, 48, 8], expected [1, 64, 8]"
    );
    assert!(err(&op, &["f32[s, b, 8]", "f32[1, 64, 8]", "f16[1, 64, 16]"]).contains("dtype"));
    assert!(err(&op, &["f32[s, 8]", "f32[1, 64, 8]", "f32[1, 64, 16]"]).contains("rank 3"));
    assert!(err(&op, &["i32[s, b, 8]", "i32[1, 64, 8]", "i32[1, 64, 16]"]).contains("float"));
    let lens = layer(
        RnnCell::Rnn,
        RnnDirection::Forward,
        false,
        [false, true, false, false, false],
    );
    let ins = ["f32[s, b, 8]", "f32[1, 16, 8]", "f32[1, 16, 16]", "f32[b]"];
    assert!(err(&lens, &ins).contains("sequence_lens"));
    let ins = ["f32[s, b, 8]", "f32[1, 16, 8]", "f32[1, 16, 16]", "i32[c]"];
    assert!(err(&lens, &ins).contains("expected [b]"));
}

#[test]
fn attributes_that_do_not_fit_the_cell_are_refused() {
    let ins = [
        "f32[s, b, 8]",
        "f32[1, 48, 8]",
        "f32[1, 48, 16]",
        "f32[1, b, 16]",
    ];
    let gru_c = layer(
        RnnCell::Gru,
        RnnDirection::Forward,
        false,
        [false, false, false, true, false],
    );
    assert!(err(&gru_c, &ins).contains("LSTM-only"));
    let mut few = layer(RnnCell::Gru, RnnDirection::Bidirectional, false, NONE);
    if let Op::Recurrent {
        activations,
        activation_alpha,
        activation_beta,
        ..
    } = &mut few
    {
        activations.truncate(2);
        activation_alpha.truncate(2);
        activation_beta.truncate(2);
    }
    assert!(err(&few, &ins[..3]).contains("activations, expected 4"));
    let mut zero = layer(RnnCell::Gru, RnnDirection::Forward, false, NONE);
    if let Op::Recurrent { clip, .. } = &mut zero {
        *clip = 0.0;
    }
    assert!(err(&zero, &ins[..3]).contains("clip must be positive"));
}
