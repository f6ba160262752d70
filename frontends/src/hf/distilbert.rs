//! DistilBERT (`model_type` `distilbert`): `DistilBertModel` and its task heads. Word and
//! position embeddings (no token types) with a LayerNorm, then `transformer.layer.N` blocks of
//! post-LayerNorm attention (`q_lin`/`k_lin`/`v_lin`/`out_lin`, `sa_layer_norm`) and
//! feed-forward (`ffn.lin1`/`lin2`, `output_layer_norm`); every LayerNorm has epsilon 1e-12.
//!
//! Graph inputs are `input_ids` and `attention_mask` (`i64[batch, seq]`); positions are `0..seq`.
//! The heads: masked-LM `vocab_transform` + activation + `vocab_layer_norm` + `vocab_projector`
//! (tied to the word embeddings), sequence classification `pre_classifier` + ReLU +
//! `classifier` on the first token, token classification `classifier`, `qa_outputs`.

use super::bert::{activate, activation_of, masked_attention, Activation};
use super::builder::{p, Builder};
use super::checkpoint::Checkpoint;
use super::heads::{self, Encoded, EncoderHeads, Head};
use crate::error::Error;
use kiln_compiler::ir::{BinaryOp, DType, Graph, Op, UnaryOp, ValueId};
use serde::Deserialize;

/// DistilBERT's fixed LayerNorm epsilon.
const EPS: f64 = 1e-12;

/// The fields of a DistilBERT `config.json` that shape the graph, with transformers' defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct DistilBertConfig {
    /// Rows of the word embedding table.
    pub vocab_size: usize,
    /// Rows of the position embedding table (the longest sequence).
    pub max_position_embeddings: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Attention heads per block.
    pub n_heads: usize,
    /// Width of every hidden state.
    pub dim: usize,
    /// Width of the feed-forward block.
    pub hidden_dim: usize,
    /// The feed-forward (and masked-LM transform) activation.
    pub activation: String,
}

impl Default for DistilBertConfig {
    fn default() -> DistilBertConfig {
        DistilBertConfig {
            vocab_size: 30522,
            max_position_embeddings: 512,
            n_layers: 6,
            n_heads: 12,
            dim: 768,
            hidden_dim: 3072,
            activation: "gelu".to_string(),
        }
    }
}

impl DistilBertConfig {
    /// Parses and checks a config: sizes non-zero, heads dividing the width, a supported
    /// activation.
    pub fn parse(cfg: &serde_json::Value) -> Result<(DistilBertConfig, Activation), String> {
        let c: DistilBertConfig = serde_json::from_value(cfg.clone())
            .map_err(|e| format!("not a valid DistilBERT config: {e}"))?;
        let sizes = [
            ("vocab_size", c.vocab_size),
            ("max_position_embeddings", c.max_position_embeddings),
            ("n_heads", c.n_heads),
            ("dim", c.dim),
            ("hidden_dim", c.hidden_dim),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be positive"));
        }
        if !c.dim.is_multiple_of(c.n_heads) {
            return Err(format!(
                "`dim` {} is not a multiple of `n_heads` {}",
                c.dim, c.n_heads
            ));
        }
        let act =
            activation_of(&c.activation).map_err(|m| m.replace("hidden_act", "activation"))?;
        Ok((c, act))
    }
}

/// Word + position embeddings, then LayerNorm; also returns the word table.
pub fn load_embeddings(
    b: &mut Builder,
    c: &DistilBertConfig,
    ids: ValueId,
) -> Result<(ValueId, ValueId), Error> {
    let word = b.weight("embeddings.word_embeddings.weight", &[c.vocab_size, c.dim])?;
    let pos = b.weight(
        "embeddings.position_embeddings.weight",
        &[c.max_position_embeddings, c.dim],
    )?;
    let x = b.op(Op::Gather { axis: 0 }, &[word, ids])?;
    let pe = b.position_embeddings(pos)?;
    let x = b.bin(BinaryOp::Add, x, pe)?;
    let x = b.layer_norm(x, "embeddings.LayerNorm", c.dim, EPS)?;
    Ok((x, word))
}

/// One block `transformer.layer.{i}`: attention and feed-forward, each with a residual and a
/// post-LayerNorm.
pub fn load_layer(
    b: &mut Builder,
    c: &DistilBertConfig,
    act: Activation,
    prefix: &str,
    x: ValueId,
    mask: ValueId,
) -> Result<ValueId, Error> {
    let att = p(prefix, "attention");
    let names = ["q_lin", "k_lin", "v_lin"].map(|n| p(&att, n));
    let a = masked_attention(b, c.dim, c.n_heads, &names, x, mask)?;
    let a = b.linear(a, &p(&att, "out_lin"), c.dim, c.dim, true)?;
    let a = b.bin(BinaryOp::Add, a, x)?;
    let a = b.layer_norm(a, &p(prefix, "sa_layer_norm"), c.dim, EPS)?;
    let f = b.linear(a, &p(prefix, "ffn.lin1"), c.dim, c.hidden_dim, true)?;
    let f = activate(b, f, act)?;
    let f = b.linear(f, &p(prefix, "ffn.lin2"), c.hidden_dim, c.dim, true)?;
    let f = b.bin(BinaryOp::Add, f, a)?;
    b.layer_norm(f, &p(prefix, "output_layer_norm"), c.dim, EPS)
}

/// Builds `DistilBertModel` (output `last_hidden_state`) or one of its task heads.
pub fn build(cfg: &serde_json::Value, ck: &Checkpoint, head: Head) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let (c, act) = DistilBertConfig::parse(cfg).map_err(|m| b.config_error(m))?;
    let ids = b.input("input_ids", DType::I64, &["batch", "seq"])?;
    let mask = b.input("attention_mask", DType::I64, &["batch", "seq"])?;
    b.limit_ids(
        "input_ids",
        "vocab_size",
        c.vocab_size,
        Some(("max_position_embeddings", c.max_position_embeddings)),
    );
    let (mut x, word) = load_embeddings(&mut b, &c, ids)?;
    for i in 0..c.n_layers {
        x = load_layer(&mut b, &c, act, &p("transformer.layer", i), x, mask)?;
    }
    let enc = Encoded {
        hidden: x,
        word,
        width: c.dim,
        vocab: c.vocab_size,
    };
    let names = EncoderHeads {
        mlm_transform: "vocab_transform",
        mlm_act: act,
        mlm_norm: "vocab_layer_norm",
        mlm_eps: EPS,
        mlm_decoder: "vocab_projector",
        mlm_bias: &["vocab_projector.bias"],
        cls_dense: "pre_classifier",
        cls_act: Op::Unary(UnaryOp::Relu),
        cls_out: "classifier",
        token_out: "classifier",
    };
    heads::encoder_head(b, cfg, &enc, &names, head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_transformers_and_bad_configs_are_errors() {
        let (c, act) = DistilBertConfig::parse(&serde_json::json!({})).unwrap();
        assert_eq!(c, DistilBertConfig::default());
        assert_eq!(act, activation_of("gelu").unwrap());
        for (cfg, want) in [
            (
                serde_json::json!({"dim": 10, "n_heads": 3}),
                "not a multiple",
            ),
            (
                serde_json::json!({"activation": "mish"}),
                "activation `mish`",
            ),
            (
                serde_json::json!({"n_heads": 0}),
                "`n_heads` must be positive",
            ),
            (
                serde_json::json!({"dim": "wide"}),
                "not a valid DistilBERT config",
            ),
        ] {
            let e = DistilBertConfig::parse(&cfg).unwrap_err();
            assert!(e.contains(want), "{cfg}: {e}");
        }
    }
}
