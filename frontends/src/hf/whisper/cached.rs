//! Whisper for generation with caches, as two graphs the caller wires together:
//!
//! - [`build_encoder_with_cross_kv`]: the encoder of [`super::build_encoder`] plus, for every
//!   decoder layer `N`, the cross-attention keys and values of its output
//!   (`decoder.layers.N.encoder_attn.k_proj` / `v_proj`, split into heads) as the outputs
//!   `cross.N.key` / `cross.N.value` `[batch, heads, max_source_positions, head_dim]`. They are
//!   computed once per utterance.
//! - [`build_cached_decoder`]: the decoder with the inputs of every cached decoder
//!   ([`crate::hf::decoder::declare_inputs`]: `input_ids`, `position_ids` gathered from the
//!   learned `embed_positions`, `attention_mask [batch, past + seq]`), self-attention keys and
//!   values in the states `past.N.key|value` written in place at `past`
//!   ([`crate::hf::decoder::cached_kv`]), and cross-attention keys and values as the read-only
//!   states `cross.N.key|value`: no step writes them (each state's update is its own input), the
//!   caller fills them from the encoder's outputs with `State::write`. Its output is the last
//!   position's `logits [batch, 1, vocab]`.

use super::config::{WhisperConfig, EPS};
use super::{attend, load_key_value, load_lm_head, load_mlp, load_query};
use crate::error::Error;
use crate::hf::builder::{p, Builder};
use crate::hf::checkpoint::Checkpoint;
pub use crate::hf::decoder::cross_name;
use crate::hf::decoder::{cached_kv, cross_states, declare_inputs, last_position};
use kiln_compiler::ir::{BinaryOp, DType, Graph, Op, ValueId};

/// Builds the encoder (input `input_features`, output `last_hidden_state`) with the outputs
/// `cross.N.key` / `cross.N.value` of every decoder layer `N`.
pub fn build_encoder_with_cross_kv(
    cfg: &serde_json::Value,
    ck: &Checkpoint,
) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = WhisperConfig::from_json(&b, cfg)?;
    let (mels, frames) = (c.num_mel_bins.to_string(), c.input_frames().to_string());
    let x = b.input("input_features", DType::F32, &["batch", &mels, &frames])?;
    let mut h = super::load_conv_stem(&mut b, &c, "encoder", x)?;
    for i in 0..c.encoder_layers {
        h = super::load_encoder_layer(&mut b, &c, &p("encoder.layers", i), h)?;
    }
    let h = b.layer_norm(h, "encoder.layer_norm", c.d_model, EPS)?;
    let mut names = Vec::new();
    let mut values = Vec::new();
    for i in 0..c.decoder_layers {
        let prefix = p(&p("decoder.layers", i), "encoder_attn");
        let (k, v) = load_key_value(&mut b, &c, &prefix, c.decoder_attention_heads, h)?;
        names.extend([cross_name(i, "key"), cross_name(i, "value")]);
        values.extend([k, v]);
    }
    let mut outputs = vec![("last_hidden_state", h)];
    outputs.extend(names.iter().map(String::as_str).zip(values));
    b.finish(&outputs)
}

/// Builds the cached decoder: inputs `input_ids`, `position_ids` (`i64 [batch, seq]`) and
/// `attention_mask` (`i64 [batch, past + seq]`); states `past.N.key|value`
/// (`[batch, heads, capacity, head_dim]`, written at `past`) and `cross.N.key|value`
/// (`[batch, heads, max_source_positions, head_dim]`, read only); output `logits`
/// `f32 [batch, 1, vocab_size]` at the last position.
pub fn build_cached_decoder(cfg: &serde_json::Value, ck: &Checkpoint) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = WhisperConfig::from_json(&b, cfg)?;
    let io = declare_inputs(&mut b)?;
    b.limit_ids("input_ids", "vocab_size", c.vocab_size, None);
    let d = c.d_model;
    let table = b.weight("decoder.embed_tokens.weight", &[c.vocab_size, d])?;
    let positions = b.weight(
        "decoder.embed_positions.weight",
        &[c.max_target_positions, d],
    )?;
    let mut tok = b.op(Op::Gather { axis: 0 }, &[table, io.ids])?;
    if c.scale_embedding {
        let s = b.scalar((d as f64).sqrt())?;
        tok = b.bin(BinaryOp::Mul, tok, s)?;
    }
    // Gather refuses a position past the table: max_target_positions bounds past + seq.
    let pos = b.op(Op::Gather { axis: 0 }, &[positions, io.positions])?;
    let mut h = b.bin(BinaryOp::Add, tok, pos)?;
    for i in 0..c.decoder_layers {
        h = load_cached_layer(&mut b, &c, i, h, io.mask)?;
    }
    let h = last_position(&mut b, h)?;
    let h = b.layer_norm(h, "decoder.layer_norm", d, EPS)?;
    let logits = load_lm_head(&mut b, &c, h, table)?;
    b.finish(&[("logits", logits)])
}

/// Decoder layer `layer` over the caches: causal self-attention on `past.N.*` with the padding
/// mask, cross-attention on the states `cross.N.*`, the MLP, each pre-norm with a residual.
fn load_cached_layer(
    b: &mut Builder,
    c: &WhisperConfig,
    layer: usize,
    x: ValueId,
    mask: ValueId,
) -> Result<ValueId, Error> {
    let (d, heads) = (c.d_model, c.decoder_attention_heads);
    let head_dim = d / heads;
    let prefix = p("decoder.layers", layer);
    let n = b.layer_norm(x, &p(&prefix, "self_attn_layer_norm"), d, EPS)?;
    let attn = p(&prefix, "self_attn");
    let q = load_query(b, c, &attn, heads, n)?;
    let (k, v) = load_key_value(b, c, &attn, heads, n)?;
    let (k, v) = cached_kv(b, layer, k, v, heads, head_dim)?;
    let a = b.attend_heads(
        (q, k, v),
        Some(mask),
        (d, heads),
        true,
        &p(&attn, "out_proj"),
    )?;
    let x = b.bin(BinaryOp::Add, x, a)?;

    let n = b.layer_norm(x, &p(&prefix, "encoder_attn_layer_norm"), d, EPS)?;
    let cross = p(&prefix, "encoder_attn");
    let q = load_query(b, c, &cross, heads, n)?;
    let heads = c.decoder_attention_heads;
    let source = c.max_source_positions.to_string();
    let (k, v) = cross_states(b, layer, heads, &source, c.d_model / heads)?;
    let a = attend(b, c, &cross, heads, false, (q, k, v))?;
    let x = b.bin(BinaryOp::Add, x, a)?;

    let n = b.layer_norm(x, &p(&prefix, "final_layer_norm"), d, EPS)?;
    let m = load_mlp(b, c, &prefix, c.decoder_ffn_dim, n)?;
    b.bin(BinaryOp::Add, x, m)
}
