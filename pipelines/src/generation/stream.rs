//! A streaming detokenizer: ids go in one at a time, the text that is now final comes out.
//!
//! Byte-level BPE can split one UTF-8 character across tokens; decoding such a prefix ends with
//! U+FFFD, the decoder's replacement for incomplete bytes. As text-generation-inference's
//! `decode_token` (and transformers' `TextStreamer`, which holds such text back too) do, the
//! stream decodes the ids from a prefix offset, emits the difference from the previous decode
//! once the result no longer ends with U+FFFD, and only then moves its offsets on. Decoding
//! from a prefix (not from the new id alone) keeps decoders that treat a sequence's first token
//! specially (SentencePiece's leading space) right.

use crate::Error;
use tokenizers::Tokenizer;

/// The replacement character a decoder yields for incomplete UTF-8.
const REPLACEMENT: char = '\u{FFFD}';

/// Incremental decoding of generated ids over a `tokenizers::Tokenizer`.
#[derive(Debug)]
pub struct TextStream<'t> {
    tokenizer: &'t Tokenizer,
    skip_special_tokens: bool,
    /// The ids from `prefix_offset` on (earlier ones are dropped once emitted).
    ids: Vec<u32>,
    /// Where the ids emitted last time start: decoding from here gives their text as context.
    prefix: usize,
    /// The first id whose text has not been emitted.
    read: usize,
}

impl<'t> TextStream<'t> {
    /// A stream over `tokenizer` that skips special tokens (transformers'
    /// `skip_special_tokens=True`).
    pub fn new(tokenizer: &'t Tokenizer) -> TextStream<'t> {
        TextStream {
            tokenizer,
            skip_special_tokens: true,
            ids: Vec::new(),
            prefix: 0,
            read: 0,
        }
    }

    /// Keeps special tokens in the text (`skip_special_tokens=False`).
    pub fn with_special_tokens(mut self) -> TextStream<'t> {
        self.skip_special_tokens = false;
        self
    }

    /// Adds one id; returns the text that became final (often empty, e.g. while a character's
    /// bytes are incomplete).
    pub fn push(&mut self, id: u32) -> Result<String, Error> {
        self.ids.push(id);
        let before = self.decode(&self.ids[self.prefix..self.read])?;
        let now = self.decode(&self.ids[self.prefix..])?;
        if now.len() <= before.len() || now.ends_with(REPLACEMENT) {
            return Ok(String::new());
        }
        let new = difference(&before, &now);
        // The ids before the new prefix are no longer needed as context.
        self.ids.drain(..self.read);
        self.prefix = 0;
        self.read = self.ids.len();
        Ok(new)
    }

    /// The text not emitted yet (an incomplete character becomes U+FFFD, as `decode` gives it),
    /// after the last id. The stream is empty afterwards.
    pub fn finish(&mut self) -> Result<String, Error> {
        let before = self.decode(&self.ids[self.prefix..self.read])?;
        let now = self.decode(&self.ids[self.prefix..])?;
        self.ids.clear();
        self.prefix = 0;
        self.read = 0;
        Ok(if now.len() > before.len() {
            difference(&before, &now)
        } else {
            String::new()
        })
    }

    fn decode(&self, ids: &[u32]) -> Result<String, Error> {
        if ids.is_empty() {
            return Ok(String::new());
        }
        self.tokenizer
            .decode(ids, self.skip_special_tokens)
            .map_err(|e| Error::Tokenize {
                message: format!("cannot decode: {e}"),
            })
    }
}

