//! [`Whisper`]: speech to text with a compiled Whisper, as transformers' `generate` does it
//! greedily for one utterance of at most 30 s: the log-mel features
//! ([`WhisperFeatureExtractor`]), one encoder run that also gives every decoder layer's
//! cross-attention keys and values (`cross.N.key|value`), those written once into the cached
//! decoder's read-only states, then the decoder from the start ids
//! ([`decoder_start_ids`]) one token per step ([`CausalLm`]) with `generation_config.json`'s
//! processors (`suppress_tokens`, `begin_suppress_tokens` at the first generated position) and
//! stop criteria (end of sequence, `max_length`), and the ids decoded without special tokens.
//!
//! The two models are compiled by the caller (`kiln_frontends::hf::whisper`'s
//! `build_encoder_with_cross_kv` and `build_cached_decoder`): this crate never compiles.

use super::{CausalLm, GenerationConfig, Generator};
use crate::audio::{Audio, WhisperFeatureExtractor};
use crate::{Error, Files, TextTokenizer};
use kiln_runtime::{Model, Tensor};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// What one transcription produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Transcript {
    /// The generated ids after the start ids (the end-of-sequence id left out).
    pub ids: Vec<u32>,
    /// The ids decoded without special tokens.
    pub text: String,
    /// Milliseconds of the features and the encoder run.
    pub encode_ms: f64,
    /// Milliseconds of the decode loop (cross keys and values written, every decoder step).
    pub decode_ms: f64,
}

/// A compiled Whisper model (borrowed) with its settings.
#[derive(Debug)]
pub struct Whisper<'m> {
    encoder: &'m Model,
    decoder: &'m Model,
    features: WhisperFeatureExtractor,
    config: GenerationConfig,
    tokenizer: TextTokenizer,
    start_ids: Vec<u32>,
    capacity: usize,
}

fn option(message: String) -> Error {
    Error::Option { message }
}

/// The ids a Whisper decoder starts from, as transformers 4.57 builds them without a language,
/// task or timestamps: `decoder_start_token_id` (of `generation_config.json`, else
/// `config.json`), then the `forced_decoder_ids` at positions 1, 2, … in order, or, when there
/// are none, `no_timestamps_token_id` if the config names one. For whisper-tiny.en:
/// `[50257, 50362]`.
pub fn decoder_start_ids(files: &dyn Files) -> Result<Vec<u32>, Error> {
    let gen = files.json("generation_config.json")?.unwrap_or(Value::Null);
    let cfg = files.json("config.json")?.unwrap_or(Value::Null);
    let id = |v: &Value| v.as_u64().and_then(|x| u32::try_from(x).ok());
    let file = |name: &str| files.describe(name);
    let start = gen
        .get("decoder_start_token_id")
        .and_then(id)
        .or_else(|| cfg.get("decoder_start_token_id").and_then(id))
        .ok_or_else(|| Error::Settings {
            file: file("config.json"),
            message: "names no `decoder_start_token_id` (is this a Whisper model?)".into(),
        })?;
    let mut ids = vec![start];
    match gen.get("forced_decoder_ids") {
        Some(Value::Array(forced)) if !forced.is_empty() => {
            let mut pairs = Vec::new();
            for f in forced {
                let pair = f.as_array().filter(|a| a.len() == 2);
                let parsed = pair.and_then(|a| Some((a[0].as_u64()?, id(&a[1])?)));
                pairs.push(parsed.ok_or_else(|| Error::Settings {
                    file: file("generation_config.json"),
                    message: format!("`forced_decoder_ids` entry {f} is not [position, id]"),
                })?);
            }
            pairs.sort_unstable();
            for (i, (pos, tok)) in pairs.into_iter().enumerate() {
                if pos != i as u64 + 1 {
                    return Err(Error::Settings {
                        file: file("generation_config.json"),
                        message: format!(
                            "`forced_decoder_ids` forces position {pos}; only the positions \
                             right after the start token (1, 2, …) are supported"
                        ),
                    });
                }
                ids.push(tok);
            }
        }
        _ => ids.extend(gen.get("no_timestamps_token_id").and_then(id)),
    }
    Ok(ids)
}

