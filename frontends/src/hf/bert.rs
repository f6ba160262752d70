//! BERT (`BertModel` and its task heads, and BERT-shaped checkpoints such as all-MiniLM-L6-v2)
//! built straight into IR: embeddings, then encoder layers of fused `attention` and `layer_norm`,
//! to `last_hidden_state`; the heads on top are `heads.rs`'s.
//!
//! Graph inputs are `input_ids`, `attention_mask` and `token_type_ids`, all `i64[batch, seq]`;
//! callers without segment ids pass zeros for `token_type_ids`, and callers without padding pass
//! ones for `attention_mask`. Position ids are made inside the graph (`0..seq`). The embeddings
//! and encoder are shared with RoBERTa (`roberta.rs`), which computes its own position ids.

use super::builder::{p, Builder};
use super::checkpoint::Checkpoint;
use super::heads::{self, Encoded, EncoderHeads, Head};
use crate::error::Error;
use kiln_compiler::ir::{BinaryOp, DType, GeluApprox, Graph, Op, UnaryOp, ValueId};
use serde::{Deserialize, Serialize};

/// The fields of a BERT `config.json` that shape the graph, with transformers' defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The padding token (RoBERTa numbers positions after it).
    pub pad_token_id: Option<i64>,
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
            pad_token_id: Some(0),
        }
    }
}

impl BertConfig {
    /// Parses and checks the config; problems are messages for [`Error::Config`].
    pub fn parse(cfg: &serde_json::Value) -> Result<BertConfig, String> {
        BertConfig::parse_over(cfg, &BertConfig::default())
    }

    /// [`BertConfig::parse`] with another family's defaults for the fields `config.json` lacks.
    pub fn parse_over(
        cfg: &serde_json::Value,
        defaults: &BertConfig,
    ) -> Result<BertConfig, String> {
        let given = cfg.as_object().ok_or("config.json is not a JSON object")?;
        let mut merged = serde_json::to_value(defaults).map_err(|e| e.to_string())?;
        if let Some(m) = merged.as_object_mut() {
            for (k, v) in given {
                m.insert(k.clone(), v.clone());
            }
        }
        let c: BertConfig =
            serde_json::from_value(merged).map_err(|e| format!("not a valid BERT config: {e}"))?;
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

    /// The feed-forward activation.
    pub fn activation(&self) -> Result<Activation, String> {
        activation_of(&self.hidden_act)
    }
}

/// The feed-forward activations BERT configs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// GELU with the given formula.
    Gelu(GeluApprox),
    /// `max(x, 0)`.
    Relu,
    /// `x·sigmoid(x)`.
    Silu,
}

/// The activation a `hidden_act` (or DistilBERT `activation`) names.
pub fn activation_of(name: &str) -> Result<Activation, String> {
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

/// Applies an activation.
pub fn activate(b: &mut Builder, x: ValueId, act: Activation) -> Result<ValueId, Error> {
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
    /// `token_type_ids: i64[batch, seq]`; `None` uses row 0 of the token-type table everywhere.
    pub token_type_ids: Option<ValueId>,
    /// Position ids `i64[batch, seq]`; `None` uses `0..seq`.
    pub position_ids: Option<ValueId>,
}

/// Declares BERT's three graph inputs and their limits (ids below the table sizes, at most
/// `max_position_embeddings` tokens).
pub fn declare_inputs(b: &mut Builder, c: &BertConfig) -> Result<BertInputs, Error> {
    let dims = ["batch", "seq"];
    let inputs = BertInputs {
        input_ids: b.input("input_ids", DType::I64, &dims)?,
        attention_mask: b.input("attention_mask", DType::I64, &dims)?,
        token_type_ids: Some(b.input("token_type_ids", DType::I64, &dims)?),
        position_ids: None,
    };
    let positions = Some(("max_position_embeddings", c.max_position_embeddings));
    b.limit_ids("input_ids", "vocab_size", c.vocab_size, positions);
    b.limit_ids(
        "token_type_ids",
        "type_vocab_size",
        c.type_vocab_size,
        positions,
    );
    Ok(inputs)
}

/// Word + position + token-type embeddings, then LayerNorm: `[batch, seq, hidden]`, and the word
/// table (`[vocab, hidden]`, which masked-LM heads reuse as their decoder).
pub fn load_embeddings(
    b: &mut Builder,
    c: &BertConfig,
    prefix: &str,
    inputs: &BertInputs,
) -> Result<(ValueId, ValueId), Error> {
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
    let pe = match inputs.position_ids {
        Some(ids) => b.op(Op::Gather { axis: 0 }, &[pos, ids])?,
        None => b.position_embeddings(pos)?,
    };
    let type_ids = match inputs.token_type_ids {
        Some(ids) => ids,
        None => b.const_i64("token_type_id", vec![], vec![0])?,
    };
    let te = b.op(Op::Gather { axis: 0 }, &[types, type_ids])?;
    let x = b.bin(BinaryOp::Add, x, pe)?;
    let x = b.bin(BinaryOp::Add, x, te)?;
    let x = b.layer_norm(x, &p(prefix, "LayerNorm"), h, c.layer_norm_eps)?;
    Ok((x, word))
}

/// Embeddings and encoder (`embeddings.*`, `encoder.*`): the base model's `last_hidden_state`.
pub fn load_base(b: &mut Builder, c: &BertConfig, inputs: &BertInputs) -> Result<Encoded, Error> {
    let (x, word) = load_embeddings(b, c, "embeddings", inputs)?;
    let hidden = load_encoder(b, c, "encoder", x, inputs.attention_mask)?;
    Ok(Encoded {
        hidden,
        word,
        width: c.hidden_size,
        vocab: c.vocab_size,
    })
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
    let names = ["query", "key", "value"].map(|n| p(prefix, n));
    masked_attention(b, c.hidden_size, c.num_attention_heads, &names, x, mask)
}

/// Bidirectional multi-head self-attention with the key-padding mask, the projections named by
/// `qkv` (`nn.Linear`s `[width, width]` with biases): `[batch, seq, width]`, before the output
/// projection.
pub fn masked_attention(
    b: &mut Builder,
    width: usize,
    heads: usize,
    qkv: &[String; 3],
    x: ValueId,
    mask: ValueId,
) -> Result<ValueId, Error> {
    let d = width / heads.max(1);
    let mut parts = Vec::with_capacity(4);
    for name in qkv {
        let y = b.linear(x, name, width, width, true)?;
        parts.push(b.split_heads(y, heads, d)?);
    }
    parts.push(mask);
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
        &parts,
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

/// Builds `BertModel` (output `last_hidden_state`) or one of its task heads from its config
/// and checkpoint.
pub fn build(cfg: &serde_json::Value, ck: &Checkpoint, head: Head) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = BertConfig::parse(cfg).map_err(|m| b.config_error(m))?;
    let inputs = declare_inputs(&mut b, &c)?;
    let enc = load_base(&mut b, &c, &inputs)?;
    let act = c.activation().map_err(|m| b.config_error(m))?;
    let names = EncoderHeads {
        mlm_transform: "cls.predictions.transform.dense",
        mlm_act: act,
        mlm_norm: "cls.predictions.transform.LayerNorm",
        mlm_eps: c.layer_norm_eps,
        mlm_decoder: "cls.predictions.decoder",
        mlm_bias: &["cls.predictions.bias", "cls.predictions.decoder.bias"],
        cls_dense: "pooler.dense",
        cls_act: Op::Unary(UnaryOp::Tanh),
        cls_out: "classifier",
        token_out: "classifier",
    };
    heads::encoder_head(b, cfg, &enc, &names, head)
}
