//! `LlamaForCausalLM` from a Hugging Face folder: token embeddings, pre-norm decoder layers
//! (`RmsNorm`, rotary grouped-query `Attention`, SwiGLU MLP), a final norm and the LM head,
//! giving `logits: [batch, seq, vocab]`; `LlamaModel` stops at the final norm
//! (`last_hidden_state`).

use super::builder::{p, Builder};
use super::checkpoint::Checkpoint;
use super::decoder;
use super::heads::{self, Head};
use super::rope::{self, Rope};
use crate::error::Error;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Graph, Op, UnaryOp, ValueId};
use serde::Deserialize;

/// The `config.json` fields Kiln reads, with transformers' `LlamaConfig` defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LlamaConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); defaults to the query heads.
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    /// Epsilon of every `RmsNorm`.
    pub rms_norm_eps: f64,
    /// Whether q/k/v/o projections have biases.
    pub attention_bias: bool,
    /// Whether the MLP projections have biases.
    pub mlp_bias: bool,
    /// Whether the LM head reuses the token embeddings.
    pub tie_word_embeddings: bool,
    /// The MLP activation (`silu` only).
    pub hidden_act: String,
}

impl Default for LlamaConfig {
    fn default() -> LlamaConfig {
        LlamaConfig {
            vocab_size: 32000,
            hidden_size: 4096,
            intermediate_size: 11008,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: None,
            head_dim: None,
            rms_norm_eps: 1e-6,
            attention_bias: false,
            mlp_bias: false,
            tie_word_embeddings: false,
            hidden_act: "silu".to_string(),
        }
    }
}

/// The validated sizes of a model.
#[derive(Debug, Clone, Copy)]
struct Dims {
    hidden: usize,
    inter: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    q_width: usize,
    kv_width: usize,
    eps: f64,
}

impl LlamaConfig {
    /// Checks the sizes (non-zero, heads divisible by kv heads, even head dim, silu).
    fn dims(&self) -> Result<Dims, String> {
        let nonzero = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_attention_heads),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be positive"));
        }
        let heads = self.num_attention_heads;
        let kv_heads = self.num_key_value_heads.unwrap_or(heads);
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(format!(
                "`num_key_value_heads` ({kv_heads}) must be positive and divide \
                 `num_attention_heads` ({heads})"
            ));
        }
        let head_dim = self.head_dim.unwrap_or(self.hidden_size / heads);
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(format!(
                "`head_dim` must be positive and even, got {head_dim}"
            ));
        }
        if !matches!(self.hidden_act.as_str(), "silu" | "swish") {
            return Err(format!(
                "unsupported `hidden_act` `{}` (LLaMA uses `silu`)",
                self.hidden_act
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return Err(format!("bad `rms_norm_eps` {}", self.rms_norm_eps));
        }
        let (Some(q_width), Some(kv_width)) =
            (heads.checked_mul(head_dim), kv_heads.checked_mul(head_dim))
        else {
            return Err("the attention widths overflow".to_string());
        };
        Ok(Dims {
            hidden: self.hidden_size,
            inter: self.intermediate_size,
            heads,
            kv_heads,
            head_dim,
            q_width,
            kv_width,
            eps: self.rms_norm_eps,
        })
    }
}

/// Builds `LlamaForCausalLM` (`Head::CausalLm`) or `LlamaModel` (`Head::Base`); inputs
/// `input_ids`, `attention_mask`: `i64[batch, seq]`.
pub fn build(cfg: &serde_json::Value, ck: &Checkpoint, head: Head) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c: LlamaConfig = serde_json::from_value(cfg.clone())
        .map_err(|e| b.config_error(format!("not a LLaMA config: {e}")))?;
    let d = c.dims().map_err(|m| b.config_error(m))?;
    let rope = Rope::from_config(cfg).map_err(|m| b.config_error(m))?;

    let ids = b.input("input_ids", DType::I64, &["batch", "seq"])?;
    let mask = b.input("attention_mask", DType::I64, &["batch", "seq"])?;
    // Rotary positions have no table, so only the ids are bounded.
    b.limit_ids("input_ids", "vocab_size", c.vocab_size, None);
    let embed = b.weight("embed_tokens.weight", &[c.vocab_size, d.hidden])?;
    let mut x = b.op(Op::Gather { axis: 0 }, &[embed, ids])?;
    if c.num_hidden_layers > 0 {
        // The first query projection bounds the head sizes before the rotary tables are sized.
        let q0 = p(&p("layers", 0), "self_attn.q_proj.weight");
        if b.checkpoint().shape(&q0).as_deref() != Some(&[d.q_width, d.hidden][..]) {
            b.weight(&q0, &[d.q_width, d.hidden])?;
        }
        let trig = rope::tables(&mut b, &Dim::sym("seq"), &rope.inv_freq(d.head_dim))?;
        for i in 0..c.num_hidden_layers {
            x = load_layer(&mut b, &c, d, &p("layers", i), x, mask, trig)?;
        }
    }
    let x = load_rms_norm(&mut b, x, "norm", d)?;
    match head {
        Head::Base => return b.finish(&[("last_hidden_state", x)]),
        Head::CausalLm => {}
        _ => return Err(heads::not_built(&b, "LLaMA", head)),
    }
    let logits = if c.tie_word_embeddings {
        let wt = b.op(Op::Transpose { perm: vec![1, 0] }, &[embed])?;
        b.op(Op::MatMul, &[x, wt])?
    } else {
        b.linear(x, "lm_head", d.hidden, c.vocab_size, false)?
    };
    b.finish(&[("logits", logits)])
}

