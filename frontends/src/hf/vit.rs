//! `ViTModel` (Hugging Face `vit`): a patch-embedding `Conv`, the class token and learned
//! position embeddings, pre-LayerNorm encoder layers with fused `Attention` and `Gelu`, and the
//! final LayerNorm; the output is `last_hidden_state` `[batch, 1 + num_patches, hidden]`.
//! `ViTForImageClassification` adds `classifier` on the class token: `logits`
//! `[batch, num_labels]`.
//!
//! The image size is fixed by the position embeddings: `pixel_values` must be
//! `[batch, num_channels, image_size, image_size]`. Transformers' `interpolate_pos_encoding`
//! (resizing the position embeddings for other image sizes) is not supported, and the pooler is
//! not built.

use super::builder::{p, Builder};
use super::checkpoint::Checkpoint;
use super::heads::{self, Head};
use crate::error::Error;
use kiln_compiler::ir::{BinaryOp, DType, Dim, GeluApprox, Graph, Op, ValueId};
use serde::Deserialize;

/// An image or patch size: one number (square) or `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Size {
    /// A square side.
    Square(usize),
    /// `[height, width]`.
    Pair([usize; 2]),
}

impl Size {
    /// `(height, width)`.
    pub fn hw(self) -> (usize, usize) {
        match self {
            Size::Square(s) => (s, s),
            Size::Pair([h, w]) => (h, w),
        }
    }
}

/// The fields of a ViT `config.json` that the graph needs, with transformers' defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct VitConfig {
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// The feed-forward activation (`gelu` is the exact, erf form).
    pub hidden_act: String,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// The input image size (fixed by the position embeddings).
    pub image_size: Size,
    /// The patch size (the patch-embedding kernel and stride).
    pub patch_size: Size,
    /// Input channels.
    pub num_channels: usize,
    /// Whether query, key and value have biases.
    pub qkv_bias: bool,
}

impl Default for VitConfig {
    fn default() -> VitConfig {
        VitConfig {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".to_string(),
            layer_norm_eps: 1e-12,
            image_size: Size::Square(224),
            patch_size: Size::Square(16),
            num_channels: 3,
            qkv_bias: true,
        }
    }
}

impl VitConfig {
    /// Parses and checks a config: sizes non-zero, heads dividing the width, patches tiling
    /// the image, and a supported activation.
    pub fn parse(cfg: &serde_json::Value) -> Result<VitConfig, String> {
        let c: VitConfig = serde_json::from_value(cfg.clone()).map_err(|e| e.to_string())?;
        let (ih, iw) = c.image_size.hw();
        let (ph, pw) = c.patch_size.hw();
        let sizes = [
            ("hidden_size", c.hidden_size),
            ("num_hidden_layers", c.num_hidden_layers),
            ("num_attention_heads", c.num_attention_heads),
            ("intermediate_size", c.intermediate_size),
            ("image_size", ih.min(iw)),
            ("patch_size", ph.min(pw)),
            ("num_channels", c.num_channels),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be positive"));
        }
        if !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(format!(
                "`hidden_size` {} is not a multiple of `num_attention_heads` {}",
                c.hidden_size, c.num_attention_heads
            ));
        }
        if ih % ph != 0 || iw % pw != 0 {
            return Err(format!(
                "`image_size` {ih}x{iw} is not a multiple of `patch_size` {ph}x{pw}"
            ));
        }
        if !(c.layer_norm_eps.is_finite() && c.layer_norm_eps >= 0.0) {
            return Err(format!("`layer_norm_eps` {} is invalid", c.layer_norm_eps));
        }
        c.gelu()?;
        Ok(c)
    }

    /// The GELU formula of `hidden_act`.
    pub fn gelu(&self) -> Result<GeluApprox, String> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(GeluApprox::None),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(GeluApprox::Tanh),
            other => Err(format!(
                "`hidden_act` `{other}` is not supported (gelu, gelu_new, gelu_pytorch_tanh)"
            )),
        }
    }

    /// Patches per image.
    pub fn num_patches(&self) -> usize {
        let ((ih, iw), (ph, pw)) = (self.image_size.hw(), self.patch_size.hw());
        (ih / ph) * (iw / pw)
    }
}

/// Builds `ViTModel` (or, with `Head::ImageClassification`, `ViTForImageClassification`) from
/// a parsed `config.json` and its checkpoint.
pub fn build(cfg: &serde_json::Value, ck: &Checkpoint, head: Head) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let c = VitConfig::parse(cfg).map_err(|m| b.config_error(format!("ViT config: {m}")))?;
    let (ih, iw) = c.image_size.hw();
    let dims = [
        "batch".to_string(),
        c.num_channels.to_string(),
        ih.to_string(),
        iw.to_string(),
    ];
    let dims: Vec<&str> = dims.iter().map(String::as_str).collect();
    let x = b.input("pixel_values", DType::F32, &dims)?;
    let h = load_embeddings(&mut b, &c, x, "embeddings")?;
    let h = load_encoder(&mut b, &c, h, "encoder")?;
    let h = b.layer_norm(h, "layernorm", c.hidden_size, c.layer_norm_eps)?;
    match head {
        Head::Base => b.finish(&[("last_hidden_state", h)]),
        Head::ImageClassification => {
            let logits = heads::image_classification(&mut b, cfg, h, c.hidden_size)?;
            b.finish(&[("logits", logits)])
        }
        _ => Err(heads::not_built(&b, "ViT", head)),
    }
}

