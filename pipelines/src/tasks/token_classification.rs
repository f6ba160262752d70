//! `token-classification`: a label for each token, and word pieces aggregated into entities, as
//! transformers' `TokenClassificationPipeline` does it (pre-entities without special tokens, its
//! subword test, the `simple` / `first` / `average` / `max` aggregations, `O` left out).

use crate::batch::TextModel;
use crate::batch::{require_outputs, Sequence};
use crate::files::Files;
use crate::scores::{argmax, softmax};
use crate::settings::ModelConfig;
use crate::tokenize::{char_slice, TextTokenizer};
use crate::{Error, Run};
use kiln_runtime::Model;
use serde::Serialize;
use tokenizers::Encoding;

/// How tokens are grouped (transformers' `aggregation_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// One result per token.
    None,
    /// Adjacent tokens with the same entity type grouped.
    Simple,
    /// Words take the label of their first piece, then grouped.
    First,
    /// Words take the label of the mean of their pieces' scores, then grouped.
    Average,
    /// Words take the label of their highest-scoring piece, then grouped.
    Max,
}

impl Aggregation {
    /// Parses transformers' names (`none`, `simple`, `first`, `average`, `max`).
    pub fn parse(name: &str) -> Option<Aggregation> {
        Some(match name.to_ascii_lowercase().as_str() {
            "none" => Aggregation::None,
            "simple" => Aggregation::Simple,
            "first" => Aggregation::First,
            "average" => Aggregation::Average,
            "max" => Aggregation::Max,
            _ => return None,
        })
    }
}

/// One result: a token (aggregation `none`) or a group of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Entity {
    /// A token and its label.
    Token {
        /// The label.
        entity: String,
        /// Its probability.
        score: f64,
        /// The token's position in the tokenized input.
        index: usize,
        /// The token as the tokenizer writes it (`##ing`).
        word: String,
        /// Its first character in the input.
        start: usize,
        /// One past its last character.
        end: usize,
    },
    /// Adjacent tokens of one entity type.
    Group {
        /// The entity type (the label without its `B-` / `I-`).
        entity_group: String,
        /// The mean probability of its tokens.
        score: f64,
        /// Its tokens decoded.
        word: String,
        /// Its first character in the input.
        start: usize,
        /// One past its last character.
        end: usize,
    },
}

/// A token before aggregation (transformers' pre-entity).
#[derive(Debug, Clone, PartialEq)]
pub struct PreEntity {
    /// The token (or the input's text for an unknown token).
    pub word: String,
    /// The label probabilities.
    pub scores: Vec<f64>,
    /// Character span in the input.
    pub start: usize,
    /// One past its end.
    pub end: usize,
    /// Token position.
    pub index: usize,
    /// Whether it continues the previous token's word.
    pub is_subword: bool,
}

/// A labelled token or word before grouping.
#[derive(Debug, Clone)]
struct Labelled {
    entity: String,
    score: f64,
    index: usize,
    word: String,
    start: usize,
    end: usize,
}

/// The pre-entities of one tokenized input: every token but the special ones.
pub fn pre_entities(
    tok: &TextTokenizer,
    sentence: &str,
    enc: &Encoding,
    scores: Vec<Vec<f64>>,
) -> Vec<PreEntity> {
    let mut out = Vec::new();
    let special = enc.get_special_tokens_mask();
    for (idx, token_scores) in scores.into_iter().enumerate() {
        if special.get(idx).is_none_or(|&s| s != 0) {
            continue;
        }
        let id = enc.get_ids()[idx];
        let (start, end) = enc.get_offsets()[idx];
        let mut word = tok.id_to_token(id);
        let word_ref = char_slice(sentence, start, end);
        let mut is_subword = if tok.has_subword_prefix {
            word.chars().count() != word_ref.chars().count()
        } else {
            start > 0 && !char_slice(sentence, start - 1, start + 1).contains(' ')
        };
        if Some(id) == tok.unk_id {
            word = word_ref.to_string();
            is_subword = false;
        }
        out.push(PreEntity {
            word,
            scores: token_scores,
            start,
            end,
            index: idx,
            is_subword,
        });
    }
    out
}

/// transformers' `aggregate`: labels the pre-entities and groups them per `how`.
pub fn aggregate(
    tok: &TextTokenizer,
    config: &ModelConfig,
    pre: &[PreEntity],
    how: Aggregation,
) -> Result<Vec<Entity>, Error> {
    let label = |scores: &[f64]| {
        let i = argmax(scores);
        (config.label(i), scores.get(i).copied().unwrap_or(f64::NAN))
    };
    let labelled: Vec<Labelled> = match how {
        Aggregation::None | Aggregation::Simple => pre
            .iter()
            .map(|p| {
                let (entity, score) = label(&p.scores);
                Labelled {
                    entity,
                    score,
                    index: p.index,
                    word: p.word.clone(),
                    start: p.start,
                    end: p.end,
                }
            })
            .collect(),
        _ => {
            let mut words = Vec::new();
            let mut group: Vec<&PreEntity> = Vec::new();
            for p in pre {
                if !group.is_empty() && !p.is_subword {
                    words.push(aggregate_word(tok, &group, how, &label)?);
                    group.clear();
                }
                group.push(p);
            }
            if !group.is_empty() {
                words.push(aggregate_word(tok, &group, how, &label)?);
            }
            words
        }
    };
    if how == Aggregation::None {
        return Ok(labelled
            .into_iter()
            .map(|l| Entity::Token {
                entity: l.entity,
                score: l.score,
                index: l.index,
                word: l.word,
                start: l.start,
                end: l.end,
            })
            .collect());
    }
    group_entities(tok, &labelled)
}

