//! The run-time side of the memory plan: shapes and slot sizes evaluated once per run, slot
//! offsets as 64-byte-aligned prefix sums, and one zero-initialised, 64-byte-aligned arena.

use crate::ops::Bindings;
use crate::plan::{Kernel, Plan, Storage, ValueId};

/// Alignment of every slot (and of the arena itself), in bytes.
pub const ALIGN: usize = 64;

/// One 64-byte block; the arena is a vector of these so that its base is 64-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; ALIGN]);

/// A growable, zero-initialised, 64-byte-aligned byte buffer.
#[derive(Default)]
pub struct Arena {
    blocks: Vec<Block>,
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Arena({} bytes)", self.len())
    }
}

impl Arena {
    /// Grows (never shrinks) to at least `bytes` bytes; new bytes are zero. An allocation the
    /// system refuses is an error, not an abort.
    pub fn reserve(&mut self, bytes: usize) -> Result<(), String> {
        let blocks = bytes.div_ceil(ALIGN);
        if blocks > self.blocks.len() {
            self.blocks
                .try_reserve_exact(blocks - self.blocks.len())
                .map_err(|e| format!("cannot allocate the {bytes}-byte arena: {e}"))?;
            self.blocks.resize(blocks, Block([0; ALIGN]));
        }
        Ok(())
    }

    /// Size in bytes.
    fn len(&self) -> usize {
        self.blocks.len() * ALIGN
    }

    /// The bytes, for reading a finished run's values.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the blocks are `len()` initialised bytes (`Block` is plain bytes with no
        // padding), borrowed immutably for the returned lifetime.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<u8>(), self.len()) }
    }

    /// Base pointer (64-byte aligned, valid for `len()` bytes).
    pub fn base(&mut self) -> *mut u8 {
        self.blocks.as_mut_ptr().cast()
    }
}

/// Everything about one set of bindings: each value's concrete shape and byte length, and each
/// slot's offset in the arena.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The bindings this layout was computed for.
    pub bindings: Bindings,
    /// Concrete shape of every value.
    pub shapes: Vec<Vec<usize>>,
    /// Byte length of every value.
    pub bytes: Vec<usize>,
    /// Byte offset of every slot.
    pub slot_offsets: Vec<usize>,
    /// Total arena bytes.
    pub arena_bytes: usize,
}

impl Layout {
    /// Everything a run with this layout allocates, at most: the arena, a copy of each input,
    /// each output, and the largest scratch of a reference step (which copies its operands
    /// through bytes into tensors and computes in f64: up to twice the bytes plus 8 bytes per
    /// element of each operand).
    pub fn run_bytes(&self, plan: &Plan) -> u64 {
        let bytes = |v: &ValueId| self.bytes[v.index()] as u64;
        let elements = |v: &ValueId| {
            self.shapes[v.index()]
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
                .unwrap_or(u64::MAX)
        };
        let io = plan
            .inputs
            .iter()
            .chain(&plan.outputs)
            .map(|io| bytes(&io.value))
            .fold(0u64, u64::saturating_add);
        let scratch = plan
            .steps
            .iter()
            .filter(|s| matches!(s.kernel, Kernel::Reference(_)))
            .map(|s| {
                let each = |v: &ValueId| {
                    bytes(v)
                        .saturating_mul(2)
                        .saturating_add(elements(v).saturating_mul(8))
                };
                s.inputs
                    .iter()
                    .chain(&s.outputs)
                    .map(each)
                    .fold(0u64, u64::saturating_add)
            })
            .max()
            .unwrap_or(0);
        (self.arena_bytes as u64)
            .saturating_add(io)
            .saturating_add(scratch)
    }

    /// True when `b` binds the same symbols as this layout's bindings (values may differ).
    pub fn same_symbols(&self, b: &Bindings) -> bool {
        self.bindings.len() == b.len() && self.bindings.keys().eq(b.keys())
    }

    /// Recomputes the layout for `b`, which binds the same symbols as the layout's bindings
    /// ([`Layout::same_symbols`]), reusing every buffer: no allocation, as each value keeps
    /// its rank. A decode loop's `past` changes every step.
    pub fn update(&mut self, plan: &Plan, b: &Bindings) -> Result<(), String> {
        if !self.same_symbols(b) || self.shapes.len() != plan.values.len() {
            *self = Layout::compute(plan, b)?;
            return Ok(());
        }
        let lookup = |s: &str| b.get(s).copied();
        for (v, info) in plan.values.iter().enumerate() {
            let shape = &mut self.shapes[v];
            shape.clear();
            let mut n = info.ty.dtype.size();
            for d in &info.ty.shape.0 {
                let x = d
                    .eval_with(&lookup)
                    .ok()
                    .and_then(|x| usize::try_from(x).ok())
                    .ok_or_else(|| {
                        format!("value {v} of type {}: dim {d} does not evaluate", info.ty)
                    })?;
                n = n
                    .checked_mul(x)
                    .ok_or_else(|| format!("value {v} of type {} overflows memory", info.ty))?;
                shape.push(x);
            }
            self.bytes[v] = n;
        }
        let mut total = 0usize;
        let mut sizes = std::mem::take(&mut self.slot_offsets);
        sizes.iter_mut().for_each(|s| *s = 0);
        for (v, info) in plan.values.iter().enumerate() {
            if let Storage::Slot(s) | Storage::Input { slot: s } = info.storage {
                let s = s.index();
                sizes[s] = sizes[s].max(self.bytes[v]);
            }
        }
        for size in &mut sizes {
            let offset = total;
            total = size
                .checked_next_multiple_of(ALIGN)
                .and_then(|s| total.checked_add(s))
                .ok_or("the arena overflows memory")?;
            *size = offset;
        }
        self.slot_offsets = sizes;
        self.arena_bytes = total;
        for (k, v) in self.bindings.values_mut().zip(b.values()) {
            *k = *v;
        }
        Ok(())
    }

    /// Evaluates every value's shape and every slot's size under `b`.
    pub fn compute(plan: &Plan, b: &Bindings) -> Result<Layout, String> {
        let mut shapes = Vec::with_capacity(plan.values.len());
        let mut bytes = Vec::with_capacity(plan.values.len());
        for (v, info) in plan.values.iter().enumerate() {
            let shape = info
                .ty
                .shape
                .eval(b)
                .map_err(|e| format!("value {v} of type {}: {e}", info.ty))?;
            let n = shape
                .iter()
                .try_fold(info.ty.dtype.size(), |a, &d| a.checked_mul(d))
                .ok_or_else(|| format!("value {v} of shape {shape:?} overflows memory"))?;
            shapes.push(shape);
            bytes.push(n);
        }
        let mut slot_size = vec![0usize; plan.slots.len()];
        for (v, info) in plan.values.iter().enumerate() {
            if let Storage::Slot(s) | Storage::Input { slot: s } = info.storage {
                let s = s.index();
                slot_size[s] = slot_size[s].max(bytes[v]);
            }
        }
        let mut slot_offsets = Vec::with_capacity(slot_size.len());
        let mut total = 0usize;
        for size in slot_size {
            slot_offsets.push(total);
            total = size
                .checked_next_multiple_of(ALIGN)
                .and_then(|s| total.checked_add(s))
                .ok_or("the arena overflows memory")?;
        }
        Ok(Layout {
            bindings: b.clone(),
            shapes,
            bytes,
            slot_offsets,
            arena_bytes: total,
        })
    }
}
