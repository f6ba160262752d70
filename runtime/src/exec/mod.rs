//! The executor: a [`Session`] owns one arena and runs a loaded model's plan step by step,
//! evaluating shapes and the arena layout once per run (and reusing them while the input dims
//! stay the same).

mod arena;
mod dispatch;
mod flops;
mod frame;
mod state;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod tests;

pub use arena::Layout;
pub use state::State;

use crate::model::Model;
use crate::ops::{Binder, Bindings};
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
    /// How the plan's inputs bind its symbols, worked out at the first run.
    binder: Option<Binder>,
    /// The bindings of the current run, reused from run to run.
    bindings: Bindings,
    /// The state buffers' bases during a run (empty between runs).
    state_ptrs: StatePtrs,
    /// The largest run (bytes, [`Layout::run_bytes`]) the memory budget admitted so far: a run
    /// no bigger is not checked again (the budget reads `/proc`, which allocates).
    admitted: u64,
}

/// Base addresses of a [`State`]'s buffers, kept in the session so that a run does not
/// allocate a vector for them.
#[derive(Debug, Default)]
struct StatePtrs(Vec<*mut u8>);

// SAFETY: the vector holds addresses only while a run borrows its `State` mutably (they are
// taken from that borrow at the start of the run and cleared before it returns); between runs
// it is empty, so moving or sharing the session never carries a live pointer.
unsafe impl Send for StatePtrs {}
// SAFETY: as for `Send`; a shared session exposes no access to the vector.
unsafe impl Sync for StatePtrs {}

