//! Fused scaled dot-product attention (Kiln's `Op::Attention`) on f32, computed in query blocks
//! against key blocks with an online (flash-attention style) softmax, so the full score matrix is
//! never materialised.
//!
//! # Semantics
//!
//! `q: [B, H, Sq, D]`, `k: [B, Hkv, Sk, D]`, `v: [B, Hkv, Sk, Dv]`, output `[B, H, Sq, Dv]`. With
//! rotary (requires `Sq = Sk` and an even `D`), q and k first become `x·cos + rotate_half(x)·sin`
//! with `rotate_half(x) = concat(-x[..., D/2..], x[..., ..D/2])`. Query head `h` uses key/value head
//! `h / (H / Hkv)`. Scores are `q·kᵀ·scale + bias`; a key is excluded when the key mask is zero for
//! it, or, with `causal`, when its index `j > i + Sk − Sq`; the softmax runs over the included keys
//! and a row with every key excluded is all zeros.
//!
//! # Layout of the computation
//!
//! A task is one (batch, head, block of up to 32 query rows); tasks run in parallel in the
//! caller's rayon pool. The query block is transposed into scratch (`D × 32`, rotated on the way
//! when rotary is on) so that scores are computed with query rows across the vector lanes:
//! `sᵀ[key][rows] += k[key][d] · qᵀ[d][rows]`, `k` read in place. The running maximum, the running
//! sum and the exclusion masks are then vertical operations on those vectors, and `P·V` broadcasts
//! one probability at a time against rows of `v`, also read in place. Keys come from a per-batch
//! list of the included ones (the key mask compacted), 64 at a time; causal rows stop at their last
//! key. Scratch per task is `D·32 + 64·32 + 32·Dv` floats; with rotary, the rotated keys are written
//! once per call into a `[B, Hkv, Sk, D]` buffer.
//!
//! Special values follow the definition: a row whose included scores are all `-∞` is NaN (0/0), a
//! NaN score makes its row NaN, and excluded keys never influence a row, even when their k, v or
//! bias values are not finite. A bias that varies along the query axis is added by a scalar pass;
//! one constant along it (padding masks, ALiBi) costs nothing extra. With fewer than 16 query rows
//! (decoding) most vector lanes idle.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod job;
mod kernel;
mod micro;
mod rotary;
mod simd;
mod validate;
mod views;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_special;

/// The kernel families; shared with the GEMM kernels so that the executor picks one per run.
pub use super::gemm::Isa;
pub use views::{BiasView, Rotary, View, ViewMut};

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

/// Computes `out = softmax(q·kᵀ·scale + bias, excluded keys removed)·v` (see the module docs),
/// parallel over (batch, head, query block) in the current rayon pool.
///
/// Every view is checked against `dims` before any kernel runs; `key_mask` holds `B × Sk` bytes,
/// zero meaning excluded.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    isa: Isa,
    dims: &Dims,
    p: &Params,
    q: View<'_>,
    k: View<'_>,
    v: View<'_>,
    bias: Option<BiasView<'_>>,
    key_mask: Option<&[u8]>,
    rotary: Option<Rotary<'_>>,
    out: ViewMut<'_>,
) -> Result<(), AttentionError> {
    if !isa.available() {
        return Err(AttentionError::IsaUnavailable { isa });
    }
    validate::check_all(
        dims,
        &q,
        &k,
        &v,
        bias.as_ref(),
        key_mask,
        rotary.as_ref(),
        &out,
    )?;
    job::run(isa, dims, p, q, k, v, bias, key_mask, rotary, out);
    Ok(())
}
