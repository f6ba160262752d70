//! `text-classification`: a label and score for each text, as transformers'
//! `TextClassificationPipeline` returns them (softmax, sigmoid or raw logits chosen by the
//! config; the best label alone by default, the `top_k` best with `--top-k`).

use crate::batch::TextModel;
use crate::batch::{require_outputs, Sequence};
use crate::files::Files;
use crate::scores::top_k;
use crate::scores::ScoreFunction;
use crate::settings::ModelConfig;
use crate::{Error, Run};
use kiln_runtime::Model;
use serde::{Serialize, Serializer};

/// A label and its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Label {
    /// The label's name (`id2label`).
    pub label: String,
    /// Its score.
    pub score: f64,
}

/// The labels of one input, best first. Serialized as transformers returns them: the best label
/// alone (an object) when no `top_k` was asked for, else the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// The labels, best first.
    pub labels: Vec<Label>,
    /// Whether `top_k` was asked for (transformers then returns a list).
    pub listed: bool,
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.listed, self.labels.first()) {
            (false, Some(best)) => best.serialize(s),
            _ => self.labels.serialize(s),
        }
    }
}

/// Scores one row of logits into labels, best first: the `top_k` best (all with `None`).
pub fn rank_labels(
    logits: &[f32],
    function: ScoreFunction,
    config: &ModelConfig,
    k: Option<usize>,
) -> Vec<Label> {
    let scores = function.apply(logits);
    top_k(&scores, k.unwrap_or(scores.len()))
        .into_iter()
        .map(|i| Label {
            label: config.label(i),
            score: scores[i],
        })
        .collect()
}

/// The text-classification pipeline.
#[derive(Debug)]
pub struct TextClassification {
    text: TextModel,
}

impl TextClassification {
    /// The pipeline over `model` (which must have a `logits` output) with the settings in
    /// `files`.
    pub fn new(model: Model, files: &dyn Files) -> Result<TextClassification, Error> {
        require_outputs(&model, "text-classification", &["logits"])?;
        Ok(TextClassification {
            text: TextModel::new(model, files, "text-classification")?,
        })
    }

    /// The labels of each text: the best one when `top_k` is `None` (transformers' default),
    /// else the `top_k` best; `function` overrides the config's score function.
    pub fn run(
        &self,
        texts: &[String],
        top_k: Option<usize>,
        function: Option<ScoreFunction>,
        batch_size: usize,
    ) -> Result<Run<Labels>, Error> {
        let (encodings, notes) = self.text.tokenizer.encode_all(texts, None)?;
        let seqs: Vec<Sequence> = encodings.iter().map(Sequence::from).collect();
        let config = &self.text.config;
        let results = self.text.run(&seqs, batch_size, |_, out, row| {
            let (logits, shape) = out.row("logits", row)?;
            let &[width] = shape.as_slice() else {
                return Err(Error::OutputShape {
                    output: "logits".into(),
                    shape,
                    expected: "[batch, labels]".into(),
                });
            };
            let f = function.unwrap_or_else(|| config.default_score_function(width));
            Ok(Labels {
                labels: rank_labels(&logits, f, config, Some(top_k.unwrap_or(1))),
                listed: top_k.is_some(),
            })
        })?;
        Ok(Run { results, notes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_serialize_as_one_object_unless_listed() {
        let l = |listed| Labels {
            labels: vec![Label {
                label: "POS".into(),
                score: 0.9,
            }],
            listed,
        };
        assert_eq!(
            serde_json::to_string(&l(false)).unwrap(),
            r#"{"label":"POS","score":0.9}"#
        );
        assert_eq!(
            serde_json::to_string(&l(true)).unwrap(),
            r#"[{"label":"POS","score":0.9}]"#
        );
    }

    #[test]
    fn ranking_applies_the_score_function() {
        let c = ModelConfig::default();
        let r = rank_labels(&[0.0, 2.0], ScoreFunction::Softmax, &c, None);
        assert_eq!(r[0].label, "LABEL_1");
        assert!((r[0].score + r[1].score - 1.0).abs() < 1e-12);
        let r = rank_labels(&[0.0], ScoreFunction::Sigmoid, &c, Some(5));
        assert_eq!(r.len(), 1);
        assert!((r[0].score - 0.5).abs() < 1e-12);
    }
}
