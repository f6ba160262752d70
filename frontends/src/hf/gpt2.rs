//! GPT-2 (`GPT2LMHeadModel`, and `GPT2Model` without the LM head): token and position
//! embeddings, pre-norm blocks of fused causal attention (with the key-padding mask) and a
//! tanh-GELU MLP, the final norm and the tied LM head.
//!
//! GPT-2's projections are `Conv1D` modules whose weights are stored `[in, out]`, so they are
//! applied as `x @ W + b` without the transpose `nn.Linear` needs. Position ids are
//! `0..seq` for every row, as transformers builds them when no `position_ids` are passed (the
//! attention mask only hides keys; it does not shift positions).

use super::builder::{p, Builder};
use super::checkpoint::Checkpoint;
use super::heads::{self, Head};
use crate::error::Error;
use kiln_compiler::ir::{BinaryOp, DType, Dim, GeluApprox, Graph, Op, UnaryOp, ValueId};
use serde::Deserialize;

/// The fields of a GPT-2 `config.json` that shape the graph, with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct Gpt2Config {
    /// Vocabulary size (rows of `wte`).
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Rows of the position table `wpe`.
    #[serde(default = "default_positions")]
    pub n_positions: usize,
    /// Hidden size.
    #[serde(default = "default_embd")]
    pub n_embd: usize,
    /// Number of blocks.
    #[serde(default = "default_layers")]
    pub n_layer: usize,
    /// Attention heads.
    #[serde(default = "default_heads")]
    pub n_head: usize,
    /// MLP width; `None` means `4·n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// The MLP activation.
    #[serde(default = "default_activation")]
    pub activation_function: String,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// Whether scores are divided by `sqrt(head_dim)`.
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    /// Whether layer `i`'s scores are further divided by `i + 1`.
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Whether the LM head shares `wte`.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

fn default_vocab() -> usize {
    50257
}
fn default_positions() -> usize {
    1024
}
fn default_embd() -> usize {
    768
}
fn default_layers() -> usize {
    12
}
fn default_heads() -> usize {
    12
}
fn default_activation() -> String {
    "gelu_new".to_string()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_true() -> bool {
    true
}

impl Gpt2Config {
    /// The MLP width.
    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(self.n_embd.saturating_mul(4))
    }

    /// Checks the sizes; the message says what is wrong.
    fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_head", self.n_head),
            ("n_inner", self.inner()),
        ] {
            if v == 0 {
                return Err(format!("`{name}` must be positive"));
            }
        }
        let limit = 1usize << 40;
        if [self.vocab_size, self.n_positions, self.n_embd, self.inner()]
            .iter()
            .any(|&v| v > limit)
            || u32::try_from(self.n_head).is_err()
        {
            return Err(format!("a size in the config is larger than {limit}"));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "`n_embd` ({}) is not a multiple of `n_head` ({})",
                self.n_embd, self.n_head
            ));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return Err("`layer_norm_epsilon` must be a finite, non-negative number".into());
        }
        Ok(())
    }
}

/// The op an `activation_function` names, or `None` when Kiln does not support it.
fn activation(name: &str) -> Option<Op> {
    Some(match name {
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Op::Gelu {
            approx: GeluApprox::Tanh,
        },
        "gelu" => Op::Gelu {
            approx: GeluApprox::None,
        },
        "relu" => Op::Unary(UnaryOp::Relu),
        _ => return None,
    })
}

