//! T5 (`T5ForConditionalGeneration`) as graphs built from one checkpoint, on the text
//! encoder-decoder contract BART shares:
//!
//! - [`build_encoder_with_cross_kv`]: `input_ids`, `attention_mask` `i64 [batch, source]` →
//!   `last_hidden_state [batch, source, d_model]` and, for every decoder layer `N`, the
//!   cross-attention keys and values of it (`decoder.block.N.layer.1.EncDecAttention.k` / `v`,
//!   split into heads) as `cross.N.key` / `cross.N.value` `[batch, heads, source, d_kv]`.
//! - [`build_cached_decoder`] (`cached.rs`): one generation step over a key/value cache (the
//!   inputs of [`crate::hf::decoder::declare_inputs`] plus `encoder_attention_mask`, states
//!   `past.N.*` and the read-only `cross.N.*`) → the last position's `logits [batch, 1, vocab]`.
//! - [`build_decoder`]: the decoder recomputing the whole prefix (`decoder_input_ids`,
//!   `encoder_hidden_states`, `encoder_attention_mask` → `logits [batch, seq, vocab]`), the
//!   oracle the cached one is tested against.
//!
//! T5 blocks are pre-norm with `T5LayerNorm` (an RMS norm without bias, `RmsNorm`), attention
//! without scaling and without biases, whose inner size is `num_heads · d_kv`, plus the
//! relative position bias of `bias.rs` in self-attention (none in cross-attention); the
//! feed-forward is `DenseReluDense` (`wi`, `wo`) or gated (`wi_0`, `wi_1`, `wo`). Embeddings
//! are `shared`; the LM head is `lm_head` when the checkpoint has it, else `shared`, and the
//! decoder output is scaled by `d_model^-0.5` first unless the config says not to
//! (`scale_decoder_outputs: false` from transformers 5, `tie_word_embeddings: false` before).

mod bias;
mod cached;
mod config;

pub use bias::{bucket, bucket_table};
pub use cached::build_cached_decoder;
pub use config::{feed_forward, FeedForward, T5Config};

use super::builder::{p, Builder};
use super::checkpoint::Checkpoint;
use super::decoder::cross_name;
use crate::error::Error;
use bias::{first_positions, position_bias};
use kiln_compiler::ir::{BinaryOp, DType, Dim, Graph, Op, ValueId};

/// Builds the encoder: inputs `input_ids`, `attention_mask` (`i64 [batch, source]`), outputs
/// `last_hidden_state` and `cross.N.key|value` for every decoder layer `N`.
pub fn build_encoder_with_cross_kv(
    cfg: &serde_json::Value,
    ck: &Checkpoint,
) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = T5Config::from_json(&b, cfg)?;
    let ids = b.input("input_ids", DType::I64, &["batch", "source"])?;
    let mask = b.input("attention_mask", DType::I64, &["batch", "source"])?;
    b.limit_ids("input_ids", "vocab_size", c.vocab_size, None);
    let shared = b.weight("shared.weight", &[c.vocab_size, c.d_model])?;
    let mut h = b.op(Op::Gather { axis: 0 }, &[shared, ids])?;
    let pos = first_positions(&mut b, Dim::sym("source"))?;
    let bias = position_bias(&mut b, &c, "encoder", true, pos, Dim::sym("source"))?;
    for i in 0..c.num_layers {
        let prefix = p("encoder.block", i);
        let attn = p(&prefix, "layer.0");
        let n = norm(&mut b, &c, h, &p(&attn, "layer_norm"))?;
        let sa = p(&attn, "SelfAttention");
        let q = heads(&mut b, &c, n, &p(&sa, "q"))?;
        let k = heads(&mut b, &c, n, &p(&sa, "k"))?;
        let v = heads(&mut b, &c, n, &p(&sa, "v"))?;
        let a = attend(&mut b, &c, &sa, false, [q, k, v], Some(bias), Some(mask))?;
        h = b.bin(BinaryOp::Add, h, a)?;
        h = feed_forward_block(&mut b, &c, &p(&prefix, "layer.1"), h)?;
    }
    let h = norm(&mut b, &c, h, "encoder.final_layer_norm")?;
    let mut names = Vec::new();
    let mut values = Vec::new();
    for i in 0..c.decoder_layers() {
        let cross = p(&p("decoder.block", i), "layer.1.EncDecAttention");
        values.push(heads(&mut b, &c, h, &p(&cross, "k"))?);
        values.push(heads(&mut b, &c, h, &p(&cross, "v"))?);
        names.extend([cross_name(i, "key"), cross_name(i, "value")]);
    }
    let mut outputs = vec![("last_hidden_state", h)];
    outputs.extend(names.iter().map(String::as_str).zip(values));
    b.finish(&outputs)
}

