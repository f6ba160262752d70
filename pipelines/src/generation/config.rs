//! `GenerationConfig`: the settings of text generation, read from a model folder's
//! `generation_config.json` (or the token ids of `config.json` when it has none) with overrides
//! on top, and validated. Defaults are transformers' `GenerationConfig` defaults.

use crate::{Error, Files};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The settings of text generation, keyed as transformers' `GenerationConfig` keys them.
///
/// `do_sample = false` (the default) is greedy decoding: `temperature`, `top_k` and `top_p` then
/// do nothing, as in transformers. Unknown keys of `generation_config.json` (Whisper's
/// `alignment_heads`, `lang_to_id`, ...) are ignored; unknown override keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationConfig {
    /// The most tokens to generate after the prompt; `None` falls back to `max_length`.
    pub max_new_tokens: Option<usize>,
    /// The longest sequence, prompt included, when `max_new_tokens` is `None` (default 20).
    pub max_length: usize,
    /// Sample from the processed distribution (`true`) or take its argmax (`false`, default).
    pub do_sample: bool,
    /// Divides the logits before sampling (default 1.0, i.e. nothing); must be > 0 when sampling.
    pub temperature: f64,
    /// Keep only the `top_k` most likely tokens when sampling (default 50; 0 turns it off).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability adds up to more than `top_p` when
    /// sampling (default 1.0, i.e. all); 0 < `top_p` ≤ 1.
    pub top_p: f64,
    /// Penalises tokens already in the sequence, prompt included (default 1.0, i.e. nothing);
    /// must be > 0.
    pub repetition_penalty: f64,
    /// The sampler's seed; `None` (default) takes one from the clock (transformers without
    /// `set_seed`). [`crate::generation::Sampler::seed`] reports the one used.
    pub seed: Option<u64>,
    /// The end-of-sequence ids (`eos_token_id`: one id or a list).
    #[serde(deserialize_with = "one_or_many")]
    pub eos_token_id: Vec<u32>,
    /// The padding id.
    pub pad_token_id: Option<u32>,
    /// The beginning-of-sequence id.
    pub bos_token_id: Option<u32>,
    /// Ids that are never generated.
    #[serde(deserialize_with = "list_or_null")]
    pub suppress_tokens: Vec<u32>,
    /// Ids that are not generated at the first generated position.
    #[serde(deserialize_with = "list_or_null")]
    pub begin_suppress_tokens: Vec<u32>,
    /// Generation stops when the text ends with one of these (`stop_strings`: one or a list);
    /// the stop string itself is not part of the output.
    #[serde(deserialize_with = "one_or_many")]
    pub stop_strings: Vec<String>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: None,
            max_length: 20,
            do_sample: false,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: None,
            eos_token_id: Vec::new(),
            pad_token_id: None,
            bos_token_id: None,
            suppress_tokens: Vec::new(),
            begin_suppress_tokens: Vec::new(),
            stop_strings: Vec::new(),
        }
    }
}

/// The keys an override may set.
pub const KEYS: &[&str] = &[
    "max_new_tokens",
    "max_length",
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "repetition_penalty",
    "seed",
    "eos_token_id",
    "pad_token_id",
    "bos_token_id",
    "suppress_tokens",
    "begin_suppress_tokens",
    "stop_strings",
];

/// The file the settings come from.
const FILE: &str = "generation_config.json";

impl GenerationConfig {
    /// The settings of a model: `generation_config.json`, or, without one, the token ids of
    /// `config.json` (transformers' `GenerationConfig.from_model_config`); then `overrides`
    /// (keys as in [`KEYS`], JSON values; `null` restores the default), then [`Self::validate`].
    pub fn load(files: &dyn Files, overrides: &Map<String, Value>) -> Result<Self, Error> {
        let (file, mut json) = match files.json(FILE)? {
            Some(json) => (FILE, json),
            None => {
                let mut ids = Map::new();
                if let Some(Value::Object(config)) = files.json("config.json")? {
                    for key in ["eos_token_id", "pad_token_id", "bos_token_id"] {
                        if let Some(v) = config.get(key) {
                            ids.insert(key.to_string(), v.clone());
                        }
                    }
                }
                ("config.json", Value::Object(ids))
            }
        };
        let Value::Object(map) = &mut json else {
            return Err(Error::Settings {
                file: files.describe(file),
                message: "is not a JSON object".to_string(),
            });
        };
        // Keys set to null in the file mean "the default", as in transformers.
        map.retain(|k, v| !v.is_null() || !KEYS.contains(&k.as_str()));
        let mut config = Self::from_value(json).map_err(|e| Error::Settings {
            file: files.describe(file),
            message: e,
        })?;
        config.update(overrides)?;
        Ok(config)
    }

