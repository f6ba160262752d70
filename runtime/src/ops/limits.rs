//! What a model accepts for an input beyond its type: the largest size of an axis (tokens up to
//! the rows of a position table) and the range of its values (token ids inside the vocabulary).
//! Frontends that know such limits declare them; the compiler carries them into the plan; runs
//! check them when inputs are bound, before anything is allocated.

use super::InputError;
use crate::Tensor;
use serde::{Deserialize, Serialize};

/// The limits of one graph input; the default has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLimits {
    /// Axes with a largest size.
    pub max_dims: Vec<DimLimit>,
    /// The range every element must lie in (integer inputs).
    pub values: Option<ValueRange>,
}

/// The largest size of one axis, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimLimit {
    /// The axis.
    pub axis: u32,
    /// Its largest size.
    pub max: i64,
    /// Where the limit comes from (`max_position_embeddings in config.json`).
    pub why: String,
}

/// An inclusive range of integer values, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueRange {
    /// The smallest value.
    pub min: i64,
    /// The largest value.
    pub max: i64,
    /// Where the range comes from (`vocab_size in config.json`).
    pub why: String,
}

impl InputLimits {
    /// True when there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.max_dims.is_empty() && self.values.is_none()
    }

    /// Checks input `name`'s tensor `t` (whose dtype and rank were already checked).
    pub fn check(&self, name: &str, t: &Tensor) -> Result<(), InputError> {
        let fail = |message: String| InputError {
            name: name.to_string(),
            message,
        };
        for l in &self.max_dims {
            let Some(&size) = t.shape().get(l.axis as usize) else {
                continue;
            };
            if size as u64 > l.max.max(0) as u64 {
                return Err(fail(format!(
                    "dim {} is {size}, but the model supports at most {} ({})",
                    l.axis, l.max, l.why
                )));
            }
        }
        if let Some(r) = &self.values {
            if t.dtype().is_int() {
                // Element by element: this runs on every decode step, which allocates nothing.
                if let Some((i, v)) = (0..t.len())
                    .filter_map(|i| Some((i, t.i64_at(i)?)))
                    .find(|&(_, v)| v < r.min || v > r.max)
                {
                    return Err(fail(format!(
                        "holds {v} at flat index {i}, outside [{}, {}) ({})",
                        r.min,
                        r.max.saturating_add(1),
                        r.why
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> InputLimits {
        InputLimits {
            max_dims: vec![DimLimit {
                axis: 1,
                max: 4,
                why: "positions".into(),
            }],
            values: Some(ValueRange {
                min: 0,
                max: 9,
                why: "vocab".into(),
            }),
        }
    }

    #[test]
    fn sizes_and_values_inside_the_limits_pass_and_others_are_named() {
        let ok = Tensor::from_i64(vec![1, 4], vec![0, 9, 3, 1]).unwrap();
        assert!(limits().check("ids", &ok).is_ok());
        let long = Tensor::from_i64(vec![1, 5], vec![0; 5]).unwrap();
        let e = limits().check("ids", &long).unwrap_err().to_string();
        assert!(
            e.contains("`ids` dim 1 is 5") && e.contains("at most 4 (positions)"),
            "{e}"
        );
        let neg = Tensor::from_i64(vec![1, 2], vec![1, -1]).unwrap();
        let e = limits().check("ids", &neg).unwrap_err().to_string();
        assert!(
            e.contains("holds -1 at flat index 1, outside [0, 10) (vocab)"),
            "{e}"
        );
        assert!(InputLimits::default().is_empty());
    }
}
