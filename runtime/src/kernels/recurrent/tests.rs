//! Tests of the recurrent kernel against the reference kernel (`reference::eval_op` of
//! `Op::Recurrent`) on random layers: every cell, both directions and bidirectional, batch-first
//! layouts, sequence lengths shorter than the sequence (and zero), initial states, peepholes,
//! clip, `input_forget`, GRU with and without `linear_before_reset`, every activation, every
//! available instruction set, one and several threads.

use super::*;
use crate::ops::{Bindings, Op, RnnActivation, RnnCell, RnnDirection};
use crate::test_util::Rng;
use crate::{reference, Tensor};

/// A random layer and its inputs (`lens` as i64 when present).
struct Case {
    op: Op,
    inputs: Vec<Tensor>,
}

fn case(rng: &mut Rng, cell: RnnCell, rich: bool) -> Case {
    let direction = rng.pick(RnnDirection::ALL);
    let dirs = if direction == RnnDirection::Bidirectional {
        2
    } else {
        1
    };
    let (seq, batch) = (rng.below(9), 1 + rng.below(5));
    let (input, hidden) = (1 + rng.below(40), 1 + rng.below(40));
    let per = match cell {
        RnnCell::Lstm => 3,
        RnnCell::Gru => 2,
        RnnCell::Rnn => 1,
    };
    let gates = match cell {
        RnnCell::Lstm => 4,
        RnnCell::Gru => 3,
        RnnCell::Rnn => 1,
    };
    let gh = gates * hidden;
    let defaults = [
        RnnActivation::Sigmoid,
        RnnActivation::Tanh,
        RnnActivation::Tanh,
    ];
    let mut activations = Vec::new();
    for _ in 0..dirs {
        for (i, &a) in defaults.iter().take(per).enumerate() {
            let a = if cell == RnnCell::Rnn && i == 0 {
                RnnActivation::Tanh
            } else {
                a
            };
            activations.push(if rich && rng.one_in(3) {
                rng.pick(RnnActivation::ALL)
            } else {
                a
            });
        }
    }
    let acts = activations.len();
    let lstm = cell == RnnCell::Lstm;
    let flags: [bool; 5] = std::array::from_fn(|i| (i < 3 || lstm) && rng.coin());
    let batch_first = rng.coin();
    let op = Op::Recurrent {
        cell,
        direction,
        hidden_size: hidden as u32,
        activations,
        activation_alpha: rng.values(acts, 0.1, 0.9),
        activation_beta: rng.values(acts, 0.1, 0.9),
        clip: if rich && rng.coin() {
            rng.uniform(0.5, 3.0)
        } else {
            f64::INFINITY
        },
        input_forget: lstm && rich && rng.coin(),
        linear_before_reset: cell == RnnCell::Gru && rng.coin(),
        batch_first,
        bias: flags[0],
        seq_lens: flags[1],
        initial_h: flags[2],
        initial_c: flags[3],
        peepholes: flags[4],
    };
    let f = |rng: &mut Rng, shape: Vec<usize>, scale: f32| {
        let n = shape.iter().product();
        Tensor::from_f32(shape, rng.values_f32(n, -scale, scale)).unwrap()
    };
    let (s0, s1) = if batch_first {
        (batch, seq)
    } else {
        (seq, batch)
    };
    let state = if batch_first {
        vec![batch, dirs, hidden]
    } else {
        vec![dirs, batch, hidden]
    };
    let w_scale = 1.5 / (input as f32).sqrt();
    let r_scale = 1.5 / (hidden as f32).sqrt();
    let mut inputs = vec![
        f(rng, vec![s0, s1, input], 1.0),
        f(rng, vec![dirs, gh, input], w_scale),
        f(rng, vec![dirs, gh, hidden], r_scale),
    ];
    if flags[0] {
        inputs.push(f(rng, vec![dirs, 2 * gh], 0.5));
    }
    if flags[1] {
        let lens: Vec<i64> = (0..batch).map(|_| rng.below(seq + 1) as i64).collect();
        inputs.push(Tensor::from_i64(vec![batch], lens).unwrap());
    }
    for present in [flags[2], flags[3]] {
        if present {
            inputs.push(f(rng, state.clone(), 1.0));
        }
    }
    if flags[4] {
        inputs.push(f(rng, vec![dirs, 3 * hidden], 0.5));
    }
    Case { op, inputs }
}

fn f32s(t: &Tensor) -> &[f32] {
    match t.data() {
        crate::TensorData::F32(v) => v,
        _ => unreachable!("test inputs are f32"),
    }
}