/// Patch embedding, class token and position embeddings: `[B, C, H, W]` → `[B, 1 + P, hidden]`.
pub fn load_embeddings(
    b: &mut Builder,
    c: &VitConfig,
    x: ValueId,
    prefix: &str,
) -> Result<ValueId, Error> {
    let hidden = c.hidden_size;
    let (ph, pw) = c.patch_size.hw();
    let proj = p(prefix, "patch_embeddings.projection");
    let w = b.weight(&p(&proj, "weight"), &[hidden, c.num_channels, ph, pw])?;
    let bias = b.weight(&p(&proj, "bias"), &[hidden])?;
    let conv = Op::Conv {
        strides: vec![ph as i64, pw as i64],
        pads: vec![0; 4],
        dilations: vec![1, 1],
        group: 1,
    };
    let y = b.op(conv, &[x, w, bias])?;
    let batch = b.ty(x).shape.0[0].clone();
    let hid = Dim::known(hidden as i64);
    let patches = Dim::known(c.num_patches() as i64);
    let flat = b.op(
        Op::Reshape {
            shape: vec![batch.clone(), hid.clone(), patches],
        },
        &[y],
    )?;
    let tokens = b.op(
        Op::Transpose {
            perm: vec![0, 2, 1],
        },
        &[flat],
    )?;
    let cls = b.weight(&p(prefix, "cls_token"), &[1, 1, hidden])?;
    let cls = b.op(
        Op::Expand {
            shape: vec![batch, Dim::known(1), hid],
        },
        &[cls],
    )?;
    let seq = b.op(Op::Concat { axis: 1 }, &[cls, tokens])?;
    let pos = b.weight(
        &p(prefix, "position_embeddings"),
        &[1, 1 + c.num_patches(), hidden],
    )?;
    b.bin(BinaryOp::Add, seq, pos)
}

/// Self-attention with its output projection: `[B, S, hidden]` → `[B, S, hidden]`.
pub fn load_attention(
    b: &mut Builder,
    c: &VitConfig,
    x: ValueId,
    prefix: &str,
) -> Result<ValueId, Error> {
    let (hidden, heads) = (c.hidden_size, c.num_attention_heads);
    let d = hidden / heads;
    let mut qkv = Vec::with_capacity(3);
    for part in ["query", "key", "value"] {
        let name = p(&p(prefix, "attention"), part);
        let y = b.linear(x, &name, hidden, hidden, c.qkv_bias)?;
        qkv.push(b.split_heads(y, heads, d)?);
    }
    let attn = Op::Attention {
        heads: heads as u32,
        kv_heads: heads as u32,
        scale: 1.0 / (d as f64).sqrt(),
        causal: false,
        bias: false,
        mask: false,
        rotary: false,
    };
    let o = b.op(attn, &qkv)?;
    let o = b.merge_heads(o)?;
    b.linear(o, &p(prefix, "output.dense"), hidden, hidden, true)
}

/// One pre-LayerNorm encoder layer (attention and feed-forward, each with a residual).
pub fn load_layer(
    b: &mut Builder,
    c: &VitConfig,
    x: ValueId,
    prefix: &str,
) -> Result<ValueId, Error> {
    let (hidden, eps) = (c.hidden_size, c.layer_norm_eps);
    let approx = c
        .gelu()
        .map_err(|m| b.config_error(format!("ViT config: {m}")))?;
    let h = b.layer_norm(x, &p(prefix, "layernorm_before"), hidden, eps)?;
    let a = load_attention(b, c, h, &p(prefix, "attention"))?;
    let x = b.bin(BinaryOp::Add, a, x)?;
    let h = b.layer_norm(x, &p(prefix, "layernorm_after"), hidden, eps)?;
    let h = b.linear(
        h,
        &p(prefix, "intermediate.dense"),
        hidden,
        c.intermediate_size,
        true,
    )?;
    let h = b.op(Op::Gelu { approx }, &[h])?;
    let h = b.linear(
        h,
        &p(prefix, "output.dense"),
        c.intermediate_size,
        hidden,
        true,
    )?;
    b.bin(BinaryOp::Add, h, x)
}

/// The encoder's layers in order.
pub fn load_encoder(
    b: &mut Builder,
    c: &VitConfig,
    mut x: ValueId,
    prefix: &str,
) -> Result<ValueId, Error> {
    for i in 0..c.num_hidden_layers {
        x = load_layer(b, c, x, &p(&p(prefix, "layer"), i))?;
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_transformers() {
        let c = VitConfig::parse(&serde_json::json!({})).unwrap();
        assert_eq!(c, VitConfig::default());
        assert_eq!(c.num_patches(), 196);
        assert_eq!(c.gelu(), Ok(GeluApprox::None));
    }

    #[test]
    fn bad_configs_are_errors() {
        let bad = [
            serde_json::json!({"hidden_size": 10, "num_attention_heads": 3}),
            serde_json::json!({"image_size": 30, "patch_size": 8}),
            serde_json::json!({"hidden_act": "relu"}),
            serde_json::json!({"patch_size": 0}),
            serde_json::json!({"hidden_size": "wide"}),
        ];
        for cfg in bad {
            assert!(VitConfig::parse(&cfg).is_err(), "{cfg}");
        }
        let pair = serde_json::json!({"image_size": [32, 48], "patch_size": [8, 16]});
        assert_eq!(VitConfig::parse(&pair).unwrap().num_patches(), 12);
    }
}
