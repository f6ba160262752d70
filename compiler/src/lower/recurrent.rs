//! Recurrent layers in the plan: an f32 `Op::Recurrent` runs on the native recurrent kernel;
//! when its W and R are weights they are packed at compile time into the weights section
//! (`kernels::recurrent::pack_weights`) and the step reads neither (its inputs leave them out).

use super::select::{is_weight, origin};
use super::{Builder, Choice, PendingKernel, PendingStep};
use crate::error::{Error, Result};
use crate::ir::{Graph, NodeId, RecurrentSpec, ValueDef, ValueId};
use kiln_runtime::plan::{Kernel, RecurrentStep, RnnPacked};

/// The step of recurrent node `n` (its input X is f32).
pub(super) fn select(g: &Graph, n: NodeId) -> Option<Choice> {
    let node = g.node(n);
    let spec = RecurrentSpec::of(&node.op).ok()?;
    let (w, r) = (node.inputs[1], node.inputs[2]);
    let step = RecurrentStep { spec, packed: None };
    let mut inputs = node.inputs.clone();
    let kernel = if is_weight(g, w) && is_weight(g, r) {
        inputs.drain(1..3);
        PendingKernel::PackedRecurrent { w, r, step }
    } else {
        PendingKernel::Ready(Kernel::Recurrent(step))
    };
    Some(Choice::Step(Box::new(PendingStep {
        kernel,
        inputs,
        outputs: node.outputs.clone(),
        origin: origin(g, n),
    })))
}

impl Builder<'_> {
    /// Packs the weights `w` and `r` of `step` into the weights section.
    pub(super) fn packed_recurrent(
        &mut self,
        w: ValueId,
        r: ValueId,
        mut step: RecurrentStep,
    ) -> Result<Kernel> {
        let fail = |message: String| Error::Lower { message };
        let mut data = Vec::new();
        for v in [w, r] {
            let ValueDef::Weight(id) = self.g.value(v).def else {
                return Err(fail("a packed recurrent weight is not a weight".into()));
            };
            let t = self.g.weights().get(id).to_tensor()?;
            let values: Vec<f32> = t.to_f64_vec().into_iter().map(|x| x as f32).collect();
            data.push((t.shape().to_vec(), values));
        }
        let input = data[0].0.last().copied().unwrap_or(0);
        let packed = kiln_runtime::kernels::recurrent::pack_weights(
            &step.spec, input, &data[0].1, &data[1].1,
        )
        .map_err(|e| fail(format!("packing recurrent weights: {e}")))?;
        let bytes: Vec<u8> = packed.iter().flat_map(|x| x.to_le_bytes()).collect();
        let (offset, len) = self.place(&bytes);
        step.packed = Some(RnnPacked {
            offset,
            len,
            input: input as u64,
        });
        Ok(Kernel::Recurrent(step))
    }
}