/// The kernel's outputs for `c` on `isa`, with W and R packed beforehand when `packed`.
fn run(isa: Isa, c: &Case, packed: bool) -> Result<Vec<Vec<f32>>, String> {
    let spec = RecurrentSpec::of(&c.op)?;
    let shapes: Vec<&[usize]> = c.inputs.iter().map(Tensor::shape).collect();
    let dims = spec.dims(&shapes)?;
    let at = |w| spec.input_index(w).map(|i| f32s(&c.inputs[i]));
    let lens = spec
        .input_index(crate::ops::RnnInput::SeqLens)
        .map(|i| c.inputs[i].to_i64_vec());
    let lens = dims.lengths(lens.as_deref())?;
    use crate::ops::RnnInput as I;
    let (w, r) = (at(I::W).unwrap(), at(I::R).unwrap());
    let packed_weights = pack_weights(&spec, dims.input, w, r).map_err(|e| e.to_string())?;
    let inp = Inputs {
        x: at(I::X).unwrap(),
        weights: if packed {
            Weights::Packed(&packed_weights)
        } else {
            Weights::Raw { w, r }
        },
        b: at(I::B),
        lens: &lens,
        initial_h: at(I::InitialH),
        initial_c: at(I::InitialC),
        p: at(I::P),
    };
    let state: usize = dims.state_shape().iter().product();
    let mut y = vec![f32::NAN; dims.y_shape().iter().product()];
    let (mut y_h, mut y_c) = (vec![f32::NAN; state], vec![f32::NAN; state]);
    let lstm = spec.cell == RnnCell::Lstm;
    let out = Outputs {
        y: &mut y,
        y_h: &mut y_h,
        y_c: lstm.then_some(&mut y_c[..]),
    };
    recurrent(isa, &spec, &dims, &inp, out).map_err(|e| e.to_string())?;
    let mut outs = vec![y, y_h];
    if lstm {
        outs.push(y_c);
    }
    Ok(outs)
}

/// Largest `|got − want| / (|want| + 0.1)` over all outputs.
fn worst_error(got: &[Vec<f32>], want: &[Tensor]) -> f64 {
    assert_eq!(got.len(), want.len());
    let mut worst = 0f64;
    for (g, w) in got.iter().zip(want) {
        let w = w.to_f64_vec();
        assert_eq!(g.len(), w.len());
        for (&a, &b) in g.iter().zip(&w) {
            let e = (f64::from(a) - b).abs() / (b.abs() + 0.1);
            worst = if e.is_nan() {
                f64::INFINITY
            } else {
                worst.max(e)
            };
        }
    }
    worst
}

/// Checks `cases` random layers. The default activations (sigmoid and tanh saturate, so errors
/// shrink from step to step) are held to 1e-5 (measured: 2.5e-6 at worst); with random
/// activations a gate may be unbounded (Affine, LeakyRelu as `f`), the recurrence then
/// amplifies f32 rounding, and the bound is 5e-5 (measured: 1.3e-5).
fn check(rng: &mut Rng, cases: usize, rich: bool) {
    let tol = if rich { 5e-5 } else { 1e-5 };
    let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
        .into_iter()
        .filter(|i| i.available())
        .collect();
    for i in 0..cases {
        let cell = RnnCell::ALL[i % 3];
        let c = case(rng, cell, rich);
        let refs: Vec<&Tensor> = c.inputs.iter().collect();
        let want = reference::eval_op(&c.op, &refs, &Bindings::new()).unwrap();
        for (k, &isa) in isas.iter().enumerate() {
            let got = run(isa, &c, (i + k) % 2 == 1).unwrap();
            let e = worst_error(&got, &want);
            assert!(e < tol, "case {i} on {isa:?}: error {e} for {:?}", c.op);
        }
    }
}

#[test]
fn matches_the_reference_on_random_layers() {
    check(&mut Rng(11), 150, false);
}

#[test]
fn matches_the_reference_with_every_activation_and_clip() {
    check(&mut Rng(12), 150, true);
}

#[test]
fn matches_the_reference_on_several_threads() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    pool.install(|| check(&mut Rng(13), 60, false));
}

#[test]
fn bad_operands_are_errors() {
    let c = case(&mut Rng(5), RnnCell::Lstm, false);
    let spec = RecurrentSpec::of(&c.op).unwrap();
    let shapes: Vec<&[usize]> = c.inputs.iter().map(Tensor::shape).collect();
    let dims = spec.dims(&shapes).unwrap();
    let x = vec![0.0f32; 3];
    let inp = Inputs {
        x: &x,
        weights: Weights::Raw { w: &[], r: &[] },
        b: None,
        lens: &[],
        initial_h: None,
        initial_c: None,
        p: None,
    };
    let (mut y, mut y_h) = (vec![0.0; 1], vec![0.0; 1]);
    let out = Outputs {
        y: &mut y,
        y_h: &mut y_h,
        y_c: None,
    };
    let e = recurrent(Isa::Portable, &spec, &dims, &inp, out).unwrap_err();
    assert!(
        matches!(e, RecurrentError::Length { operand: "x", .. }),
        "{e}"
    );
}
