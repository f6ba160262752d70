//! Recurrent-layer steps: the operands' shapes checked against the layer (`RecurrentSpec::dims`),
//! the sequence lengths read and bounded, the outputs' shapes checked, then the f32 kernel.

use crate::exec::frame::Frame;
use crate::kernels::gemm::Isa;
use crate::kernels::recurrent::{self as rnn, Inputs, Outputs, Weights};
use crate::ops::RnnInput;
use crate::plan::{RecurrentStep, Step};

pub(super) fn recurrent_step(
    f: &Frame,
    step: &Step,
    rs: &RecurrentStep,
    isa: Isa,
) -> Result<(), String> {
    let spec = &rs.spec;
    if step.inputs.len() != rs.inputs() {
        return Err(format!(
            "has {} inputs, the layer {}",
            step.inputs.len(),
            rs.inputs()
        ));
    }
    // The op's input shapes, W's and R's made up from the packed layer's sizes when packed.
    let mut shapes: Vec<Vec<usize>> = step.inputs.iter().map(|&v| f.shape(v).to_vec()).collect();
    if let Some(p) = rs.packed {
        let input = usize::try_from(p.input).map_err(|_| "input size out of range")?;
        let (gh, n) = (
            spec.gates() * spec.hidden_size as usize,
            spec.hidden_size as usize,
        );
        let dirs = spec.directions();
        shapes.splice(1..1, [vec![dirs, gh, input], vec![dirs, gh, n]]);
    }
    let shape_refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    let dims = spec.dims(&shape_refs)?;
    let value = |which: RnnInput| rs.input_index(which).map(|i| step.inputs[i]);
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
        data(which)?.ok_or_else(|| format!("missing {}", which.name()))
    };
    let weights = match rs.packed {
        Some(p) => Weights::Packed(f.weights_f32(p.offset, p.len)?),
        None => Weights::Raw {
            w: required(RnnInput::W)?,
            r: required(RnnInput::R)?,
        },
    };
    let inp = Inputs {
        x: required(RnnInput::X)?,
        weights,
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
