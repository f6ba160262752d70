//! The static memory plan: values in the arena get slots from their lifetimes (a slot is reused
//! once its last reader has run; outputs never take a slot one of their own step's inputs holds,
//! except an elementwise kernel's dying same-size input, which it may overwrite in place). Slot
//! sizes stay symbolic; the runtime evaluates them once per run.

use crate::ir::Dim;
use kiln_runtime::plan::{Access, Kernel, Plan, Slot, SlotId, StepId, Storage, ValueId};

fn byte_size(plan: &Plan, v: ValueId) -> Dim {
    let ty = &plan.value(v).ty;
    ty.shape.numel().mul(&Dim::known(ty.dtype.size() as i64))
}

struct Slots {
    slots: Vec<Slot>,
    free: Vec<SlotId>,
}

impl Slots {
    /// A free slot for a value of `size` bytes: one already holding that size, else the most
    /// recently freed, else a new one.
    fn alloc(&mut self, size: Dim) -> SlotId {
        let pick = self
            .free
            .iter()
            .rposition(|&s| self.slots[s.index()].sizes.contains(&size))
            .or_else(|| self.free.len().checked_sub(1));
        let s = match pick {
            Some(i) => self.free.remove(i),
            None => {
                self.slots.push(Slot { sizes: Vec::new() });
                SlotId::from_index(self.slots.len() - 1)
            }
        };
        self.add_size(s, size);
        s
    }

    fn add_size(&mut self, s: SlotId, size: Dim) {
        let sizes = &mut self.slots[s.index()].sizes;
        if !sizes.contains(&size) {
            sizes.push(size);
        }
    }
}

/// Assigns a slot to every input and step output (their storage's slot numbers are rewritten).
pub(crate) fn assign_slots(plan: &mut Plan) {
    let n = plan.values.len();
    let steps = plan.steps.len();
    // The last step reading each value (graph outputs: past the last step).
    let mut last: Vec<Option<StepId>> = vec![None; n];
    for (i, s) in plan.steps_with_ids() {
        for &v in &s.inputs {
            last[plan.root(v).index()] = Some(i);
        }
    }
    for io in &plan.outputs {
        last[plan.root(io.value).index()] = Some(StepId::from_index(steps));
    }
    let mut slot_of: Vec<Option<SlotId>> = vec![None; n];
    let mut st = Slots {
        slots: Vec::new(),
        free: Vec::new(),
    };
    let input_ids: Vec<ValueId> = plan.inputs.iter().map(|io| io.value).collect();
    for &v in &input_ids {
        let s = st.alloc(byte_size(plan, v));
        slot_of[v.index()] = Some(s);
        plan.values[v.index()].storage = Storage::Input { slot: s };
    }
    // Inputs nobody reads free their slots at once.
    for &v in &input_ids {
        if last[v.index()].is_none() {
            st.free.push(slot_of[v.index()].expect("just assigned"));
        }
    }
    for i in (0..steps).map(StepId::from_index) {
        let step = plan.step(i).clone();
        let mut reused: Vec<SlotId> = Vec::new();
        for &out in &step.outputs {
            let size = byte_size(plan, out);
            let mut slot = None;
            if let Kernel::Generated(gk) = &step.kernel {
                if gk.in_place {
                    for (&v, a) in step.inputs.iter().zip(&gk.access) {
                        let r = plan.root(v);
                        let Some(s) = slot_of[r.index()] else {
                            continue;
                        };
                        let dying = last[r.index()] == Some(i)
                            && !step
                                .inputs
                                .iter()
                                .zip(&gk.access)
                                .any(|(&w, b)| plan.root(w) == r && *b != Access::Full);
                        if *a == Access::Full
                            && dying
                            && byte_size(plan, r) == size
                            && !reused.contains(&s)
                        {
                            slot = Some(s);
                            reused.push(s);
                            st.add_size(s, size.clone());
                            break;
                        }
                    }
                }
            }
            if matches!(plan.values[out.index()].storage, Storage::State(_)) {
                continue; // in the caller's state buffer
            }
            let s = slot.unwrap_or_else(|| st.alloc(size));
            slot_of[out.index()] = Some(s);
            plan.values[out.index()].storage = Storage::Slot(s);
        }
        let mut dead: Vec<SlotId> = Vec::new();
        for &v in &step.inputs {
            let r = plan.root(v).index();
            if last[r] == Some(i) {
                if let Some(s) = slot_of[r] {
                    if !reused.contains(&s) && !dead.contains(&s) {
                        dead.push(s);
                    }
                }
            }
        }
        for &out in &step.outputs {
            if last[out.index()].is_none() {
                if let Some(s) = slot_of[out.index()] {
                    dead.push(s);
                }
            }
        }
        st.free.extend(dead);
    }
    plan.slots = st.slots;
}