/// `now` without its prefix `before`. Where a decoder's text of the longer sequence does not
/// start with that of the shorter (no byte-level decoder does that), the text past
/// `before.len()`, cut back to a character boundary.
fn difference(before: &str, now: &str) -> String {
    if let Some(rest) = now.strip_prefix(before) {
        return rest.to_string();
    }
    let mut at = before.len().min(now.len());
    while !now.is_char_boundary(at) {
        at -= 1;
    }
    now[at..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// The shared test-data folder (`KILN_SHARED`, else `shared/` beside the workspace);
    /// `None` skips the test, unless `KILN_REQUIRE_SHARED=1` makes a missing folder a failure.
    fn shared_dir() -> Option<PathBuf> {
        let dir = match std::env::var_os("KILN_SHARED") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
        };
        if dir.is_dir() {
            return Some(dir);
        }
        assert!(
            std::env::var("KILN_REQUIRE_SHARED").as_deref() != Ok("1"),
            "KILN_REQUIRE_SHARED=1 but {} is not a directory",
            dir.display()
        );
        println!("skipped: {} not found", dir.display());
        None
    }

    fn tokenizer(model: &str) -> Option<Tokenizer> {
        let path = shared_dir()?
            .join("models")
            .join(model)
            .join("tokenizer.json");
        Some(Tokenizer::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    const TEXTS: &[&str] = &[
        "Hello, world! 👋🏽 Ça va? 🎉🎉",
        "日本語のテキストと中文字符，还有한국어 텍스트.",
        "Mixed: naïve café 🧑‍🚀 → ∑ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and 😀 at the end 😀",
        "🤖",
        "  leading spaces and\nnew lines\n\n",
    ];

    /// Streams `ids` one at a time: the chunks joined must be `decode(ids)`, with no U+FFFD.
    fn check_stream(tokenizer: &Tokenizer, ids: &[u32], label: &str) {
        let mut stream = TextStream::new(tokenizer);
        let mut joined = String::new();
        let mut held_back = 0;
        for &id in ids {
            let chunk = stream.push(id).unwrap();
            assert!(
                !chunk.contains(REPLACEMENT),
                "{label}: chunk {chunk:?} has U+FFFD"
            );
            held_back += usize::from(chunk.is_empty());
            joined.push_str(&chunk);
        }
        joined.push_str(&stream.finish().unwrap());
        assert_eq!(joined, tokenizer.decode(ids, true).unwrap(), "{label}");
        assert!(held_back < ids.len(), "{label}: nothing was streamed early");
    }

    fn check_model(model: &str) {
        let Some(tokenizer) = tokenizer(model) else {
            return;
        };
        let mut split_chars = 0;
        for text in TEXTS {
            let ids = tokenizer.encode(*text, true).unwrap().get_ids().to_vec();
            split_chars += ids
                .iter()
                .filter(|&&id| tokenizer.decode(&[id], true).unwrap().contains(REPLACEMENT))
                .count();
            check_stream(&tokenizer, &ids, &format!("{model}: {text:?}"));
        }
        // The texts must exercise characters split across tokens.
        assert!(
            split_chars > 0,
            "{model}: no token holds part of a character"
        );
    }

    #[test]
    fn stream_smollm2_byte_level_bpe() {
        check_model("smollm2-135m-instruct");
    }

    #[test]
    fn stream_whisper_tiny_en() {
        check_model("whisper-tiny.en");
    }

    #[test]
    fn special_tokens_are_skipped_unless_asked() {
        let Some(tokenizer) = tokenizer("smollm2-135m-instruct") else {
            return;
        };
        let Some(eos) = tokenizer.token_to_id("<|im_end|>") else {
            return;
        };
        let mut ids = tokenizer
            .encode("Hi there", false)
            .unwrap()
            .get_ids()
            .to_vec();
        ids.push(eos);
        let mut skip = TextStream::new(&tokenizer);
        let mut keep = TextStream::new(&tokenizer).with_special_tokens();
        let (mut a, mut b) = (String::new(), String::new());
        for &id in &ids {
            a += &skip.push(id).unwrap();
            b += &keep.push(id).unwrap();
        }
        a += &skip.finish().unwrap();
        b += &keep.finish().unwrap();
        assert_eq!(a, "Hi there");
        assert_eq!(b, "Hi there<|im_end|>");
    }

    #[test]
    fn an_unfinished_character_is_flushed_by_finish() {
        let Some(tokenizer) = tokenizer("smollm2-135m-instruct") else {
            return;
        };
        let ids = tokenizer.encode("🤖", false).unwrap().get_ids().to_vec();
        assert!(ids.len() > 1, "🤖 is one token: {ids:?}");
        let mut stream = TextStream::new(&tokenizer);
        assert_eq!(stream.push(ids[0]).unwrap(), "");
        let rest = stream.finish().unwrap();
        assert_eq!(rest, tokenizer.decode(&ids[..1], true).unwrap());
        // The stream starts over after finish.
        assert_eq!(stream.finish().unwrap(), "");
    }

    #[test]
    fn difference_is_char_safe() {
        assert_eq!(difference("ab", "abc"), "c");
        assert_eq!(difference("xé", "aéz"), "z");
        // Byte 1 is inside `é`: back to the boundary before it.
        assert_eq!(difference("a", "éz"), "éz");
    }
}
