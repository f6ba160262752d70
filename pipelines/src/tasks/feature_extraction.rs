//! `feature-extraction` and `sentence-embeddings`: a text model's hidden states, pooled into one
//! embedding per text as sentence-transformers pools them (`1_Pooling/config.json`: CLS, mean,
//! max, mean·√len; `Normalize` in `modules.json`; `max_seq_length` of
//! `sentence_bert_config.json`), or per token as transformers' feature extraction returns them.

use crate::batch::TextModel;
use crate::batch::{first_output, BatchOutputs, Sequence};
use crate::files::Files;
use crate::tokenize::Truncation;
use crate::{Error, Run};
use kiln_runtime::Model;
use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::Value;

/// One way of pooling token states into a sentence embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The first token's state (`pooling_mode_cls_token`).
    Cls,
    /// The largest value of each feature over the tokens (`pooling_mode_max_tokens`).
    Max,
    /// The mean over the tokens (`pooling_mode_mean_tokens`).
    Mean,
    /// The sum over the tokens divided by √len (`pooling_mode_mean_sqrt_len_tokens`).
    MeanSqrtLen,
}

/// How texts become features.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmbeddingSettings {
    /// The poolings, concatenated in this order (sentence-transformers' order); empty: per-token
    /// states.
    pub pooling: Vec<Pooling>,
    /// L2-normalise each embedding (a `Normalize` module).
    pub normalize: bool,
    /// sentence-transformers' `max_seq_length`.
    pub max_seq_length: Option<usize>,
    /// Lowercase texts first (`do_lower_case` of `sentence_bert_config.json`).
    pub lowercase: bool,
    /// Whether the settings are sentence-transformers' (texts are then stripped, as it does).
    pub sentence_transformers: bool,
}

impl EmbeddingSettings {
    /// Reads sentence-transformers' files; `sentence_embeddings` asks for an embedding even
    /// without them (mean pooling, as sentence-transformers wraps a plain model).
    pub fn load(files: &dyn Files, sentence_embeddings: bool) -> Result<EmbeddingSettings, Error> {
        let mut s = EmbeddingSettings::default();
        let modules = files.json("modules.json")?;
        let list = modules.as_ref().and_then(Value::as_array);
        let bad = |file: &str, message: String| Error::Settings {
            file: files.describe(file),
            message,
        };
        for m in list.into_iter().flatten() {
            let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
            let path = m.get("path").and_then(Value::as_str).unwrap_or("");
            let kind = kind.rsplit('.').next().unwrap_or(kind);
            match kind {
                "Transformer" => {}
                "Normalize" => s.normalize = true,
                "Pooling" => {
                    let name = if path.is_empty() {
                        "config.json".to_string()
                    } else {
                        format!("{path}/config.json")
                    };
                    let cfg = files.json(&name)?.ok_or_else(|| Error::Missing {
                        file: files.describe(&name),
                        why: "the pooling that modules.json lists".into(),
                    })?;
                    s.pooling = pooling_modes(&cfg).map_err(|m| bad(&name, m))?;
                }
                other => {
                    return Err(bad(
                        "modules.json",
                        format!("module `{other}` is not one the pipeline runs (Transformer, Pooling, Normalize)"),
                    ))
                }
            }
        }
        s.sentence_transformers = list.is_some();
        if let Some(cfg) = files.json("sentence_bert_config.json")? {
            s.max_seq_length = cfg
                .get("max_seq_length")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok());
            s.lowercase = cfg.get("do_lower_case").and_then(Value::as_bool) == Some(true);
        }
        if sentence_embeddings && s.pooling.is_empty() {
            s.pooling = vec![Pooling::Mean];
        }
        Ok(s)
    }
}

/// The poolings a `1_Pooling/config.json` turns on.
fn pooling_modes(cfg: &Value) -> Result<Vec<Pooling>, String> {
    let on = |key: &str| cfg.get(key).and_then(Value::as_bool) == Some(true);
    for key in ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] {
        if on(key) {
            return Err(format!("`{key}` is not a pooling the pipeline supports"));
        }
    }
    let mut modes = Vec::new();
    for (key, mode) in [
        ("pooling_mode_cls_token", Pooling::Cls),
        ("pooling_mode_max_tokens", Pooling::Max),
        ("pooling_mode_mean_tokens", Pooling::Mean),
        ("pooling_mode_mean_sqrt_len_tokens", Pooling::MeanSqrtLen),
    ] {
        if on(key) {
            modes.push(mode);
        }
    }
    if let Some(mode) = cfg.get("pooling_mode").and_then(Value::as_str) {
        modes.push(match mode {
            "cls" => Pooling::Cls,
            "max" => Pooling::Max,
            "mean" => Pooling::Mean,
            "mean_sqrt_len_tokens" => Pooling::MeanSqrtLen,
            other => return Err(format!("pooling mode `{other}` is not supported")),
        });
    }
    if modes.is_empty() {
        return Err("turns on no pooling mode".into());
    }
    Ok(modes)
}