/// Builds `GPT2LMHeadModel` (`Head::CausalLm`, output `logits` `[batch, seq, vocab_size]`) or
/// `GPT2Model` (`Head::Base`, output `last_hidden_state`) into IR: inputs `input_ids`,
/// `attention_mask` (`i64 [batch, seq]`).
pub fn build(cfg: &serde_json::Value, ck: &Checkpoint, head: Head) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c: Gpt2Config = serde_json::from_value(cfg.clone())
        .map_err(|e| b.config_error(format!("not a GPT-2 config: {e}")))?;
    c.validate().map_err(|m| b.config_error(m))?;
    if activation(&c.activation_function).is_none() {
        return Err(b.config_error(format!(
            "activation_function `{}` is not supported (gelu_new, gelu_pytorch_tanh, gelu_fast, \
             gelu, relu are)",
            c.activation_function
        )));
    }
    let ids = b.input("input_ids", DType::I64, &["batch", "seq"])?;
    let mask = b.input("attention_mask", DType::I64, &["batch", "seq"])?;
    b.limit_ids(
        "input_ids",
        "vocab_size",
        c.vocab_size,
        Some(("n_positions", c.n_positions)),
    );
    let (mut h, wte) = load_embeddings(&mut b, &c, ids)?;
    for i in 0..c.n_layer {
        h = load_block(&mut b, &c, &p("h", i), i, h, mask, false)?;
    }
    let h = b.layer_norm(h, "ln_f", c.n_embd, c.layer_norm_epsilon)?;
    match head {
        Head::Base => b.finish(&[("last_hidden_state", h)]),
        Head::CausalLm => {
            let logits = load_lm_head(&mut b, &c, h, wte)?;
            b.finish(&[("logits", logits)])
        }
        _ => Err(heads::not_built(&b, "GPT-2", head)),
    }
}

/// `GPT2LMHeadModel` with a key/value cache (see [`super::decoder`]): inputs `input_ids`,
/// `position_ids` (rows of `wpe`), `attention_mask`, states `past.N.key|value`, output the
/// last position's `logits: [batch, 1, vocab]`.
pub fn build_cached(cfg: &serde_json::Value, ck: &Checkpoint) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c: Gpt2Config = serde_json::from_value(cfg.clone())
        .map_err(|e| b.config_error(format!("not a GPT-2 config: {e}")))?;
    c.validate().map_err(|m| b.config_error(m))?;
    if activation(&c.activation_function).is_none() {
        return Err(b.config_error(format!(
            "activation_function `{}` is not supported",
            c.activation_function
        )));
    }
    let io = super::decoder::declare_inputs(&mut b)?;
    b.limit_ids("input_ids", "vocab_size", c.vocab_size, None);
    let wte = b.weight("wte.weight", &[c.vocab_size, c.n_embd])?;
    let wpe = b.weight("wpe.weight", &[c.n_positions, c.n_embd])?;
    let tok = b.op(Op::Gather { axis: 0 }, &[wte, io.ids])?;
    // Gather refuses a position past the table: n_positions bounds past + seq.
    let pos = b.op(Op::Gather { axis: 0 }, &[wpe, io.positions])?;
    let mut h = b.bin(BinaryOp::Add, tok, pos)?;
    for i in 0..c.n_layer {
        h = load_block(&mut b, &c, &p("h", i), i, h, io.mask, true)?;
    }
    let h = super::decoder::last_position(&mut b, h)?;
    let h = b.layer_norm(h, "ln_f", c.n_embd, c.layer_norm_epsilon)?;
    let logits = load_lm_head(&mut b, &c, h, wte)?;
    b.finish(&[("logits", logits)])
}

/// `wte[input_ids] + wpe[0..seq]`; also returns `wte` for the tied head.
pub fn load_embeddings(
    b: &mut Builder,
    c: &Gpt2Config,
    ids: ValueId,
) -> Result<(ValueId, ValueId), Error> {
    let wte = b.weight("wte.weight", &[c.vocab_size, c.n_embd])?;
    let wpe = b.weight("wpe.weight", &[c.n_positions, c.n_embd])?;
    let tok = b.op(Op::Gather { axis: 0 }, &[wte, ids])?;
    let pos = b.position_embeddings(wpe)?;
    Ok((b.bin(BinaryOp::Add, tok, pos)?, wte))
}

/// A GPT-2 `Conv1D`: `x @ W + b` with `{prefix}.weight` stored `[inp, out]` and `{prefix}.bias`
/// `[out]` (optional).
pub fn conv1d(
    b: &mut Builder,
    x: ValueId,
    prefix: &str,
    inp: usize,
    out: usize,
) -> Result<ValueId, Error> {
    let w = b.weight(&p(prefix, "weight"), &[inp, out])?;
    let y = b.op(Op::MatMul, &[x, w])?;
    match b.opt_weight(&p(prefix, "bias"), &[out])? {
        Some(bias) => b.bin(BinaryOp::Add, y, bias),
        None => Ok(y),
    }
}

