//! BART (`BartForConditionalGeneration`) for generation, as the two graphs of a text
//! encoder-decoder with caches (the contract T5 shares):
//!
//! - [`build_encoder_with_cross_kv`]: `input_ids`, `attention_mask` (`i64 [batch, source]`,
//!   right padding masked) → `last_hidden_state [batch, source, d_model]` and, for every decoder
//!   layer `N`, `cross.N.key` / `cross.N.value` `[batch, heads, source, head_dim]`: that layer's
//!   `encoder_attn.k_proj` / `v_proj` of the encoder output, split into heads, computed once
//!   per source.
//! - [`build_cached_decoder`] (`cached.rs`): the inputs of every cached decoder
//!   (`input_ids`, `position_ids`, `attention_mask [batch, past + seq]`) plus
//!   `encoder_attention_mask [batch, source]`, the self-attention caches `past.N.key|value`,
//!   the read-only states `cross.N.key|value`, and the last position's `logits
//!   [batch, 1, vocab]`.
//!
//! What makes it BART and not Whisper: token embeddings (`model.shared`, or the encoder's and
//! decoder's own `embed_tokens` when stored) times `sqrt(d_model)` only with `scale_embedding`;
//! learned positions read at row `position + 2`; `layernorm_embedding` after the sum;
//! post-norm layers (residual add, then LayerNorm) with biases on every projection; no final
//! LayerNorm; the LM head tied to `model.shared` unless `tie_word_embeddings` is false and
//! `lm_head.weight` is stored, plus `final_logits_bias`. The encoder's padding mask applies in
//! its self-attention and in the decoder's cross-attention.

mod cached;
mod config;

pub use cached::build_cached_decoder;
pub use config::{BartConfig, ARCHITECTURES, EPS, POSITION_OFFSET};

use super::builder::{p, Builder};
use super::checkpoint::Checkpoint;
use super::decoder::cross_name;
use crate::error::Error;
use config::act;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Graph, Op, ValueId};

/// Builds the encoder: inputs `input_ids`, `attention_mask` (`i64 [batch, source]`); outputs
/// `last_hidden_state` and `cross.N.key|value` for every decoder layer `N`.
pub fn build_encoder_with_cross_kv(
    cfg: &serde_json::Value,
    ck: &Checkpoint,
) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = BartConfig::from_json(&b, cfg)?;
    let ids = b.input("input_ids", DType::I64, &["batch", "source"])?;
    let mask = b.input("attention_mask", DType::I64, &["batch", "source"])?;
    b.limit_ids(
        "input_ids",
        "vocab_size",
        c.vocab_size,
        Some(("max_position_embeddings", c.max_position_embeddings)),
    );
    let table = token_table(&mut b, &c, "encoder")?;
    let source = b.ty(ids).shape.0[1].clone();
    let offset = Dim::known(POSITION_OFFSET);
    let positions = b.op(
        Op::Range {
            start: offset.clone(),
            limit: source.add(&offset),
            delta: Dim::known(1),
            dtype: DType::I64,
        },
        &[],
    )?;
    let mut h = load_embeddings(&mut b, &c, "encoder", table, ids, positions)?;
    for i in 0..c.encoder_layers {
        h = load_encoder_layer(&mut b, &c, &p("encoder.layers", i), h, mask)?;
    }
    let mut names = Vec::new();
    let mut values = Vec::new();
    for i in 0..c.decoder_layers {
        let prefix = p(&p("decoder.layers", i), "encoder_attn");
        let heads = c.decoder_attention_heads;
        let k = load_heads(&mut b, &c, &p(&prefix, "k_proj"), heads, h)?;
        let v = load_heads(&mut b, &c, &p(&prefix, "v_proj"), heads, h)?;
        names.extend([cross_name(i, "key"), cross_name(i, "value")]);
        values.extend([k, v]);
    }
    let mut outputs = vec![("last_hidden_state", h)];
    outputs.extend(names.iter().map(String::as_str).zip(values));
    b.finish(&outputs)
}

/// The token embeddings of `part` (`encoder` or `decoder`): its own `embed_tokens` when the
/// checkpoint stores it, else `model.shared`.
pub fn token_table(b: &mut Builder, c: &BartConfig, part: &str) -> Result<ValueId, Error> {
    let shape = [c.vocab_size, c.d_model];
    match b.opt_weight(&p(part, "embed_tokens.weight"), &shape)? {
        Some(t) => Ok(t),
        None => b.weight("shared.weight", &shape),
    }
}

