//! Lowering: partitions an optimized graph into kernel calls (library GEMM with packed weights
//! and fused epilogues, attention, row gathers, Cranelift-generated elementwise and row kernels,
//! reference kernels for everything else), assigns every value its storage (mapped weights,
//! arena slots, aliases) and produces the execution plan; the
//! [`pipeline`](crate::pipeline) generates the kernels' code and writes the `.kiln` artifact.

mod attention;
mod elementwise;
mod memory;
mod native;
mod recurrent;
mod select;

use crate::codegen::GenKernel;
use crate::error::{Error, Result};
use crate::ir::{Graph, NodeId, ValueDef, ValueId};
use kiln_runtime::plan::{
    Io, Kernel, Plan, Slot, SlotId, StateIo, Step, Storage, ValueId as PlanValueId, ValueInfo,
    PLAN_VERSION,
};
use std::collections::{BTreeMap, HashMap};

/// The result of lowering: the plan, the weights section's bytes and the kernels to generate.
#[derive(Debug)]
pub struct Lowered {
    /// The execution plan.
    pub plan: Plan,
    /// The weights section (every weight a step reads, and packed GEMM weights), 64-byte aligned.
    pub weights: Vec<u8>,
    /// Kernels for the code generator, referenced by the plan's generated steps.
    pub kernels: Vec<GenKernel>,
}

/// What lowering decided for one node.
#[derive(Debug, Clone)]
pub(crate) enum Choice {
    /// A step computing `outputs` (graph value ids) from `inputs`.
    Step(Box<PendingStep>),
    /// The node's output is the same bytes as its input (a reshape).
    Alias { of: ValueId },
    /// Absorbed into another node's step (a transpose read by attention, a GELU in a GEMM
    /// epilogue); computes nothing itself.
    Absorbed,
}

/// A step before value ids are renumbered.
#[derive(Debug, Clone)]
pub(crate) struct PendingStep {
    pub kernel: PendingKernel,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    pub origin: String,
}

/// A kernel before weights are placed: packed GEMM weights are still a graph weight value.
#[derive(Debug, Clone)]
pub(crate) enum PendingKernel {
    Ready(Kernel),
    /// A GEMM whose B is this f32 weight `[k, n]`, packed at compile time.
    PackedGemm {
        b: ValueId,
        /// The weight is stored `[n, k]` (B is its transpose).
        trans: bool,
        step: kiln_runtime::plan::GemmStep,
    },
    /// A convolution whose f32 weight is packed at compile time.
    PackedConv {
        w: ValueId,
        step: kiln_runtime::plan::ConvStep,
    },
    /// A recurrent layer whose f32 W and R weights are packed at compile time.
    PackedRecurrent {
        w: ValueId,
        r: ValueId,
        step: kiln_runtime::plan::RecurrentStep,
    },
}

/// Uses of every value: consumer nodes and whether it is a graph output.
pub(crate) struct Uses {
    pub consumers: HashMap<ValueId, Vec<NodeId>>,
    pub graph_outputs: std::collections::HashSet<ValueId>,
}

impl Uses {
    fn of(g: &Graph) -> Uses {
        let mut consumers: HashMap<ValueId, Vec<NodeId>> = HashMap::new();
        for n in g.node_ids() {
            for &v in &g.node(n).inputs {
                let list = consumers.entry(v).or_default();
                if !list.contains(&n) {
                    list.push(n);
                }
            }
        }
        let graph_outputs = g.outputs().iter().map(|(_, v)| *v).collect();
        Uses {
            consumers,
            graph_outputs,
        }
    }

    /// The single consuming node of `v`, when `v` is not a graph output and has exactly one.
    pub fn sole_consumer(&self, v: ValueId) -> Option<NodeId> {
        if self.graph_outputs.contains(&v) {
            return None;
        }
        match self.consumers.get(&v).map(Vec::as_slice) {
            Some([n]) => Some(*n),
            _ => None,
        }
    }
}

/// Lowers a verified, optimized graph for a CPU target.
pub fn lower(g: &Graph) -> Result<Lowered> {
    crate::verify(g)?;
    let order = g.topo_order()?;
    let uses = Uses::of(g);
    let mut choices: BTreeMap<NodeId, Choice> = BTreeMap::new();
    let mut kernels = Vec::new();
    select::choose_all(g, &order, &uses, &mut choices, &mut kernels)?;
    elementwise::fuse(g, &order, &uses, &mut choices, &mut kernels)?;
    build(g, &order, &choices, kernels)
}

