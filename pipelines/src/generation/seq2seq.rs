//! [`Seq2Seq`]: generation with a compiled text encoder-decoder (BART, T5) as transformers'
//! `generate` does it greedily (or sampling, with Kiln's sampler): the right-padded sources of
//! a batch through the encoder once (`input_ids`, `attention_mask` → `cross.N.key|value`),
//! those written once into the cached decoder's read-only states, the source mask given to
//! every decoder run as `encoder_attention_mask`, then the decoder from
//! `decoder_start_token_id` one token per row per step ([`CausalLm`]), with
//! `generation_config.json`'s processors, `forced_bos_token_id` (the first generated token, as
//! `ForcedBOSTokenLogitsProcessor`), `forced_eos_token_id` (the last one the limit allows, as
//! `ForcedEOSTokenLogitsProcessor`), end of sequence and `max_new_tokens` / `max_length`.
//! Rows that ended are fed the pad id until every row has ended, as transformers does.
//!
//! The two models are compiled by the caller (`kiln_frontends::hf::load_seq2seq`): this
//! crate never compiles.

use super::{CausalLm, GenerationConfig, Sampler};
use crate::{Error, Files};
use kiln_runtime::{Model, Tensor};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The settings of an encoder-decoder's generation beyond [`GenerationConfig`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seq2SeqSettings {
    /// The decoder's first input id.
    pub decoder_start_token_id: u32,
    /// The id forced as the first generated token, if any.
    pub forced_bos_token_id: Option<u32>,
    /// The ids of which the smallest is forced as the last token the limit allows, if any.
    pub forced_eos_token_id: Vec<u32>,
    /// The id that pads sources and rows that ended.
    pub pad_token_id: u32,
}

/// Settings of transformers' `generate` that change greedy decoding and that Kiln does not
/// implement, with the value that turns each off.
const REFUSED: &[(&str, i64)] = &[
    ("num_beams", 1),
    ("num_beam_groups", 1),
    ("no_repeat_ngram_size", 0),
    ("encoder_no_repeat_ngram_size", 0),
    ("min_length", 0),
    ("min_new_tokens", 0),
];

impl Seq2SeqSettings {
    /// The settings of `files`: `generation_config.json` when there is one (a key it lacks is
    /// transformers' default), else `config.json`; `decoder_start_token_id` falls back to
    /// `config.json`'s, then to `bos_token_id`. Beam search, n-gram blocking and minimum
    /// lengths are refused, naming the setting.
    pub fn load(files: &dyn Files) -> Result<Seq2SeqSettings, Error> {
        let config = files.json("config.json")?.unwrap_or(Value::Null);
        let (name, gen) = match files.json("generation_config.json")? {
            Some(gen) => ("generation_config.json", gen),
            None => ("config.json", config.clone()),
        };
        let bad = |message: String| Error::Settings {
            file: files.describe(name),
            message,
        };
        for &(key, off) in REFUSED {
            match gen.get(key) {
                None | Some(Value::Null) => {}
                Some(v) if v.as_i64() == Some(off) => {}
                Some(v) => {
                    return Err(bad(format!(
                        "`{key}: {v}` is not supported (Kiln generates greedily or by \
                         sampling, with `{key}: {off}`)"
                    )))
                }
            }
        }
        let id = |v: &Value, key: &str| -> Result<Option<u32>, Error> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_u64()
                    .and_then(|x| u32::try_from(x).ok())
                    .map(Some)
                    .ok_or_else(|| bad(format!("`{key}` ({x}) is not a token id"))),
            }
        };
        let start = match id(&gen, "decoder_start_token_id")? {
            Some(s) => s,
            None => match id(&config, "decoder_start_token_id")? {
                Some(s) => s,
                None => id(&gen, "bos_token_id")?.ok_or_else(|| Error::Settings {
                    file: files.describe("config.json"),
                    message: "names no `decoder_start_token_id` (is this an encoder-decoder?)"
                        .into(),
                })?,
            },
        };
        let forced_eos = match gen.get("forced_eos_token_id") {
            Some(Value::Array(ids)) => {
                let mut out = Vec::new();
                for x in ids {
                    let one = Value::Object(Map::from_iter([("id".to_string(), x.clone())]));
                    out.extend(id(&one, "id")?);
                }
                out
            }
            _ => id(&gen, "forced_eos_token_id")?.into_iter().collect(),
        };
        let pad = match id(&gen, "pad_token_id")? {
            Some(p) => p,
            None => id(&config, "pad_token_id")?.unwrap_or(0),
        };
        Ok(Seq2SeqSettings {
            decoder_start_token_id: start,
            forced_bos_token_id: id(&gen, "forced_bos_token_id")?,
            forced_eos_token_id: forced_eos,
            pad_token_id: pad,
        })
    }
}

