//! Text generation after the model: from the logits of the last position to text on stdout,
//! independent of how the logits are computed (the compiled decode loop owns the model and its
//! KV cache).
//!
//! - [`GenerationConfig`]: `generation_config.json` plus overrides, transformers' defaults,
//!   validated.
//! - [`logits`]: transformers' logits processors (repetition penalty, suppress tokens,
//!   temperature, top-k, top-p) in `_get_logits_processor`'s order, on one `f32` row.
//! - [`Sampler`]: greedy argmax or a seeded draw (xoshiro256**: same seed, same ids).
//! - [`StopCriteria`]: end-of-sequence ids, the new-token limit, stop strings in the text.
//! - [`TextStream`]: ids in one at a time, final text out (no half characters).
//! - [`Generator`]: the four wired together for one sequence.
//! - [`CausalLm`]: a compiled decoder with its key/value cache, prefill then one token per step.
//! - [`Seq2Seq`]: a text encoder-decoder (BART): the sources through the encoder once, its
//!   cross-attention keys and values written into the cached decoder's states, then one token
//!   per row per step.
//! - [`Whisper`]: speech to text — features, the encoder once, its cross-attention keys and
//!   values written into the cached decoder's states, greedy decoding.

mod config;
mod decoder;
mod generator;
pub mod logits;
mod sampler;
mod seq2seq;
mod stop;
mod stream;
mod whisper;

pub use config::{GenerationConfig, KEYS};
pub use decoder::CausalLm;
pub use generator::{Generator, Step};
pub use logits::LogitsProcessor;
pub use sampler::{argmax, sample, Rng, Sampler};
pub use seq2seq::{Seq2Seq, Seq2SeqSettings};
pub use stop::{Checked, StopCriteria, StopReason};
pub use stream::TextStream;
pub use whisper::{decoder_start_ids, Transcript, Whisper};