impl<'m> Session<'m> {
    pub(crate) fn new(model: &'m Model) -> Session<'m> {
        Session {
            model,
            arena: Arena::default(),
            layout: None,
            step_times: None,
            binder: None,
            bindings: Bindings::new(),
            state_ptrs: StatePtrs::default(),
            admitted: 0,
        }
    }

    /// Grows the arena for a run under `symbols` (every symbol of the plan's shapes, such as
    /// `batch`, `seq`, `past`, `capacity`), so that runs needing at most that much memory
    /// allocate nothing: a decode loop reserves for its last step (`past = capacity - 1`).
    pub fn reserve(&mut self, symbols: &[(&str, i64)]) -> Result<(), Error> {
        let b: Bindings = symbols.iter().map(|&(s, v)| (s.to_string(), v)).collect();
        let plan = self.model.plan();
        let layout = Layout::compute(plan, &b).map_err(|message| Error::Run { message })?;
        self.model
            .budget()
            .check(layout.run_bytes(plan), &BTreeMap::new())?;
        self.arena
            .reserve(layout.arena_bytes)
            .map_err(|message| Error::Run { message })?;
        // Every pool thread's attention buffers, sized for the largest call of such a run.
        let mut widest = (0usize, 0usize, 0usize, 0usize);
        for step in &plan.steps {
            if let crate::plan::Kernel::Attention(_) = step.kernel {
                let shape = |i: usize| step.inputs.get(i).map(|v| &layout.shapes[v.index()]);
                if let (Some(q), Some(k), Some(v)) = (shape(0), shape(1), shape(2)) {
                    let at = |s: &Vec<usize>, i: usize| s.get(i).copied().unwrap_or(0);
                    let (keys, d, dv) = (at(k, 2).max(at(k, 1)), at(q, 3), at(v, 3));
                    widest = (
                        widest.0.max(at(q, 0)),
                        widest.1.max(keys),
                        widest.2.max(d),
                        widest.3.max(dv),
                    );
                }
            }
        }
        let (batch, keys, d, dv) = widest;
        if keys > 0 {
            self.model.pool().broadcast(|_| {
                dispatch::attention::warm_thread(batch, keys);
                crate::kernels::attention::warm_thread(batch, keys, d.max(1), dv.max(1));
            });
        }
        Ok(())
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
        let result = self
            .execute(inputs, state)
            .and_then(|()| self.collect_outputs());
        self.state_ptrs.0.clear();
        result
    }

    /// Binds the inputs, updates the layout, writes the inputs and runs every step. Leaves the
    /// state pointers set (the caller clears them).
    fn execute(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
        state: Option<&mut State>,
    ) -> Result<(), Error> {
        let plan = self.model.plan();
        let binder = self.binder.get_or_insert_with(|| {
            let expected: Vec<(&str, &crate::ops::TensorType)> = plan
                .inputs
                .iter()
                .map(|io| (io.name.as_str(), &plan.value(io.value).ty))
                .collect();
            Binder::new(&expected)
        });
        // Symbols the inputs do not bind keep an "unset" value until the state's are added,
        // so that a run reinserts nothing (see `Binder::bind_keeping`).
        binder.bind_keeping(inputs, &mut self.bindings)?;
        let b = &mut self.bindings;
        if let Some(st) = &state {
            for (name, &v) in st.bindings() {
                match b.get_mut(name.as_str()) {
                    Some(have) if !Binder::is_unset(*have) && *have != v => {
                        let have = *have;
                        Binder::drop_unset(b);
                        return Err(Error::Run {
                            message: format!(
                                "the inputs give `{name}` = {have}, but the state was made for \
                                 `{name}` = {v}"
                            ),
                        });
                    }
                    Some(have) => *have = v,
                    None => {
                        b.insert(name.clone(), v);
                    }
                }
            }
        }
        Binder::drop_unset(b);
        for io in &plan.inputs {
            io.limits.check(&io.name, &inputs[&io.name])?;
        }
        let b = &self.bindings;
        // The layout is kept only once the arena holds it: on any failure it is dropped, so a
        // later run with the same bindings never finds a layout bigger than the arena.
        let layout = match self.layout.take() {
            Some(l) if l.bindings == *b => l,
            Some(mut l) if l.same_symbols(b) => {
                l.update(plan, b)
                    .map_err(|message| Error::Run { message })?;
                l
            }
            _ => Layout::compute(plan, b).map_err(|message| Error::Run { message })?,
        };
        let needed = layout.run_bytes(plan);
        if needed > self.admitted {
            self.model.budget().check(needed, inputs)?;
            self.admitted = needed;
        }
        self.arena
            .reserve(layout.arena_bytes)
            .map_err(|message| Error::Run { message })?;
        self.layout = Some(layout);
        let layout = self.layout.as_ref().expect("layout was just computed");
        self.state_ptrs.0.clear();
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
            self.state_ptrs
                .0
                .extend(st.buffers.iter_mut().map(|a| a.base()));
        }
        let states = &self.state_ptrs.0;
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
                states,
            )
        };
        for io in &plan.inputs {
            let t = &inputs[&io.name];
            // SAFETY: inputs occupy their own slots, written before any step runs.
            let slot = unsafe { frame.bytes_mut(io.value) };
            if !t.write_le_bytes(slot) {
                return Err(Error::Run {
                    message: format!(
                        "input `{}` has {} elements, but its slot holds {} bytes",
                        io.name,
                        t.len(),
                        slot.len()
                    ),
                });
            }
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
        result
    }

    /// The plan's outputs of the last [`Session::execute`], copied out.
    fn collect_outputs(&mut self) -> Result<Vec<(String, Tensor)>, Error> {
        let plan = self.model.plan();
        let Some(layout) = self.layout.as_ref() else {
            return Err(Error::Run {
                message: "no run has happened yet".into(),
            });
        };
        // SAFETY: as in `execute`: the arena holds the layout's bytes at an aligned base and the
        // state pointers (set by the run that just finished, whose state is still borrowed
        // mutably by the caller) address buffers of the layout's lengths; only reads happen.
        let frame = unsafe {
            Frame::new(
                plan,
                layout,
                self.arena.base(),
                self.model.weights(),
                &self.state_ptrs.0,
            )
        };
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

    /// Runs like [`Session::run`] / [`Session::run_with_state`] (pass the state of a model
    /// with states) but keeps the outputs in the session, to be read with
    /// [`Session::output_f32`] until the next run. Once the arena is big enough
    /// ([`Session::reserve`]) and the inputs have the same symbols as the last run, this
    /// allocates nothing: a decode loop's steps run this way.
    pub fn run_in_place(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
        state: Option<&mut State>,
    ) -> Result<(), Error> {
        let result = match state {
            Some(st) => st
                .check_plan(self.model.plan())
                .and_then(|()| self.execute(inputs, Some(st))),
            None => self.execute(inputs, None),
        };
        self.state_ptrs.0.clear();
        result
    }

    /// Output `name` of the last run, borrowed from the session: its shape and f32 elements.
    /// An output kept in a state (a decoder's `present.*`) is read from the state instead.
    pub fn output_f32(&self, name: &str) -> Result<(&[usize], &[f32]), Error> {
        let fail = |message: String| Error::Run { message };
        let plan = self.model.plan();
        let layout = self
            .layout
            .as_ref()
            .ok_or_else(|| fail("no run has happened yet".into()))?;
        let io = plan
            .outputs
            .iter()
            .find(|io| io.name == name)
            .ok_or_else(|| fail(format!("the model has no output `{name}`")))?;
        let dtype = plan.value(io.value).ty.dtype;
        if dtype != crate::DType::F32 {
            return Err(fail(format!("output `{name}` is {dtype}, not f32")));
        }
        let len = layout.bytes[io.value.index()];
        let bytes: &[u8] = match plan.value(plan.root(io.value)).storage {
            crate::plan::Storage::Slot(s) | crate::plan::Storage::Input { slot: s } => {
                let at = layout.slot_offsets[s.index()];
                self.arena
                    .bytes()
                    .get(at..at + len)
                    .ok_or_else(|| fail(format!("output `{name}` lies outside the arena")))?
            }
            crate::plan::Storage::Weight { offset, .. } => usize::try_from(offset)
                .ok()
                .and_then(|o| self.model.weights().get(o..o.checked_add(len)?))
                .ok_or_else(|| fail(format!("output `{name}` lies outside the weights")))?,
            crate::plan::Storage::State(_) | crate::plan::Storage::Alias(_) => {
                return Err(fail(format!(
                    "output `{name}` is kept in a state; read it from the state"
                )))
            }
        };
        if bytes.as_ptr().align_offset(std::mem::align_of::<f32>()) != 0 {
            return Err(fail(format!("output `{name}` is not aligned for f32")));
        }
        // SAFETY: `bytes` is an initialised, f32-aligned (checked) byte range of `len` bytes,
        // a multiple of 4 (an f32 value's byte length), borrowed from `self` for the returned
        // lifetime; every bit pattern is a valid f32.
        let floats =
            unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) };
        Ok((&layout.shapes[io.value.index()], floats))
    }

    /// The layout of the last run (shapes, slot offsets, arena size), if any.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }
}