/// Turns the choices into a plan: value renumbering, weight placement, slots.
fn build(
    g: &Graph,
    order: &[NodeId],
    choices: &BTreeMap<NodeId, Choice>,
    kernels: Vec<GenKernel>,
) -> Result<Lowered> {
    let mut b = Builder {
        g,
        ids: HashMap::new(),
        values: Vec::new(),
        weights: Vec::new(),
        weight_at: HashMap::new(),
    };
    // Aliases resolve to their root value (through chains of reshapes).
    let mut alias: HashMap<ValueId, ValueId> = HashMap::new();
    for &n in order {
        if let Some(Choice::Alias { of }) = choices.get(&n) {
            let root = *alias.get(of).unwrap_or(of);
            alias.insert(g.node(n).outputs[0], root);
        }
    }
    let states = state_values(g)?;
    let state_of_input: HashMap<ValueId, u32> = states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.1, i as u32))
        .collect();
    let state_of_update: HashMap<ValueId, u32> = states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.2, i as u32))
        .collect();
    let mut inputs = Vec::new();
    for &v in g.inputs() {
        if let Some(&i) = state_of_input.get(&v) {
            b.value(v, Storage::State(i))?;
            continue;
        }
        let id = b.value(v, Storage::Input { slot: SlotId(0) })?;
        let name = g.value(v).name.clone().unwrap_or_default();
        inputs.push(Io {
            limits: g.input_limits(&name).clone(),
            name,
            value: id,
        });
    }
    let mut steps = Vec::new();
    for &n in order {
        let Some(Choice::Step(s)) = choices.get(&n) else {
            continue;
        };
        let mut ins = Vec::new();
        for &v in &s.inputs {
            ins.push(b.use_value(v, &alias)?);
        }
        let mut outs = Vec::new();
        for &v in &s.outputs {
            let storage = match state_of_update.get(&v) {
                Some(&i) if matches!(s.kernel, PendingKernel::Ready(Kernel::CacheWrite { .. })) => {
                    Storage::State(i)
                }
                Some(_) => {
                    return Err(Error::Lower {
                        message: format!(
                            "state `{}` is updated by {}, which does not write it in place (only \
                             a `cache_write` of the state, its only reader, does)",
                            states[state_of_update[&v] as usize].0, s.origin
                        ),
                    })
                }
                None => Storage::Slot(SlotId(0)),
            };
            outs.push(b.value(v, storage)?);
        }
        let kernel = match &s.kernel {
            PendingKernel::Ready(k) => k.clone(),
            PendingKernel::PackedGemm { b: w, trans, step } => b.packed_gemm(*w, *trans, *step)?,
            PendingKernel::PackedConv { w, step } => b.packed_conv(*w, step.clone())?,
            PendingKernel::PackedRecurrent { w, r, step } => {
                b.packed_recurrent(*w, *r, step.clone())?
            }
        };
        steps.push(Step {
            kernel,
            inputs: ins,
            outputs: outs,
            origin: s.origin.clone(),
        });
    }
    // Alias values that are read later or are graph outputs get their own ids pointing at roots.
    let mut outputs = Vec::new();
    for (name, v) in g.outputs() {
        if states.iter().any(|s| &s.3 == name) {
            continue;
        }
        outputs.push(Io {
            limits: Default::default(),
            name: name.clone(),
            value: b.use_value(*v, &alias)?,
        });
    }
    let mut plan = Plan {
        version: PLAN_VERSION,
        inputs,
        outputs,
        values: b.values,
        steps,
        slots: Vec::<Slot>::new(),
        states: Vec::new(),
    };
    for (name, vi, vo, _) in &states {
        let value = b.ids[vi];
        let update = *b.ids.get(vo).ok_or_else(|| Error::Lower {
            message: format!("state `{name}`'s update is never computed"),
        })?;
        plan.states.push(StateIo {
            name: name.clone(),
            value,
            update,
        });
    }
    memory::assign_slots(&mut plan);
    let weights = b.weights;
    let has = |s: &str| kernels.iter().any(|k| k.name() == s);
    plan.validate(weights.len() as u64, &has)
        .map_err(|e| Error::Lower {
            message: e.to_string(),
        })?;
    Ok(Lowered {
        plan,
        weights,
        kernels,
    })
}

/// The graph's states as `(name, input value, update value, output name)`.
pub(crate) fn state_values(g: &Graph) -> Result<Vec<(String, ValueId, ValueId, String)>> {
    let mut out = Vec::new();
    for (input, output) in g.states() {
        let vi = g
            .inputs()
            .iter()
            .copied()
            .find(|&v| g.value(v).name.as_deref() == Some(input.as_str()));
        let vo = g.outputs().iter().find(|(n, _)| n == output).map(|o| o.1);
        match (vi, vo) {
            (Some(vi), Some(vo)) => out.push((input.clone(), vi, vo, output.clone())),
            _ => {
                return Err(Error::Lower {
                    message: format!("state `{input}` → `{output}` names no input or output"),
                })
            }
        }
    }
    Ok(out)
}

struct Builder<'g> {
    g: &'g Graph,
    /// Graph value → plan value.
    ids: HashMap<ValueId, PlanValueId>,
    values: Vec<ValueInfo>,
    weights: Vec<u8>,
    weight_at: HashMap<ValueId, (u64, u64)>,
}

