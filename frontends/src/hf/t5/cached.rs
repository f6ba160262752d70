//! T5's decoder for generation with caches: one graph for every step (and a prefill of several
//! tokens). Its inputs are those of every cached decoder
//! ([`crate::hf::decoder::declare_inputs`]: `input_ids`, `position_ids`, `attention_mask
//! [batch, past + seq]`) and `encoder_attention_mask` `i64 [batch, source]` (the source's
//! padding, applied in cross-attention). Self-attention keys and values are the states
//! `past.N.key|value` written in place at `past`; the cross-attention keys and values are the
//! read-only states `cross.N.key|value` `[batch, heads, source, d_kv]`, which the caller fills
//! once from the encoder's outputs with `State::write`.
//!
//! T5 has no absolute positions: `position_ids` says where each query sits, and the relative
//! position bias of query `q` on key `k` (`0..past + seq`) is `emb[bucket(k − q)]`, computed in
//! the graph (`bias.rs`), combined with the causal and padding masks in the fused attention.
//! The bias is `[batch, heads, seq, past + seq]`: one per row, since each row's queries sit at
//! that row's `position_ids` (transformers gives every row the same cache positions; a caller
//! that does the same gets its bias).

use super::bias::position_bias;
use super::config::T5Config;
use super::{attend, feed_forward_block, heads, lm_head, norm};
use crate::error::Error;
use crate::hf::builder::{p, Builder};
use crate::hf::checkpoint::Checkpoint;
use crate::hf::decoder::{cached_kv, cross_states, declare_inputs, last_position, PAST};
use kiln_compiler::ir::{BinaryOp, DType, Dim, Graph, Op, ValueId};

/// Builds the cached decoder: inputs `input_ids`, `position_ids` (`i64 [batch, seq]`),
/// `attention_mask` (`i64 [batch, past + seq]`) and `encoder_attention_mask`
/// (`i64 [batch, source]`); states `past.N.key|value` (`[batch, heads, capacity, d_kv]`,
/// written at `past`) and `cross.N.key|value` (`[batch, heads, source, d_kv]`, read only);
/// output `logits` `f32 [batch, 1, vocab_size]` at the last position.
pub fn build_cached_decoder(cfg: &serde_json::Value, ck: &Checkpoint) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = T5Config::from_json(&b, cfg)?;
    let io = declare_inputs(&mut b)?;
    let enc_mask = b.input("encoder_attention_mask", DType::I64, &["batch", "source"])?;
    b.limit_ids("input_ids", "vocab_size", c.vocab_size, None);
    let shared = b.weight("shared.weight", &[c.vocab_size, c.d_model])?;
    let mut h = b.op(Op::Gather { axis: 0 }, &[shared, io.ids])?;
    let keys = Dim::sym(PAST).add(&Dim::sym("seq"));
    let bias = position_bias(&mut b, &c, "decoder", false, io.positions, keys)?;
    for i in 0..c.decoder_layers() {
        h = load_cached_layer(&mut b, &c, i, h, (bias, io.mask, enc_mask))?;
    }
    let h = last_position(&mut b, h)?;
    let h = norm(&mut b, &c, h, "decoder.final_layer_norm")?;
    let logits = lm_head(&mut b, &c, h, shared)?;
    b.finish(&[("logits", logits)])
}

/// Decoder block `layer` over the caches: causal self-attention on `past.N.*` with the position
/// bias and the padding mask, cross-attention on the states `cross.N.*` with the source mask,
/// the feed-forward, each pre-norm with a residual.
fn load_cached_layer(
    b: &mut Builder,
    c: &T5Config,
    layer: usize,
    x: ValueId,
    (bias, mask, enc_mask): (ValueId, ValueId, ValueId),
) -> Result<ValueId, Error> {
    let prefix = p("decoder.block", layer);
    let attn = p(&prefix, "layer.0");
    let n = norm(b, c, x, &p(&attn, "layer_norm"))?;
    let sa = p(&attn, "SelfAttention");
    let q = heads(b, c, n, &p(&sa, "q"))?;
    let k = heads(b, c, n, &p(&sa, "k"))?;
    let v = heads(b, c, n, &p(&sa, "v"))?;
    let (k, v) = cached_kv(b, layer, k, v, c.num_heads, c.d_kv)?;
    let a = attend(b, c, &sa, true, [q, k, v], Some(bias), Some(mask))?;
    let x = b.bin(BinaryOp::Add, x, a)?;

    let cross = p(&prefix, "layer.1");
    let n = norm(b, c, x, &p(&cross, "layer_norm"))?;
    let ca = p(&cross, "EncDecAttention");
    let q = heads(b, c, n, &p(&ca, "q"))?;
    let (k, v) = cross_states(b, layer, c.num_heads, "source", c.d_kv)?;
    let a = attend(b, c, &ca, false, [q, k, v], None, Some(enc_mask))?;
    let x = b.bin(BinaryOp::Add, x, a)?;

    feed_forward_block(b, c, &p(&prefix, "layer.2"), x)
}
