//! The strided tensor views an attention call reads and writes. Their `Debug` output shows the
//! slice length and strides, not the elements.

use std::fmt;

/// A 4-D f32 view `[B, heads, S, D]` whose last dimension is contiguous, with element strides for
/// the other three. A `[B, S, H·D]` projection output is the view with `stride_b = S·H·D`,
/// `stride_h = D`, `stride_s = H·D`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The elements; every index the dims reach must lie inside.
    pub data: &'a [f32],
    /// Elements between consecutive batches.
    pub stride_b: usize,
    /// Elements between consecutive heads.
    pub stride_h: usize,
    /// Elements between consecutive sequence positions.
    pub stride_s: usize,
}

impl<'a> View<'a> {
    /// A contiguous `[B, heads, s, d]` tensor.
    pub fn contiguous(data: &'a [f32], heads: usize, s: usize, d: usize) -> Self {
        View {
            data,
            stride_b: heads * s * d,
            stride_h: s * d,
            stride_s: d,
        }
    }
}

/// The output view, laid out like [`View`]. Distinct (batch, head, row) triples must not overlap.
pub struct ViewMut<'a> {
    /// The elements written.
    pub data: &'a mut [f32],
    /// Elements between consecutive batches.
    pub stride_b: usize,
    /// Elements between consecutive heads.
    pub stride_h: usize,
    /// Elements between consecutive query positions.
    pub stride_s: usize,
}

impl<'a> ViewMut<'a> {
    /// A contiguous `[B, heads, s, d]` tensor.
    pub fn contiguous(data: &'a mut [f32], heads: usize, s: usize, d: usize) -> Self {
        ViewMut {
            data,
            stride_b: heads * s * d,
            stride_h: s * d,
            stride_s: d,
        }
    }
}

/// The additive score bias, broadcast to `[B, H, Sq, Sk]` (stride 0 on a broadcast axis).
#[derive(Clone, Copy)]
pub struct BiasView<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Elements between consecutive batches.
    pub stride_b: usize,
    /// Elements between consecutive heads.
    pub stride_h: usize,
    /// Elements between consecutive query positions.
    pub stride_q: usize,
    /// Elements between consecutive key positions.
    pub stride_k: usize,
}

/// Rotary tables `cos` and `sin`, each `[B or 1, S, D]` with a contiguous last dimension
/// (`stride_b = 0` when shared by every batch), position `s` used for query and key `s`.
#[derive(Clone, Copy)]
pub struct Rotary<'a> {
    /// Cosines.
    pub cos: &'a [f32],
    /// Sines, laid out like `cos`.
    pub sin: &'a [f32],
    /// Elements between consecutive batches (0 to broadcast).
    pub stride_b: usize,
    /// Elements between consecutive positions.
    pub stride_s: usize,
}

/// `Debug` for a view: its type, element count and stride fields.
macro_rules! debug_view {
    ($ty:ident, $data:ident, $($field:ident),*) => {
        impl fmt::Debug for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field(concat!(stringify!($data), "_len"), &self.$data.len())
                    $(.field(stringify!($field), &self.$field))*
                    .finish()
            }
        }
    };
}

debug_view!(View, data, stride_b, stride_h, stride_s);
debug_view!(ViewMut, data, stride_b, stride_h, stride_s);
debug_view!(BiasView, data, stride_b, stride_h, stride_q, stride_k);
debug_view!(Rotary, cos, stride_b, stride_s);