/// `layernorm_embedding(table[ids] · embed_scale + {part}.embed_positions[positions + 2])`;
/// `positions` are already offset by 2.
pub fn load_embeddings(
    b: &mut Builder,
    c: &BartConfig,
    part: &str,
    table: ValueId,
    ids: ValueId,
    positions: ValueId,
) -> Result<ValueId, Error> {
    let d = c.d_model;
    let pos_table = b.weight(&p(part, "embed_positions.weight"), &[c.position_rows(), d])?;
    let mut tok = b.op(Op::Gather { axis: 0 }, &[table, ids])?;
    if c.scale_embedding {
        let s = b.scalar(c.embed_scale())?;
        tok = b.bin(BinaryOp::Mul, tok, s)?;
    }
    // Gather refuses a row past the table: a position past max_position_embeddings is an error.
    let pos = b.op(Op::Gather { axis: 0 }, &[pos_table, positions])?;
    let h = b.bin(BinaryOp::Add, tok, pos)?;
    b.layer_norm(h, &p(part, "layernorm_embedding"), d, EPS)
}

/// One encoder layer `{prefix}` (post-norm): `x = self_attn_layer_norm(x + self_attn(x))`,
/// then `final_layer_norm(x + fc2(act(fc1(x))))`.
pub fn load_encoder_layer(
    b: &mut Builder,
    c: &BartConfig,
    prefix: &str,
    x: ValueId,
    mask: ValueId,
) -> Result<ValueId, Error> {
    let heads = c.encoder_attention_heads;
    let attn = p(prefix, "self_attn");
    let q = load_heads(b, c, &p(&attn, "q_proj"), heads, x)?;
    let k = load_heads(b, c, &p(&attn, "k_proj"), heads, x)?;
    let v = load_heads(b, c, &p(&attn, "v_proj"), heads, x)?;
    let a = attend(b, c, &attn, heads, false, (q, k, v), mask)?;
    let x = residual_norm(b, c, x, a, &p(prefix, "self_attn_layer_norm"))?;
    let m = load_mlp(b, c, prefix, c.encoder_ffn_dim, x)?;
    residual_norm(b, c, x, m, &p(prefix, "final_layer_norm"))
}

/// `{prefix}.weight`/`.bias` (`[d_model, d_model]`) applied to `x`, split into `heads`:
/// `[B, heads, S, head_dim]`.
pub fn load_heads(
    b: &mut Builder,
    c: &BartConfig,
    prefix: &str,
    heads: usize,
    x: ValueId,
) -> Result<ValueId, Error> {
    let d = c.d_model;
    let y = b.linear(x, prefix, d, d, true)?;
    b.split_heads(y, heads, d / heads)
}

/// Fused attention of split `q`, `k`, `v` with the key padding `mask` (`[B, Sk]`, non-zero =
/// attend), scale `head_dim^-0.5`, causal or not; heads merged, then `{prefix}.out_proj`.
pub fn attend(
    b: &mut Builder,
    c: &BartConfig,
    prefix: &str,
    heads: usize,
    causal: bool,
    (q, k, v): (ValueId, ValueId, ValueId),
    mask: ValueId,
) -> Result<ValueId, Error> {
    b.attend_heads(
        (q, k, v),
        Some(mask),
        (c.d_model, heads),
        causal,
        &p(prefix, "out_proj"),
    )
}

/// `LayerNorm_{norm}(x + y)`: BART's post-norm residual.
pub fn residual_norm(
    b: &mut Builder,
    c: &BartConfig,
    x: ValueId,
    y: ValueId,
    norm: &str,
) -> Result<ValueId, Error> {
    let s = b.bin(BinaryOp::Add, x, y)?;
    b.layer_norm(s, norm, c.d_model, EPS)
}

/// The MLP of layer `{prefix}`: `fc2(act(fc1(x)))` with width `ffn`.
pub fn load_mlp(
    b: &mut Builder,
    c: &BartConfig,
    prefix: &str,
    ffn: usize,
    x: ValueId,
) -> Result<ValueId, Error> {
    let h = b.linear(x, &p(prefix, "fc1"), c.d_model, ffn, true)?;
    let h = act(b, c, h)?;
    b.linear(h, &p(prefix, "fc2"), ffn, c.d_model, true)
}
