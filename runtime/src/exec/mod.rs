//! The executor: a [`Session`] owns one arena and runs a loaded model's plan step by step,
//! evaluating shapes and the arena layout once per run (and reusing them while the input dims
//! stay the same).

mod arena;
mod dispatch;
mod flops;
mod frame;
#[cfg(test)]
mod tests;

pub use arena::Layout;

use crate::model::Model;
use crate::ops::bind_inputs;
use crate::{Error, Tensor};
use arena::Arena;
use frame::Frame;
use std::collections::BTreeMap;

/// Per-thread execution state for one [`Model`]: the arena and the cached layout. Create one per
/// thread with [`Model::session`]; the model itself is shared.
#[derive(Debug)]
pub struct Session<'m> {
    model: &'m Model,
    arena: Arena,
    layout: Option<Layout>,
    /// Per-step wall times of the last run, when profiling is on.
    step_times: Option<Vec<std::time::Duration>>,
}

impl<'m> Session<'m> {
    pub(crate) fn new(model: &'m Model) -> Session<'m> {
        Session {
            model,
            arena: Arena::default(),
            layout: None,
            step_times: None,
        }
    }

    /// Turns per-step timing on or off (off by default; it adds a clock read per step).
    pub fn set_profiling(&mut self, on: bool) {
        self.step_times = on.then(Vec::new);
    }

    /// Wall time of each step of the last run (indexed like the plan's steps), when profiling.
    pub fn step_times(&self) -> Option<&[std::time::Duration]> {
        self.step_times.as_deref()
    }

    /// Runs the model on named inputs (checked by name, dtype, rank and dims against the plan)
    /// and returns the named outputs in declaration order.
    pub fn run(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, Error> {
        let plan = self.model.plan();
        let expected: Vec<(&str, &crate::ops::TensorType)> = plan
            .inputs
            .iter()
            .map(|io| (io.name.as_str(), &plan.value(io.value).ty))
            .collect();
        let b = bind_inputs(&expected, inputs)?;
        for io in &plan.inputs {
            io.limits.check(&io.name, &inputs[&io.name])?;
        }
        if self.layout.as_ref().is_none_or(|l| l.bindings != b) {
            self.layout = None;
            let layout = Layout::compute(plan, &b).map_err(|message| Error::Run { message })?;
            self.model.budget().check(layout.run_bytes(plan), inputs)?;
            self.arena
                .reserve(layout.arena_bytes)
                .map_err(|message| Error::Run { message })?;
            self.layout = Some(layout);
        }
        let layout = self.layout.as_ref().expect("layout was just computed");
        // SAFETY: the arena holds at least `layout.arena_bytes` zero-initialised bytes at a
        // 64-byte-aligned base, and this session is its only user while the frame lives.
        let frame = unsafe { Frame::new(plan, layout, self.arena.base(), self.model.weights()) };
        for io in &plan.inputs {
            let t = &inputs[&io.name];
            let bytes = t.to_le_bytes();
            // SAFETY: inputs occupy their own slots, written before any step runs.
            unsafe { frame.bytes_mut(io.value) }.copy_from_slice(&bytes);
        }
        let isa = self.model.isa();
        let code = self.model.code();
        let mut times = self.step_times.take();
        if let Some(t) = &mut times {
            t.clear();
        }
        let result = self.model.pool().install(|| {
            for (i, step) in plan.steps_with_ids() {
                let start = times.as_ref().map(|_| std::time::Instant::now());
                dispatch::run_step(&frame, step, isa, code).map_err(|message| Error::Step {
                    step: format!("step {i} ({})", step.origin),
                    message,
                })?;
                if let (Some(t), Some(start)) = (&mut times, start) {
                    t.push(start.elapsed());
                }
            }
            Ok::<(), Error>(())
        });
        self.step_times = times;
        result?;
        plan.outputs
            .iter()
            .map(|io| {
                let t = frame
                    .tensor(io.value)
                    .map_err(|message| Error::Run { message })?;
                Ok((io.name.clone(), t))
            })
            .collect()
    }

    /// The layout of the last run (shapes, slot offsets, arena size), if any.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }
}
