//! Whisper (`WhisperForConditionalGeneration`) as two graphs, built from the same checkpoint:
//!
//! - [`build_encoder`]: `input_features` `f32 [batch, num_mel_bins, 2·max_source_positions]` →
//!   two `Conv1d` + exact GELU (the second with stride 2), the learned positions, pre-norm
//!   layers of unmasked fused attention and a GELU MLP, the final norm →
//!   `last_hidden_state [batch, max_source_positions, d_model]`.
//! - [`build_decoder`]: `decoder_input_ids` `i64 [batch, seq]` and `encoder_hidden_states`
//!   `f32 [batch, frames, d_model]` → token embeddings + learned positions `0..seq`, pre-norm
//!   layers of causal self-attention, cross-attention on the encoder states and the MLP, the
//!   final norm, and the LM head tied to the token embeddings → `logits [batch, seq, vocab]`.
//!   It recomputes the whole prefix each step (no key/value cache).
//! - [`build_encoder_with_cross_kv`] and [`build_cached_decoder`] (`cached.rs`): the same model
//!   for generation, with the cross-attention keys and values computed once by the encoder and
//!   the decoder's own keys and values in a key/value cache.
//!
//! Transformers scales q by `head_dim^-0.5` after its bias; the fused `attention` applies the
//! same factor to the scores. `k_proj` has no bias in Whisper. The two graphs are not an entry
//! of the families table: generation runs the encoder once and the decoder per token, so an
//! artifact holds both (the caller wires them). Each block is one `load_*` function so a cached
//! decoder can reuse the projections ([`load_query`], [`load_key_value`]) and [`attend`].

mod cached;
mod config;

pub use cached::{build_cached_decoder, build_encoder_with_cross_kv, cross_name};
pub use config::{activation, WhisperConfig, EPS};

use super::builder::{p, Builder};
use super::checkpoint::Checkpoint;
use crate::error::Error;
use config::act;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Graph, Op, ValueId};

/// Builds the encoder: input `input_features` `f32 [batch, num_mel_bins, 2·max_source_positions]`,
/// output `last_hidden_state` `f32 [batch, max_source_positions, d_model]`.
pub fn build_encoder(cfg: &serde_json::Value, ck: &Checkpoint) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = WhisperConfig::from_json(&b, cfg)?;
    let (mels, frames) = (c.num_mel_bins.to_string(), c.input_frames().to_string());
    let x = b.input("input_features", DType::F32, &["batch", &mels, &frames])?;
    let mut h = load_conv_stem(&mut b, &c, "encoder", x)?;
    for i in 0..c.encoder_layers {
        h = load_encoder_layer(&mut b, &c, &p("encoder.layers", i), h)?;
    }
    let h = b.layer_norm(h, "encoder.layer_norm", c.d_model, EPS)?;
    b.finish(&[("last_hidden_state", h)])
}

/// Builds the full-recompute decoder: inputs `decoder_input_ids` `i64 [batch, seq]` and
/// `encoder_hidden_states` `f32 [batch, frames, d_model]`, output `logits`
/// `f32 [batch, seq, vocab_size]`.
pub fn build_decoder(cfg: &serde_json::Value, ck: &Checkpoint) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = WhisperConfig::from_json(&b, cfg)?;
    let ids = b.input("decoder_input_ids", DType::I64, &["batch", "seq"])?;
    let d = c.d_model.to_string();
    let enc = b.input(
        "encoder_hidden_states",
        DType::F32,
        &["batch", "frames", &d],
    )?;
    b.limit_ids(
        "decoder_input_ids",
        "vocab_size",
        c.vocab_size,
        Some(("max_target_positions", c.max_target_positions)),
    );
    let (mut h, embed) = load_decoder_embeddings(&mut b, &c, ids)?;
    for i in 0..c.decoder_layers {
        h = load_decoder_layer(&mut b, &c, &p("decoder.layers", i), h, enc)?;
    }
    let h = b.layer_norm(h, "decoder.layer_norm", c.d_model, EPS)?;
    let logits = load_lm_head(&mut b, &c, h, embed)?;
    b.finish(&[("logits", logits)])
}