/// A compiled encoder-decoder (both models borrowed) with its settings.
#[derive(Debug)]
pub struct Seq2Seq<'m> {
    encoder: &'m Model,
    decoder: &'m Model,
    config: GenerationConfig,
    settings: Seq2SeqSettings,
}

fn option(message: String) -> Error {
    Error::Option { message }
}

fn run_err(source: kiln_runtime::Error) -> Error {
    Error::Run { source }
}

impl<'m> Seq2Seq<'m> {
    /// Wires `encoder` (inputs `input_ids`, `attention_mask`; outputs `cross.N.key|value`) and
    /// `decoder` (a cached decoder with the states `cross.N.key|value` and the input
    /// `encoder_attention_mask`) with the settings of `files`, then `overrides` (as
    /// [`GenerationConfig::load`] takes them).
    pub fn new(
        encoder: &'m Model,
        decoder: &'m Model,
        files: &dyn Files,
        overrides: &Map<String, Value>,
    ) -> Result<Seq2Seq<'m>, Error> {
        let config = GenerationConfig::load(files, overrides)?;
        let settings = Seq2SeqSettings::load(files)?;
        for want in ["input_ids", "attention_mask"] {
            if !encoder.plan().inputs.iter().any(|io| io.name == want) {
                return Err(option(format!("the encoder has no input `{want}`")));
            }
        }
        let inputs = &decoder.plan().inputs;
        if !inputs.iter().any(|io| io.name == "encoder_attention_mask") {
            return Err(option(
                "the decoder has no input `encoder_attention_mask`".into(),
            ));
        }
        Ok(Seq2Seq {
            encoder,
            decoder,
            config,
            settings,
        })
    }

    /// The generation settings.
    pub fn config(&self) -> &GenerationConfig {
        &self.config
    }

    /// The encoder-decoder settings.
    pub fn settings(&self) -> &Seq2SeqSettings {
        &self.settings
    }

    /// Generates after each source (ids, special tokens included; any lengths ≥ 1, run as one
    /// right-padded batch): per row the generated ids after the start id, an end-of-sequence id
    /// included.
    pub fn generate(&self, sources: &[Vec<u32>]) -> Result<Vec<Vec<u32>>, Error> {
        if let Some(i) = sources.iter().position(Vec::is_empty) {
            return Err(Error::EmptyInput { input: i });
        }
        let batch = sources.len();
        let limit = self.config.new_tokens_limit(1);
        if batch == 0 || limit == 0 {
            return Ok(vec![Vec::new(); batch]);
        }
        let len = sources.iter().map(Vec::len).max().unwrap_or(0);
        let pad = self.settings.pad_token_id;
        let mut ids = Vec::with_capacity(batch * len);
        let mut mask = Vec::with_capacity(batch * len);
        for s in sources {
            ids.extend(s.iter().map(|&t| i64::from(t)));
            ids.extend(std::iter::repeat_n(i64::from(pad), len - s.len()));
            mask.extend(std::iter::repeat_n(1i64, s.len()));
            mask.extend(std::iter::repeat_n(0i64, len - s.len()));
        }
        let t =
            |v: Vec<i64>| Tensor::from_i64(vec![batch, len], v).map_err(|e| option(e.to_string()));
        let mask = t(mask)?;
        let feeds = BTreeMap::from([
            ("input_ids".to_string(), t(ids)?),
            ("attention_mask".to_string(), mask.clone()),
        ]);
        let outs = self.encoder.session().run(&feeds).map_err(run_err)?;

        let source = i64::try_from(len).map_err(|_| option("the sources are too long".into()))?;
        let mut lm = CausalLm::with_symbols(self.decoder, batch, 1 + limit, &[("source", source)])?;
        self.write_cross(&mut lm, outs)?;
        lm.set_input("encoder_attention_mask", mask)?;
        self.decode(&mut lm, limit)
    }

    /// Writes the encoder's `cross.N.*` outputs into the decoder's states of the same names.
    fn write_cross(&self, lm: &mut CausalLm, outs: Vec<(String, Tensor)>) -> Result<(), Error> {
        let states = self.decoder.plan().states.iter();
        let wanted = states.filter(|s| s.name.starts_with("cross.")).count();
        let cross: Vec<(String, Tensor)> = outs
            .into_iter()
            .filter(|(n, _)| n.starts_with("cross."))
            .collect();
        if wanted == 0 || wanted != cross.len() {
            return Err(option(format!(
                "the encoder gives {} cross-attention tensors and the decoder takes {wanted}",
                cross.len()
            )));
        }
        for (name, t) in &cross {
            lm.write_state(name, t)?;
        }
        Ok(())
    }

    /// The decode loop: every row from the start id until it ends or `limit` ids are out.
    fn decode(&self, lm: &mut CausalLm, limit: usize) -> Result<Vec<Vec<u32>>, Error> {
        let s = &self.settings;
        let batch = lm.batch();
        let start = vec![s.decoder_start_token_id];
        let mut rows = lm.prefill(&vec![start.clone(); batch])?;
        let mut samplers = (0..batch)
            .map(|_| Sampler::new(&self.config))
            .collect::<Result<Vec<_>, _>>()?;
        let mut seqs = vec![start; batch];
        let mut done = vec![false; batch];
        let eos = &self.config.eos_token_id;
        let mut next = Vec::with_capacity(batch);
        for g in 0..limit {
            next.clear();
            for (r, row) in rows.iter_mut().enumerate() {
                if done[r] {
                    next.push(s.pad_token_id);
                    continue;
                }
                let forced_eos = s.forced_eos_token_id.iter().min().copied();
                let id = match (g, s.forced_bos_token_id, forced_eos) {
                    (0, Some(bos), _) => bos,
                    (g, _, Some(eos)) if g + 1 == limit => eos,
                    _ => samplers[r].next(row, &seqs[r])?,
                };
                seqs[r].push(id);
                done[r] = eos.contains(&id);
                next.push(id);
            }
            if done.iter().all(|&d| d) || g + 1 == limit {
                break;
            }
            // Steps in place; the samplers edit copies of the logits in the reused rows.
            lm.step_in_place(&next)?;
            for (r, row) in rows.iter_mut().enumerate() {
                row.clear();
                row.extend_from_slice(lm.logits(r)?);
            }
        }
        Ok(seqs.into_iter().map(|mut s| s.split_off(1)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemory;

    fn files(generation: Option<&str>, config: &str) -> InMemory {
        let mut m = InMemory {
            label: "<memory>".into(),
            ..Default::default()
        };
        if let Some(g) = generation {
            m.files.insert("generation_config.json".into(), g.into());
        }
        m.files.insert("config.json".into(), config.into());
        m
    }

    #[test]
    fn settings_follow_transformers() {
        // generation_config.json wins; a key it lacks is the default (none), not config.json's.
        let f = files(
            Some(r#"{"decoder_start_token_id": 2, "pad_token_id": 1, "forced_bos_token_id": 0}"#),
            r#"{"forced_eos_token_id": 2, "decoder_start_token_id": 7}"#,
        );
        let s = Seq2SeqSettings::load(&f).unwrap();
        assert_eq!(
            s,
            Seq2SeqSettings {
                decoder_start_token_id: 2,
                forced_bos_token_id: Some(0),
                forced_eos_token_id: vec![],
                pad_token_id: 1,
            }
        );
        // Without generation_config.json: config.json's, and a list of forced EOS ids.
        let f = files(
            None,
            r#"{"decoder_start_token_id": 0, "forced_eos_token_id": [5, 3]}"#,
        );
        let s = Seq2SeqSettings::load(&f).unwrap();
        assert_eq!((s.decoder_start_token_id, s.pad_token_id), (0, 0));
        assert_eq!(s.forced_eos_token_id, [5, 3]);
        // The start id falls back to config.json's, then to bos_token_id.
        let f = files(
            Some(r#"{"bos_token_id": 4}"#),
            r#"{"decoder_start_token_id": 6}"#,
        );
        assert_eq!(Seq2SeqSettings::load(&f).unwrap().decoder_start_token_id, 6);
        let f = files(Some(r#"{"bos_token_id": 4}"#), "{}");
        assert_eq!(Seq2SeqSettings::load(&f).unwrap().decoder_start_token_id, 4);
    }

    #[test]
    fn unsupported_settings_are_errors_naming_them() {
        for (gen, key) in [
            (
                r#"{"decoder_start_token_id": 2, "num_beams": 4}"#,
                "num_beams",
            ),
            (
                r#"{"decoder_start_token_id": 2, "no_repeat_ngram_size": 3}"#,
                "no_repeat_ngram_size",
            ),
            (
                r#"{"decoder_start_token_id": 2, "min_length": 5}"#,
                "min_length",
            ),
            (
                r#"{"decoder_start_token_id": 2, "forced_bos_token_id": -1}"#,
                "forced_bos_token_id",
            ),
            ("{}", "decoder_start_token_id"),
        ] {
            let e = Seq2SeqSettings::load(&files(Some(gen), "{}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{gen}: {e}");
        }
        // The values that turn them off are fine.
        let gen = r#"{"decoder_start_token_id": 2, "num_beams": 1, "min_length": 0}"#;
        assert!(Seq2SeqSettings::load(&files(Some(gen), "{}")).is_ok());
    }
}
