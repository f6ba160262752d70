//! The tokenizer stored in a GGUF file's metadata, written as a Hugging Face `tokenizer.json`
//! (the `tokenizers` crate's format), so the pipelines tokenize GGUF models with the code they
//! use for Hugging Face folders.
//!
//! Supported: `tokenizer.ggml.model = gpt2` (byte-level BPE: `tokens`, `merges`, `token_type`
//! for the added tokens) with the pre-tokenizers llama.cpp names in `tokenizer.ggml.pre`:
//! `gpt2` (and an absent hint), the StarCoder family (`smollm`, `starcoder`, `refact`,
//! `codeshell`: digits split one by one, then GPT-2's split), `llama-bpe` (Llama 3) and
//! `qwen2`. SentencePiece (`llama`) and other models are refused as not supported yet.

use super::reader::{GgufFile, Value};
use crate::error::Error;
use serde_json::{json, Map};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

/// The split of Llama 3's tokenizer (`llama-bpe`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The split of Qwen 2's tokenizer (`qwen2`): Llama 3's with single digits.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer hints Kiln knows.
const SUPPORTED_PRE: &[&str] = &[
    "gpt2",
    "smollm",
    "starcoder",
    "refact",
    "codeshell",
    "llama-bpe",
    "qwen2",
];

fn err(f: &GgufFile, key: &str, message: String) -> Error {
    Error::Gguf {
        path: f.path().to_path_buf(),
        at: format!("key `{key}`"),
        message,
    }
}

/// The chat template (`tokenizer.chat_template`), if the file has one.
pub fn chat_template(f: &GgufFile) -> Option<String> {
    f.get("tokenizer.chat_template")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The byte-level pre-tokenizer, splitting with GPT-2's expression when `use_regex`.
fn byte_level(use_regex: bool) -> serde_json::Value {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

/// The pre-tokenizer for llama.cpp's hint `pre` (`None` for an unknown hint).
fn pre_tokenizer(pre: &str) -> Option<serde_json::Value> {
    let split = |pattern: &str| {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
            byte_level(false),
        ]})
    };
    Some(match pre {
        "gpt2" | "default" => byte_level(true),
        "smollm" | "starcoder" | "refact" | "codeshell" => {
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                byte_level(true),
            ]})
        }
        "llama-bpe" | "llama3" => split(LLAMA3_SPLIT),
        "qwen2" => split(QWEN2_SPLIT),
        _ => return None,
    })
}

/// A special token `id` added by the post-processor, for a template.
fn special(
    name: &str,
    f: &GgufFile,
    tokens: &[String],
    which: &str,
) -> Result<Option<(String, i64)>, Error> {
    let key = format!("tokenizer.ggml.add_{which}_token");
    if f.get(&key).and_then(Value::as_bool) != Some(true) {
        return Ok(None);
    }
    let id_key = format!("tokenizer.ggml.{which}_token_id");
    let id = f.get(&id_key).and_then(Value::as_u64);
    let tok = id
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| tokens.get(i));
    match (id, tok) {
        (Some(id), Some(tok)) => Ok(Some((tok.clone(), id as i64))),
        _ => Err(err(
            f,
            &id_key,
            format!("{name}: `{key}` is set but the token id is missing or out of range"),
        )),
    }
}

/// A post-processor adding the BOS / EOS tokens the file asks for (`null` when none).
fn post_processor(f: &GgufFile, tokens: &[String]) -> Result<serde_json::Value, Error> {
    let bos = special("post-processor", f, tokens, "bos")?;
    let eos = special("post-processor", f, tokens, "eos")?;
    if bos.is_none() && eos.is_none() {
        return Ok(serde_json::Value::Null);
    }
    let seq = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    let tok =
        |t: &(String, i64), type_id: u32| json!({"SpecialToken": {"id": t.0, "type_id": type_id}});
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = Map::new();
    for (part, type_id) in [("A", 0), ("B", 1)] {
        let list = if part == "A" { &mut single } else { &mut pair };
        if let Some(b) = &bos {
            list.push(tok(b, type_id));
        }
        list.push(seq(part, type_id));
        if let Some(e) = &eos {
            list.push(tok(e, type_id));
        }
    }
    let pair: Vec<_> = single.iter().cloned().chain(pair).collect();
    for t in bos.iter().chain(eos.iter()) {
        specials.insert(
            t.0.clone(),
            json!({"id": t.0, "ids": [t.1], "tokens": [t.0]}),
        );
    }
    Ok(
        json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials}),
    )
}

/// The tokenizer of the file as a `tokenizer.json` string.
pub fn tokenizer_json(f: &GgufFile) -> Result<String, Error> {
    let model_key = "tokenizer.ggml.model";
    let model = f
        .get(model_key)
        .map(|v| {
            v.as_str()
                .ok_or_else(|| err(f, model_key, "is not a string".into()))
        })
        .transpose()?
        .ok_or_else(|| err(f, model_key, "is missing: the file has no tokenizer".into()))?;
    if model != "gpt2" {
        return Err(err(
            f,
            model_key,
            format!(
                "tokenizer model `{model}` is not supported yet (only `gpt2`, byte-level BPE, is)"
            ),
        ));
    }
    let tokens_key = "tokenizer.ggml.tokens";
    let tokens = f.get(tokens_key).and_then(Value::as_strs).ok_or_else(|| {
        err(
            f,
            tokens_key,
            "is missing or not an array of strings".into(),
        )
    })?;
    let merges_key = "tokenizer.ggml.merges";
    let merges = f.get(merges_key).and_then(Value::as_strs).ok_or_else(|| {
        err(
            f,
            merges_key,
            "is missing or not an array of strings".into(),
        )
    })?;
    let types_key = "tokenizer.ggml.token_type";
    let types = match f.get(types_key) {
        None => vec![1; tokens.len()],
        Some(v) => v
            .as_ints()
            .filter(|t| t.len() == tokens.len())
            .ok_or_else(|| err(f, types_key, format!("is not {} integers", tokens.len())))?,
    };
    let pre_key = "tokenizer.ggml.pre";
    let pre = match f.get(pre_key) {
        None => "gpt2",
        Some(v) => v
            .as_str()
            .ok_or_else(|| err(f, pre_key, "is not a string".into()))?,
    };
    let pre_tokenizer = pre_tokenizer(pre).ok_or_else(|| {
        err(
            f,
            pre_key,
            format!(
                "pre-tokenizer `{pre}` is not supported yet (supported: {})",
                SUPPORTED_PRE.join(", ")
            ),
        )
    })?;

    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (id, (tok, &ty)) in tokens.iter().zip(&types).enumerate() {
        // A repeated token keeps its first id, as a `tokenizer.json` vocabulary can hold one.
        vocab.entry(tok.clone()).or_insert(json!(id));
        if ty == CONTROL || ty == USER_DEFINED {
            added.push(json!({
                "id": id, "content": tok, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": ty == CONTROL,
            }));
        }
    }
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let (a, b) = m.split_once(' ').ok_or_else(|| {
            err(
                f,
                merges_key,
                format!("merge #{i} `{m}` is not two tokens separated by a space"),
            )
        })?;
        pairs.push(json!([a, b]));
    }
    let tok = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor(f, tokens)?,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": matches!(pre, "llama-bpe" | "llama3"),
            "vocab": vocab, "merges": pairs,
        },
    });
    Ok(tok.to_string())
}
