//! Recurrent layers (`Op::Recurrent`: ONNX `LSTM`, `GRU`, `RNN`) written out from the ONNX
//! definitions in f64: for each direction and batch entry on its own, a loop over that entry's
//! steps (backwards for the reverse direction, starting at its last valid step), each step the
//! two matrix-vector products `x·Wᵀ + Wb` and `h·Rᵀ + Rb` followed by the cell's gate equations.
//! Gate order is ONNX's (`i, o, f, c`; `z, r, h`), peepholes `i, o, f`.

use super::fused::{check_float, make};
use super::util::KResult;
use crate::ops::{ActivationFn, Op, RecurrentSpec, RnnCell, RnnDims, RnnInput};
use crate::Tensor;

/// The operands of one direction as f64 slices (`b` and `p` zero-filled when absent).
struct Direction<'a> {
    w: &'a [f64],
    r: &'a [f64],
    wb: &'a [f64],
    rb: &'a [f64],
    p: &'a [f64],
    acts: &'a [ActivationFn],
    clip: f64,
}

impl Direction<'_> {
    /// `activation(clip(x))`.
    fn act(&self, which: usize, x: f64) -> f64 {
        self.acts[which].eval(x.clamp(-self.clip, self.clip))
    }
}

/// `out[j] = Σ_k v[k]·m[j][k] + bias[j]` for a row-major `m` of `out.len()` rows.
fn matvec(m: &[f64], v: &[f64], bias: &[f64], out: &mut [f64]) {
    for (j, o) in out.iter_mut().enumerate() {
        let row = &m[j * v.len()..(j + 1) * v.len()];
        *o = row.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() + bias[j];
    }
}

/// One step of `cell`: updates `h` (and `c` for LSTM) from the input row `x`.
fn step(
    cell: RnnCell,
    input_forget: bool,
    lbr: bool,
    d: &Direction,
    x: &[f64],
    h: &mut [f64],
    c: &mut [f64],
) {
    let n = h.len();
    let gates = d.wb.len() / n;
    let (mut xw, mut hr) = (vec![0.0; gates * n], vec![0.0; gates * n]);
    matvec(d.w, x, d.wb, &mut xw);
    matvec(d.r, h, d.rb, &mut hr);
    match cell {
        RnnCell::Lstm => {
            let (pi, po, pf) = (&d.p[..n], &d.p[n..2 * n], &d.p[2 * n..]);
            let pre = |g: usize, u: usize| xw[g * n + u] + hr[g * n + u];
            for u in 0..n {
                let i = d.act(0, pre(0, u) + pi[u] * c[u]);
                let f = if input_forget {
                    1.0 - i
                } else {
                    d.act(0, pre(2, u) + pf[u] * c[u])
                };
                let cand = d.act(1, pre(3, u));
                c[u] = f * c[u] + i * cand;
                let o = d.act(0, pre(1, u) + po[u] * c[u]);
                h[u] = o * d.acts[2].eval(c[u]);
            }
        }
        RnnCell::Gru => {
            let z: Vec<f64> = (0..n).map(|u| d.act(0, xw[u] + hr[u])).collect();
            let r: Vec<f64> = (0..n).map(|u| d.act(0, xw[n + u] + hr[n + u])).collect();
            let cand: Vec<f64> = if lbr {
                (0..n)
                    .map(|u| d.act(1, xw[2 * n + u] + r[u] * hr[2 * n + u]))
                    .collect()
            } else {
                let rh: Vec<f64> = r.iter().zip(h.iter()).map(|(a, b)| a * b).collect();
                let mut p = vec![0.0; n];
                matvec(&d.r[2 * n * n..], &rh, &d.rb[2 * n..], &mut p);
                (0..n).map(|u| d.act(1, xw[2 * n + u] + p[u])).collect()
            };
            for u in 0..n {
                h[u] = (1.0 - z[u]) * cand[u] + z[u] * h[u];
            }
        }
        RnnCell::Rnn => {
            for u in 0..n {
                h[u] = d.act(0, xw[u] + hr[u]);
            }
        }
    }
}

