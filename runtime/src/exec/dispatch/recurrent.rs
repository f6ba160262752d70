//! Recurrent-layer steps: the operands' shapes checked against the layer (`RecurrentSpec::dims`),
//! the sequence lengths read and bounded, the outputs' shapes checked, then the f32 kernel.

use crate::exec::frame::Frame;
use crate::kernels::gemm::Isa;
use crate::kernels::recurrent::{self as rnn, Inputs, Outputs};
use crate::ops::{RecurrentSpec, RnnInput};
use crate::plan::Step;

pub(super) fn recurrent_step(
    f: &Frame,
    step: &Step,
    spec: &RecurrentSpec,
    isa: Isa,
) -> Result<(), String> {
    let shapes: Vec<&[usize]> = step.inputs.iter().map(|&v| f.shape(v)).collect();
    let dims = spec.dims(&shapes)?;
    let value = |which: RnnInput| spec.input_index(which).map(|i| step.inputs[i]);
    let data = |which: RnnInput| -> Result<Option<&[f32]>, String> {
        value(which).map(|v| f.f32s(v, which.name())).transpose()
    };
    let lens = match value(RnnInput::SeqLens) {
        Some(v) => {
            let t = f.tensor(v)?;
            if !t.dtype().is_int() {
                return Err(format!("sequence_lens must be integers, got {}", t.dtype()));
            }
            Some(t.to_i64_vec())
        }
        None => None,
    };
    let lens = dims.lengths(lens.as_deref())?;
    let required = |which: RnnInput| -> Result<&[f32], String> {
        f.f32s(
            step.inputs[spec.input_index(which).unwrap_or(0)],
            which.name(),
        )
    };
    let inp = Inputs {
        x: required(RnnInput::X)?,
        w: required(RnnInput::W)?,
        r: required(RnnInput::R)?,
        b: data(RnnInput::B)?,
        lens: &lens,
        initial_h: data(RnnInput::InitialH)?,
        initial_c: data(RnnInput::InitialC)?,
        p: data(RnnInput::P)?,
    };
    if step.outputs.len() != spec.outputs() {
        return Err(format!(
            "has {} outputs, the layer {}",
            step.outputs.len(),
            spec.outputs()
        ));
    }
    let y_shape = dims.y_shape();
    let state = dims.state_shape();
    for (i, &v) in step.outputs.iter().enumerate() {
        let want: &[usize] = if i == 0 { &y_shape } else { &state };
        if f.shape(v) != want {
            return Err(format!(
                "output {i} is {:?}, the layer computes {want:?}",
                f.shape(v)
            ));
        }
    }
    // SAFETY: the outputs are this step's own, in distinct slots that no input shares
    // (validated), each taken once here.
    let y = unsafe { f.f32s_mut(step.outputs[0], "y")? };
    // SAFETY: as above.
    let y_h = unsafe { f.f32s_mut(step.outputs[1], "y_h")? };
    let y_c = match step.outputs.get(2) {
        // SAFETY: as above.
        Some(&v) => Some(unsafe { f.f32s_mut(v, "y_c")? }),
        None => None,
    };
    let out = Outputs { y, y_h, y_c };
    rnn::recurrent(isa, spec, &dims, &inp, out).map_err(|e| e.to_string())
}
