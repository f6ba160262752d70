//! Text into token ids as transformers' fast tokenizers make them: the folder's `tokenizer.json`
//! (padding and truncation it may carry are dropped, as transformers drops them), the special
//! tokens of `tokenizer_config.json` / `special_tokens_map.json`, truncation to the model's
//! longest input with a [`Truncation`] note, and decoding back to text.

use crate::files::Files;
use crate::settings::token_string;
use crate::Error;
use serde_json::Value;
use tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};

/// `model_max_length` values at or above this are transformers' "no limit" sentinel
/// (`int(1e30)`), not a length.
const NO_LIMIT: f64 = 1e12;

/// An input that was cut to fit the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Truncation {
    /// Which input (0-based; messages number inputs from 1).
    pub input: usize,
    /// Its length in tokens before truncation.
    pub from: usize,
    /// Its length after.
    pub to: usize,
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "input {} was truncated from {} to {} tokens",
            self.input + 1,
            self.from,
            self.to
        )
    }
}

/// A model folder's tokenizer and the settings around it.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    /// The longest input in tokens (special tokens included), if the model has a limit.
    pub max_len: Option<usize>,
    /// The mask token and its id (fill-mask).
    pub mask: Option<(String, u32)>,
    /// The padding id (`pad_token`, else 0).
    pub pad_id: u32,
    /// The id of `cls_token`, if the tokenizer has one.
    pub cls_id: Option<u32>,
    /// The id of `unk_token`, if the tokenizer has one.
    pub unk_id: Option<u32>,
    /// transformers' `clean_up_tokenization_spaces` (off unless the config turns it on).
    pub clean_up_spaces: bool,
    /// Whether the model marks word continuations (`##` of WordPiece): token classification then
    /// tells subwords by their length, not by the spaces around them.
    pub has_subword_prefix: bool,
    /// `padding_side == "left"`: question answering then puts the context first.
    pub pads_left: bool,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` and the special tokens; `model_limit` caps the longest input
    /// (`max_position_embeddings`, the compiled model's own input limit).
    pub fn load(files: &dyn Files, model_limit: Option<usize>) -> Result<TextTokenizer, Error> {
        let name = "tokenizer.json";
        let Some(bytes) = files.read(name)? else {
            return Err(Error::Missing {
                file: files.describe(name),
                why: "the tokenizer of text pipelines".into(),
            });
        };
        let bad = |message: String| Error::Settings {
            file: files.describe(name),
            message,
        };
        let mut tokenizer = Tokenizer::from_bytes(&bytes)
            .map_err(|e| bad(format!("is not a tokenizer this version reads: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| bad(e.to_string()))?;
        let raw: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let has_subword_prefix = raw
            .pointer("/model/continuing_subword_prefix")
            .and_then(Value::as_str)
            .is_some_and(|p| !p.is_empty());
        let config = files.json("tokenizer_config.json")?.unwrap_or(Value::Null);
        let special = files
            .json("special_tokens_map.json")?
            .unwrap_or(Value::Null);
        let token = |key: &str| {
            let text = token_string(config.get(key)).or_else(|| token_string(special.get(key)))?;
            let id = tokenizer.token_to_id(&text)?;
            Some((text, id))
        };
        let model_max = config
            .get("model_max_length")
            .and_then(Value::as_f64)
            .filter(|n| (1.0..NO_LIMIT).contains(n))
            .map(|n| n as usize);
        let max_len = match (model_max, model_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(TextTokenizer {
            mask: token("mask_token"),
            pad_id: token("pad_token").map_or(0, |(_, id)| id),
            cls_id: token("cls_token").map(|(_, id)| id),
            unk_id: token("unk_token").map(|(_, id)| id),
            clean_up_spaces: config
                .get("clean_up_tokenization_spaces")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            pads_left: config.get("padding_side").and_then(Value::as_str) == Some("left"),
            has_subword_prefix,
            max_len,
            tokenizer,
        })
    }

    /// The tokenizer itself (no padding, no truncation).
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encodes texts with special tokens and character offsets; a text longer than `max_len`
    /// (default: the model's limit) is truncated at its end and noted.
    pub fn encode_all(
        &self,
        texts: &[String],
        max_len: Option<usize>,
    ) -> Result<(Vec<Encoding>, Vec<Truncation>), Error> {
        for (i, t) in texts.iter().enumerate() {
            if t.trim().is_empty() {
                return Err(Error::EmptyInput { input: i });
            }
        }
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut encodings = self
            .tokenizer
            .encode_batch_char_offsets(inputs, true)
            .map_err(|e| Error::Tokenize {
                message: e.to_string(),
            })?;
        let mut notes = Vec::new();
        let Some(limit) = max_len.or(self.max_len) else {
            return Ok((encodings, notes));
        };
        let mut cutter: Option<Tokenizer> = None;
        for (i, enc) in encodings.iter_mut().enumerate() {
            if enc.len() <= limit {
                continue;
            }
            let cutter = match &mut cutter {
                Some(c) => c,
                None => {
                    cutter.insert(self.truncating(limit, 0, TruncationStrategy::LongestFirst)?)
                }
            };
            let cut = cutter
                .encode_char_offsets(texts[i].as_str(), true)
                .map_err(|e| Error::Tokenize {
                    message: format!("input {}: {e}", i + 1),
                })?;
            notes.push(Truncation {
                input: i,
                from: enc.len(),
                to: cut.len(),
            });
            *enc = cut;
        }
        Ok((encodings, notes))
    }

    /// A copy of the tokenizer that truncates to `max_length` tokens with `stride` tokens of
    /// overlap between the windows it returns as overflowing encodings.
    pub fn truncating(
        &self,
        max_length: usize,
        stride: usize,
        strategy: TruncationStrategy,
    ) -> Result<Tokenizer, Error> {
        let mut t = self.tokenizer.clone();
        t.with_truncation(Some(TruncationParams {
            max_length,
            stride,
            strategy,
            ..Default::default()
        }))
        .map_err(|e| Error::Tokenize {
            message: e.to_string(),
        })?;
        Ok(t)
    }

    /// transformers' `decode(ids, skip_special_tokens)`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, Error> {
        let text = self
            .tokenizer
            .decode(ids, skip_special_tokens)
            .map_err(|e| Error::Tokenize {
                message: format!("cannot decode: {e}"),
            })?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// transformers' `convert_ids_to_tokens` for one id (empty for an id outside the vocabulary).
    pub fn id_to_token(&self, id: u32) -> String {
        self.tokenizer.id_to_token(id).unwrap_or_default()
    }

    /// transformers' `convert_tokens_to_string`: the decoder over the tokens, else the tokens
    /// joined with spaces.
    pub fn tokens_to_string(&self, tokens: Vec<String>) -> Result<String, Error> {
        use tokenizers::tokenizer::Decoder;
        match self.tokenizer.get_decoder() {
            Some(d) => d.decode(tokens).map_err(|e| Error::Tokenize {
                message: format!("cannot decode: {e}"),
            }),
            None => Ok(tokens.join(" ")),
        }
    }
}

/// transformers' `clean_up_tokenization`: no space before punctuation and English contractions.
pub fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

/// The `start..end` characters of `text` (Python's `text[start:end]` on code points).
pub fn char_slice(text: &str, start: usize, end: usize) -> &str {
    let byte = |n: usize| text.char_indices().nth(n).map_or(text.len(), |(b, _)| b);
    let (s, e) = (byte(start), byte(end.max(start)));
    &text[s..e]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_slices_count_code_points() {
        assert_eq!(char_slice("héllo wörld", 6, 11), "wörld");
        assert_eq!(char_slice("abc", 2, 10), "c");
        assert_eq!(char_slice("abc", 5, 7), "");
        assert_eq!(char_slice("abc", 2, 1), "");
    }

    #[test]
    fn clean_up_joins_punctuation() {
        assert_eq!(clean_up_tokenization("it is n't , ok ."), "it isn't, ok.");
    }
}