/// `(y, y_h)` and for LSTM `y_c`, from the op's inputs.
pub fn recurrent(op: &Op, x: &[&Tensor]) -> KResult<Vec<Tensor>> {
    let spec = RecurrentSpec::of(op)?;
    let shapes: Vec<&[usize]> = x.iter().map(|t| t.shape()).collect();
    let dims = spec.dims(&shapes)?;
    let input = |which: RnnInput| spec.input_index(which).map(|i| x[i]);
    let dt = x[0].dtype();
    for which in RnnInput::ALL {
        if let (Some(t), true) = (input(which), which != RnnInput::SeqLens) {
            check_float(which.name(), t, Some(dt))?;
        }
    }
    let lens = match input(RnnInput::SeqLens) {
        Some(t) if t.dtype().is_int() => Some(t.to_i64_vec()),
        Some(t) => return Err(format!("sequence_lens must be integers, got {}", t.dtype())),
        None => None,
    };
    let lens = dims.lengths(lens.as_deref())?;
    let values = |which: RnnInput, len: usize| -> Vec<f64> {
        input(which).map_or_else(|| vec![0.0; len], Tensor::to_f64_vec)
    };
    let RnnDims {
        seq,
        batch,
        input: isz,
        hidden: n,
        dirs,
        gates,
        ..
    } = dims;
    let state_len = dirs * batch * n;
    let (xs, w, r) = (x[0].to_f64_vec(), x[1].to_f64_vec(), x[2].to_f64_vec());
    let b = values(RnnInput::B, dirs * 2 * gates * n);
    let p = values(RnnInput::P, dirs * 3 * n);
    let h0 = values(RnnInput::InitialH, state_len);
    let c0 = values(RnnInput::InitialC, state_len);
    let mut y = vec![0.0; seq * state_len];
    let (mut yh, mut yc) = (vec![0.0; state_len], vec![0.0; state_len]);
    let gh = gates * n;
    for d in 0..dirs {
        let bd = &b[d * 2 * gh..(d + 1) * 2 * gh];
        let dir = Direction {
            w: &w[d * gh * isz..(d + 1) * gh * isz],
            r: &r[d * gh * n..(d + 1) * gh * n],
            wb: &bd[..gh],
            rb: &bd[gh..],
            p: &p[d * 3 * n..(d + 1) * 3 * n],
            acts: spec.activations_of(d),
            clip: spec.clip,
        };
        for (bi, &len) in lens.iter().enumerate() {
            let s0 = dims.state_offset(d, bi);
            let mut h = h0[s0..s0 + n].to_vec();
            let mut c = c0[s0..s0 + n].to_vec();
            for s in 0..len {
                let t = if spec.is_reverse(d) { len - 1 - s } else { s };
                let x0 = dims.x_offset(t, bi);
                let cell = spec.cell;
                step(
                    cell,
                    spec.input_forget,
                    spec.linear_before_reset,
                    &dir,
                    &xs[x0..x0 + isz],
                    &mut h,
                    &mut c,
                );
                let y0 = dims.y_offset(t, d, bi);
                y[y0..y0 + n].copy_from_slice(&h);
            }
            yh[s0..s0 + n].copy_from_slice(&h);
            yc[s0..s0 + n].copy_from_slice(&c);
        }
    }
    let mut out = vec![
        make(dt, dims.y_shape().to_vec(), &y)?,
        make(dt, dims.state_shape().to_vec(), &yh)?,
    ];
    if spec.cell == RnnCell::Lstm {
        out.push(make(dt, dims.state_shape().to_vec(), &yc)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{RnnActivation, RnnDirection};

    /// An RNN of one unit with `h = x` (W = 1, R = 0, the identity activation), sequence
    /// lengths and initial states `h0`, over `x: [seq, batch, 1]`.
    fn identity_rnn(
        direction: RnnDirection,
        x: &[f32],
        lens: &[i64],
        h0: &[f32],
    ) -> KResult<Vec<Vec<f64>>> {
        let (batch, dirs) = (
            lens.len(),
            if direction == RnnDirection::Bidirectional {
                2
            } else {
                1
            },
        );
        let op = Op::Recurrent {
            cell: RnnCell::Rnn,
            direction,
            hidden_size: 1,
            activations: vec![RnnActivation::Affine; dirs],
            activation_alpha: vec![1.0; dirs],
            activation_beta: vec![0.0; dirs],
            clip: f64::INFINITY,
            input_forget: false,
            linear_before_reset: false,
            batch_first: false,
            bias: false,
            seq_lens: true,
            initial_h: true,
            initial_c: false,
            peepholes: false,
        };
        let t = |shape: Vec<usize>, v: Vec<f32>| Tensor::from_f32(shape, v).unwrap();
        let inputs = [
            t(vec![x.len() / batch, batch, 1], x.to_vec()),
            t(vec![dirs, 1, 1], vec![1.0; dirs]),
            t(vec![dirs, 1, 1], vec![0.0; dirs]),
            Tensor::from_i64(vec![batch], lens.to_vec()).unwrap(),
            t(vec![dirs, batch, 1], h0.to_vec()),
        ];
        let refs: Vec<&Tensor> = inputs.iter().collect();
        Ok(recurrent(&op, &refs)?
            .iter()
            .map(Tensor::to_f64_vec)
            .collect())
    }

    #[test]
    fn steps_past_a_length_give_zeros_and_keep_the_state() {
        // x[t][b] for 3 steps of 2 entries, lengths 2 and 0.
        let x = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0];
        let out = identity_rnn(RnnDirection::Forward, &x, &[2, 0], &[5.0, 7.0]).unwrap();
        assert_eq!(out[0], [1.0, 0.0, 2.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            out[1],
            [2.0, 7.0],
            "the last valid step's h; the initial h when empty"
        );
        // Reverse: entry 0 starts at its own last step (t = 1) and ends at t = 0.
        let out = identity_rnn(RnnDirection::Reverse, &x, &[2, 0], &[5.0, 7.0]).unwrap();
        assert_eq!(out[0], [1.0, 0.0, 2.0, 0.0, 0.0, 0.0]);
        assert_eq!(out[1], [1.0, 7.0]);
        // Bidirectional: y is [seq, 2, batch, 1], directions stacked on axis 1.
        let out = identity_rnn(RnnDirection::Bidirectional, &x, &[3, 1], &[0.0; 4]).unwrap();
        assert_eq!(
            out[0],
            [1.0, 10.0, 1.0, 10.0, 2.0, 0.0, 2.0, 0.0, 3.0, 0.0, 3.0, 0.0]
        );
        assert_eq!(out[1], [3.0, 10.0, 1.0, 10.0]);
    }

    #[test]
    fn bad_lengths_are_errors() {
        let run = |lens: &[i64]| identity_rnn(RnnDirection::Forward, &[1.0, 2.0], lens, &[0.0; 2]);
        let e = run(&[2, 0]).unwrap_err();
        assert!(e.contains("sequence_lens[0] = 2 is outside 0..=1"), "{e}");
        assert!(run(&[-1, 1]).is_err());
        assert!(run(&[1, 0]).is_ok());
    }
}
