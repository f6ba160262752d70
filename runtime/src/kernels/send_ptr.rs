//! [`SendPtr`]: the output pointer that the parallel kernels (GEMM, attention) share between the
//! tasks of one call, each task writing its own disjoint part of the output.

/// A raw `*mut f32` that may cross threads. It carries only the address: reading or writing
/// through it is an `unsafe` operation whose caller upholds the invariant below.
///
/// Invariant of every user: the pointer comes from a `&mut [f32]` that outlives the parallel
/// loop it is shared with, and concurrent tasks write disjoint elements of it (each output
/// element belongs to exactly one task; the kernels' validation rejects overlapping outputs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);

// SAFETY: a `SendPtr` is only an address; moving it to another thread is harmless by itself,
// and every dereference is unsafe code whose caller guarantees (see the type's invariant) that
// the buffer outlives the tasks and that tasks on different threads touch disjoint elements.
unsafe impl Send for SendPtr {}
// SAFETY: as for `Send`: shared references only copy the address out; concurrent tasks never
// touch the same element through it.
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The address of element `offset` (not dereferenced, so any offset may be computed).
    #[inline(always)]
    pub(crate) fn wrapping_add(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}
