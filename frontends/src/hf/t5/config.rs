//! T5's `config.json` ([`T5Config`], transformers' defaults and checks) and its feed-forward
//! kinds (`feed_forward_proj`: `relu`, `gated-gelu`, ...).

use crate::error::Error;
use crate::hf::builder::Builder;
use crate::hf::sizes::{check_sizes, SIZE_LIMIT};
use kiln_compiler::ir::{GeluApprox, Op, UnaryOp};
use serde::Deserialize;

/// The fields of a T5 `config.json` that shape the graphs, with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct T5Config {
    /// Vocabulary size (rows of `shared`).
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Hidden size.
    #[serde(default = "default_d_model")]
    pub d_model: usize,
    /// Size of one attention head (the attention's inner size is `num_heads · d_kv`, which need
    /// not be `d_model`).
    #[serde(default = "default_d_kv")]
    pub d_kv: usize,
    /// Feed-forward width.
    #[serde(default = "default_d_ff")]
    pub d_ff: usize,
    /// Encoder layers.
    #[serde(default = "default_layers")]
    pub num_layers: usize,
    /// Decoder layers (`num_layers` when absent or null).
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    /// Attention heads of every attention.
    #[serde(default = "default_heads")]
    pub num_heads: usize,
    /// Buckets of the relative position bias.
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    /// The distance from which every relative position shares the last bucket.
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    /// Epsilon of every `T5LayerNorm` (an RMS norm).
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// The feed-forward kind: an activation, `gated-` before it for a gated one.
    #[serde(default = "default_ff")]
    pub feed_forward_proj: String,
    /// Whether the decoder output is scaled by `d_model^-0.5` before the LM head, as
    /// transformers 5 writes it (it ties the head to `shared` unless the checkpoint has its
    /// own `lm_head.weight`, and keeps `tie_word_embeddings` true).
    #[serde(default)]
    pub scale_decoder_outputs: Option<bool>,
    /// Before transformers 5: whether the LM head is `shared` and the decoder output scaled
    /// (false in T5 v1.1); the scaling's default when `scale_decoder_outputs` is absent.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

fn default_vocab() -> usize {
    32128
}
fn default_d_model() -> usize {
    512
}
fn default_d_kv() -> usize {
    64
}
fn default_d_ff() -> usize {
    2048
}
fn default_layers() -> usize {
    6
}
fn default_heads() -> usize {
    8
}
fn default_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ff() -> String {
    "relu".to_string()
}
fn default_true() -> bool {
    true
}

/// A feed-forward block: `wo(act(wi(x)))`, or gated `wo(act(wi_0(x)) · wi_1(x))`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedForward {
    /// The activation op.
    pub act: Op,
    /// Whether it is gated (`wi_0`, `wi_1`).
    pub gated: bool,
}

/// The feed-forward a `feed_forward_proj` names, as transformers parses it (`gated-gelu` uses
/// the tanh GELU), or `None` when Kiln does not support it.
pub fn feed_forward(proj: &str) -> Option<FeedForward> {
    let (gated, act) = match proj.split_once('-') {
        Some(("gated", act)) => (true, act),
        Some(_) => return None,
        None => (false, proj),
    };
    let act = match (gated, act) {
        (true, "gelu") | (_, "gelu_new") => Op::Gelu {
            approx: GeluApprox::Tanh,
        },
        (false, "gelu") => Op::Gelu {
            approx: GeluApprox::None,
        },
        (_, "relu") => Op::Unary(UnaryOp::Relu),
        _ => return None,
    };
    Some(FeedForward { act, gated })
}

impl T5Config {
    /// Parses and checks `cfg`; errors name the folder's `config.json`.
    pub fn from_json(b: &Builder, cfg: &serde_json::Value) -> Result<T5Config, Error> {
        let c: T5Config = serde_json::from_value(cfg.clone())
            .map_err(|e| b.config_error(format!("not a T5 config: {e}")))?;
        c.validate().map_err(|m| b.config_error(m))?;
        Ok(c)
    }

