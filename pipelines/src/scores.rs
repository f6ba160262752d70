//! Scores from logits: transformers' score functions (softmax, sigmoid, none), top-k and argmax
//! as numpy and torch order them, and float views of the model's output tensors.

use kiln_runtime::{Tensor, TensorData};
use std::borrow::Cow;

/// How logits become scores (transformers' `ClassificationFunction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreFunction {
    /// `exp(x) / sum(exp)` over the labels (several exclusive labels).
    Softmax,
    /// `1 / (1 + exp(-x))` per label (one label, or multi-label classification).
    Sigmoid,
    /// The logits as they are (regression).
    None,
}

impl ScoreFunction {
    /// Parses transformers' names (`softmax`, `sigmoid`, `none`; any case).
    pub fn parse(name: &str) -> Option<ScoreFunction> {
        match name.to_ascii_lowercase().as_str() {
            "softmax" => Some(ScoreFunction::Softmax),
            "sigmoid" => Some(ScoreFunction::Sigmoid),
            "none" => Some(ScoreFunction::None),
            _ => None,
        }
    }

    /// Scores of one row of logits.
    pub fn apply(self, logits: &[f32]) -> Vec<f64> {
        match self {
            ScoreFunction::Softmax => softmax(logits),
            ScoreFunction::Sigmoid => logits
                .iter()
                .map(|&x| 1.0 / (1.0 + (-f64::from(x)).exp()))
                .collect(),
            ScoreFunction::None => logits.iter().map(|&x| f64::from(x)).collect(),
        }
    }
}

/// `exp(x - max) / sum` over one row, in f64 (the logits are f32; the extra precision only makes
/// the result closer to the exact value numpy's and torch's f32 softmax approximate).
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let exp: Vec<f64> = logits.iter().map(|&x| (f64::from(x) - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The indices of the `k` largest scores, largest first; equal scores keep index order (NaN
/// sorts last).
pub fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (scores[a], scores[b]);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => y.total_cmp(&x),
        }
    });
    idx.truncate(k);
    idx
}

/// The index of the largest score (the first of equal ones), as numpy's `argmax`.
pub fn argmax(scores: &[f64]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] || (scores[best].is_nan() && !s.is_nan()) {
            best = i;
        }
    }
    best
}

/// A float output's elements as f32 (borrowed when they already are).
pub fn floats(t: &Tensor) -> Cow<'_, [f32]> {
    match t.data() {
        TensorData::F32(v) => Cow::Borrowed(v.as_slice()),
        _ => Cow::Owned(t.to_f64_vec().into_iter().map(|x| x as f32).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_survives_large_logits() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]);
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[1] - 0.5).abs() < 1e-12 && p[2] == 0.0);
    }

    #[test]
    fn top_k_is_largest_first_and_stable() {
        assert_eq!(top_k(&[0.1, 0.5, 0.5, f64::NAN, 0.3], 3), vec![1, 2, 4]);
        assert_eq!(top_k(&[0.1], 5), vec![0]);
        assert_eq!(argmax(&[0.1, 0.7, 0.7]), 1);
    }
}
