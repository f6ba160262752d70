//! The recurrent part of the golden plan (`plan_golden.rs`): layers of every cell, direction and
//! activation, as reference steps and as recurrent steps with and without packed weights.

use kiln_runtime::ops::{Op, RecurrentSpec, RnnActivation, RnnCell, RnnDirection};
use kiln_runtime::plan::{Kernel, RecurrentStep, RnnPacked};

/// Every cell, direction and activation of the recurrent layers.
pub fn recurrent_ops() -> Vec<Op> {
    let acts = RnnActivation::ALL;
    let mut ops = Vec::new();
    for (i, &cell) in RnnCell::ALL.iter().enumerate() {
        let direction = RnnDirection::ALL[i];
        let (per, dirs) = (3 - i, if i == 2 { 2 } else { 1 });
        let activations: Vec<RnnActivation> = (0..per * dirs)
            .map(|j| acts[(4 * i + j) % acts.len()])
            .collect();
        let n = activations.len();
        ops.push(Op::Recurrent {
            cell,
            direction,
            hidden_size: 7 + i as u32,
            activations,
            activation_alpha: (0..n).map(|j| 0.25 * j as f64).collect(),
            activation_beta: (0..n).map(|j| -0.5 * j as f64).collect(),
            clip: if i == 1 { f64::INFINITY } else { 2.5 },
            input_forget: i == 0,
            linear_before_reset: i == 1,
            batch_first: i != 1,
            bias: i != 2,
            seq_lens: i != 0,
            initial_h: true,
            initial_c: i == 0,
            peepholes: i == 0,
        });
    }
    ops
}

/// Recurrent steps of [`recurrent_ops`], the second with W and R as inputs.
pub fn recurrent_kernels() -> Vec<Kernel> {
    recurrent_ops()
        .iter()
        .enumerate()
        .map(|(i, op)| {
            Kernel::Recurrent(RecurrentStep {
                spec: RecurrentSpec::of(op).expect("the fixture's layers are valid"),
                packed: (i != 1).then_some(RnnPacked {
                    offset: 128 * i as u64,
                    len: 4096,
                    input: 3 + i as u64,
                }),
            })
        })
        .collect()
}