/// `LlamaForCausalLM` with a key/value cache (see [`super::decoder`]): inputs `input_ids`,
/// `position_ids`, `attention_mask`, states `past.N.key|value`, output the last position's
/// `logits: [batch, 1, vocab]`.
pub fn build_cached(cfg: &serde_json::Value, ck: &Checkpoint) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c: LlamaConfig = serde_json::from_value(cfg.clone())
        .map_err(|e| b.config_error(format!("not a LLaMA config: {e}")))?;
    let d = c.dims().map_err(|m| b.config_error(m))?;
    let rope = Rope::from_config(cfg).map_err(|m| b.config_error(m))?;
    let io = decoder::declare_inputs(&mut b)?;
    b.limit_ids("input_ids", "vocab_size", c.vocab_size, None);
    let embed = b.weight("embed_tokens.weight", &[c.vocab_size, d.hidden])?;
    let mut x = b.op(Op::Gather { axis: 0 }, &[embed, io.ids])?;
    let trig = decoder::rotary_tables(&mut b, io.positions, &rope.inv_freq(d.head_dim))?;
    for i in 0..c.num_hidden_layers {
        let prefix = p("layers", i);
        let h = load_rms_norm(&mut b, x, &p(&prefix, "input_layernorm"), d)?;
        let a =
            load_cached_attention(&mut b, &c, d, &p(&prefix, "self_attn"), h, io.mask, trig, i)?;
        x = b.bin(BinaryOp::Add, x, a)?;
        let h = load_rms_norm(&mut b, x, &p(&prefix, "post_attention_layernorm"), d)?;
        let m = load_mlp(&mut b, &c, d, &p(&prefix, "mlp"), h)?;
        x = b.bin(BinaryOp::Add, x, m)?;
    }
    let x = decoder::last_position(&mut b, x)?;
    let x = load_rms_norm(&mut b, x, "norm", d)?;
    let logits = if c.tie_word_embeddings {
        let wt = b.op(Op::Transpose { perm: vec![1, 0] }, &[embed])?;
        b.op(Op::MatMul, &[x, wt])?
    } else {
        b.linear(x, "lm_head", d.hidden, c.vocab_size, false)?
    };
    b.finish(&[("logits", logits)])
}

/// Causal grouped-query self-attention over the layer's key/value cache: q and the new k
/// rotated at their positions, k and v written to the cache, attention over the cached prefix.
#[allow(clippy::too_many_arguments)]
fn load_cached_attention(
    b: &mut Builder,
    c: &LlamaConfig,
    d: Dims,
    prefix: &str,
    x: ValueId,
    mask: ValueId,
    (cos, sin): (ValueId, ValueId),
    layer: usize,
) -> Result<ValueId, Error> {
    let (q, k, v) = project_qkv(b, c, d, prefix, x)?;
    let q = b.op(Op::Rotary, &[q, cos, sin])?;
    let k = b.op(Op::Rotary, &[k, cos, sin])?;
    let (k, v) = decoder::cached_kv(b, layer, k, v, d.kv_heads, d.head_dim)?;
    let (heads, kv_heads) = head_counts(b, d)?;
    let att = b.op(
        Op::Attention {
            heads,
            kv_heads,
            scale: 1.0 / (d.head_dim as f64).sqrt(),
            causal: true,
            bias: false,
            mask: true,
            rotary: false,
        },
        &[q, k, v, mask],
    )?;
    let merged = b.merge_heads(att)?;
    b.linear(
        merged,
        &p(prefix, "o_proj"),
        d.q_width,
        d.hidden,
        c.attention_bias,
    )
}

