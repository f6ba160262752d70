//! One run's view of memory: where each value's bytes are (arena slot or mapped weights), and
//! typed slices over them for the kernels.

use super::arena::Layout;
use crate::plan::{Plan, Storage, ValueId};
use crate::{DType, Tensor};

/// Addresses of every value during one run.
pub struct Frame<'a> {
    pub plan: &'a Plan,
    pub layout: &'a Layout,
    /// Arena base, valid for `layout.arena_bytes` bytes, 64-byte aligned.
    arena: *mut u8,
    /// The weights section (64-byte aligned in the mapped file).
    weights: &'a [u8],
    /// Base of each state's buffer (`Storage::State(i)`), sized as the layout says.
    states: &'a [*mut u8],
}

impl<'a> Frame<'a> {
    /// A frame over an arena of at least `layout.arena_bytes` bytes.
    ///
    /// # Safety
    /// `arena` must be valid for reads and writes of `layout.arena_bytes` bytes, 64-byte aligned,
    /// initialised, and not accessed otherwise while the frame is used; likewise each of
    /// `states` for the byte length the layout gives the values stored in that state.
    pub unsafe fn new(
        plan: &'a Plan,
        layout: &'a Layout,
        arena: *mut u8,
        weights: &'a [u8],
        states: &'a [*mut u8],
    ) -> Frame<'a> {
        Frame {
            plan,
            layout,
            arena,
            weights,
            states,
        }
    }

    /// Shape of value `v` in this run.
    pub fn shape(&self, v: ValueId) -> &'a [usize] {
        &self.layout.shapes[v.index()]
    }

    /// Element type of value `v`.
    pub fn dtype(&self, v: ValueId) -> DType {
        self.plan.value(v).ty.dtype
    }

    /// Byte length of value `v` in this run.
    pub fn byte_len(&self, v: ValueId) -> usize {
        self.layout.bytes[v.index()]
    }

    /// Address of value `v`'s first byte.
    pub fn addr(&self, v: ValueId) -> *mut u8 {
        match self.plan.value(self.plan.root(v)).storage {
            Storage::Slot(s) | Storage::Input { slot: s } => {
                // SAFETY: the slot offset is inside the arena (Layout::compute sums every slot's
                // size into `arena_bytes`, and the arena holds at least that many bytes).
                unsafe { self.arena.add(self.layout.slot_offsets[s.index()]) }
            }
            Storage::Weight { offset, .. } => {
                // The plan was validated: offset + len lies inside the weights section.
                self.weights[offset as usize..].as_ptr().cast_mut()
            }
            Storage::State(i) => match self.states.get(i as usize) {
                Some(&p) => p,
                // A model with states run without one is refused before any step runs; a
                // dangling pointer is never formed, and the zero-length view below is empty.
                None => std::ptr::NonNull::dangling().as_ptr(),
            },
            Storage::Alias(_) => unreachable!("Plan::root never returns an alias"),
        }
    }

    /// Value `v`'s bytes.
    pub fn bytes(&self, v: ValueId) -> &[u8] {
        // SAFETY: `addr(v)` points at `byte_len(v)` bytes inside the arena or weights section
        // (slot sizes are the maximum over their values; weights were validated against their
        // type), and the executor never holds a mutable slice over a value a step reads.
        unsafe { std::slice::from_raw_parts(self.addr(v), self.byte_len(v)) }
    }

    /// Value `v` as f32 elements, or an error naming what it is instead.
    pub fn f32s(&self, v: ValueId, what: &str) -> Result<&[f32], String> {
        self.check_f32(v, what)?;
        let n = self.byte_len(v) / 4;
        // SAFETY: as in `bytes`; the address is 64-byte aligned (slot offsets and weight offsets
        // are multiples of 64 from 64-byte-aligned bases), so it is aligned for f32, and any bit
        // pattern is a valid f32.
        Ok(unsafe { std::slice::from_raw_parts(self.addr(v).cast::<f32>(), n) })
    }

    /// Value `v` as mutable f32 elements (an output of the current step).
    ///
    /// # Safety
    /// No other slice over `v`'s slot may be alive: the plan validator guarantees that a step's
    /// outputs occupy slots none of its inputs occupy, and each output is taken once per step.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn f32s_mut(&self, v: ValueId, what: &str) -> Result<&mut [f32], String> {
        self.check_f32(v, what)?;
        let n = self.byte_len(v) / 4;
        // SAFETY: in bounds and aligned as in `f32s`; exclusive by the caller's contract.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.addr(v).cast::<f32>(), n) })
    }

    /// Value `v`'s bytes, mutable (an output of the current step).
    ///
    /// # Safety
    /// As for [`Frame::f32s_mut`].
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn bytes_mut(&self, v: ValueId) -> &mut [u8] {
        // SAFETY: in bounds as in `bytes`; exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.addr(v), self.byte_len(v)) }
    }

    fn check_f32(&self, v: ValueId, what: &str) -> Result<(), String> {
        match self.dtype(v) {
            DType::F32 => Ok(()),
            d => Err(format!("{what} has dtype {d}; this kernel takes f32")),
        }
    }

    /// Value `v` copied into a host tensor.
    pub fn tensor(&self, v: ValueId) -> Result<Tensor, String> {
        Tensor::from_le_bytes(self.dtype(v), self.shape(v).to_vec(), self.bytes(v))
            .map_err(|e| e.to_string())
    }
}

impl Frame<'_> {
    /// The bytes at `offset..offset + len` of the weights section.
    pub fn weights_bytes(&self, offset: u64, len: u64) -> Result<&[u8], String> {
        usize::try_from(offset)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(o, l)| self.weights.get(o..o.checked_add(l)?))
            .ok_or_else(|| format!("weights {offset}..+{len} lie outside the weights section"))
    }

    /// Packed GEMM weights at `offset..offset + len` of the weights section, as f32.
    pub fn weights_f32(&self, offset: u64, len: u64) -> Result<&[f32], String> {
        let bytes = self.weights_bytes(offset, len)?;
        if bytes.as_ptr().align_offset(std::mem::align_of::<f32>()) != 0 || bytes.len() % 4 != 0 {
            return Err(format!("weights at {offset} are not aligned for f32"));
        }
        // SAFETY: the bytes are in bounds (checked just above), aligned for f32 (checked), and
        // immutable for the artifact's lifetime; any bit pattern is a valid f32.
        Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) })
    }
}

// SAFETY: a frame is a view of one session's arena and the read-only weights. The session runs
// its steps one after another on a single pool thread (inside `ThreadPool::install`, while the
// calling thread waits), so the arena is never accessed from two threads through the frame at
// once; kernels that fan out get disjoint slices, not the frame. Mutable access goes through the
// `unsafe` methods whose contracts require exclusivity.
unsafe impl Sync for Frame<'_> {}
// SAFETY: as above; moving the view to the pool thread that runs the steps is sound because the
// session that owns the arena is borrowed mutably for the whole run.
unsafe impl Send for Frame<'_> {}
