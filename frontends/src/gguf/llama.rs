//! The `llama` architecture of a GGUF file as a Hugging Face Llama: the metadata as the
//! `config.json` transformers would write, and the tensors under their Hugging Face names,
//! dequantized to f32 or kept as their blocks ([`WeightMode`]), with llama.cpp's rotary row
//! permutation of `attn_q` / `attn_k` undone.
//!
//! llama.cpp's converter stores each query/key projection with the rows of every head
//! interleaved (`permute(w, n_head)`: rows viewed as `[n_head, 2, head_dim / 2]`, the last two
//! axes swapped) for its own rotary layout; the graph Kiln builds rotates the halves of a head
//! as transformers does, so the rows are put back (transformers' `reverse_permute` in its GGUF
//! loader; keys use the key/value head count).

use super::dequant::dequantize;
use super::reader::{GgufFile, TensorInfo, Value};
use super::WeightMode;
use crate::error::Error;
use crate::hf::checkpoint::OwnedTensor;
use kiln_compiler::ir::DType;
use serde_json::{json, Map};
use std::sync::Arc;

/// The sizes the tensor conversion needs.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
}

fn key_err(f: &GgufFile, key: &str, message: String) -> Error {
    Error::Gguf {
        path: f.path().to_path_buf(),
        at: format!("key `{key}`"),
        message,
    }
}

/// A metadata integer (of any integer type) that fits a `usize`, `None` when absent.
fn opt_usize(f: &GgufFile, key: &str) -> Result<Option<usize>, Error> {
    let Some(v) = f.get(key) else { return Ok(None) };
    v.as_u64()
        .and_then(|x| usize::try_from(x).ok())
        .map(Some)
        .ok_or_else(|| key_err(f, key, format!("is not a non-negative integer: {v:?}")))
}

fn req_usize(f: &GgufFile, key: &str) -> Result<usize, Error> {
    opt_usize(f, key)?.ok_or_else(|| key_err(f, key, "is missing".to_string()))
}

/// A metadata number as `f64`, `None` when absent; non-finite values are errors.
fn opt_f64(f: &GgufFile, key: &str) -> Result<Option<f64>, Error> {
    let Some(v) = f.get(key) else { return Ok(None) };
    v.as_f64()
        .filter(|x| x.is_finite())
        .map(Some)
        .ok_or_else(|| key_err(f, key, format!("is not a finite number: {v:?}")))
}

/// The `config.json` equivalent of the metadata of a `llama` file, and the head counts.
pub fn config(f: &GgufFile) -> Result<(serde_json::Value, Heads), Error> {
    let a = "llama";
    let k = |s: &str| format!("{a}.{s}");
    let hidden = req_usize(f, &k("embedding_length"))?;
    let heads = req_usize(f, &k("attention.head_count"))?;
    let kv_heads = opt_usize(f, &k("attention.head_count_kv"))?.unwrap_or(heads);
    let vocab = match f.get("tokenizer.ggml.tokens").and_then(Value::as_strs) {
        Some(tokens) => tokens.len(),
        None => req_usize(f, &k("vocab_size"))?,
    };
    let head_dim = match opt_usize(f, &k("attention.key_length"))? {
        Some(d) => d,
        None if heads > 0 => hidden / heads,
        None => 0,
    };
    if let Some(v) = opt_usize(f, &k("attention.value_length"))? {
        if v != head_dim {
            return Err(key_err(
                f,
                &k("attention.value_length"),
                format!("{v} differs from the key length {head_dim}, which Llama does not do"),
            ));
        }
    }
    if let Some(r) = opt_usize(f, &k("rope.dimension_count"))? {
        if r != head_dim {
            return Err(key_err(
                f,
                &k("rope.dimension_count"),
                format!("partial rotary ({r} of {head_dim} dims) is not supported yet"),
            ));
        }
    }
    let theta = opt_f64(f, &k("rope.freq_base"))?.unwrap_or(10000.0);
    let mut rope = Map::new();
    rope.insert("rope_theta".into(), json!(theta));
    let scaling = f.get(&k("rope.scaling.type")).map(|v| v.as_str());
    match scaling {
        None | Some(Some("none")) => {
            rope.insert("rope_type".into(), json!("default"));
        }
        Some(Some("linear")) => {
            let factor = opt_f64(f, &k("rope.scaling.factor"))?.unwrap_or(1.0);
            rope.insert("rope_type".into(), json!("linear"));
            rope.insert("factor".into(), json!(factor));
        }
        Some(other) => {
            return Err(key_err(
                f,
                &k("rope.scaling.type"),
                format!("rope scaling {other:?} is not supported yet (none and linear are)"),
            ))
        }
    }
    if f.header
        .tensors
        .iter()
        .any(|t| t.name == "rope_freqs.weight")
    {
        return Err(Error::Gguf {
            path: f.path().to_path_buf(),
            at: "tensor `rope_freqs.weight`".to_string(),
            message: "per-frequency rotary factors (Llama 3 scaling) are not supported yet"
                .to_string(),
        });
    }
    let has = |n: &str| f.header.tensors.iter().any(|t| t.name == n);
    let mut cfg = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": req_usize(f, &k("feed_forward_length"))?,
        "num_hidden_layers": req_usize(f, &k("block_count"))?,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "rms_norm_eps": opt_f64(f, &k("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5),
        "rope_theta": theta,
        "rope_parameters": rope,
        "hidden_act": "silu",
        "attention_bias": has("blk.0.attn_q.bias"),
        "mlp_bias": false,
        "tie_word_embeddings": !has("output.weight"),
    });
    if let Some(n) = opt_usize(f, &k("context_length"))? {
        cfg["max_position_embeddings"] = json!(n);
    }
    for (gguf, hf) in [
        ("bos", "bos_token_id"),
        ("eos", "eos_token_id"),
        ("padding", "pad_token_id"),
        ("unknown", "unk_token_id"),
    ] {
        if let Some(id) = opt_usize(f, &format!("tokenizer.ggml.{gguf}_token_id"))? {
            cfg[hf] = json!(id);
        }
    }
    Ok((cfg, Heads { heads, kv_heads }))
}

