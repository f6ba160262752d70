//! The execution plan stored in an artifact's `plan` section: every value with its symbolic type
//! and where its bytes live, and the steps (kernel calls) that compute them in order.
//!
//! The compiler's lowering builds a [`Plan`]; the runtime decodes it, [`Plan::validate`]s every
//! index and offset against the artifact, and the executor walks the steps. Shapes stay symbolic
//! (`batch`, `seq`): one plan serves every binding, and the executor evaluates all shapes and the
//! arena layout once per run.

mod generated;
mod ids;
mod recurrent;
mod text;
mod validate;

use crate::ops::{Dim, InputLimits, Op, TensorType};
use serde::{Deserialize, Serialize};

pub use generated::{Access, GeneratedStep};
pub use ids::{SlotId, StepId, ValueId};
pub use recurrent::{RecurrentStep, RnnPacked};
pub use validate::PlanError;

/// Version of the plan encoding inside the artifact's `plan` section.
pub const PLAN_VERSION: u32 = 5;

/// A compiled model's execution plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The plan encoding's version ([`PLAN_VERSION`]).
    pub version: u32,
    /// Graph inputs in declaration order.
    pub inputs: Vec<Io>,
    /// Graph outputs in declaration order.
    pub outputs: Vec<Io>,
    /// Every value the steps read or write, indexed by value id.
    pub values: Vec<ValueInfo>,
    /// The steps in execution order.
    pub steps: Vec<Step>,
    /// Arena slots: values whose lifetimes do not overlap share a slot.
    pub slots: Vec<Slot>,
    /// Persistent tensors (key/value caches) that live in the caller's [`crate::State`] across
    /// runs, read and written in place; indexed by `Storage::State`.
    pub states: Vec<StateIo>,
}

/// A persistent tensor: its value at the start of a run and the value that holds it afterwards
/// (written in place by a `Kernel::CacheWrite` step; the same value when nothing writes it).
/// Both are stored as `Storage::State` of this entry's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateIo {
    /// The name applications use (a key/value cache: `past.3.key`).
    pub name: String,
    /// The value read at the start of a run.
    pub value: ValueId,
    /// The value holding the state after the run.
    pub update: ValueId,
}

/// A named graph input or output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Io {
    /// The name applications use.
    pub name: String,
    /// The value id.
    pub value: ValueId,
    /// What the model accepts beyond the type (inputs only; checked when a run binds them).
    pub limits: InputLimits,
}

/// One value: its type (dims may be symbolic) and where its bytes live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueInfo {
    /// Element type and shape.
    pub ty: TensorType,
    /// Where the bytes are.
    pub storage: Storage,
}

/// Where a value's bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Storage {
    /// A graph input (copied into its own arena slot at the start of a run).
    Input {
        /// The arena slot it is copied into.
        slot: SlotId,
    },
    /// Bytes in the artifact's `weights` section (memory-mapped, never copied).
    Weight {
        /// Byte offset in the section (a multiple of 64).
        offset: u64,
        /// Byte length.
        len: u64,
    },
    /// An arena slot.
    Slot(SlotId),
    /// The same bytes as another value (a reshape of a row-major tensor).
    Alias(ValueId),
    /// The buffer of `Plan::states[i]`, owned by the caller's [`crate::State`] (never copied).
    State(u32),
}

/// An arena slot: the byte sizes of the values that share it (the slot takes the largest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// Byte size of each value placed in the slot (symbolic).
    pub sizes: Vec<Dim>,
}

/// One kernel call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// What runs.
    pub kernel: Kernel,
    /// Value ids read, in the kernel's argument order.
    pub inputs: Vec<ValueId>,
    /// Value ids written.
    pub outputs: Vec<ValueId>,
    /// The IR node this step came from (for error messages), e.g. `%12 = matmul_bias`.
    pub origin: String,
}

