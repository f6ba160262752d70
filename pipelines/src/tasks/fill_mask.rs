//! `fill-mask`: the most likely tokens for each mask token of a text, with their probabilities
//! and the text with the token filled in, as transformers' `FillMaskPipeline` returns them.

use crate::batch::TextModel;
use crate::batch::{require_outputs, BatchOutputs, Sequence};
use crate::files::Files;
use crate::scores::{softmax, top_k};
use crate::{Error, Run};
use kiln_runtime::Model;
use serde::{Serialize, Serializer};

/// transformers' default number of predictions per mask.
pub const DEFAULT_TOP_K: usize = 5;

/// One candidate for a mask.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaskPrediction {
    /// Its probability.
    pub score: f64,
    /// The token id.
    pub token: u32,
    /// The token decoded on its own.
    pub token_str: String,
    /// The input with the token in place of the mask, decoded.
    pub sequence: String,
}

/// The predictions for one input: one list per mask token, in text order. Serialized as
/// transformers returns it: the list itself for a single mask, a list of lists for several.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskPredictions {
    /// One list of candidates per mask, best first.
    pub masks: Vec<Vec<MaskPrediction>>,
}

impl Serialize for MaskPredictions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.masks.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

/// The fill-mask pipeline.
#[derive(Debug)]
pub struct FillMask {
    text: TextModel,
    mask: (String, u32),
}

impl FillMask {
    /// The pipeline over `model` (which must have a `logits` output) with the settings in
    /// `files` (which must name a mask token).
    pub fn new(model: Model, files: &dyn Files) -> Result<FillMask, Error> {
        require_outputs(&model, "fill-mask", &["logits"])?;
        let text = TextModel::new(model, files, "fill-mask")?;
        let mask = text.tokenizer.mask.clone().ok_or_else(|| Error::Settings {
            file: files.describe("tokenizer_config.json"),
            message: "names no `mask_token` the tokenizer knows (fill-mask needs one)".into(),
        })?;
        Ok(FillMask { text, mask })
    }

    /// The mask token (`[MASK]`).
    pub fn mask_token(&self) -> &str {
        &self.mask.0
    }

    /// The `top_k` best tokens for each mask of each text.
    pub fn run(
        &self,
        texts: &[String],
        top_k: usize,
        batch_size: usize,
    ) -> Result<Run<MaskPredictions>, Error> {
        let (encodings, notes) = self.text.tokenizer.encode_all(texts, None)?;
        let mut positions = Vec::with_capacity(encodings.len());
        for (i, enc) in encodings.iter().enumerate() {
            let p: Vec<usize> = (enc.get_ids().iter().enumerate())
                .filter(|&(_, &id)| id == self.mask.1)
                .map(|(t, _)| t)
                .collect();
            if p.is_empty() {
                return Err(Error::NoMask {
                    input: i,
                    mask: self.mask.0.clone(),
                    truncated: notes.iter().any(|n| n.input == i)
                        && texts[i].contains(self.mask.0.as_str()),
                });
            }
            positions.push(p);
        }
        let seqs: Vec<Sequence> = encodings.iter().map(Sequence::from).collect();
        let results = self.text.run(&seqs, batch_size, |i, out, row| {
            self.predict(out, row, seqs[i].ids, &positions[i], top_k)
        })?;
        Ok(Run { results, notes })
    }

    /// The predictions for the masks at `positions` of `ids`, from row `row` of a batch.
    fn predict(
        &self,
        out: &BatchOutputs,
        row: usize,
        ids: &[u32],
        positions: &[usize],
        k: usize,
    ) -> Result<MaskPredictions, Error> {
        let (logits, shape) = out.row("logits", row)?;
        let &[seq, vocab] = shape.as_slice() else {
            return Err(Error::OutputShape {
                output: "logits".into(),
                shape,
                expected: "[batch, tokens, vocabulary]".into(),
            });
        };
        let single = positions.len() == 1;
        let tok = &self.text.tokenizer;
        let mut masks = Vec::with_capacity(positions.len());
        for &p in positions {
            if p >= seq {
                return Err(Error::OutputShape {
                    output: "logits".into(),
                    shape: vec![seq, vocab],
                    expected: format!("a row for token {p}"),
                });
            }
            let probs = softmax(&logits[p * vocab..(p + 1) * vocab]);
            let mut row = Vec::with_capacity(k.min(vocab));
            for id in top_k(&probs, k) {
                let token = u32::try_from(id).unwrap_or(u32::MAX);
                let mut filled = ids.to_vec();
                filled[p] = token;
                filled.retain(|&t| t != tok.pad_id);
                row.push(MaskPrediction {
                    score: probs[id],
                    token,
                    token_str: tok.decode(&[token], false)?,
                    sequence: tok.decode(&filled, single)?,
                });
            }
            masks.push(row);
        }
        Ok(MaskPredictions { masks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(token: u32) -> MaskPrediction {
        MaskPrediction {
            score: 0.5,
            token,
            token_str: "a".into(),
            sequence: "a b".into(),
        }
    }

    #[test]
    fn one_mask_serializes_as_a_list_and_several_as_a_list_of_lists() {
        let one = MaskPredictions {
            masks: vec![vec![p(1)]],
        };
        let v = serde_json::to_value(&one).unwrap();
        assert_eq!(v[0]["token"], 1);
        assert_eq!(v[0]["token_str"], "a");
        let two = MaskPredictions {
            masks: vec![vec![p(1)], vec![p(2)]],
        };
        let v = serde_json::to_value(&two).unwrap();
        assert_eq!(v[1][0]["token"], 2);
    }
}