    /// Checks the sizes and the feed-forward kind; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        check_sizes(&[
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_heads", self.num_heads),
            (
                "relative_attention_num_buckets",
                self.relative_attention_num_buckets,
            ),
            (
                "relative_attention_max_distance",
                self.relative_attention_max_distance,
            ),
        ])?;
        if self.num_heads.saturating_mul(self.d_kv) > SIZE_LIMIT {
            return Err("`num_heads` · `d_kv` is too large".into());
        }
        // The bucket table (bias.rs) is exact only when the buckets are constant past
        // max_distance, which needs max_distance above the exact buckets (num_buckets / 2 in
        // the decoder; equal would divide by log(1) = 0).
        let (nb, md) = (
            self.relative_attention_num_buckets,
            self.relative_attention_max_distance,
        );
        if nb < 4 || md <= nb / 2 || md > 1 << 20 {
            return Err(format!(
                "`relative_attention_num_buckets` ({nb}) must be at least 4 and \
                 `relative_attention_max_distance` ({md}) above half of it and at most 2^20"
            ));
        }
        if self.num_layers > 1024 || self.decoder_layers() > 1024 {
            return Err("more than 1024 layers".into());
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return Err(format!(
                "bad `layer_norm_epsilon` {}",
                self.layer_norm_epsilon
            ));
        }
        if feed_forward(&self.feed_forward_proj).is_none() {
            return Err(format!(
                "feed_forward_proj `{}` is not supported (relu, gelu, gelu_new, gated-gelu, \
                 gated-relu are)",
                self.feed_forward_proj
            ));
        }
        Ok(())
    }

    /// Decoder layers: `num_decoder_layers`, else `num_layers`.
    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    /// Whether the decoder output is scaled by `d_model^-0.5`: `scale_decoder_outputs`, else
    /// `tie_word_embeddings`.
    pub fn scale_outputs(&self) -> bool {
        self.scale_decoder_outputs
            .unwrap_or(self.tie_word_embeddings)
    }

    /// The attention's inner size `num_heads · d_kv`.
    pub fn inner(&self) -> usize {
        self.num_heads * self.d_kv
    }

    /// The feed-forward block (checked by [`T5Config::validate`]).
    pub fn ff(&self, b: &Builder) -> Result<FeedForward, Error> {
        feed_forward(&self.feed_forward_proj).ok_or_else(|| {
            b.config_error(format!(
                "feed_forward_proj `{}` is not supported",
                self.feed_forward_proj
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> T5Config {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn defaults_are_t5_small_and_bad_configs_are_refused() {
        let c = config("{}");
        assert!(c.validate().is_ok());
        assert_eq!((c.d_model, c.inner(), c.decoder_layers()), (512, 512, 6));
        let c = config(r#"{"num_layers": 3, "num_decoder_layers": null, "d_kv": 10}"#);
        assert_eq!((c.decoder_layers(), c.inner()), (3, 80));
        assert!(c.scale_outputs());
        // T5 v1.1 as transformers 4 and 5 write it.
        assert!(!config(r#"{"tie_word_embeddings": false}"#).scale_outputs());
        let v5 = r#"{"tie_word_embeddings": true, "scale_decoder_outputs": false}"#;
        assert!(!config(v5).scale_outputs());
        assert!(config(r#"{"vocab_size": 0}"#).validate().is_err());
        assert!(config(r#"{"num_decoder_layers": 5000}"#)
            .validate()
            .is_err());
        assert!(config(r#"{"relative_attention_num_buckets": 2}"#)
            .validate()
            .is_err());
        let exact_only =
            r#"{"relative_attention_num_buckets": 32, "relative_attention_max_distance": 16}"#;
        let e = config(exact_only).validate().expect_err("16 <= 32 / 2");
        assert!(e.contains("relative_attention_max_distance"), "{e}");
        assert!(config(r#"{"relative_attention_max_distance": 17}"#)
            .validate()
            .is_ok());
        for bad in ["gated-silu", "silu", "relu-gated", "gated-gelu-x"] {
            let e = config(&format!(r#"{{"feed_forward_proj": "{bad}"}}"#))
                .validate()
                .expect_err(bad);
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn feed_forward_kinds_follow_transformers() {
        let tanh = Op::Gelu {
            approx: GeluApprox::Tanh,
        };
        let gated = feed_forward("gated-gelu").expect("gated-gelu");
        assert_eq!((gated.act, gated.gated), (tanh.clone(), true));
        let relu = feed_forward("relu").expect("relu");
        assert_eq!((relu.act, relu.gated), (Op::Unary(UnaryOp::Relu), false));
        let exact = feed_forward("gelu").expect("gelu");
        assert_ne!(exact.act, tanh);
        assert!(feed_forward("gated-relu").expect("gated-relu").gated);
    }
}