/// One word from its pieces (`first`, `average`, `max`).
fn aggregate_word(
    tok: &TextTokenizer,
    pieces: &[&PreEntity],
    how: Aggregation,
    label: &dyn Fn(&[f64]) -> (String, f64),
) -> Result<Labelled, Error> {
    let word = tok.tokens_to_string(pieces.iter().map(|p| p.word.clone()).collect())?;
    let (entity, score) = match how {
        Aggregation::Max => {
            let max = |p: &PreEntity| p.scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut best = pieces[0];
            for &p in &pieces[1..] {
                if max(p) > max(best) {
                    best = p;
                }
            }
            label(&best.scores)
        }
        Aggregation::Average => {
            let n = pieces[0].scores.len();
            let mean: Vec<f64> = (0..n)
                .map(|j| {
                    let v: Vec<f64> = pieces
                        .iter()
                        .filter_map(|p| p.scores.get(j).copied())
                        .filter(|x| !x.is_nan())
                        .collect();
                    v.iter().sum::<f64>() / v.len() as f64
                })
                .collect();
            label(&mean)
        }
        _ => label(&pieces[0].scores),
    };
    Ok(Labelled {
        entity,
        score,
        index: pieces[0].index,
        word,
        start: pieces[0].start,
        end: pieces[pieces.len() - 1].end,
    })
}

/// Splits `B-PER` into (`B`, `PER`); a label without `B-` / `I-` is a continuation.
fn tag(label: &str) -> (&str, &str) {
    if let Some(t) = label.strip_prefix("B-") {
        ("B", t)
    } else if let Some(t) = label.strip_prefix("I-") {
        ("I", t)
    } else {
        ("I", label)
    }
}

/// transformers' `group_entities`: adjacent tokens of one type, a `B-` starting a new group.
fn group_entities(tok: &TextTokenizer, labelled: &[Labelled]) -> Result<Vec<Entity>, Error> {
    let mut groups = Vec::new();
    let mut current: Vec<&Labelled> = Vec::new();
    for l in labelled {
        if let Some(last) = current.last() {
            let (bi, t) = tag(&l.entity);
            let (_, last_t) = tag(&last.entity);
            if !(t == last_t && bi != "B") {
                groups.push(group(tok, &current)?);
                current.clear();
            }
        }
        current.push(l);
    }
    if !current.is_empty() {
        groups.push(group(tok, &current)?);
    }
    Ok(groups)
}

/// transformers' `group_sub_entities`.
fn group(tok: &TextTokenizer, members: &[&Labelled]) -> Result<Entity, Error> {
    let first = &members[0].entity;
    let entity_group = first.split_once('-').map_or(first.as_str(), |(_, t)| t);
    let valid: Vec<f64> = members
        .iter()
        .map(|m| m.score)
        .filter(|s| !s.is_nan())
        .collect();
    Ok(Entity::Group {
        entity_group: entity_group.to_string(),
        score: valid.iter().sum::<f64>() / valid.len() as f64,
        word: tok.tokens_to_string(members.iter().map(|m| m.word.clone()).collect())?,
        start: members[0].start,
        end: members[members.len() - 1].end,
    })
}

/// The token-classification pipeline.
#[derive(Debug)]
pub struct TokenClassification {
    text: TextModel,
}

impl TokenClassification {
    /// The pipeline over `model` (which must have a `logits` output) with the settings in
    /// `files`.
    pub fn new(model: Model, files: &dyn Files) -> Result<TokenClassification, Error> {
        require_outputs(&model, "token-classification", &["logits"])?;
        Ok(TokenClassification {
            text: TextModel::new(model, files, "token-classification")?,
        })
    }

    /// The entities of each text (labels in `ignore` left out; transformers ignores `O`).
    pub fn run(
        &self,
        texts: &[String],
        how: Aggregation,
        ignore: &[String],
        batch_size: usize,
    ) -> Result<Run<Vec<Entity>>, Error> {
        let tok = &self.text.tokenizer;
        let (encodings, notes) = tok.encode_all(texts, None)?;
        let seqs: Vec<Sequence> = encodings.iter().map(Sequence::from).collect();
        let results = self.text.run(&seqs, batch_size, |i, out, row| {
            let (logits, shape) = out.row("logits", row)?;
            let &[seq, labels] = shape.as_slice() else {
                return Err(Error::OutputShape {
                    output: "logits".into(),
                    shape,
                    expected: "[batch, tokens, labels]".into(),
                });
            };
            let len = encodings[i].len().min(seq);
            let scores = (0..len)
                .map(|t| softmax(&logits[t * labels..(t + 1) * labels]))
                .collect();
            let pre = pre_entities(tok, &texts[i], &encodings[i], scores);
            let entities = aggregate(tok, &self.text.config, &pre, how)?;
            Ok(entities
                .into_iter()
                .filter(|e| {
                    let label = match e {
                        Entity::Token { entity, .. } => entity,
                        Entity::Group { entity_group, .. } => entity_group,
                    };
                    !ignore.contains(label)
                })
                .collect())
        })?;
        Ok(Run { results, notes })
    }
}
