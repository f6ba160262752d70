//! BERT (`BertModel`, and BERT-shaped checkpoints such as all-MiniLM-L6-v2) built straight into
//! IR: embeddings, then encoder layers of fused `attention` and `layer_norm`, to
//! `last_hidden_state`.
//!
//! Graph inputs are `input_ids`, `attention_mask` and `token_type_ids`, all `i64[batch, seq]`;
//! callers without segment ids pass zeros for `token_type_ids`, and callers without padding pass
//! ones for `attention_mask`. Position ids are made inside the graph (`0..seq`). The pooler is
//! not built: its weights are ignored.

use super::builder::{p, Builder};
use super::checkpoint::Checkpoint;
use crate::error::Error;
use kiln_compiler::ir::{BinaryOp, DType, GeluApprox, Graph, Op, UnaryOp, ValueId};
use serde::Deserialize;

/// The fields of a BERT `config.json` that shape the graph, with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    /// Rows of the word embedding table.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (`hidden_size` must be a multiple).
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// The feed-forward activation (`gelu`, `gelu_new`, `gelu_pytorch_tanh`, `relu`, `silu`).
    pub hidden_act: String,
    /// Rows of the position embedding table (the longest sequence).
    pub max_position_embeddings: usize,
    /// Rows of the token-type (segment) embedding table.
    pub type_vocab_size: usize,
    /// The epsilon of every LayerNorm.
    pub layer_norm_eps: f64,
    /// Only `absolute` is supported.
    pub position_embedding_type: String,
    /// Decoder BERTs (causal, cross-attention) are not supported.
    pub is_decoder: bool,
}

impl Default for BertConfig {
    fn default() -> BertConfig {
        BertConfig {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".to_string(),
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            position_embedding_type: "absolute".to_string(),
            is_decoder: false,
        }
    }
}

impl BertConfig {
    /// Parses and checks the config; problems are messages for [`Error::Config`].
    pub fn parse(cfg: &serde_json::Value) -> Result<BertConfig, String> {
        let c: BertConfig = serde_json::from_value(cfg.clone())
            .map_err(|e| format!("not a valid BERT config: {e}"))?;
        if c.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type `{}` is not supported (only `absolute`)",
                c.position_embedding_type
            ));
        }
        if c.is_decoder {
            return Err("decoder BERT (`is_decoder: true`) is not supported".to_string());
        }
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                c.hidden_size, c.num_attention_heads
            ));
        }
        if u32::try_from(c.num_attention_heads).is_err() {
            return Err("num_attention_heads is too large".to_string());
        }
        activation_of(&c.hidden_act)?;
        Ok(c)
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// The feed-forward activations BERT configs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    Gelu(GeluApprox),
    Relu,
    Silu,
}

fn activation_of(name: &str) -> Result<Activation, String> {
    Ok(match name {
        "gelu" => Activation::Gelu(GeluApprox::None),
        "gelu_new" | "gelu_pytorch_tanh" => Activation::Gelu(GeluApprox::Tanh),
        "relu" => Activation::Relu,
        "silu" | "swish" => Activation::Silu,
        other => {
            return Err(format!(
                "hidden_act `{other}` is not supported (gelu, gelu_new, gelu_pytorch_tanh, \
                 relu, silu)"
            ))
        }
    })
}

fn activate(b: &mut Builder, x: ValueId, act: Activation) -> Result<ValueId, Error> {
    match act {
        Activation::Gelu(approx) => b.op(Op::Gelu { approx }, &[x]),
        Activation::Relu => b.op(Op::Unary(UnaryOp::Relu), &[x]),
        Activation::Silu => {
            let s = b.op(Op::Unary(UnaryOp::Sigmoid), &[x])?;
            b.bin(BinaryOp::Mul, x, s)
        }
    }
}

/// The graph inputs of a BERT model.
#[derive(Debug, Clone, Copy)]
pub struct BertInputs {
    /// `input_ids: i64[batch, seq]`.
    pub input_ids: ValueId,
    /// `attention_mask: i64[batch, seq]` (non-zero = attend).
    pub attention_mask: ValueId,
    /// `token_type_ids: i64[batch, seq]` (zeros when the caller has none).
    pub token_type_ids: ValueId,
}

