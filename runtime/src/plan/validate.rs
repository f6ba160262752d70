//! Structural validation of a decoded plan against its artifact: every id, offset and arity is
//! checked once at load time, so the executor can index without re-checking.

use super::{GemmB, Kernel, Plan, SlotId, StepId, Storage, ValueId};

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The section does not decode as a plan.
    #[error("the plan does not decode: {message}")]
    Decode {
        /// The decoder's message.
        message: String,
    },
    /// A plan encoding this runtime does not read.
    #[error("plan version {found}; this runtime reads version {supported}")]
    Version {
        /// The version found.
        found: u32,
        /// The version this runtime reads.
        supported: u32,
    },
    /// An inconsistency, located by what it concerns.
    #[error("invalid plan: {at}: {message}")]
    Invalid {
        /// The step (`step 3 (%12 = matmul)`), value (`value 7`) or io it concerns.
        at: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(at: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        at: at.into(),
        message: message.into(),
    }
}

fn in_bounds(offset: u64, len: u64, total: u64) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= total)
}

impl Plan {
    /// Checks ids, storage, offsets (against a weights section of `weights_len` bytes), arities,
    /// definition before use, and that every generated symbol satisfies `has_symbol`.
    pub fn validate(
        &self,
        weights_len: u64,
        has_symbol: &dyn Fn(&str) -> bool,
    ) -> Result<(), PlanError> {
        let n = self.values.len();
        let check_id = |at: &str, v: ValueId| {
            if v.index() < n {
                Ok(())
            } else {
                Err(invalid(
                    at,
                    format!("value id {v} is out of range ({n} values)"),
                ))
            }
        };
        let mut defined = vec![false; n];
        for (i, io) in self.inputs.iter().enumerate() {
            let at = format!("input {i} `{}`", io.name);
            check_id(&at, io.value)?;
            if !matches!(self.value(io.value).storage, Storage::Input { .. }) {
                return Err(invalid(at, "its value is not stored as an input"));
            }
            defined[io.value.index()] = true;
        }
        self.validate_states(&mut defined)?;
        for (v, info) in self.values.iter().enumerate() {
            let at = format!("value {v}");
            match info.storage {
                Storage::State(i) => {
                    let owner = self.states.get(i as usize);
                    let vid = ValueId::from_index(v);
                    if owner.is_none_or(|s| s.value != vid && s.update != vid) {
                        return Err(invalid(
                            at,
                            format!("is stored as state {i}, which does not list it"),
                        ));
                    }
                }
                Storage::Input { slot } | Storage::Slot(slot) => {
                    if slot.index() >= self.slots.len() {
                        return Err(invalid(at, format!("slot {slot} is out of range")));
                    }
                }
                Storage::Weight { offset, len } => {
                    if offset % 64 != 0 || !in_bounds(offset, len, weights_len) {
                        return Err(invalid(
                            at,
                            format!("weight bytes {offset}..+{len} are misaligned or past the weights section ({weights_len} bytes)"),
                        ));
                    }
                    let want = info.ty.shape.eval(&Default::default()).ok().and_then(|s| {
                        s.iter()
                            .try_fold(info.ty.dtype.size() as u64, |a, &d| a.checked_mul(d as u64))
                    });
                    if want != Some(len) {
                        return Err(invalid(
                            at,
                            format!("weight of type {} does not take {len} bytes", info.ty),
                        ));
                    }
                    defined[v] = true;
                }
                Storage::Alias(of) => {
                    check_id(&at, of)?;
                    if of.index() >= v || matches!(self.value(of).storage, Storage::Alias(_)) {
                        return Err(invalid(
                            at,
                            format!("aliases value {of}, which is not an earlier non-alias value"),
                        ));
                    }
                    let a = &self.value(of).ty;
                    if a.dtype != info.ty.dtype || a.shape.numel() != info.ty.shape.numel() {
                        return Err(invalid(
                            at,
                            format!(
                                "aliases value {of} of type {a}, which has another size than {}",
                                info.ty
                            ),
                        ));
                    }
                }
            }
        }
        for (i, step) in self.steps_with_ids() {
            let at = format!("step {i} ({})", step.origin);
            for &v in step.inputs.iter().chain(&step.outputs) {
                check_id(&at, v)?;
            }
            for &v in &step.inputs {
                if !defined[v.index()] && !self.alias_defined(v, &defined) {
                    return Err(invalid(
                        &at,
                        format!("reads value {v} before it is computed"),
                    ));
                }
            }
            for &v in &step.outputs {
                let root = self.root(v);
                if let Storage::State(i) = self.value(root).storage {
                    let is_update = self.states[i as usize].update == v;
                    if !matches!(step.kernel, Kernel::CacheWrite { .. }) || !is_update {
                        return Err(invalid(
                            &at,
                            format!("writes value {v} in state {i}, which only a cache write of the state's update may"),
                        ));
                    }
                } else if !matches!(self.value(root).storage, Storage::Slot(_)) {
                    return Err(invalid(
                        &at,
                        format!("writes value {v}, which is not in the arena"),
                    ));
                }
                if defined[v.index()] {
                    return Err(invalid(&at, format!("writes value {v} a second time")));
                }
            }
            let (ni, no) = (step.inputs.len(), step.outputs.len());
            let arity_ok = match &step.kernel {
                Kernel::Native(op) if !crate::kernels::native::supports(op) => {
                    return Err(invalid(
                        at,
                        format!("has no native kernel for `{}`", op.name()),
                    ));
                }
                Kernel::Reference(op) | Kernel::Native(op) => {
                    let (lo, hi) = op.arity();
                    ni >= lo && hi.is_none_or(|h| ni <= h) && no == op.num_outputs()
                }
                Kernel::Gemm(g) => {
                    if let GemmB::Packed { offset, len, k, n } = g.b {
                        let want =
                            crate::kernels::gemm::packed_len(k as usize, n as usize) as u64 * 4;
                        if offset % 64 != 0 || !in_bounds(offset, len, weights_len) || len != want {
                            return Err(invalid(at, format!("packed weights {offset}..+{len} do not fit {k}×{n} in the weights section")));
                        }
                    }
                    if let GemmB::Blocks {
                        offset,
                        len,
                        k,
                        n,
                        format,
                    } = g.b
                    {
                        let want = usize::try_from(k)
                            .ok()
                            .zip(usize::try_from(n).ok())
                            .and_then(|(k, n)| crate::kernels::blocks::blocks_len(format, k, n));
                        if offset % 64 != 0
                            || !in_bounds(offset, len, weights_len)
                            || want.and_then(|w| u64::try_from(w).ok()) != Some(len)
                        {
                            return Err(invalid(at, format!("{} weights {offset}..+{len} do not fit {k}×{n} in the weights section", format.name())));
                        }
                    }
                    let want = 1
                        + usize::from(matches!(g.b, GemmB::Value { .. }))
                        + usize::from(g.bias)
                        + usize::from(g.residual);
                    ni == want && no == 1
                }
                Kernel::Attention(a) => {
                    let want =
                        3 + usize::from(a.bias) + usize::from(a.mask) + 2 * usize::from(a.rotary);
                    ni == want
                        && no == 1
                        && a.heads > 0
                        && a.kv_heads > 0
                        && a.heads % a.kv_heads == 0
                }
                Kernel::GatherRows => ni == 2 && no == 1,
                Kernel::CacheWrite { axis, .. } => {
                    let rank = no
                        .checked_sub(1)
                        .map(|_| self.value(step.outputs[0]).ty.rank());
                    ni == 1 && no == 1 && rank.is_some_and(|r| (*axis as usize) < r)
                }
                Kernel::Recurrent(r) => {
                    if let Err(e) = r.spec.check() {
                        return Err(invalid(at, format!("recurrent layer: {e}")));
                    }
                    if let Some(p) = r.packed {
                        let want = usize::try_from(p.input).ok().and_then(|i| {
                            crate::kernels::recurrent::packed_weights_len(&r.spec, i)
                        });
                        let fits =
                            want.and_then(|w| u64::try_from(w).ok()?.checked_mul(4)) == Some(p.len);
                        if p.offset % 64 != 0 || !in_bounds(p.offset, p.len, weights_len) || !fits {
                            return Err(invalid(at, format!("packed recurrent weights {}..+{} do not fit input {} in the weights section", p.offset, p.len, p.input)));
                        }
                    }
                    ni == r.inputs() && no == r.spec.outputs()
                }
                Kernel::Conv(c) => {
                    let want = c
                        .params(&c.packing_shape())
                        .map(|p| crate::kernels::conv::packed_weights_len(&p) as u64 * 4);
                    if c.offset % 64 != 0
                        || !in_bounds(c.offset, c.len, weights_len)
                        || want != Ok(c.len)
                    {
                        return Err(invalid(at, format!("packed conv weights {}..+{} do not fit the weight shape {:?} in the weights section", c.offset, c.len, c.w_shape)));
                    }
                    ni == 1 + usize::from(c.bias) && no == 1
                }
                Kernel::Generated(g) => {
                    if !has_symbol(&g.symbol) {
                        return Err(invalid(
                            at,
                            format!(
                                "calls `{}`, which the code section does not define",
                                g.symbol
                            ),
                        ));
                    }
                    if !g.signature_matches(no) {
                        return Err(invalid(
                            at,
                            format!(
                                "calls `{}` with {ni} inputs read as {:?} and {no} outputs, \
                                 which that kernel was not compiled for",
                                g.symbol, g.access
                            ),
                        ));
                    }
                    g.access.len() == ni && no >= 1 && g.split <= 64
                }
            };
            if !arity_ok {
                return Err(invalid(
                    at,
                    format!("has {ni} inputs and {no} outputs, which its kernel does not take"),
                ));
            }
            self.check_disjoint(i, step)?;
            for &v in &step.outputs {
                defined[v.index()] = true;
            }
        }
        for (i, io) in self.outputs.iter().enumerate() {
            let at = format!("output {i} `{}`", io.name);
            check_id(&at, io.value)?;
            if !defined[io.value.index()] && !self.alias_defined(io.value, &defined) {
                return Err(invalid(at, "is never computed"));
            }
        }
        Ok(())
    }

