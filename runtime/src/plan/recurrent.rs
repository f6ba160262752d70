//! The plan's recurrent-layer step: the layer's checked attributes and, when W and R were
//! initializers, where their packed forms lie in the weights section (the step then reads
//! neither W nor R: `inputs` leave them out).

use crate::ops::{RecurrentSpec, RnnInput};
use serde::{Deserialize, Serialize};

/// An f32 recurrent layer (`Op::Recurrent`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecurrentStep {
    /// The layer.
    pub spec: RecurrentSpec,
    /// W and R packed at compile time by `kernels::recurrent::pack_weights`.
    pub packed: Option<RnnPacked>,
}

/// Packed recurrent weights in the weights section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RnnPacked {
    /// Byte offset (a multiple of 64).
    pub offset: u64,
    /// Byte length (`kernels::recurrent::packed_weights_len` f32 values).
    pub len: u64,
    /// Input features (W's last dim), which fixes the packed layout with the spec.
    pub input: u64,
}

impl RecurrentStep {
    /// Number of inputs: the op's, less W and R when packed.
    pub fn inputs(&self) -> usize {
        self.spec.inputs() - if self.packed.is_some() { 2 } else { 0 }
    }

    /// The position of `which` among the step's inputs (`None` for an absent input, and for W
    /// and R when packed).
    pub fn input_index(&self, which: RnnInput) -> Option<usize> {
        let i = self.spec.input_index(which)?;
        match (self.packed, which) {
            (None, _) | (Some(_), RnnInput::X) => Some(i),
            (Some(_), RnnInput::W | RnnInput::R) => None,
            (Some(_), _) => Some(i - 2),
        }
    }
}
