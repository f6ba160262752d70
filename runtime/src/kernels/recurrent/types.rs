//! The recurrent kernel's shared types, a leaf of the folder: its operands and outputs, its
//! errors, and [`OutRows`], the output buffer that parallel tasks write disjoint rows of.

use crate::kernels::gemm::{GemmError, Isa};
use crate::kernels::send_ptr::SendPtr;

/// The operands of one call, f32, in the ONNX layouts (see `ops::RnnInput`).
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// `[seq, batch, input]` (`[batch, seq, input]` when batch-first).
    pub x: &'a [f32],
    /// W and R.
    pub weights: Weights<'a>,
    /// `[dirs, 2·gates·hidden]` (`Wb` then `Rb`), or zeros.
    pub b: Option<&'a [f32]>,
    /// Each batch entry's length (≤ seq).
    pub lens: &'a [usize],
    /// `[dirs, batch, hidden]` (`[batch, dirs, hidden]` when batch-first), or zeros.
    pub initial_h: Option<&'a [f32]>,
    /// As `initial_h` (LSTM).
    pub initial_c: Option<&'a [f32]>,
    /// `[dirs, 3·hidden]` peepholes `i, o, f` (LSTM), or zeros.
    pub p: Option<&'a [f32]>,
}

/// The layer's W and R, as given or packed by [`pack_weights`](super::pack_weights).
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    /// `w: [dirs, gates·hidden, input]`, `r: [dirs, gates·hidden, hidden]`.
    Raw {
        /// W.
        w: &'a [f32],
        /// R.
        r: &'a [f32],
    },
    /// The packed form ([`packed_weights_len`](super::packed_weights_len) values).
    Packed(&'a [f32]),
}

/// The outputs of one call.
#[derive(Debug)]
pub struct Outputs<'a> {
    /// `[seq, dirs, batch, hidden]` (`[batch, seq, dirs, hidden]` when batch-first).
    pub y: &'a mut [f32],
    /// The last hidden state, `[dirs, batch, hidden]` (`[batch, dirs, hidden]`).
    pub y_h: &'a mut [f32],
    /// The last cell state (LSTM), like `y_h`.
    pub y_c: Option<&'a mut [f32]>,
}

/// A call whose arguments do not fit each other, or that cannot get its scratch memory.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecurrentError {
    /// A buffer's length differs from what the dims need.
    #[error("recurrent operand `{operand}` has {len} elements, expected {expected}")]
    Length {
        /// Which operand.
        operand: &'static str,
        /// Its length.
        len: usize,
        /// The length the dims need.
        expected: usize,
    },
    /// The spec and the dims disagree, or a length exceeds the sequence.
    #[error("recurrent layer: {0}")]
    Spec(String),
    /// Scratch memory could not be allocated.
    #[error("recurrent layer: cannot allocate {bytes} bytes of scratch memory")]
    Alloc {
        /// The size asked for.
        bytes: usize,
    },
    /// A product failed its own checks.
    #[error(transparent)]
    Gemm(#[from] GemmError),
}

/// Checks that `len` is the product of `dims`.
pub(super) fn check_len(
    operand: &'static str,
    len: usize,
    dims: &[usize],
) -> Result<(), RecurrentError> {
    let expected = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| RecurrentError::Spec(format!("{operand} {dims:?} overflows")))?;
    if len != expected {
        return Err(RecurrentError::Length {
            operand,
            len,
            expected,
        });
    }
    Ok(())
}

/// A zero-filled scratch vector, or [`RecurrentError::Alloc`].
pub(super) fn zeros(len: usize) -> Result<Vec<f32>, RecurrentError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| RecurrentError::Alloc {
            bytes: len.saturating_mul(4),
        })?;
    v.resize(len, 0.0);
    Ok(v)
}

/// An output buffer shared by the tasks of one call, each writing rows no other task writes
/// (rows are indexed by direction and batch entry, and tasks own disjoint `(direction, batch
/// range)` pairs).
#[derive(Debug, Clone, Copy)]
pub(super) struct OutRows {
    ptr: SendPtr,
    len: usize,
}

impl OutRows {
    /// Shares `buf` for the duration of the borrow the caller keeps alive.
    pub(super) fn new(buf: &mut [f32]) -> OutRows {
        OutRows {
            ptr: SendPtr(buf.as_mut_ptr()),
            len: buf.len(),
        }
    }

    /// Writes `src` at element `offset` (out-of-range writes are dropped, never performed).
    ///
    /// # Safety
    /// The buffer given to [`OutRows::new`] is still borrowed by the caller, and no other task
    /// writes or reads elements `offset..offset + src.len()` concurrently.
    pub(super) unsafe fn write(&self, offset: usize, src: &[f32]) {
        if offset
            .checked_add(src.len())
            .is_none_or(|end| end > self.len)
        {
            return;
        }
        // SAFETY: the range is inside the buffer (checked above), the buffer is alive (caller),
        // and no other task touches this range (caller), so this is the only access to it.
        let dst =
            unsafe { std::slice::from_raw_parts_mut(self.ptr.wrapping_add(offset), src.len()) };
        dst.copy_from_slice(src);
    }

    /// Fills `n` elements at `offset` with zeros (same contract as [`OutRows::write`]).
    ///
    /// # Safety
    /// As for [`OutRows::write`].
    pub(super) unsafe fn zero(&self, offset: usize, n: usize) {
        if offset.checked_add(n).is_none_or(|end| end > self.len) {
            return;
        }
        // SAFETY: as in `write`.
        let dst = unsafe { std::slice::from_raw_parts_mut(self.ptr.wrapping_add(offset), n) };
        dst.fill(0.0);
    }
}

/// An instruction set checked to be available on this CPU: the only way to reach the
/// `target_feature` code of `cells.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CheckedIsa(Isa);

impl CheckedIsa {
    /// `isa` when this CPU runs it.
    pub(super) fn new(isa: Isa) -> Option<CheckedIsa> {
        isa.available().then_some(CheckedIsa(isa))
    }

    /// The instruction set.
    pub(super) fn isa(self) -> Isa {
        self.0
    }
}
