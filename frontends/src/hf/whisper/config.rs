//! Whisper's `config.json` ([`WhisperConfig`], transformers' defaults and checks) and its MLP
//! activation.

use crate::error::Error;
use crate::hf::builder::Builder;
use crate::hf::sizes::{check_encoder_decoder, check_sizes};
use kiln_compiler::ir::{GeluApprox, Op, UnaryOp, ValueId};
use serde::Deserialize;

/// The fields of a Whisper `config.json` that shape the graphs, with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct WhisperConfig {
    /// Vocabulary size (rows of `decoder.embed_tokens`).
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Mel bins of the input features.
    #[serde(default = "default_mels")]
    pub num_mel_bins: usize,
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
    /// Encoder positions (the input has twice as many frames).
    #[serde(default = "default_source_positions")]
    pub max_source_positions: usize,
    /// Decoder positions: the longest token sequence.
    #[serde(default = "default_target_positions")]
    pub max_target_positions: usize,
    /// The MLP activation.
    #[serde(default = "default_activation")]
    pub activation_function: String,
    /// Whether token embeddings are multiplied by `sqrt(d_model)`.
    #[serde(default)]
    pub scale_embedding: bool,
    /// Whether the LM head (`proj_out`) shares `decoder.embed_tokens`.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

fn default_vocab() -> usize {
    51865
}
fn default_mels() -> usize {
    80
}
fn default_d_model() -> usize {
    384
}
fn default_layers() -> usize {
    4
}
fn default_heads() -> usize {
    6
}
fn default_ffn() -> usize {
    1536
}
fn default_source_positions() -> usize {
    1500
}
fn default_target_positions() -> usize {
    448
}
fn default_activation() -> String {
    "gelu".to_string()
}
fn default_true() -> bool {
    true
}

/// Whisper's LayerNorm epsilon (PyTorch's default; the config has no field for it).
pub const EPS: f64 = 1e-5;

impl WhisperConfig {
    /// Parses and checks `cfg`; errors name the folder's `config.json`.
    pub fn from_json(b: &Builder, cfg: &serde_json::Value) -> Result<WhisperConfig, Error> {
        let c: WhisperConfig = serde_json::from_value(cfg.clone())
            .map_err(|e| b.config_error(format!("not a Whisper config: {e}")))?;
        c.validate().map_err(|m| b.config_error(m))?;
        Ok(c)
    }

    /// Checks the sizes; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        check_sizes(&[
            ("vocab_size", self.vocab_size),
            ("num_mel_bins", self.num_mel_bins),
            ("d_model", self.d_model),
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
            ("encoder_ffn_dim", self.encoder_ffn_dim),
            ("decoder_ffn_dim", self.decoder_ffn_dim),
            ("max_source_positions", self.max_source_positions),
            ("max_target_positions", self.max_target_positions),
        ])?;
        check_encoder_decoder(
            self.d_model,
            (self.encoder_layers, self.decoder_layers),
            (self.encoder_attention_heads, self.decoder_attention_heads),
            &self.activation_function,
        )
    }

    /// Frames of the encoder input: `2 · max_source_positions` (the stride-2 conv halves them).
    pub fn input_frames(&self) -> usize {
        self.max_source_positions.saturating_mul(2)
    }
}

/// The op an `activation_function` names, or `None` when Kiln does not support it.
pub fn activation(name: &str) -> Option<Op> {
    Some(match name {
        "gelu" => Op::Gelu {
            approx: GeluApprox::None,
        },
        "gelu_new" | "gelu_pytorch_tanh" => Op::Gelu {
            approx: GeluApprox::Tanh,
        },
        "relu" => Op::Unary(UnaryOp::Relu),
        _ => return None,
    })
}

/// `act(x)` with the config's activation.
pub fn act(b: &mut Builder, c: &WhisperConfig, x: ValueId) -> Result<ValueId, Error> {
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

    fn config(json: &str) -> WhisperConfig {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn defaults_are_whisper_tiny_and_bad_sizes_are_refused() {
        let c = config("{}");
        assert!(c.validate().is_ok());
        assert_eq!((c.d_model, c.input_frames()), (384, 3000));
        let e = config(r#"{"d_model": 100}"#)
            .validate()
            .expect_err("100 / 6");
        assert!(e.contains("multiple of `encoder_attention_heads`"), "{e}");
        assert!(config(r#"{"vocab_size": 0}"#).validate().is_err());
        assert!(config(r#"{"decoder_layers": 100000}"#).validate().is_err());
        let e = config(r#"{"activation_function": "swish"}"#)
            .validate()
            .expect_err("swish");
        assert!(e.contains("swish"), "{e}");
    }
}