/// The Hugging Face name of a llama.cpp tensor name, or `None` for a name Llama does not use.
pub fn hf_name(name: &str) -> Option<String> {
    let fixed = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(n) = fixed {
        return Some(n.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, kind) = rest.rsplit_once('.')?;
    if !matches!(kind, "weight" | "bias") {
        return None;
    }
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Undoes llama.cpp's rotary permutation of the rows of a `[rows, cols]` matrix (or a bias,
/// `cols = 1`) with `n_head` heads: GGUF row `h·d + 2j + t` is Hugging Face row
/// `h·d + t·d/2 + j`.
pub fn unpermute_rows<T: Copy + Default>(
    w: &[T],
    rows: usize,
    cols: usize,
    n_head: usize,
) -> Result<Vec<T>, String> {
    if n_head == 0 || !rows.is_multiple_of(n_head) || !(rows / n_head).is_multiple_of(2) {
        return Err(format!(
            "{rows} rows do not split into {n_head} heads of an even size"
        ));
    }
    if rows.checked_mul(cols) != Some(w.len()) {
        return Err(format!("{} values are not {rows} × {cols}", w.len()));
    }
    let d = rows / n_head;
    let mut out = vec![T::default(); w.len()];
    for h in 0..n_head {
        for j in 0..d / 2 {
            for t in 0..2 {
                let src = (h * d + 2 * j + t) * cols;
                let dst = (h * d + t * d / 2 + j) * cols;
                out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
            }
        }
    }
    Ok(out)
}

/// Every tensor of a `llama` file under its Hugging Face name and shape: f32, or with
/// [`WeightMode::Keep`] the matrices stored as `Q4_0`, `Q4_1` or `Q8_0` kept as their blocks.
pub fn tensors(f: &GgufFile, h: Heads, mode: WeightMode) -> Result<Vec<OwnedTensor>, Error> {
    let mut out = Vec::with_capacity(f.header.tensors.len());
    for t in &f.header.tensors {
        out.push(tensor(f, t, h, mode)?);
    }
    Ok(out)
}

fn tensor(f: &GgufFile, t: &TensorInfo, h: Heads, mode: WeightMode) -> Result<OwnedTensor, Error> {
    let err = |message: String| Error::Gguf {
        path: f.path().to_path_buf(),
        at: format!("tensor `{}`", t.name),
        message,
    };
    let name = hf_name(&t.name)
        .ok_or_else(|| err("is not a tensor of the llama architecture".to_string()))?;
    let bytes = f
        .data(t)
        .ok_or_else(|| err("data lies outside the file".to_string()))?;
    // ggml lists dims innermost first; Hugging Face outermost first (same bytes).
    let shape: Vec<usize> = t.dims.iter().rev().copied().collect();
    let n_head = if t.name.contains(".attn_q.") {
        Some(h.heads)
    } else if t.name.contains(".attn_k.") {
        Some(h.kv_heads)
    } else {
        None
    };
    let rows = shape.first().copied().unwrap_or(1);
    let cols = shape.get(1).copied().unwrap_or(1);
    let keep = match (mode, t.ggml_type.block_format(), &shape[..]) {
        (WeightMode::Keep, Some(format), [_, k]) => format.row_bytes(*k).map(|r| (format, r)),
        _ => None,
    };
    if let Some((format, row_bytes)) = keep {
        // Whole rows of blocks move as the rows of the matrix do.
        let mut kept = bytes.to_vec();
        if let Some(n_head) = n_head {
            kept = unpermute_rows(&kept, rows, row_bytes, n_head).map_err(err)?;
        }
        return Ok(OwnedTensor {
            name,
            dtype: DType::F32,
            shape,
            bytes: Arc::from(kept),
            blocks: Some(format),
        });
    }
    let mut values = dequantize(t.ggml_type, bytes, t.numel).map_err(err)?;
    if let Some(n_head) = n_head {
        values = unpermute_rows(&values, rows, cols, n_head).map_err(err)?;
    }
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok(OwnedTensor {
        name,
        dtype: DType::F32,
        shape,
        bytes: Arc::from(bytes),
        blocks: None,
    })
}
