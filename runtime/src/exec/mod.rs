//! The executor: a [`Session`] owns one arena and runs a loaded model's plan step by step,
//! evaluating shapes and the arena layout once per run (and reusing them while the input dims
//! stay the same).

mod arena;
mod dispatch;
mod flops;
mod frame;
mod state;
#[cfg(test)]
mod tests;

pub use arena::Layout;
pub use state::State;

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
        if !self.model.plan().states.is_empty() {
            return Err(Error::Run {
                message: format!(
                    "this model keeps state between runs ({}); run it with \
                     `Session::run_with_state` and a state from `Model::new_state`",
                    self.model.plan().states[0].name
                ),
            });
        }
        self.run_inner(inputs, None)
    }

    /// Runs a model with states (a decoder's key/value caches): like [`Session::run`], with the
    /// state's buffers read and updated in place. The state's symbols (`batch`, `capacity`)
    /// join the inputs' bindings and must agree with them.
    pub fn run_with_state(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
        state: &mut State,
    ) -> Result<Vec<(String, Tensor)>, Error> {
        state.check_plan(self.model.plan())?;
        self.run_inner(inputs, Some(state))
    }

    fn run_inner(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
        state: Option<&mut State>,
    ) -> Result<Vec<(String, Tensor)>, Error> {
        let plan = self.model.plan();
        let expected: Vec<(&str, &crate::ops::TensorType)> = plan
            .inputs
            .iter()
            .map(|io| (io.name.as_str(), &plan.value(io.value).ty))
            .collect();
        let mut b = bind_inputs(&expected, inputs)?;
        for io in &plan.inputs {
            io.limits.check(&io.name, &inputs[&io.name])?;
        }
        if let Some(st) = &state {
            for (name, &v) in st.bindings() {
                match b.get(name) {
                    Some(&have) if have != v => {
                        return Err(Error::Run {
                            message: format!(
                                "the inputs give `{name}` = {have}, but the state was made for \
                                 `{name}` = {v}"
                            ),
                        })
                    }
                    _ => {
                        b.insert(name.clone(), v);
                    }
                }
            }
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
        let mut states: Vec<*mut u8> = Vec::new();
        if let Some(st) = state {
            for (i, io) in plan.states.iter().enumerate() {
                for v in [io.value, io.update] {
                    if layout.bytes[v.index()] != st.lens[i] {
                        return Err(Error::Run {
                            message: format!(
                                "state `{}` holds {} bytes, but this run needs {}",
                                io.name,
                                st.lens[i],
                                layout.bytes[v.index()]
                            ),
                        });
                    }
                }
            }
            states = st.buffers.iter_mut().map(|a| a.base()).collect();
        }
        if states.len() != plan.states.len() {
            return Err(Error::Run {
                message: "this model keeps state between runs; no state was given".into(),
            });
        }
        // SAFETY: the arena holds at least `layout.arena_bytes` zero-initialised bytes at a
        // 64-byte-aligned base, and this session is its only user while the frame lives; each
        // state pointer is the 64-byte-aligned base of a buffer of exactly the byte length the
        // layout gives its values (checked just above), borrowed mutably for this run.
        let frame = unsafe {
            Frame::new(
                plan,
                layout,
                self.arena.base(),
                self.model.weights(),
                &states,
            )
        };
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