impl Builder<'_> {
    /// The plan id of graph value `v`, created with `storage` (or as a weight) on first sight.
    fn value(&mut self, v: ValueId, storage: Storage) -> Result<PlanValueId> {
        if let Some(&id) = self.ids.get(&v) {
            return Ok(id);
        }
        let val = self.g.value(v);
        let storage = match val.def {
            ValueDef::Weight(w) => {
                let bytes = self.g.weights().get(w).to_tensor()?.to_le_bytes();
                let (offset, len) = self.place(&bytes);
                self.weight_at.insert(v, (offset, len));
                Storage::Weight { offset, len }
            }
            _ => storage,
        };
        let id = PlanValueId::from_index(self.values.len());
        self.values.push(ValueInfo {
            ty: val.ty.clone(),
            storage,
        });
        self.ids.insert(v, id);
        Ok(id)
    }

    /// The plan id of a value read by a step or returned: aliases get an `Alias` entry.
    fn use_value(&mut self, v: ValueId, alias: &HashMap<ValueId, ValueId>) -> Result<PlanValueId> {
        match alias.get(&v) {
            Some(&root) if root != v => {
                if let Some(&id) = self.ids.get(&v) {
                    return Ok(id);
                }
                let r = self.value(root, Storage::Slot(SlotId(0)))?;
                let id = PlanValueId::from_index(self.values.len());
                self.values.push(ValueInfo {
                    ty: self.g.value(v).ty.clone(),
                    storage: Storage::Alias(r),
                });
                self.ids.insert(v, id);
                Ok(id)
            }
            _ => self.value(v, Storage::Slot(SlotId(0))),
        }
    }

    /// Appends bytes to the weights section at a 64-byte boundary.
    fn place(&mut self, bytes: &[u8]) -> (u64, u64) {
        let offset = self.weights.len().next_multiple_of(64);
        self.weights.resize(offset, 0);
        self.weights.extend_from_slice(bytes);
        (offset as u64, bytes.len() as u64)
    }

    fn packed_conv(
        &mut self,
        w: ValueId,
        mut step: kiln_runtime::plan::ConvStep,
    ) -> Result<Kernel> {
        let fail = |message: String| Error::Lower { message };
        let ValueDef::Weight(id) = self.g.value(w).def else {
            return Err(fail("a packed convolution weight is not a weight".into()));
        };
        let t = self.g.weights().get(id).to_tensor()?;
        let data: Vec<f32> = t.to_f64_vec().into_iter().map(|x| x as f32).collect();
        let p = step.params(&step.packing_shape()).map_err(fail)?;
        let packed = kiln_runtime::kernels::conv::pack_weights(&data, &p)
            .map_err(|e| fail(format!("packing a convolution weight: {e}")))?;
        let bytes: Vec<u8> = packed.iter().flat_map(|x| x.to_le_bytes()).collect();
        let (offset, len) = self.place(&bytes);
        step.offset = offset;
        step.len = len;
        Ok(Kernel::Conv(step))
    }

    fn packed_gemm(
        &mut self,
        w: ValueId,
        trans: bool,
        step: kiln_runtime::plan::GemmStep,
    ) -> Result<Kernel> {
        let ValueDef::Weight(id) = self.g.value(w).def else {
            return Err(Error::Lower {
                message: "a packed GEMM operand is not a weight".into(),
            });
        };
        let weight = self.g.weights().get(id);
        if let (Some(format), true, [n, k]) = (weight.blocks(), trans, &weight.shape[..]) {
            // Stored [n, k] as rows of blocks: kept as they are for `kernels::blocks`.
            let (n, k) = (*n, *k);
            let bytes = weight.bytes().ok_or_else(|| Error::Lower {
                message: format!("block-quantized weight `{}` has no data", weight.name),
            })?;
            let (offset, len) = self.place(bytes);
            let mut step = step;
            step.b = kiln_runtime::plan::GemmB::Blocks {
                offset,
                len,
                k: k as u64,
                n: n as u64,
                format,
            };
            return Ok(Kernel::Gemm(step));
        }
        let t = weight.to_tensor()?;
        let (k, n) = match *t.shape() {
            [r, c] if trans => (c, r),
            [k, n] => (k, n),
            ref s => {
                return Err(Error::Lower {
                    message: format!("packed GEMM weight has shape {s:?}"),
                })
            }
        };
        let mut data: Vec<f32> = t.to_f64_vec().into_iter().map(|x| x as f32).collect();
        if trans && k > 0 {
            // Stored [n, k]: B[i][j] = W[j][i].
            let w = data;
            data = vec![0f32; k * n];
            for (j, row) in w.chunks_exact(k).enumerate() {
                for (i, &x) in row.iter().enumerate() {
                    data[i * n + j] = x;
                }
            }
        }
        let mut packed = vec![0f32; kiln_runtime::kernels::gemm::packed_len(k, n)];
        kiln_runtime::kernels::gemm::pack_b(&data, k, n, &mut packed).map_err(|e| {
            Error::Lower {
                message: format!("packing a {k}×{n} GEMM weight: {e}"),
            }
        })?;
        let bytes: Vec<u8> = packed.iter().flat_map(|x| x.to_le_bytes()).collect();
        let (offset, len) = self.place(&bytes);
        let mut step = step;
        step.b = kiln_runtime::plan::GemmB::Packed {
            offset,
            len,
            k: k as u64,
            n: n as u64,
        };
        Ok(Kernel::Gemm(step))
    }
}