/// The features of one text.
#[derive(Debug, Clone, PartialEq)]
pub enum Features {
    /// One embedding (serialized as an array of floats).
    Pooled(Vec<f32>),
    /// One vector per token (serialized as transformers returns it, `[1, tokens, hidden]`).
    Tokens(Vec<Vec<f32>>),
}

impl Serialize for Features {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Features::Pooled(v) => v.serialize(s),
            Features::Tokens(v) => {
                let mut seq = s.serialize_seq(Some(1))?;
                seq.serialize_element(v)?;
                seq.end()
            }
        }
    }
}

/// The feature-extraction pipeline.
#[derive(Debug)]
pub struct FeatureExtraction {
    text: TextModel,
    output: String,
    settings: EmbeddingSettings,
}

impl FeatureExtraction {
    /// The pipeline over `model` with the settings in `files`; `sentence_embeddings` pools even
    /// without sentence-transformers' files.
    pub fn new(
        model: Model,
        files: &dyn Files,
        sentence_embeddings: bool,
    ) -> Result<FeatureExtraction, Error> {
        let task = if sentence_embeddings {
            "sentence-embeddings"
        } else {
            "feature-extraction"
        };
        let output = first_output(&model, task)?;
        Ok(FeatureExtraction {
            text: TextModel::new(model, files, task)?,
            output,
            settings: EmbeddingSettings::load(files, sentence_embeddings)?,
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &EmbeddingSettings {
        &self.settings
    }

    /// The features of each text, in order.
    pub fn run(&self, texts: &[String], batch_size: usize) -> Result<Run<Features>, Error> {
        let s = &self.settings;
        let prepared: Vec<String> = texts
            .iter()
            .map(|t| {
                let t = if s.sentence_transformers { t.trim() } else { t };
                if s.lowercase {
                    t.to_lowercase()
                } else {
                    t.to_string()
                }
            })
            .collect();
        let max = crate::batch::min_some(s.max_seq_length, self.text.tokenizer.max_len);
        let (encodings, notes): (_, Vec<Truncation>) =
            self.text.tokenizer.encode_all(&prepared, max)?;
        let seqs: Vec<Sequence> = encodings.iter().map(Sequence::from).collect();
        let results = self.text.run(&seqs, batch_size, |i, out, row| {
            self.features(out, row, seqs[i].ids.len())
        })?;
        Ok(Run { results, notes })
    }

    /// The features of row `row` (`len` real tokens) of a batch.
    fn features(&self, out: &BatchOutputs, row: usize, len: usize) -> Result<Features, Error> {
        let (x, shape) = out.row(&self.output, row)?;
        let &[seq, hidden] = shape.as_slice() else {
            return Err(Error::OutputShape {
                output: self.output.clone(),
                shape,
                expected: "[batch, tokens, hidden]".into(),
            });
        };
        let len = len.min(seq);
        let token = |t: usize| &x[t * hidden..(t + 1) * hidden];
        if self.settings.pooling.is_empty() {
            return Ok(Features::Tokens(
                (0..len).map(|t| token(t).to_vec()).collect(),
            ));
        }
        let mut embedding: Vec<f64> = Vec::with_capacity(hidden * self.settings.pooling.len());
        for mode in &self.settings.pooling {
            match mode {
                Pooling::Cls => embedding.extend(token(0).iter().map(|&v| f64::from(v))),
                Pooling::Max => embedding.extend(
                    (0..hidden)
                        .map(|h| (0..len).fold(-1e9f64, |m, t| m.max(f64::from(token(t)[h])))),
                ),
                Pooling::Mean | Pooling::MeanSqrtLen => {
                    let mut sum = vec![0.0f64; hidden];
                    for t in 0..len {
                        sum.iter_mut()
                            .zip(token(t))
                            .for_each(|(a, &v)| *a += f64::from(v));
                    }
                    let n = (len as f64).max(1e-9);
                    let d = if *mode == Pooling::Mean { n } else { n.sqrt() };
                    embedding.extend(sum.into_iter().map(|v| v / d));
                }
            }
        }
        if self.settings.normalize {
            let norm = embedding
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
                .max(1e-12);
            embedding.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(Features::Pooled(
            embedding.into_iter().map(|v| v as f32).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pooling_modes_follow_sentence_transformers_order() {
        let cfg = json!({"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true});
        assert_eq!(
            pooling_modes(&cfg).unwrap(),
            vec![Pooling::Cls, Pooling::Mean]
        );
        assert!(pooling_modes(&json!({})).is_err());
        assert!(pooling_modes(&json!({"pooling_mode_lasttoken": true})).is_err());
    }

    #[test]
    fn token_features_serialize_with_a_batch_axis() {
        let f = Features::Tokens(vec![vec![1.0, 2.0]]);
        assert_eq!(serde_json::to_string(&f).unwrap(), "[[[1.0,2.0]]]");
        let f = Features::Pooled(vec![0.5]);
        assert_eq!(serde_json::to_string(&f).unwrap(), "[0.5]");
    }
}
