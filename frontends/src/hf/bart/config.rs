//! BART's `config.json` ([`BartConfig`]: transformers' `BartConfig` defaults, the checks, and the
//! refusal of the settings of BART's relatives that plain BART does not have).

use crate::error::Error;
use crate::hf::builder::Builder;
use crate::hf::sizes::{check_encoder_decoder, check_sizes};
use crate::hf::whisper::activation;
use kiln_compiler::ir::ValueId;
use serde::Deserialize;

/// The architectures [`super::build_encoder_with_cross_kv`] and [`super::build_cached_decoder`]
/// build (an empty `architectures` list counts as the first).
pub const ARCHITECTURES: &[&str] = &["BartForConditionalGeneration", "BartModel"];

/// BART's LayerNorm epsilon (PyTorch's default; the config has no field for it).
pub const EPS: f64 = 1e-5;

/// Rows of `embed_positions` before position 0 (`BartLearnedPositionalEmbedding.offset`).
pub const POSITION_OFFSET: i64 = 2;

/// The fields of a BART `config.json` that shape the graphs, with transformers' defaults
/// (`facebook/bart-large`).
#[derive(Debug, Clone, Deserialize)]
pub struct BartConfig {
    /// Vocabulary size (rows of `model.shared`).
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Hidden size.
    #[serde(default = "default_d_model")]
    pub d_model: usize,
    /// Encoder layers.
    #[serde(default = "default_layers")]
    pub encoder_layers: usize,
    /// Decoder layers.
    #[serde(default = "default_layers")]
    pub decoder_layers: usize,
    /// Encoder attention heads.
    #[serde(default = "default_heads")]
    pub encoder_attention_heads: usize,
    /// Decoder attention heads.
    #[serde(default = "default_heads")]
    pub decoder_attention_heads: usize,
    /// Encoder MLP width.
    #[serde(default = "default_ffn")]
    pub encoder_ffn_dim: usize,
    /// Decoder MLP width.
    #[serde(default = "default_ffn")]
    pub decoder_ffn_dim: usize,
    /// Positions of the learned position tables (which have 2 more rows).
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    /// The MLP activation (`gelu`: exact).
    #[serde(default = "default_activation")]
    pub activation_function: String,
    /// Whether token embeddings are multiplied by `sqrt(d_model)`.
    #[serde(default)]
    pub scale_embedding: bool,
    /// Whether `lm_head` shares `model.shared`.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

fn default_vocab() -> usize {
    50265
}
fn default_d_model() -> usize {
    1024
}
fn default_layers() -> usize {
    12
}
fn default_heads() -> usize {
    16
}
fn default_ffn() -> usize {
    4096
}
fn default_positions() -> usize {
    1024
}
fn default_activation() -> String {
    "gelu".to_string()
}
fn default_true() -> bool {
    true
}

/// Settings of fairseq-style configs (mBART, and BART checkpoints converted from fairseq carry
/// them) that would change the layer layout if they were honoured: `(key, BART's value)`.
/// transformers' `BartModel` ignores them, so a config that sets another value is a different
/// model Kiln refuses rather than builds as plain BART.
const LAYOUT_SETTINGS: &[(&str, bool)] = &[
    ("normalize_before", false),
    ("add_final_layer_norm", false),
    ("normalize_embedding", true),
    ("static_position_embeddings", false),
    ("add_bias_logits", false),
];

impl BartConfig {
    /// Parses and checks `cfg` (a `model_type` of `bart`, a BART architecture, the layout
    /// settings of plain BART); errors name the folder's `config.json` and the setting.
    pub fn from_json(b: &Builder, cfg: &serde_json::Value) -> Result<BartConfig, Error> {
        let path = b.checkpoint().dir().join("config.json");
        let model_type = cfg.get("model_type").and_then(|m| m.as_str());
        if model_type != Some("bart") {
            return Err(Error::UnsupportedArchitecture {
                path,
                found: format!(
                    "model_type `{}` (for BART generation)",
                    model_type.unwrap_or("(none)")
                ),
                supported: vec!["bart"],
            });
        }
        if let Some(archs) = cfg.get("architectures").and_then(|a| a.as_array()) {
            let names: Vec<&str> = archs.iter().filter_map(|a| a.as_str()).collect();
            if !names.is_empty() && !names.iter().any(|n| ARCHITECTURES.contains(n)) {
                return Err(Error::UnsupportedArchitecture {
                    path,
                    found: names.join(", "),
                    supported: ARCHITECTURES.to_vec(),
                });
            }
        }
        for &(key, plain) in LAYOUT_SETTINGS {
            if let Some(v) = cfg.get(key).and_then(|v| v.as_bool()) {
                if v != plain {
                    return Err(b.config_error(format!(
                        "`{key}: {v}` is not plain BART (which has `{key}: {plain}`); \
                         this variant is not supported"
                    )));
                }
            }
        }
        let c: BartConfig = serde_json::from_value(cfg.clone())
            .map_err(|e| b.config_error(format!("not a BART config: {e}")))?;
        c.validate().map_err(|m| b.config_error(m))?;
        Ok(c)
    }

    /// Checks the sizes and the activation; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        check_sizes(&[
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
            ("encoder_ffn_dim", self.encoder_ffn_dim),
            ("decoder_ffn_dim", self.decoder_ffn_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ])?;
        check_encoder_decoder(
            self.d_model,
            (self.encoder_layers, self.decoder_layers),
            (self.encoder_attention_heads, self.decoder_attention_heads),
            &self.activation_function,
        )
    }

    /// Rows of the learned position tables: `max_position_embeddings + 2`.
    pub fn position_rows(&self) -> usize {
        self.max_position_embeddings + POSITION_OFFSET as usize
    }

    /// The token-embedding scale: `sqrt(d_model)` with `scale_embedding`, else 1.
    pub fn embed_scale(&self) -> f64 {
        if self.scale_embedding {
            (self.d_model as f64).sqrt()
        } else {
            1.0
        }
    }
}

/// `act(x)` with the config's activation.
pub fn act(b: &mut Builder, c: &BartConfig, x: ValueId) -> Result<ValueId, Error> {
    let op = activation(&c.activation_function).ok_or_else(|| {
        b.config_error(format!(
            "activation_function `{}` is not supported",
            c.activation_function
        ))
    })?;
    b.op(op, &[x])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> BartConfig {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn defaults_are_bart_large_and_bad_sizes_are_refused() {
        let c = config("{}");
        assert!(c.validate().is_ok());
        assert_eq!((c.d_model, c.position_rows()), (1024, 1026));
        assert_eq!(c.embed_scale(), 1.0);
        assert_eq!(config(r#"{"scale_embedding": true}"#).embed_scale(), 32.0);
        let e = config(r#"{"d_model": 100}"#)
            .validate()
            .expect_err("100 / 16");
        assert!(e.contains("multiple of `encoder_attention_heads`"), "{e}");
        assert!(config(r#"{"vocab_size": 0}"#).validate().is_err());
        let e = config(r#"{"activation_function": "swish"}"#)
            .validate()
            .expect_err("swish");
        assert!(e.contains("swish"), "{e}");
    }
}
