//! BART's decoder for generation with caches ([`build_cached_decoder`]): one graph for the
//! decoder's first run and every step after it. Inputs: `input_ids`, `position_ids`
//! (`i64 [batch, seq]`), `attention_mask` (`i64 [batch, past + seq]`) as every cached decoder
//! declares them ([`crate::hf::decoder::declare_inputs`]), and `encoder_attention_mask`
//! (`i64 [batch, source]`: the source's padding, masked in cross-attention). States: each
//! layer's self-attention keys and values `past.N.key|value` (`[batch, heads, capacity,
//! head_dim]`, written in place at `past`) and the read-only cross-attention keys and values
//! `cross.N.key|value` (`[batch, heads, source, head_dim]`), which the caller fills once from the
//! encoder's outputs of the same names (`State::write`). Output: `logits [batch, 1, vocab]` of
//! the last position, `final_logits_bias` included.

use super::config::{BartConfig, POSITION_OFFSET};
use super::{attend, load_embeddings, load_heads, load_mlp, residual_norm, token_table};
use crate::error::Error;
use crate::hf::builder::{p, Builder};
use crate::hf::checkpoint::Checkpoint;
use crate::hf::decoder::{cached_kv, cross_states, declare_inputs, last_position};
use kiln_compiler::ir::{BinaryOp, DType, Graph, Op, ValueId};

/// Builds the cached decoder (see the module documentation).
pub fn build_cached_decoder(cfg: &serde_json::Value, ck: &Checkpoint) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = BartConfig::from_json(&b, cfg)?;
    let io = declare_inputs(&mut b)?;
    let enc_mask = b.input("encoder_attention_mask", DType::I64, &["batch", "source"])?;
    b.limit_ids("input_ids", "vocab_size", c.vocab_size, None);
    let table = token_table(&mut b, &c, "decoder")?;
    let offset = b.const_i64("position_offset", vec![], vec![POSITION_OFFSET])?;
    let positions = b.bin(BinaryOp::Add, io.positions, offset)?;
    let mut h = load_embeddings(&mut b, &c, "decoder", table, io.ids, positions)?;
    for i in 0..c.decoder_layers {
        h = load_cached_layer(&mut b, &c, i, h, io.mask, enc_mask)?;
    }
    let h = last_position(&mut b, h)?;
    let logits = load_lm_head(&mut b, &c, h, table)?;
    b.finish(&[("logits", logits)])
}

/// Decoder layer `layer` (post-norm): causal self-attention over `past.N.*` with the decoder's
/// padding mask, cross-attention on the states `cross.N.*` with the source's, then the MLP.
fn load_cached_layer(
    b: &mut Builder,
    c: &BartConfig,
    layer: usize,
    x: ValueId,
    mask: ValueId,
    enc_mask: ValueId,
) -> Result<ValueId, Error> {
    let heads = c.decoder_attention_heads;
    let head_dim = c.d_model / heads;
    let prefix = p("decoder.layers", layer);

    let attn = p(&prefix, "self_attn");
    let q = load_heads(b, c, &p(&attn, "q_proj"), heads, x)?;
    let k = load_heads(b, c, &p(&attn, "k_proj"), heads, x)?;
    let v = load_heads(b, c, &p(&attn, "v_proj"), heads, x)?;
    let (k, v) = cached_kv(b, layer, k, v, heads, head_dim)?;
    let a = attend(b, c, &attn, heads, true, (q, k, v), mask)?;
    let x = residual_norm(b, c, x, a, &p(&prefix, "self_attn_layer_norm"))?;

    let cross = p(&prefix, "encoder_attn");
    let q = load_heads(b, c, &p(&cross, "q_proj"), heads, x)?;
    let (k, v) = cross_states(b, layer, heads, "source", head_dim)?;
    let a = attend(b, c, &cross, heads, false, (q, k, v), enc_mask)?;
    let x = residual_norm(b, c, x, a, &p(&prefix, "encoder_attn_layer_norm"))?;

    let m = load_mlp(b, c, &prefix, c.decoder_ffn_dim, x)?;
    residual_norm(b, c, x, m, &p(&prefix, "final_layer_norm"))
}

/// `h @ Wᵀ + final_logits_bias`, `W` = `lm_head.weight` when the head is not tied and the
/// checkpoint stores one, else the decoder's token embeddings `table`.
fn load_lm_head(
    b: &mut Builder,
    c: &BartConfig,
    h: ValueId,
    table: ValueId,
) -> Result<ValueId, Error> {
    let v = c.vocab_size;
    let head = if c.tie_word_embeddings {
        None
    } else {
        b.opt_weight("lm_head.weight", &[v, c.d_model])?
    };
    let w = head.unwrap_or(table);
    let wt = b.op(Op::Transpose { perm: vec![1, 0] }, &[w])?;
    let logits = b.op(Op::MatMul, &[h, wt])?;
    match b.opt_weight("final_logits_bias", &[1, v])? {
        Some(bias) => b.bin(BinaryOp::Add, logits, bias),
        None => Ok(logits),
    }
}
