//! [`State`]: the persistent tensors of a model with states (the key/value caches of a decoder),
//! allocated once for a batch size and capacity and written in place by every run, so that a
//! decode step neither copies nor concatenates the past.

use super::arena::Arena;
use crate::ops::Bindings;
use crate::plan::Plan;
use crate::{Error, Tensor};

/// The buffers of a plan's states, for one set of symbol values (such as `batch = 3`,
/// `capacity = 512`). Create it with [`crate::Model::new_state`] and pass it to
/// [`crate::Session::run_with_state`]; a run reads and updates it in place.
#[derive(Debug)]
pub struct State {
    /// The symbols the buffers were sized with.
    bindings: Bindings,
    /// One zeroed, 64-byte-aligned buffer per plan state.
    pub(super) buffers: Vec<Arena>,
    /// Each buffer's shape.
    shapes: Vec<Vec<usize>>,
    /// Each buffer's byte length.
    pub(super) lens: Vec<usize>,
    /// The plan's state names, to check that a state is used with its own model.
    names: Vec<String>,
}

impl State {
    /// Zeroed buffers for every state of `plan` under `symbols`, within `budget` bytes.
    pub(crate) fn new(plan: &Plan, symbols: &[(&str, i64)], budget: u64) -> Result<State, Error> {
        let fail = |message: String| Error::Run { message };
        let mut bindings = Bindings::new();
        for &(name, value) in symbols {
            if value < 0 {
                return Err(fail(format!("state symbol `{name}` = {value} is negative")));
            }
            bindings.insert(name.to_string(), value);
        }
        let (mut buffers, mut shapes, mut lens, mut names) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut total = 0u64;
        for st in &plan.states {
            let ty = &plan.value(st.value).ty;
            let shape = ty.shape.eval(&bindings).map_err(|e| {
                let needed: std::collections::BTreeSet<String> =
                    ty.shape.0.iter().flat_map(|d| d.symbols()).collect();
                let needed: Vec<String> = needed.into_iter().collect();
                fail(format!(
                    "state `{}` of type {ty} needs the symbols {} ({e})",
                    st.name,
                    needed.join(", ")
                ))
            })?;
            let len = shape
                .iter()
                .try_fold(ty.dtype.size(), |a, &d| a.checked_mul(d))
                .ok_or_else(|| fail(format!("state `{}` {shape:?} overflows memory", st.name)))?;
            total = total.saturating_add(len as u64);
            if total > budget {
                return Err(fail(format!(
                    "the states need more than {} bytes (state `{}` {shape:?} and those before \
                     it), over the memory budget of {budget} bytes",
                    total, st.name
                )));
            }
            let mut buf = Arena::default();
            buf.reserve(len).map_err(fail)?;
            buffers.push(buf);
            shapes.push(shape);
            lens.push(len);
            names.push(st.name.clone());
        }
        Ok(State {
            bindings,
            buffers,
            shapes,
            lens,
            names,
        })
    }

    /// The symbol values the buffers were sized with.
    pub fn bindings(&self) -> &Bindings {
        &self.bindings
    }

    /// Total bytes of the buffers.
    pub fn bytes(&self) -> usize {
        self.lens.iter().sum()
    }

    /// The names of the states, in the plan's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// A copy of state `i` (for inspection and tests).
    pub fn tensor(&mut self, plan: &Plan, i: usize) -> Result<Tensor, Error> {
        let st = plan.states.get(i).ok_or_else(|| Error::Run {
            message: format!("no state {i}"),
        })?;
        let dtype = plan.value(st.value).ty.dtype;
        let len = self.lens[i];
        let base = self.buffers[i].base();
        // SAFETY: the buffer holds at least `len` initialised bytes (reserved and zeroed at
        // creation, written only by runs within bounds), and `&mut self` excludes runs now.
        let bytes = unsafe { std::slice::from_raw_parts(base, len) };
        Tensor::from_le_bytes(dtype, self.shapes[i].clone(), bytes).map_err(|e| Error::Run {
            message: e.to_string(),
        })
    }

    /// Overwrites state `name` with `t` (its dtype and this state's shape): how a caller fills
    /// a state that no step writes, such as a decoder's cross-attention keys computed once by
    /// an encoder.
    pub fn write(&mut self, plan: &Plan, name: &str, t: &Tensor) -> Result<(), Error> {
        let fail = |message: String| Error::Run { message };
        let i = self.names.iter().position(|n| n == name).ok_or_else(|| {
            fail(format!(
                "no state `{name}` (the states are {:?})",
                self.names
            ))
        })?;
        let dtype = plan
            .states
            .get(i)
            .map(|st| plan.value(st.value).ty.dtype)
            .ok_or_else(|| fail("this state was made for another model".into()))?;
        if t.dtype() != dtype || t.shape() != self.shapes[i].as_slice() {
            return Err(fail(format!(
                "state `{name}` is {dtype}{:?}, the tensor written to it {}{:?}",
                self.shapes[i],
                t.dtype(),
                t.shape()
            )));
        }
        let bytes = t.to_le_bytes();
        if bytes.len() != self.lens[i] {
            return Err(fail(format!(
                "state `{name}` holds {} bytes, not {}",
                self.lens[i],
                bytes.len()
            )));
        }
        let base = self.buffers[i].base();
        // SAFETY: the buffer holds at least `lens[i]` bytes (checked equal to `bytes.len()`),
        // and `&mut self` excludes any run using it now.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base, bytes.len()) };
        Ok(())
    }

    /// Checks that this state was made for `plan` (same state names).
    pub(super) fn check_plan(&self, plan: &Plan) -> Result<(), Error> {
        let same = plan.states.len() == self.names.len()
            && plan
                .states
                .iter()
                .zip(&self.names)
                .all(|(s, n)| &s.name == n);
        if same {
            Ok(())
        } else {
            Err(Error::Run {
                message: "this state was made for another model (its state names differ)".into(),
            })
        }
    }
}