/// Builds the full-recompute decoder: inputs `decoder_input_ids` `i64 [batch, seq]`,
/// `encoder_hidden_states` `f32 [batch, source, d_model]` and `encoder_attention_mask`
/// `i64 [batch, source]`; output `logits` `f32 [batch, seq, vocab_size]`.
pub fn build_decoder(cfg: &serde_json::Value, ck: &Checkpoint) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = T5Config::from_json(&b, cfg)?;
    let ids = b.input("decoder_input_ids", DType::I64, &["batch", "seq"])?;
    let d = c.d_model.to_string();
    let enc = b.input(
        "encoder_hidden_states",
        DType::F32,
        &["batch", "source", &d],
    )?;
    let enc_mask = b.input("encoder_attention_mask", DType::I64, &["batch", "source"])?;
    b.limit_ids("decoder_input_ids", "vocab_size", c.vocab_size, None);
    let shared = b.weight("shared.weight", &[c.vocab_size, c.d_model])?;
    let mut h = b.op(Op::Gather { axis: 0 }, &[shared, ids])?;
    let pos = first_positions(&mut b, Dim::sym("seq"))?;
    let bias = position_bias(&mut b, &c, "decoder", false, pos, Dim::sym("seq"))?;
    for i in 0..c.decoder_layers() {
        let prefix = p("decoder.block", i);
        let attn = p(&prefix, "layer.0");
        let n = norm(&mut b, &c, h, &p(&attn, "layer_norm"))?;
        let sa = p(&attn, "SelfAttention");
        let q = heads(&mut b, &c, n, &p(&sa, "q"))?;
        let k = heads(&mut b, &c, n, &p(&sa, "k"))?;
        let v = heads(&mut b, &c, n, &p(&sa, "v"))?;
        let a = attend(&mut b, &c, &sa, true, [q, k, v], Some(bias), None)?;
        h = b.bin(BinaryOp::Add, h, a)?;
        let cross = p(&prefix, "layer.1");
        let n = norm(&mut b, &c, h, &p(&cross, "layer_norm"))?;
        let ca = p(&cross, "EncDecAttention");
        let q = heads(&mut b, &c, n, &p(&ca, "q"))?;
        let k = heads(&mut b, &c, enc, &p(&ca, "k"))?;
        let v = heads(&mut b, &c, enc, &p(&ca, "v"))?;
        let a = attend(&mut b, &c, &ca, false, [q, k, v], None, Some(enc_mask))?;
        h = b.bin(BinaryOp::Add, h, a)?;
        h = feed_forward_block(&mut b, &c, &p(&prefix, "layer.2"), h)?;
    }
    let h = norm(&mut b, &c, h, "decoder.final_layer_norm")?;
    let logits = lm_head(&mut b, &c, h, shared)?;
    b.finish(&[("logits", logits)])
}

/// `T5LayerNorm` `{prefix}.weight`: `x / sqrt(mean(x²) + eps) · weight`.
pub fn norm(b: &mut Builder, c: &T5Config, x: ValueId, prefix: &str) -> Result<ValueId, Error> {
    let g = b.weight(&p(prefix, "weight"), &[c.d_model])?;
    b.op(
        Op::RmsNorm {
            eps: c.layer_norm_epsilon,
        },
        &[x, g],
    )
}

/// The projection `{prefix}` (no bias, `[heads·d_kv, d_model]`) of `x`, split into heads:
/// `[B, heads, S, d_kv]`.
pub fn heads(b: &mut Builder, c: &T5Config, x: ValueId, prefix: &str) -> Result<ValueId, Error> {
    let y = b.linear(x, prefix, c.d_model, c.inner(), false)?;
    b.split_heads(y, c.num_heads, c.d_kv)
}

/// Unscaled fused attention of split `q`, `k`, `v` with an optional additive `bias` and key
/// `mask`, heads merged, then `{prefix}.o`.
pub fn attend(
    b: &mut Builder,
    c: &T5Config,
    prefix: &str,
    causal: bool,
    [q, k, v]: [ValueId; 3],
    bias: Option<ValueId>,
    mask: Option<ValueId>,
) -> Result<ValueId, Error> {
    let heads = u32::try_from(c.num_heads)
        .map_err(|_| b.config_error("too many attention heads".into()))?;
    let mut inputs = vec![q, k, v];
    inputs.extend(bias);
    inputs.extend(mask);
    let att = b.op(
        Op::Attention {
            heads,
            kv_heads: heads,
            scale: 1.0,
            causal,
            bias: bias.is_some(),
            mask: mask.is_some(),
            rotary: false,
        },
        &inputs,
    )?;
    let merged = b.merge_heads(att)?;
    b.linear(merged, &p(prefix, "o"), c.inner(), c.d_model, false)
}

/// The feed-forward sublayer `{prefix}`: `x + DenseReluDense(layer_norm(x))`.
pub fn feed_forward_block(
    b: &mut Builder,
    c: &T5Config,
    prefix: &str,
    x: ValueId,
) -> Result<ValueId, Error> {
    let ff = c.ff(b)?;
    let n = norm(b, c, x, &p(prefix, "layer_norm"))?;
    let dense = p(prefix, "DenseReluDense");
    let (d, f) = (c.d_model, c.d_ff);
    let h = if ff.gated {
        let g = b.linear(n, &p(&dense, "wi_0"), d, f, false)?;
        let g = b.op(ff.act, &[g])?;
        let u = b.linear(n, &p(&dense, "wi_1"), d, f, false)?;
        b.bin(BinaryOp::Mul, g, u)?
    } else {
        let h = b.linear(n, &p(&dense, "wi"), d, f, false)?;
        b.op(ff.act, &[h])?
    };
    let y = b.linear(h, &p(&dense, "wo"), f, d, false)?;
    b.bin(BinaryOp::Add, x, y)
}

/// The LM head on the final decoder states `h`: `lm_head.weight` when the checkpoint has one,
/// else the tied `shared`, after scaling `h` by `d_model^-0.5` when the config says so
/// ([`T5Config::scale_outputs`]).
pub fn lm_head(
    b: &mut Builder,
    c: &T5Config,
    h: ValueId,
    shared: ValueId,
) -> Result<ValueId, Error> {
    let h = if c.scale_outputs() {
        let s = b.scalar((c.d_model as f64).powf(-0.5))?;
        b.bin(BinaryOp::Mul, h, s)?
    } else {
        h
    };
    let head = b.opt_weight("lm_head.weight", &[c.vocab_size, c.d_model])?;
    let wt = b.op(
        Op::Transpose { perm: vec![1, 0] },
        &[head.unwrap_or(shared)],
    )?;
    b.op(Op::MatMul, &[h, wt])
}
