//! Inference for the recurrent layers (`Op::Recurrent`: LSTM, GRU, RNN) over symbolic dims:
//! every present input checked against the shape X and the attributes imply (batch and sequence
//! may be symbolic; the gate widths are known from `hidden_size`), outputs `y, y_h[, y_c]`.

use super::super::dim::Dim;
use super::super::op::{RecurrentSpec, RnnInput};
use super::super::types::{DType, Shape, TensorType};
use super::{k, Ctx};
use crate::error::Result;

/// `(x, w, r, [b], [sequence_lens], [initial_h], [initial_c], [p]) -> (y, y_h[, y_c])`.
pub(super) fn recurrent(cx: &Ctx) -> Result<Vec<TensorType>> {
    let spec = RecurrentSpec::of(cx.op()).map_err(|m| cx.error(m))?;
    let x = cx.float(0)?;
    let [s0, s1, input] = match x.shape.0.as_slice() {
        [a, b, c] => [a.clone(), b.clone(), c.clone()],
        _ => {
            return cx.err(format!(
                "input 0 (x) has shape {}, expected rank 3",
                x.shape
            ))
        }
    };
    let (seq, batch) = if spec.batch_first { (s1, s0) } else { (s0, s1) };
    let dirs = k(spec.directions() as i64);
    let hidden = k(i64::from(spec.hidden_size));
    let gh = k(spec.gates() as i64 * i64::from(spec.hidden_size));
    let state = if spec.batch_first {
        vec![batch.clone(), dirs.clone(), hidden.clone()]
    } else {
        vec![dirs.clone(), batch.clone(), hidden.clone()]
    };
    for which in RnnInput::ALL.into_iter().skip(1) {
        let Some(i) = spec.input_index(which) else {
            continue;
        };
        let want: Vec<Dim> = match which {
            RnnInput::X => continue,
            RnnInput::W => vec![dirs.clone(), gh.clone(), input.clone()],
            RnnInput::R => vec![dirs.clone(), gh.clone(), hidden.clone()],
            RnnInput::B => vec![dirs.clone(), gh.mul(&k(2))],
            RnnInput::SeqLens => vec![batch.clone()],
            RnnInput::InitialH | RnnInput::InitialC => state.clone(),
            RnnInput::P => vec![dirs.clone(), hidden.mul(&k(3))],
        };
        let t = if which == RnnInput::SeqLens {
            cx.dtype(
                i,
                |d| d == DType::I32 || d == DType::I64,
                "i32 or i64 (sequence_lens)",
            )?
        } else {
            cx.same_dtype(i, 0)?
        };
        if t.shape.0 != want {
            return cx.err(format!(
                "input {i} ({}) has shape {}, expected {}",
                which.name(),
                t.shape,
                Shape(want)
            ));
        }
    }
    let y = if spec.batch_first {
        vec![batch, seq, dirs, hidden]
    } else {
        vec![seq, dirs, batch, hidden]
    };
    let mut out = vec![
        TensorType::new(x.dtype, Shape(y)),
        TensorType::new(x.dtype, Shape(state.clone())),
    ];
    if spec.outputs() == 3 {
        out.push(TensorType::new(x.dtype, Shape(state)));
    }
    Ok(out)
}