    /// The value whose storage holds `v`'s bytes (itself unless it is an alias).
    pub fn root(&self, v: ValueId) -> ValueId {
        match self.value(v).storage {
            Storage::Alias(of) => of,
            _ => v,
        }
    }

    /// The arena slot holding `v`'s bytes, if it lives in the arena.
    pub fn slot_of(&self, v: ValueId) -> Option<SlotId> {
        match self.value(self.root(v)).storage {
            Storage::Slot(s) | Storage::Input { slot: s } => Some(s),
            _ => None,
        }
    }

    /// A step's outputs occupy slots none of its inputs occupy (the executor hands kernels
    /// mutable slices over outputs next to shared slices over inputs), except where an in-place
    /// generated kernel overwrites a `Full` input element by element. Outputs are pairwise
    /// disjoint too.
    fn check_disjoint(&self, i: StepId, step: &super::Step) -> Result<(), PlanError> {
        let at = || format!("step {i} ({})", step.origin);
        for &o in &step.outputs {
            if let Storage::State(so) = self.value(self.root(o)).storage {
                let shared = step
                    .inputs
                    .iter()
                    .any(|&v| self.value(self.root(v)).storage == Storage::State(so));
                if shared {
                    return Err(invalid(at(), format!("reads the state {so} it writes")));
                }
            }
        }
        for (j, &o) in step.outputs.iter().enumerate() {
            let Some(so) = self.slot_of(o) else { continue };
            if step.outputs[..j]
                .iter()
                .any(|&p| self.slot_of(p) == Some(so))
            {
                return Err(invalid(at(), format!("two outputs share slot {so}")));
            }
            for (k, &v) in step.inputs.iter().enumerate() {
                if self.slot_of(v) != Some(so) {
                    continue;
                }
                let in_place_ok = match &step.kernel {
                    Kernel::Generated(g) => {
                        g.in_place
                            && g.access.get(k) == Some(&super::Access::Full)
                            && self.value(self.root(v)).ty.dtype == self.value(o).ty.dtype
                            && self.value(self.root(v)).ty.shape.numel()
                                == self.value(o).ty.shape.numel()
                    }
                    _ => false,
                };
                if !in_place_ok {
                    return Err(invalid(
                        at(),
                        format!("output value {o} shares slot {so} with input value {v}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Each state's two values are stored as that state, agree in type, and the state's value
    /// at the start of a run (defined from the start) is read by no step once an update is
    /// written in its place.
    fn validate_states(&self, defined: &mut [bool]) -> Result<(), PlanError> {
        let n = self.values.len();
        for (i, st) in self.states.iter().enumerate() {
            let at = format!("state {i} `{}`", st.name);
            if st.value.index() >= n || st.update.index() >= n {
                return Err(invalid(at, "names a value id out of range"));
            }
            for v in [st.value, st.update] {
                if self.value(v).storage != Storage::State(i as u32) {
                    return Err(invalid(
                        &at,
                        format!("value {v} is not stored as this state"),
                    ));
                }
            }
            if self.value(st.value).ty != self.value(st.update).ty {
                return Err(invalid(at, "its value and update differ in type"));
            }
            if st.update != st.value && self.steps.iter().any(|s| s.inputs.contains(&st.value)) {
                return Err(invalid(
                    at,
                    "a step reads the state's old value, which its update overwrites in place",
                ));
            }
            defined[st.value.index()] = true;
        }
        Ok(())
    }

    fn alias_defined(&self, v: ValueId, defined: &[bool]) -> bool {
        defined[self.root(v).index()]
    }
}
