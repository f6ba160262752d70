//! Floating-point operations of one run, counted from the plan and a run's shapes, so
//! `kiln bench` can report the GFLOP/s it achieved: GEMMs `2·m·n·k`, attention `4·b·h·sq·sk·d`
//! (scores and the weighted sum), convolutions `2·outputs·(C/group)·kernel`, recurrent layers
//! `2·steps·batch·directions·gates·hidden·(input + hidden)`, and one operation
//! per output element for every other step.

use super::Layout;
use crate::plan::{Kernel, Layout as Axes, Plan, ValueId};

impl Layout {
    /// The operations one run with this layout performs (an estimate for element-wise and
    /// reference steps, exact for GEMMs, attention and convolutions).
    pub fn flops(&self, plan: &Plan) -> u64 {
        let shape = |v: &ValueId| self.shapes[v.index()].as_slice();
        let elems = |v: &ValueId| {
            shape(v)
                .iter()
                .fold(1u64, |a, &d| a.saturating_mul(d as u64))
        };
        plan.steps
            .iter()
            .map(|s| {
                let out = s.outputs.iter().map(elems).fold(0u64, u64::saturating_add);
                match &s.kernel {
                    Kernel::Gemm(_) => {
                        let k = s
                            .inputs
                            .first()
                            .and_then(|a| shape(a).last().copied())
                            .unwrap_or(0);
                        out.saturating_mul(2).saturating_mul(k as u64)
                    }
                    Kernel::Attention(a) => {
                        // `[B, H, S, D]` or `[B, S, H, D]`: the key length is axis 2 or 1.
                        let sk = match &a.kv_len {
                            Some(len) => len.eval(&self.bindings).map_or(0, |n| n.max(0) as usize),
                            None => s.inputs.get(1).map_or(0, |k| {
                                let axis = if a.layouts[1] == Axes::Bhsd { 2 } else { 1 };
                                shape(k).get(axis).copied().unwrap_or(0)
                            }),
                        };
                        let q = s.inputs.first().map_or(0, elems);
                        q.saturating_mul(4).saturating_mul(sk as u64)
                    }
                    Kernel::Conv(c) => {
                        let per_output: u64 = c.w_shape.iter().skip(1).product();
                        out.saturating_mul(2).saturating_mul(per_output)
                    }
                    Kernel::Recurrent(r) => {
                        // Per step and direction, every gate is a row of `input + hidden` MACs.
                        use crate::ops::{RnnCell, RnnDirection};
                        let spec = &r.spec;
                        let gates: u64 = match spec.cell {
                            RnnCell::Lstm => 4,
                            RnnCell::Gru => 3,
                            RnnCell::Rnn => 1,
                        };
                        let dirs: u64 = match spec.direction {
                            RnnDirection::Bidirectional => 2,
                            _ => 1,
                        };
                        let x = s.inputs.first();
                        let input = x.and_then(|x| shape(x).last().copied()).unwrap_or(0) as u64;
                        let rows = x.map_or(0, elems) / input.max(1);
                        let h = spec.hidden_size as u64;
                        rows.saturating_mul(dirs)
                            .saturating_mul(gates * h)
                            .saturating_mul(2 * (input + h))
                    }
                    Kernel::Reference(_)
                    | Kernel::GatherRows
                    | Kernel::Generated(_)
                    | Kernel::CacheWrite { .. }
                    | Kernel::Native(_) => out,
                }
            })
            .fold(0u64, u64::saturating_add)
    }
}
