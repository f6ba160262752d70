//! The attention kernel's shared types, a leaf of the folder (it uses only the operand views):
//! the sizes and attributes of a call, its input operands, and its errors.

use super::views::{BiasView, Rotary, View};
use crate::kernels::gemm::Isa;

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Batch size `B`.
    pub batch: usize,
    /// Query heads `H`.
    pub heads: usize,
    /// Key/value heads `Hkv` (a divisor of `H`).
    pub kv_heads: usize,
    /// Query length `Sq`.
    pub sq: usize,
    /// Key length `Sk`.
    pub sk: usize,
    /// Head dim of q and k, `D`.
    pub d: usize,
    /// Head dim of v and the output, `Dv`.
    pub dv: usize,
}

/// Scalar attributes of the op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Factor applied to `q·kᵀ` before the bias.
    pub scale: f32,
    /// Exclude key `j` from query row `i` when `j > i + Sk − Sq`.
    pub causal: bool,
}

/// Arguments that do not describe a valid attention call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttentionError {
    /// `heads` is not a positive multiple of `kv_heads`.
    #[error("attention needs heads ({heads}) to be a positive multiple of kv_heads ({kv_heads})")]
    Heads {
        /// Query heads.
        heads: usize,
        /// Key/value heads.
        kv_heads: usize,
    },
    /// An operand's slice ends before the last element its dims and strides reach.
    #[error("attention operand `{operand}` has {len} elements but its dims and strides reach index {needed_index}")]
    TooShort {
        /// `q`, `k`, `v`, `bias`, `key_mask`, `cos`, `sin` or `out`.
        operand: &'static str,
        /// The slice length.
        len: usize,
        /// The largest index reached.
        needed_index: usize,
    },
    /// An operand's largest index overflows `usize`.
    #[error("attention operand `{operand}`: dims and strides overflow the address space")]
    Overflow {
        /// Which operand.
        operand: &'static str,
    },
    /// Two (batch, head, row) rows of the output share memory.
    #[error("attention output rows overlap (strides b={stride_b}, h={stride_h}, s={stride_s} with Dv={dv})")]
    OverlappingOutput {
        /// Batch stride.
        stride_b: usize,
        /// Head stride.
        stride_h: usize,
        /// Row stride.
        stride_s: usize,
        /// Row length.
        dv: usize,
    },
    /// Rotary embedding asked for where it is undefined.
    #[error("rotary attention requires Sq = Sk and an even head dim, got Sq={sq}, Sk={sk}, D={d}")]
    Rotary {
        /// Query length.
        sq: usize,
        /// Key length.
        sk: usize,
        /// Head dim.
        d: usize,
    },
    /// More keys than the kernel indexes exactly (2^24).
    #[error("attention key length {sk} exceeds the supported maximum {max}")]
    TooManyKeys {
        /// Key length.
        sk: usize,
        /// The largest supported.
        max: usize,
    },
    /// The requested kernel family needs CPU features this machine lacks.
    #[error("attention kernel {isa:?} needs CPU features this machine lacks")]
    IsaUnavailable {
        /// The kernel family asked for.
        isa: Isa,
    },
}

/// The input operands of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Queries `[B, H, Sq, D]`.
    pub q: View<'a>,
    /// Keys `[B, Hkv, Sk, D]`.
    pub k: View<'a>,
    /// Values `[B, Hkv, Sk, Dv]`.
    pub v: View<'a>,
    /// Additive bias on the scores.
    pub bias: Option<BiasView<'a>>,
    /// `B × Sk` bytes, zero meaning excluded.
    pub key_mask: Option<&'a [u8]>,
    /// Rotary tables for q and k.
    pub rotary: Option<Rotary<'a>>,
}