/// The kernels a step can call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Kernel {
    /// The reference kernel of an op (any dtype, any op; the portable fallback).
    Reference(Op),
    /// A GEMM: `inputs = [a, (b when not packed), (bias), (residual)]`; `a` is `[.., m, k]`.
    Gemm(GemmStep),
    /// Fused attention: `inputs = [q, k, v, (bias), (mask), (cos, sin)]`.
    Attention(AttentionStep),
    /// Row gather from a table (`Gather` on axis 0 with i64 indices): `inputs = [table, idx]`.
    GatherRows,
    /// A 1-D or 2-D convolution with weights packed at compile time: `inputs = [x, (bias)]`.
    Conv(ConvStep),
    /// An f32 recurrent layer (`Op::Recurrent`): `inputs` and `outputs` as the op's, less W
    /// and R when they were packed at compile time.
    Recurrent(RecurrentStep),
    /// A Cranelift-generated kernel from the artifact's `code` section.
    Generated(GeneratedStep),
    /// The runtime's native kernel of an op (data movement, pooling, strided softmax, resize,
    /// transposed convolution; see `kernels::native::supports`): `inputs`/`outputs` as the op's.
    Native(Op),
    /// `Op::CacheWrite` in place: `inputs = [new]`, `outputs = [the state's update]`; the
    /// positions `at..at + n` along `axis` of the state's buffer are overwritten.
    CacheWrite {
        /// The axis written along (normalised, `< rank`).
        axis: u32,
        /// The first position written (symbolic: the number of positions already cached).
        at: Dim,
    },
}

impl Kernel {
    /// A short name for reports: `gemm`, `attention`, `conv`, `recurrent:<cell>`, `gather_rows`,
    /// `generated:<symbol>`, `native:<op>`, `reference:<op>`.
    pub fn name(&self) -> String {
        match self {
            Kernel::Reference(op) => format!("reference:{}", op.name()),
            Kernel::Gemm(_) => "gemm".into(),
            Kernel::Attention(_) => "attention".into(),
            Kernel::GatherRows => "gather_rows".into(),
            Kernel::Conv(_) => "conv".into(),
            Kernel::Recurrent(r) => format!("recurrent:{}", r.spec.cell.name()),
            Kernel::Generated(g) => format!("generated:{}", g.symbol),
            Kernel::Native(op) => format!("native:{}", op.name()),
            Kernel::CacheWrite { .. } => "cache_write".into(),
        }
    }
}

/// A GEMM step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GemmStep {
    /// The right-hand operand.
    pub b: GemmB,
    /// `inputs` holds a bias of length n.
    pub bias: bool,
    /// Activation after the bias.
    pub activation: Activation,
    /// `inputs` holds a residual with the output's shape, added last.
    pub residual: bool,
}

/// The right-hand operand of a GEMM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum GemmB {
    /// Packed at compile time (see `kernels::gemm::pack_b`), in the weights section.
    Packed {
        /// Byte offset in the weights section.
        offset: u64,
        /// Byte length.
        len: u64,
        /// Rows of B.
        k: u64,
        /// Columns of B.
        n: u64,
    },
    /// A run-time value `[.., k, n]` (`[.., n, k]` when `trans`), batch dims equal to a's.
    Value {
        /// B is stored transposed.
        trans: bool,
    },
    /// A block-quantized weight kept as its source stored it (see `kernels::blocks`): `n` rows
    /// of `k` elements (B transposed), in the weights section.
    Blocks {
        /// Byte offset in the weights section.
        offset: u64,
        /// Byte length.
        len: u64,
        /// Rows of B (elements per stored row).
        k: u64,
        /// Columns of B (stored rows).
        n: u64,
        /// The block format.
        format: crate::kernels::blocks::BlockFormat,
    },
}

/// An activation fused into a GEMM's epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// None.
    None,
    /// `max(x, 0)`.
    Relu,
    /// Exact (erf) GELU.
    GeluErf,
    /// tanh-approximated GELU.
    GeluTanh,
}