    /// Sets the keys of `overrides` (transformers' `generate(**kwargs)`), then validates.
    pub fn update(&mut self, overrides: &Map<String, Value>) -> Result<(), Error> {
        let mut map = match serde_json::to_value(&*self) {
            Ok(Value::Object(map)) => map,
            // Only a NaN or infinite float set directly on a field gets here.
            _ => {
                return Err(Error::Generation {
                    field: "*".to_string(),
                    message: "the settings cannot be written as JSON (a NaN value?)".to_string(),
                })
            }
        };
        for (key, value) in overrides {
            if !KEYS.contains(&key.as_str()) {
                return Err(Error::Generation {
                    field: key.clone(),
                    message: format!("unknown setting; the settings are {}", KEYS.join(", ")),
                });
            }
            let value = if value.is_null() {
                default_value(key)
            } else {
                value.clone()
            };
            // Check each override on its own so that the error names it.
            let mut one = Map::new();
            one.insert(key.clone(), value.clone());
            Self::from_value(Value::Object(one)).map_err(|message| Error::Generation {
                field: key.clone(),
                message,
            })?;
            map.insert(key.clone(), value);
        }
        *self = Self::from_value(Value::Object(map)).map_err(|message| Error::Generation {
            field: "*".to_string(),
            message,
        })?;
        self.validate()
    }

    /// Checks the values: `temperature` > 0 when sampling, 0 < `top_p` ≤ 1,
    /// `repetition_penalty` > 0, `max_new_tokens` > 0 when set (NaN fails each).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &str, message: String| {
            Err(Error::Generation {
                field: field.to_string(),
                message,
            })
        };
        if self.do_sample && !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad(
                "temperature",
                format!(
                    "must be a number > 0 when sampling (do_sample), got {}",
                    self.temperature
                ),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", format!("must be in (0, 1], got {}", self.top_p));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad(
                "repetition_penalty",
                format!("must be a number > 0, got {}", self.repetition_penalty),
            );
        }
        if self.max_new_tokens == Some(0) {
            return bad("max_new_tokens", "must be > 0".to_string());
        }
        if self.stop_strings.iter().any(String::is_empty) {
            return bad("stop_strings", "a stop string is empty".to_string());
        }
        Ok(())
    }

    /// How many tokens may follow a prompt of `prompt_len` tokens: `max_new_tokens`, or
    /// `max_length - prompt_len` (at least 0) without it.
    pub fn new_tokens_limit(&self, prompt_len: usize) -> usize {
        self.max_new_tokens
            .unwrap_or_else(|| self.max_length.saturating_sub(prompt_len))
    }

    fn from_value(value: Value) -> Result<Self, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}

/// The JSON of a key's default value.
fn default_value(key: &str) -> Value {
    match serde_json::to_value(GenerationConfig::default()) {
        Ok(Value::Object(map)) => map.get(key).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// One value or a list of them (`eos_token_id: 2` or `[2, 3]`); `null` is none.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match Option::<OneOrMany<T>>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(v)) => vec![v],
        Some(OneOrMany::Many(v)) => v,
    })
}