/// `{prefix}.conv1` (kernel 3, padding 1) + act, `{prefix}.conv2` (kernel 3, stride 2,
/// padding 1) + act, to `[batch, positions, d_model]`, plus `{prefix}.embed_positions.weight`.
pub fn load_conv_stem(
    b: &mut Builder,
    c: &WhisperConfig,
    prefix: &str,
    x: ValueId,
) -> Result<ValueId, Error> {
    let d = c.d_model;
    let mut h = x;
    for (name, inp, stride) in [("conv1", c.num_mel_bins, 1), ("conv2", d, 2)] {
        let w = b.weight(&p(prefix, format!("{name}.weight")), &[d, inp, 3])?;
        let bias = b.weight(&p(prefix, format!("{name}.bias")), &[d])?;
        let conv = Op::Conv {
            strides: vec![stride],
            pads: vec![1, 1],
            dilations: vec![1],
            group: 1,
        };
        h = b.op(conv, &[h, w, bias])?;
        h = act(b, c, h)?;
    }
    let h = b.op(
        Op::Transpose {
            perm: vec![0, 2, 1],
        },
        &[h],
    )?;
    let pos = b.weight(
        &p(prefix, "embed_positions.weight"),
        &[c.max_source_positions, d],
    )?;
    b.bin(BinaryOp::Add, h, pos)
}

/// One encoder layer `{prefix}`: `x + self_attn(self_attn_layer_norm(x))`, then
/// `+ mlp(final_layer_norm(·))`.
pub fn load_encoder_layer(
    b: &mut Builder,
    c: &WhisperConfig,
    prefix: &str,
    x: ValueId,
) -> Result<ValueId, Error> {
    let heads = c.encoder_attention_heads;
    let n = b.layer_norm(x, &p(prefix, "self_attn_layer_norm"), c.d_model, EPS)?;
    let a = load_self_attention(b, c, &p(prefix, "self_attn"), heads, false, n)?;
    let x = b.bin(BinaryOp::Add, x, a)?;
    let n = b.layer_norm(x, &p(prefix, "final_layer_norm"), c.d_model, EPS)?;
    let m = load_mlp(b, c, prefix, c.encoder_ffn_dim, n)?;
    b.bin(BinaryOp::Add, x, m)
}

/// One decoder layer `{prefix}`: causal self-attention, cross-attention on `enc`, the MLP, each
/// pre-norm with a residual.
pub fn load_decoder_layer(
    b: &mut Builder,
    c: &WhisperConfig,
    prefix: &str,
    x: ValueId,
    enc: ValueId,
) -> Result<ValueId, Error> {
    let (d, heads) = (c.d_model, c.decoder_attention_heads);
    let n = b.layer_norm(x, &p(prefix, "self_attn_layer_norm"), d, EPS)?;
    let a = load_self_attention(b, c, &p(prefix, "self_attn"), heads, true, n)?;
    let x = b.bin(BinaryOp::Add, x, a)?;
    let n = b.layer_norm(x, &p(prefix, "encoder_attn_layer_norm"), d, EPS)?;
    let a = load_cross_attention(b, c, &p(prefix, "encoder_attn"), heads, n, enc)?;
    let x = b.bin(BinaryOp::Add, x, a)?;
    let n = b.layer_norm(x, &p(prefix, "final_layer_norm"), d, EPS)?;
    let m = load_mlp(b, c, prefix, c.decoder_ffn_dim, n)?;
    b.bin(BinaryOp::Add, x, m)
}

/// `{prefix}.q_proj(x)` (with bias) split into `heads`: `[B, heads, S, head_dim]`.
pub fn load_query(
    b: &mut Builder,
    c: &WhisperConfig,
    prefix: &str,
    heads: usize,
    x: ValueId,
) -> Result<ValueId, Error> {
    let d = c.d_model;
    let q = b.linear(x, &p(prefix, "q_proj"), d, d, true)?;
    b.split_heads(q, heads, d / heads)
}

/// `{prefix}.k_proj(x)` (no bias) and `{prefix}.v_proj(x)` (with bias), each split into
/// `heads`: `[B, heads, S, head_dim]`. A cached decoder stores these per layer.
pub fn load_key_value(
    b: &mut Builder,
    c: &WhisperConfig,
    prefix: &str,
    heads: usize,
    x: ValueId,
) -> Result<(ValueId, ValueId), Error> {
    let d = c.d_model;
    let k = b.linear(x, &p(prefix, "k_proj"), d, d, false)?;
    let v = b.linear(x, &p(prefix, "v_proj"), d, d, true)?;
    Ok((
        b.split_heads(k, heads, d / heads)?,
        b.split_heads(v, heads, d / heads)?,
    ))
}