/// A convolution step (`Op::Conv` with its weight packed by `kernels::conv::pack_weights`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvStep {
    /// Byte offset of the packed weights in the weights section.
    pub offset: u64,
    /// Byte length of the packed weights.
    pub len: u64,
    /// The weight's shape `[M, C/group, k..]`.
    pub w_shape: Vec<u64>,
    /// Strides per spatial axis.
    pub strides: Vec<i64>,
    /// Begin pads then end pads.
    pub pads: Vec<i64>,
    /// Dilations per spatial axis.
    pub dilations: Vec<i64>,
    /// Groups.
    pub group: i64,
    /// `inputs` holds a bias of length M.
    pub bias: bool,
    /// Activation after the bias.
    pub activation: Activation,
}

impl ConvStep {
    /// Kernel parameters for an input of shape `x_shape`.
    pub fn params(&self, x_shape: &[usize]) -> Result<crate::kernels::conv::ConvParams, String> {
        let w: Vec<usize> = self
            .w_shape
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("weight dim {d} is too large")))
            .collect::<Result<_, _>>()?;
        crate::kernels::conv::ConvParams::from_shapes(
            x_shape,
            &w,
            &self.strides,
            &self.pads,
            &self.dilations,
            self.group,
        )
        .map_err(|e| e.to_string())
    }

    /// The smallest input the weights fit (one image, channels from the weight, spatial extent
    /// of one dilated kernel window): packing depends on nothing else.
    pub fn packing_shape(&self) -> Vec<usize> {
        let w = &self.w_shape;
        let mut x = vec![
            1usize,
            (w.get(1).copied().unwrap_or(0) as usize).saturating_mul(self.group.max(0) as usize),
        ];
        for (i, &k) in w.iter().skip(2).enumerate() {
            let d = self.dilations.get(i).copied().unwrap_or(1).max(1) as usize;
            x.push(
                (k as usize)
                    .saturating_sub(1)
                    .saturating_mul(d)
                    .saturating_add(1),
            );
        }
        x
    }
}

/// How an attention operand is laid out in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// `[B, H, S, D]`: the op's own layout.
    Bhsd,
    /// `[B, S, H, D]`: a transpose `(0, 2, 1, 3)` absorbed into the kernel's strides.
    Bshd,
}

/// A fused attention step (`Op::Attention` with its operands' layouts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionStep {
    /// Query heads.
    pub heads: u32,
    /// Key/value heads.
    pub kv_heads: u32,
    /// Score scale.
    pub scale: f64,
    /// Causal exclusion.
    pub causal: bool,
    /// An additive bias input is present.
    pub bias: bool,
    /// A key mask input is present.
    pub mask: bool,
    /// Rotary `cos`, `sin` inputs are present.
    pub rotary: bool,
    /// Layouts of q, k, v and the output.
    pub layouts: [Layout; 4],
    /// When set, k and v are caches `[B, kv_heads, capacity, D]` (layout `Bhsd`) of which only
    /// the first `kv_len` positions are keys (a `Slice` of a cache absorbed into the step).
    pub kv_len: Option<Dim>,
}

impl Plan {
    /// Value `v`'s type and storage.
    pub fn value(&self, v: ValueId) -> &ValueInfo {
        &self.values[v.index()]
    }

    /// Arena slot `s`.
    pub fn slot(&self, s: SlotId) -> &Slot {
        &self.slots[s.index()]
    }

    /// Step `s`.
    pub fn step(&self, s: StepId) -> &Step {
        &self.steps[s.index()]
    }

    /// The steps with their ids, in execution order.
    pub fn steps_with_ids(&self) -> impl Iterator<Item = (StepId, &Step)> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| (StepId::from_index(i), s))
    }

    /// Encodes the plan for the artifact's `plan` section.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding a plan into a Vec cannot fail")
    }

    /// Decodes a `plan` section (structure only; call [`Plan::validate`] before running it).
    pub fn decode(bytes: &[u8]) -> Result<Plan, PlanError> {
        let plan: Plan = postcard::from_bytes(bytes).map_err(|e| PlanError::Decode {
            message: e.to_string(),
        })?;
        if plan.version != PLAN_VERSION {
            return Err(PlanError::Version {
                found: plan.version,
                supported: PLAN_VERSION,
            });
        }
        Ok(plan)
    }
}
