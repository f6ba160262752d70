//! What the op definition says about each op beyond its attributes: output and input counts,
//! the symbolic dims its attributes hold, whether the optimizer introduces it, and value
//! equality of attributes.

use crate::ops::dim::Dim;
use crate::ops::op::Op;
use crate::ops::recurrent::RnnCell;

impl Op {
    /// Equality with IEEE float semantics: a NaN attribute never matches and `0.0` matches
    /// `-0.0` (`==` compares f64 attributes by their bits, so that `Op` is `Eq + Hash`).
    pub fn same_values(&self, other: &Op) -> bool {
        self.name() == other.name() && self.attrs() == other.attrs()
    }

    /// Number of outputs.
    pub fn num_outputs(&self) -> usize {
        match self {
            Op::Split { sizes, .. } => sizes.len(),
            Op::TopK { .. } | Op::SkipLayerNorm { .. } => 2,
            Op::Recurrent { cell, .. } => {
                if *cell == RnnCell::Lstm {
                    3
                } else {
                    2
                }
            }
            _ => 1,
        }
    }

    /// Allowed number of inputs, `(min, max)`; `max` is `None` when unbounded.
    pub fn arity(&self) -> (usize, Option<usize>) {
        match self {
            Op::Unary(_)
            | Op::Cast { .. }
            | Op::Reduce { .. }
            | Op::ArgReduce { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Pool { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Expand { .. }
            | Op::Slice { .. }
            | Op::Split { .. }
            | Op::Pad { .. }
            | Op::Tile { .. }
            | Op::Trilu { .. }
            | Op::CumSum { .. }
            | Op::CumProd { .. }
            | Op::TopK { .. }
            | Op::ShapeOf { .. }
            | Op::Gelu { .. } => (1, Some(1)),
            Op::Binary(_)
            | Op::MatMul
            | Op::Gather { .. }
            | Op::GatherElements { .. }
            | Op::RmsNorm { .. } => (2, Some(2)),
            Op::Where
            | Op::ScatterElements { .. }
            | Op::ScatterND { .. }
            | Op::MatMulBias
            | Op::Rotary => (3, Some(3)),
            Op::CacheWrite { .. } => (2, Some(2)),
            Op::Conv { .. } | Op::ConvTranspose { .. } | Op::LayerNorm { .. } => (2, Some(3)),
            Op::SkipLayerNorm { .. } => (3, Some(4)),
            Op::Concat { .. } => (1, None),
            Op::Range { .. } | Op::Dims { .. } => (0, Some(0)),
            Op::Attention {
                bias, mask, rotary, ..
            } => {
                let n = 3 + usize::from(*bias) + usize::from(*mask) + 2 * usize::from(*rotary);
                (n, Some(n))
            }
            Op::Recurrent {
                bias,
                seq_lens,
                initial_h,
                initial_c,
                peepholes,
                ..
            } => {
                let flags = [bias, seq_lens, initial_h, initial_c, peepholes];
                let n = 3 + flags.iter().filter(|&&&f| f).count();
                (n, Some(n))
            }
        }
    }

    /// Every symbolic dim held in the op's attributes (their symbols must be bound at run time).
    pub fn attr_dims(&self) -> Vec<&Dim> {
        match self {
            Op::Reshape { shape } | Op::Expand { shape } => shape.iter().collect(),
            Op::Slice { starts, ends, .. } => starts.iter().chain(ends).collect(),
            Op::Split { sizes, .. } => sizes.iter().collect(),
            Op::Range {
                start,
                limit,
                delta,
                ..
            } => vec![start, limit, delta],
            Op::Dims { values } => values.iter().collect(),
            Op::CacheWrite { at, .. } => vec![at],
            _ => Vec::new(),
        }
    }

    /// [`Op::attr_dims`], mutable (for passes that rename symbols).
    pub fn attr_dims_mut(&mut self) -> Vec<&mut Dim> {
        match self {
            Op::Reshape { shape } | Op::Expand { shape } => shape.iter_mut().collect(),
            Op::Slice { starts, ends, .. } => starts.iter_mut().chain(ends).collect(),
            Op::Split { sizes, .. } => sizes.iter_mut().collect(),
            Op::Range {
                start,
                limit,
                delta,
                ..
            } => vec![start, limit, delta],
            Op::Dims { values } => values.iter_mut().collect(),
            Op::CacheWrite { at, .. } => vec![at],
            _ => Vec::new(),
        }
    }

    /// True for the fused ops that the optimizer introduces.
    pub fn is_fused(&self) -> bool {
        matches!(
            self,
            Op::LayerNorm { .. }
                | Op::RmsNorm { .. }
                | Op::MatMulBias
                | Op::SkipLayerNorm { .. }
                | Op::Gelu { .. }
                | Op::Attention { .. }
                | Op::Rotary
        )
    }
}