/// Fused attention of split `q`, `k`, `v` (scale `head_dim^-0.5`, causal or not: with fewer
/// queries than keys, causal queries are the last positions), heads merged, then
/// `{prefix}.out_proj`.
pub fn attend(
    b: &mut Builder,
    c: &WhisperConfig,
    prefix: &str,
    heads: usize,
    causal: bool,
    (q, k, v): (ValueId, ValueId, ValueId),
) -> Result<ValueId, Error> {
    b.attend_heads(
        (q, k, v),
        None,
        (c.d_model, heads),
        causal,
        &p(prefix, "out_proj"),
    )
}

/// Self-attention `{prefix}` over `x` (causal in the decoder).
pub fn load_self_attention(
    b: &mut Builder,
    c: &WhisperConfig,
    prefix: &str,
    heads: usize,
    causal: bool,
    x: ValueId,
) -> Result<ValueId, Error> {
    let q = load_query(b, c, prefix, heads, x)?;
    let (k, v) = load_key_value(b, c, prefix, heads, x)?;
    attend(b, c, prefix, heads, causal, (q, k, v))
}

/// Cross-attention `{prefix}`: queries from `x`, keys and values from the encoder states `enc`.
pub fn load_cross_attention(
    b: &mut Builder,
    c: &WhisperConfig,
    prefix: &str,
    heads: usize,
    x: ValueId,
    enc: ValueId,
) -> Result<ValueId, Error> {
    let q = load_query(b, c, prefix, heads, x)?;
    let (k, v) = load_key_value(b, c, prefix, heads, enc)?;
    attend(b, c, prefix, heads, false, (q, k, v))
}

/// The MLP of layer `{prefix}`: `fc2(act(fc1(x)))` with width `ffn`.
pub fn load_mlp(
    b: &mut Builder,
    c: &WhisperConfig,
    prefix: &str,
    ffn: usize,
    x: ValueId,
) -> Result<ValueId, Error> {
    let h = b.linear(x, &p(prefix, "fc1"), c.d_model, ffn, true)?;
    let h = act(b, c, h)?;
    b.linear(h, &p(prefix, "fc2"), ffn, c.d_model, true)
}

/// `embed_tokens[ids] · embed_scale + embed_positions[0..seq]`; also returns `embed_tokens`
/// for the tied head.
pub fn load_decoder_embeddings(
    b: &mut Builder,
    c: &WhisperConfig,
    ids: ValueId,
) -> Result<(ValueId, ValueId), Error> {
    let d = c.d_model;
    let table = b.weight("decoder.embed_tokens.weight", &[c.vocab_size, d])?;
    let positions = b.weight(
        "decoder.embed_positions.weight",
        &[c.max_target_positions, d],
    )?;
    let mut tok = b.op(Op::Gather { axis: 0 }, &[table, ids])?;
    if c.scale_embedding {
        let s = b.scalar((d as f64).sqrt())?;
        tok = b.bin(BinaryOp::Mul, tok, s)?;
    }
    let seq = b.ty(ids).shape.0[1].clone();
    let pos_ids = b.positions(&seq, DType::I64)?;
    let pos = b.op(Op::Gather { axis: 0 }, &[positions, pos_ids])?;
    Ok((b.bin(BinaryOp::Add, tok, pos)?, table))
}

/// The LM head: `h @ embed_tokensᵀ` when tied (or when the checkpoint has no
/// `proj_out.weight`), else `h @ proj_out.weightᵀ` (`[vocab, d_model]`, no bias).
pub fn load_lm_head(
    b: &mut Builder,
    c: &WhisperConfig,
    h: ValueId,
    embed: ValueId,
) -> Result<ValueId, Error> {
    let head = if c.tie_word_embeddings {
        None
    } else {
        b.opt_weight("proj_out.weight", &[c.vocab_size, c.d_model])?
    };
    let w = head.unwrap_or(embed);
    let wt = b.op(Op::Transpose { perm: vec![1, 0] }, &[w])?;
    b.op(Op::MatMul, &[h, wt])
}

/// The position ids `start..start + len` (`i64`): a cached decoder's new tokens sit after the
/// cached ones.
pub fn positions_from(b: &mut Builder, start: Dim, len: Dim) -> Result<ValueId, Error> {
    let limit = start.add(&len);
    b.op(
        Op::Range {
            start,
            limit,
            delta: Dim::known(1),
            dtype: DType::I64,
        },
        &[],
    )
}