/// One block `h.{layer}`: `x + attn(ln_1(x))`, then `+ mlp(ln_2(·))`; `cached` reads and
/// writes the layer's key/value cache (see [`super::decoder`]).
pub fn load_block(
    b: &mut Builder,
    c: &Gpt2Config,
    prefix: &str,
    layer: usize,
    x: ValueId,
    mask: ValueId,
    cached: bool,
) -> Result<ValueId, Error> {
    let eps = c.layer_norm_epsilon;
    let n1 = b.layer_norm(x, &p(prefix, "ln_1"), c.n_embd, eps)?;
    let a = load_attention(b, c, &p(prefix, "attn"), layer, n1, mask, cached)?;
    let x = b.bin(BinaryOp::Add, x, a)?;
    let n2 = b.layer_norm(x, &p(prefix, "ln_2"), c.n_embd, eps)?;
    let m = load_mlp(b, c, &p(prefix, "mlp"), n2)?;
    b.bin(BinaryOp::Add, x, m)
}

/// `attn`: the fused `c_attn` split into q, k, v, causal attention with the padding mask (over
/// the layer's key/value cache when `cached`), then `c_proj`.
pub fn load_attention(
    b: &mut Builder,
    c: &Gpt2Config,
    prefix: &str,
    layer: usize,
    x: ValueId,
    mask: ValueId,
    cached: bool,
) -> Result<ValueId, Error> {
    let (e, heads) = (c.n_embd, c.n_head);
    let d = e / heads;
    let heads32 =
        u32::try_from(heads).map_err(|_| b.config_error("`n_head` is too large".into()))?;
    let qkv = conv1d(b, x, &p(prefix, "c_attn"), e, 3 * e)?;
    let sizes = vec![Dim::known(e as i64); 3];
    let parts = b.graph.add_node(Op::Split { axis: -1, sizes }, &[qkv])?;
    let [q, k, v] = parts[..] else {
        return Err(b.config_error("c_attn did not split into q, k, v".into()));
    };
    let q = b.split_heads(q, heads, d)?;
    let k = b.split_heads(k, heads, d)?;
    let v = b.split_heads(v, heads, d)?;
    let (k, v) = if cached {
        super::decoder::cached_kv(b, layer, k, v, heads, d)?
    } else {
        (k, v)
    };
    let mut scale = if c.scale_attn_weights {
        1.0 / (d as f64).sqrt()
    } else {
        1.0
    };
    if c.scale_attn_by_inverse_layer_idx {
        scale /= (layer + 1) as f64;
    }
    let att = b.op(
        Op::Attention {
            heads: heads32,
            kv_heads: heads32,
            scale,
            causal: true,
            bias: false,
            mask: true,
            rotary: false,
        },
        &[q, k, v, mask],
    )?;
    let merged = b.merge_heads(att)?;
    conv1d(b, merged, &p(prefix, "c_proj"), e, e)
}

/// `mlp`: `c_proj(act(c_fc(x)))`.
pub fn load_mlp(
    b: &mut Builder,
    c: &Gpt2Config,
    prefix: &str,
    x: ValueId,
) -> Result<ValueId, Error> {
    let inner = c.inner();
    let h = conv1d(b, x, &p(prefix, "c_fc"), c.n_embd, inner)?;
    let act = activation(&c.activation_function).ok_or_else(|| {
        b.config_error(format!(
            "activation_function `{}` is not supported",
            c.activation_function
        ))
    })?;
    let h = b.op(act, &[h])?;
    conv1d(b, h, &p(prefix, "c_proj"), inner, c.n_embd)
}

/// The LM head: `h @ wteᵀ` when tied (or when the checkpoint has no `lm_head.weight`), else
/// `h @ lm_head.weightᵀ` (`[vocab, n_embd]`, no bias).
pub fn load_lm_head(
    b: &mut Builder,
    c: &Gpt2Config,
    h: ValueId,
    wte: ValueId,
) -> Result<ValueId, Error> {
    let head = if c.tie_word_embeddings {
        None
    } else {
        b.opt_weight("lm_head.weight", &[c.vocab_size, c.n_embd])?
    };
    let w = head.unwrap_or(wte);
    let wt = b.op(Op::Transpose { perm: vec![1, 0] }, &[w])?;
    b.op(Op::MatMul, &[h, wt])
}