/// `RmsNorm` with the gamma `{prefix}.weight`.
fn load_rms_norm(b: &mut Builder, x: ValueId, prefix: &str, d: Dims) -> Result<ValueId, Error> {
    let g = b.weight(&p(prefix, "weight"), &[d.hidden])?;
    b.op(Op::RmsNorm { eps: d.eps }, &[x, g])
}

/// One decoder layer: `x + attn(norm(x))`, then `h + mlp(norm(h))`.
fn load_layer(
    b: &mut Builder,
    c: &LlamaConfig,
    d: Dims,
    prefix: &str,
    x: ValueId,
    mask: ValueId,
    trig: (ValueId, ValueId),
) -> Result<ValueId, Error> {
    let h = load_rms_norm(b, x, &p(prefix, "input_layernorm"), d)?;
    let a = load_attention(b, c, d, &p(prefix, "self_attn"), h, mask, trig)?;
    let x = b.bin(BinaryOp::Add, x, a)?;
    let h = load_rms_norm(b, x, &p(prefix, "post_attention_layernorm"), d)?;
    let m = load_mlp(b, c, d, &p(prefix, "mlp"), h)?;
    b.bin(BinaryOp::Add, x, m)
}

/// Causal grouped-query self-attention with rotary q/k and the key-padding mask.
fn load_attention(
    b: &mut Builder,
    c: &LlamaConfig,
    d: Dims,
    prefix: &str,
    x: ValueId,
    mask: ValueId,
    (cos, sin): (ValueId, ValueId),
) -> Result<ValueId, Error> {
    let (q, k, v) = project_qkv(b, c, d, prefix, x)?;
    let (heads, kv_heads) = head_counts(b, d)?;
    let att = b.op(
        Op::Attention {
            heads,
            kv_heads,
            scale: 1.0 / (d.head_dim as f64).sqrt(),
            causal: true,
            bias: false,
            mask: true,
            rotary: true,
        },
        &[q, k, v, mask, cos, sin],
    )?;
    let merged = b.merge_heads(att)?;
    b.linear(
        merged,
        &p(prefix, "o_proj"),
        d.q_width,
        d.hidden,
        c.attention_bias,
    )
}

/// The q, k and v projections of `x`, split into heads: `[B, heads|kv_heads, S, head_dim]`.
fn project_qkv(
    b: &mut Builder,
    c: &LlamaConfig,
    d: Dims,
    prefix: &str,
    x: ValueId,
) -> Result<(ValueId, ValueId, ValueId), Error> {
    let (qw, kvw, bias) = (d.q_width, d.kv_width, c.attention_bias);
    let q = b.linear(x, &p(prefix, "q_proj"), d.hidden, qw, bias)?;
    let k = b.linear(x, &p(prefix, "k_proj"), d.hidden, kvw, bias)?;
    let v = b.linear(x, &p(prefix, "v_proj"), d.hidden, kvw, bias)?;
    Ok((
        b.split_heads(q, d.heads, d.head_dim)?,
        b.split_heads(k, d.kv_heads, d.head_dim)?,
        b.split_heads(v, d.kv_heads, d.head_dim)?,
    ))
}

/// The head counts as `Op::Attention` takes them.
fn head_counts(b: &Builder, d: Dims) -> Result<(u32, u32), Error> {
    match (u32::try_from(d.heads), u32::try_from(d.kv_heads)) {
        (Ok(h), Ok(kv)) => Ok((h, kv)),
        _ => Err(b.config_error("too many attention heads".to_string())),
    }
}

/// SwiGLU: `down(silu(gate(x)) · up(x))`.
fn load_mlp(
    b: &mut Builder,
    c: &LlamaConfig,
    d: Dims,
    prefix: &str,
    x: ValueId,
) -> Result<ValueId, Error> {
    let bias = c.mlp_bias;
    let gate = b.linear(x, &p(prefix, "gate_proj"), d.hidden, d.inter, bias)?;
    let up = b.linear(x, &p(prefix, "up_proj"), d.hidden, d.inter, bias)?;
    let sig = b.op(Op::Unary(UnaryOp::Sigmoid), &[gate])?;
    let act = b.bin(BinaryOp::Mul, gate, sig)?;
    let h = b.bin(BinaryOp::Mul, act, up)?;
    b.linear(h, &p(prefix, "down_proj"), d.inter, d.hidden, bias)
}
