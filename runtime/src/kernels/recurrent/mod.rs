//! Recurrent layers (`Op::Recurrent`: LSTM, GRU, RNN) on f32, with the semantics of the
//! reference kernel (`reference::recurrent`, the ONNX definitions).
//!
//! # Computation
//!
//! Per direction, `Wᵀ` and `Rᵀ` are packed once per call for the GEMM (`weights.rs`; the
//! biases that are plain additions are folded into the input projection's bias). The work is
//! split into tasks, each a direction and a range of batch entries that it runs through the
//! whole sequence on its own (`task.rs`): in chunks of steps, the input projection `x·Wᵀ + b`
//! of every step of the chunk as GEMMs with many rows, then per step the recurrent product
//! `h·Rᵀ` for all of the task's rows as one small GEMM and the gate equations as elementwise
//! loops over `hidden` values (`cells.rs`, vectorised per instruction set; activations in
//! `math.rs`). GRU without `linear_before_reset` has a second per-step product `(r ⊙ h)·Rhᵀ`.
//!
//! # Threads
//!
//! Tasks are independent (a batch entry's recurrence never reads another's), so they run in
//! parallel in the caller's rayon pool: one per direction, and the batch split further while
//! there are more threads than tasks and each task keeps enough work. A call with a single task
//! lets the projection GEMM use the pool instead; the per-step products are too small to split.
//!
//! # Accuracy
//!
//! Products accumulate in f32 in the GEMM's order; `exp`, `sigmoid` and `tanh` are within
//! 1e-6 relative of their f64 values; the tests hold outputs within 1e-5 of the reference.

mod cells;
mod math;
mod skinny;
mod task;
#[cfg(test)]
mod tests;
mod types;
mod weights;

pub use types::{Inputs, Outputs, RecurrentError, Weights};
pub use weights::{pack_weights, packed_weights_len};

use crate::kernels::gemm::{GemmError, Isa};
use crate::ops::{RecurrentSpec, RnnDims};
use rayon::prelude::*;
use task::Shared;
use types::{check_len, CheckedIsa, OutRows};

/// The fewest multiply-adds a task gets when the batch is split between threads.
const TASK_MIN_WORK: usize = 1 << 20;

/// Checks every operand against `spec` and `dims`.
fn check(
    spec: &RecurrentSpec,
    d: &RnnDims,
    inp: &Inputs,
    out: &Outputs,
) -> Result<(), RecurrentError> {
    spec.check().map_err(RecurrentError::Spec)?;
    if d.gates != spec.gates()
        || d.dirs != spec.directions()
        || d.hidden != spec.hidden_size as usize
        || d.batch_first != spec.batch_first
    {
        return Err(RecurrentError::Spec(format!(
            "dims {d:?} do not fit the layer"
        )));
    }
    let gh = d.gates * d.hidden;
    check_len("x", inp.x.len(), &[d.seq, d.batch, d.input])?;
    match inp.weights {
        Weights::Raw { w, r } => {
            check_len("w", w.len(), &[d.dirs, gh, d.input])?;
            check_len("r", r.len(), &[d.dirs, gh, d.hidden])?;
        }
        Weights::Packed(p) => {
            let want = packed_weights_len(spec, d.input).ok_or_else(|| {
                RecurrentError::Spec(format!("packed weights for input {} overflow", d.input))
            })?;
            check_len("packed weights", p.len(), &[want])?;
        }
    }
    let state = [d.dirs, d.batch, d.hidden];
    let optional = [
        ("b", inp.b, vec![d.dirs, 2, gh]),
        ("initial_h", inp.initial_h, state.to_vec()),
        ("initial_c", inp.initial_c, state.to_vec()),
        ("p", inp.p, vec![d.dirs, 3, d.hidden]),
    ];
    for (name, v, dims) in optional {
        if let Some(v) = v {
            check_len(name, v.len(), &dims)?;
        }
    }
    check_len("sequence_lens", inp.lens.len(), &[d.batch])?;
    if let Some(l) = inp.lens.iter().find(|&&l| l > d.seq) {
        return Err(RecurrentError::Spec(format!(
            "sequence length {l} exceeds the sequence ({})",
            d.seq
        )));
    }
    check_len("y", out.y.len(), &[d.seq, d.dirs, d.batch, d.hidden])?;
    check_len("y_h", out.y_h.len(), &state)?;
    if let Some(y_c) = &out.y_c {
        check_len("y_c", y_c.len(), &state)?;
    }
    Ok(())
}

/// Runs the layer: `y`, `y_h` (and `y_c` when given) from the operands.
pub fn recurrent(
    isa: Isa,
    spec: &RecurrentSpec,
    dims: &RnnDims,
    inp: &Inputs,
    out: Outputs,
) -> Result<(), RecurrentError> {
    let checked = CheckedIsa::new(isa).ok_or(GemmError::IsaUnavailable { isa })?;
    check(spec, dims, inp, &out)?;
    let weights = (0..dims.dirs)
        .map(|d| weights::prepare(spec, dims, inp, d))
        .collect::<Result<Vec<_>, _>>()?;
    // Tasks: per direction, the batch in `parts` ranges.
    let max_len = inp.lens.iter().copied().max().unwrap_or(0);
    let row_work = max_len
        .saturating_mul(dims.gates * dims.hidden)
        .saturating_mul(dims.hidden + dims.input);
    let by_work = dims.batch.saturating_mul(row_work) / TASK_MIN_WORK;
    let threads = rayon::current_num_threads();
    let parts = threads
        .div_ceil(dims.dirs)
        .min(by_work)
        .clamp(1, dims.batch.max(1));
    let mut tasks = Vec::new();
    for d in 0..dims.dirs {
        for p in 0..parts {
            let (b0, b1) = (dims.batch * p / parts, dims.batch * (p + 1) / parts);
            if b1 > b0 {
                tasks.push((d, b0, b1));
            }
        }
    }
    let shared = Shared {
        isa: checked,
        spec,
        dims: *dims,
        inp,
        weights: &weights,
        y: OutRows::new(out.y),
        y_h: OutRows::new(out.y_h),
        y_c: out.y_c.map(OutRows::new),
        parallel_projection: tasks.len() == 1,
    };
    if tasks.len() <= 1 || threads <= 1 {
        for &(d, b0, b1) in &tasks {
            shared.run(d, b0, b1)?;
        }
        return Ok(());
    }
    tasks
        .par_iter()
        .try_for_each(|&(d, b0, b1)| shared.run(d, b0, b1))
}