/// A list; `null` is an empty one.
fn list_or_null<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemory;
    use serde_json::json;

    fn overrides(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn files(entries: &[(&str, &str)]) -> InMemory {
        InMemory {
            label: "model".to_string(),
            files: entries
                .iter()
                .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn defaults_are_transformers() {
        let c = GenerationConfig::default();
        assert!(!c.do_sample);
        assert_eq!((c.temperature, c.top_k, c.top_p), (1.0, 50, 1.0));
        assert_eq!(c.repetition_penalty, 1.0);
        assert_eq!(c.new_tokens_limit(5), 15);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn reads_file_then_overrides() {
        let f = files(&[(
            "generation_config.json",
            r#"{"eos_token_id": [2, 7], "bos_token_id": 1, "do_sample": true,
                "temperature": 0.7, "top_p": 0.9, "suppress_tokens": null,
                "top_k": null, "alignment_heads": [[1, 2]], "transformers_version": "4.57"}"#,
        )]);
        let c = GenerationConfig::load(&f, &overrides(json!({"max_new_tokens": 8, "seed": 3})))
            .unwrap();
        assert_eq!(c.eos_token_id, vec![2, 7]);
        assert_eq!(c.bos_token_id, Some(1));
        assert!(c.do_sample);
        assert_eq!((c.temperature, c.top_k, c.top_p), (0.7, 50, 0.9));
        assert_eq!((c.max_new_tokens, c.seed), (Some(8), Some(3)));
        assert_eq!(c.new_tokens_limit(100), 8);
    }

    #[test]
    fn falls_back_to_model_config_ids() {
        let f = files(&[(
            "config.json",
            r#"{"eos_token_id": 0, "bos_token_id": 0, "vocab_size": 10}"#,
        )]);
        let c = GenerationConfig::load(&f, &Map::new()).unwrap();
        assert_eq!((c.eos_token_id.clone(), c.bos_token_id), (vec![0], Some(0)));
        let none = GenerationConfig::load(&files(&[]), &Map::new()).unwrap();
        assert_eq!(none, GenerationConfig::default());
    }

    #[test]
    fn stop_strings_one_or_many() {
        let mut c = GenerationConfig::default();
        c.update(&overrides(json!({"stop_strings": "\n\n"})))
            .unwrap();
        assert_eq!(c.stop_strings, vec!["\n\n".to_string()]);
        c.update(&overrides(json!({"stop_strings": ["a", "b"]})))
            .unwrap();
        assert_eq!(c.stop_strings.len(), 2);
        c.update(&overrides(json!({"stop_strings": null}))).unwrap();
        assert!(c.stop_strings.is_empty());
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Generation { field, .. } => field,
            other => panic!("not a generation error: {other}"),
        }
    }

    #[test]
    fn validation_errors_name_the_field() {
        let mut c = GenerationConfig::default();
        let e = c
            .update(&overrides(json!({"do_sample": true, "temperature": 0.0})))
            .unwrap_err();
        assert!(e.to_string().contains("temperature"), "{e}");
        assert_eq!(field_of(e), "temperature");
        // Greedy ignores the temperature, as transformers does.
        let mut greedy = GenerationConfig::default();
        greedy
            .update(&overrides(json!({"temperature": 0.0})))
            .unwrap();
        for (key, value) in [
            ("top_p", json!(0.0)),
            ("top_p", json!(1.5)),
            ("repetition_penalty", json!(0.0)),
            ("repetition_penalty", json!(-1.0)),
            ("max_new_tokens", json!(0)),
            ("top_k", json!(-1)),
            ("eos_token_id", json!("two")),
            ("stop_strings", json!([""])),
            ("tempreature", json!(1.0)),
        ] {
            let mut c = GenerationConfig::default();
            let mut o = Map::new();
            o.insert(key.to_string(), value);
            let e = c.update(&o).unwrap_err();
            assert_eq!(field_of(e), key);
        }
        let mut nan = GenerationConfig {
            do_sample: true,
            temperature: f64::NAN,
            ..GenerationConfig::default()
        };
        assert_eq!(field_of(nan.validate().unwrap_err()), "temperature");
        nan.temperature = 1.0;
        nan.top_p = f64::NAN;
        assert_eq!(field_of(nan.validate().unwrap_err()), "top_p");
    }

    #[test]
    fn bad_file_names_the_file() {
        let f = files(&[("generation_config.json", r#"{"top_k": "many"}"#)]);
        let e = GenerationConfig::load(&f, &Map::new()).unwrap_err();
        assert!(e.to_string().contains("generation_config.json"), "{e}");
        let f = files(&[("generation_config.json", "[1]")]);
        assert!(GenerationConfig::load(&f, &Map::new()).is_err());
    }
}
