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
mod tasks;
mod types;
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
pub use types::{AttentionError, Dims, Inputs, Params};
pub use views::{BiasView, Rotary, View, ViewMut};

/// Sizes the calling thread's attention buffers for calls with head dims `d`, `dv` over at
/// most `batch × keys` keys (run it on every pool thread before a decode loop, so that no
/// step grows them).
pub fn warm_thread(batch: usize, keys: usize, d: usize, dv: usize) {
    tasks::warm_thread(batch, keys, d, dv);
}

/// Computes `out = softmax(q·kᵀ·scale + bias, excluded keys removed)·v` (see the module docs),
/// parallel over (batch, head, query block) in the current rayon pool.
///
/// Every view is checked against `dims` before any kernel runs; `key_mask` holds `B × Sk` bytes,
/// zero meaning excluded.
pub fn attention(
    isa: Isa,
    dims: &Dims,
    p: &Params,
    inputs: Inputs<'_>,
    out: ViewMut<'_>,
) -> Result<(), AttentionError> {
    if !isa.available() {
        return Err(AttentionError::IsaUnavailable { isa });
    }
    validate::check_all(dims, &inputs, &out)?;
    tasks::run(isa, dims, p, inputs, out);
    Ok(())
}