/// Word + position + token-type embeddings, then LayerNorm: `[batch, seq, hidden]`.
pub fn load_embeddings(
    b: &mut Builder,
    c: &BertConfig,
    prefix: &str,
    inputs: &BertInputs,
) -> Result<ValueId, Error> {
    let h = c.hidden_size;
    let word = b.weight(&p(prefix, "word_embeddings.weight"), &[c.vocab_size, h])?;
    let pos = b.weight(
        &p(prefix, "position_embeddings.weight"),
        &[c.max_position_embeddings, h],
    )?;
    let types = b.weight(
        &p(prefix, "token_type_embeddings.weight"),
        &[c.type_vocab_size, h],
    )?;
    let x = b.op(Op::Gather { axis: 0 }, &[word, inputs.input_ids])?;
    let pe = b.position_embeddings(pos)?;
    let te = b.op(Op::Gather { axis: 0 }, &[types, inputs.token_type_ids])?;
    let x = b.bin(BinaryOp::Add, x, pe)?;
    let x = b.bin(BinaryOp::Add, x, te)?;
    b.layer_norm(x, &p(prefix, "LayerNorm"), h, c.layer_norm_eps)
}

/// Multi-head self-attention (`{prefix}.query/key/value`) with the key-padding mask:
/// `[batch, seq, hidden]`, before the output projection.
pub fn load_self_attention(
    b: &mut Builder,
    c: &BertConfig,
    prefix: &str,
    x: ValueId,
    mask: ValueId,
) -> Result<ValueId, Error> {
    let (h, heads, d) = (c.hidden_size, c.num_attention_heads, c.head_dim());
    let q = b.linear(x, &p(prefix, "query"), h, h, true)?;
    let k = b.linear(x, &p(prefix, "key"), h, h, true)?;
    let v = b.linear(x, &p(prefix, "value"), h, h, true)?;
    let q = b.split_heads(q, heads, d)?;
    let k = b.split_heads(k, heads, d)?;
    let v = b.split_heads(v, heads, d)?;
    let heads = u32::try_from(heads).map_err(|_| b.config_error("too many heads".into()))?;
    let a = b.op(
        Op::Attention {
            heads,
            kv_heads: heads,
            scale: 1.0 / (d as f64).sqrt(),
            causal: false,
            bias: false,
            mask: true,
            rotary: false,
        },
        &[q, k, v, mask],
    )?;
    b.merge_heads(a)
}

/// One encoder layer (`encoder.layer.{i}`): attention block and feed-forward block, each with a
/// residual connection and a post-LayerNorm.
pub fn load_layer(
    b: &mut Builder,
    c: &BertConfig,
    prefix: &str,
    x: ValueId,
    mask: ValueId,
) -> Result<ValueId, Error> {
    let (h, eps) = (c.hidden_size, c.layer_norm_eps);
    let att = p(prefix, "attention");
    let a = load_self_attention(b, c, &p(&att, "self"), x, mask)?;
    let out = p(&att, "output");
    let a = b.linear(a, &p(&out, "dense"), h, h, true)?;
    let a = b.bin(BinaryOp::Add, a, x)?;
    let a = b.layer_norm(a, &p(&out, "LayerNorm"), h, eps)?;
    let f = b.linear(
        a,
        &p(prefix, "intermediate.dense"),
        h,
        c.intermediate_size,
        true,
    )?;
    let f = activate(
        b,
        f,
        activation_of(&c.hidden_act).map_err(|m| b.config_error(m))?,
    )?;
    let f = b.linear(f, &p(prefix, "output.dense"), c.intermediate_size, h, true)?;
    let f = b.bin(BinaryOp::Add, f, a)?;
    b.layer_norm(f, &p(prefix, "output.LayerNorm"), h, eps)
}

/// Every encoder layer in turn (`{prefix}.layer.{i}`).
pub fn load_encoder(
    b: &mut Builder,
    c: &BertConfig,
    prefix: &str,
    mut x: ValueId,
    mask: ValueId,
) -> Result<ValueId, Error> {
    let layers = p(prefix, "layer");
    for i in 0..c.num_hidden_layers {
        x = load_layer(b, c, &p(&layers, i), x, mask)?;
    }
    Ok(x)
}

/// Builds `BertModel` from its config and checkpoint; the output is `last_hidden_state`.
pub fn build(cfg: &serde_json::Value, ck: &Checkpoint) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = BertConfig::parse(cfg).map_err(|m| b.config_error(m))?;
    let dims = ["batch", "seq"];
    let inputs = BertInputs {
        input_ids: b.input("input_ids", DType::I64, &dims)?,
        attention_mask: b.input("attention_mask", DType::I64, &dims)?,
        token_type_ids: b.input("token_type_ids", DType::I64, &dims)?,
    };
    let positions = Some(("max_position_embeddings", c.max_position_embeddings));
    b.limit_ids("input_ids", "vocab_size", c.vocab_size, positions);
    b.limit_ids(
        "token_type_ids",
        "type_vocab_size",
        c.type_vocab_size,
        positions,
    );
    let x = load_embeddings(&mut b, &c, "embeddings", &inputs)?;
    let x = load_encoder(&mut b, &c, "encoder", x, inputs.attention_mask)?;
    b.finish(&[("last_hidden_state", x)])
}