impl<'m> Whisper<'m> {
    /// Wires `encoder` (input `input_features`, outputs `cross.N.key|value`) and `decoder` (a
    /// cached decoder with the states `cross.N.key|value`) with the settings of `files`:
    /// `preprocessor_config.json`, `generation_config.json`, `config.json`, `tokenizer.json`.
    pub fn new(
        encoder: &'m Model,
        decoder: &'m Model,
        files: &dyn Files,
    ) -> Result<Whisper<'m>, Error> {
        let features = WhisperFeatureExtractor::load(files)?;
        let config = GenerationConfig::load(files, &Map::new())?;
        let tokenizer = TextTokenizer::load(files, None)?;
        let start_ids = decoder_start_ids(files)?;
        let positions = files
            .json("config.json")?
            .and_then(|c| c.get("max_target_positions").and_then(Value::as_u64))
            .unwrap_or(448);
        let capacity = usize::try_from(positions)
            .unwrap_or(usize::MAX)
            .min(config.max_length.max(start_ids.len()));
        if !encoder
            .plan()
            .inputs
            .iter()
            .any(|io| io.name == "input_features")
        {
            return Err(option(
                "the Whisper encoder has no input `input_features`".into(),
            ));
        }
        Ok(Whisper {
            encoder,
            decoder,
            features,
            config,
            tokenizer,
            start_ids,
            capacity,
        })
    }

    /// The ids decoding starts from.
    pub fn start_ids(&self) -> &[u32] {
        &self.start_ids
    }

    /// Transcribes `audio` (any sample rate: it is resampled; at most 30 s are heard).
    pub fn transcribe(&self, audio: &Audio) -> Result<Transcript, Error> {
        let t0 = Instant::now();
        let features = self.features.features(audio)?;
        let inputs = BTreeMap::from([("input_features".to_string(), features)]);
        let outs = self
            .encoder
            .session()
            .run(&inputs)
            .map_err(|source| Error::Run { source })?;
        let encode_ms = t0.elapsed().as_secs_f64() * 1e3;

        let t1 = Instant::now();
        let mut lm = CausalLm::new(self.decoder, 1, self.capacity)?;
        let cross: Vec<&(String, Tensor)> = outs
            .iter()
            .filter(|(n, _)| n.starts_with("cross."))
            .collect();
        let wanted = self.decoder.plan().states.iter();
        let wanted: Vec<&str> = wanted
            .map(|s| s.name.as_str())
            .filter(|n| n.starts_with("cross."))
            .collect();
        if wanted.is_empty() || wanted.len() != cross.len() {
            return Err(option(format!(
                "the encoder gives {} cross-attention tensors and the decoder takes {}",
                cross.len(),
                wanted.len()
            )));
        }
        for (name, t) in cross {
            lm.write_state(name, t)?;
        }
        let mut generator = Generator::new(&self.config, self.tokenizer.inner(), &self.start_ids)?;
        let mut row = lm
            .prefill(std::slice::from_ref(&self.start_ids))?
            .pop()
            .ok_or_else(|| option("no logits row".into()))?;
        while generator.stopped().is_none() {
            let step = generator.step(&mut row)?;
            if generator.stopped().is_some() {
                break;
            }
            // Steps in place; the processors edit a copy of the logits in the one reused row.
            lm.step_in_place(&[step.id])?;
            row.clear();
            row.extend_from_slice(lm.logits(0)?);
        }
        let eos = &self.config.eos_token_id;
        let ids: Vec<u32> = generator
            .generated()
            .iter()
            .copied()
            .filter(|t| !eos.contains(t))
            .collect();
        let text = self.tokenizer.decode(&ids, true)?;
        Ok(Transcript {
            ids,
            text,
            encode_ms,
            decode_ms: t1.elapsed().as_secs_f64() * 1e3,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemory;

    fn files(generation: &str, config: &str) -> InMemory {
        let mut m = InMemory {
            label: "<memory>".into(),
            ..Default::default()
        };
        m.files
            .insert("generation_config.json".into(), generation.into());
        m.files.insert("config.json".into(), config.into());
        m
    }

    #[test]
    fn start_ids_follow_transformers() {
        // whisper-tiny.en: the start token, then the forced no-timestamps token.
        let f = files(
            r#"{"decoder_start_token_id": 50257, "forced_decoder_ids": [[1, 50362]]}"#,
            "{}",
        );
        assert_eq!(decoder_start_ids(&f).unwrap(), [50257, 50362]);
        // Forced ids in any order go by position; without them, no_timestamps_token_id.
        let f = files(
            r#"{"forced_decoder_ids": [[2, 7], [1, 5]]}"#,
            r#"{"decoder_start_token_id": 3}"#,
        );
        assert_eq!(decoder_start_ids(&f).unwrap(), [3, 5, 7]);
        let f = files(
            r#"{"decoder_start_token_id": 1, "no_timestamps_token_id": 9}"#,
            "{}",
        );
        assert_eq!(decoder_start_ids(&f).unwrap(), [1, 9]);
    }

    #[test]
    fn bad_start_settings_are_errors() {
        let f = files("{}", r#"{"model_type": "bert"}"#);
        let e = decoder_start_ids(&f).unwrap_err().to_string();
        assert!(e.contains("decoder_start_token_id"), "{e}");
        let f = files(
            r#"{"decoder_start_token_id": 1, "forced_decoder_ids": [[3, 5]]}"#,
            "{}",
        );
        let e = decoder_start_ids(&f).unwrap_err().to_string();
        assert!(e.contains("position 3"), "{e}");
        let f = files(
            r#"{"decoder_start_token_id": 1, "forced_decoder_ids": [[1]]}"#,
            "{}",
        );
        assert!(decoder_start_ids(&f).is_err());
    }
}
