//! Rotary position embeddings as Hugging Face configures them: the `rope_parameters` (transformers
//! 5) or `rope_theta` + `rope_scaling` (older) settings, the inverse frequencies they give
//! (computed at build time) and the cos/sin tables built in the graph over a symbolic sequence.

use super::builder::Builder;
use crate::error::Error;
use kiln_compiler::ir::{BinaryOp, Dim, Op, UnaryOp, ValueId};
use kiln_runtime::Tensor;
use serde_json::Value;

/// How the rotary frequencies are rescaled (transformers' `rope_type`).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// `default`: `inv_freq[i] = 1 / theta^(2i / dim)`.
    Default,
    /// `linear`: positions divided by `factor` (equivalently, `inv_freq / factor`).
    Linear {
        /// The position divisor.
        factor: f64,
    },
    /// `llama3`: low frequencies divided by `factor`, high ones kept, the band between
    /// interpolated smoothly.
    Llama3 {
        /// The divisor of the low frequencies.
        factor: f64,
        /// Wavelengths above `original_max / low_freq_factor` are scaled.
        low_freq_factor: f64,
        /// Wavelengths below `original_max / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// The context length the model was pre-trained with.
        original_max_position_embeddings: f64,
    },
}

/// The rotary settings of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    /// The base `theta` of the frequencies.
    pub theta: f64,
    /// The rescaling.
    pub scaling: RopeScaling,
}

/// A number field of a rope settings object; `None` when absent or null.
fn num(obj: &Value, key: &str) -> Result<Option<f64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(format!("rope setting `{key}` is not a finite number: {v}")),
        },
    }
}

/// A required positive number field of the rope settings of `kind`.
fn positive(obj: &Value, key: &str, kind: &str) -> Result<f64, String> {
    match num(obj, key)? {
        Some(x) if x > 0.0 => Ok(x),
        Some(x) => Err(format!(
            "rope type `{kind}`: `{key}` must be positive, got {x}"
        )),
        None => Err(format!("rope type `{kind}` needs `{key}`")),
    }
}

impl Rope {
    /// The rotary settings of a `config.json`: `rope_parameters` when present, else the
    /// top-level `rope_theta` and the `rope_scaling` object (`rope_type`, or the older `type`).
    /// Theta defaults to 10000 and the type to `default`; an unsupported type is an error
    /// naming it.
    pub fn from_config(cfg: &Value) -> Result<Rope, String> {
        let params = match cfg.get("rope_parameters") {
            Some(p @ Value::Object(_)) => p.clone(),
            Some(Value::Null) | None => match cfg.get("rope_scaling") {
                Some(p @ Value::Object(_)) => p.clone(),
                Some(Value::Null) | None => Value::Object(Default::default()),
                Some(other) => return Err(format!("`rope_scaling` is not an object: {other}")),
            },
            Some(other) => return Err(format!("`rope_parameters` is not an object: {other}")),
        };
        let theta = match num(&params, "rope_theta")? {
            Some(t) => t,
            None => num(cfg, "rope_theta")?.unwrap_or(10000.0),
        };
        if theta <= 1.0 {
            return Err(format!("`rope_theta` must be greater than 1, got {theta}"));
        }
        let kind = params
            .get("rope_type")
            .or_else(|| params.get("type"))
            .cloned()
            .unwrap_or(Value::Null);
        let kind = match &kind {
            Value::Null => "default".to_string(),
            Value::String(s) => s.clone(),
            other => return Err(format!("rope type is not a string: {other}")),
        };
        let scaling = match kind.as_str() {
            "default" => RopeScaling::Default,
            "linear" => RopeScaling::Linear {
                factor: positive(&params, "factor", &kind)?,
            },
            "llama3" => {
                let s = RopeScaling::Llama3 {
                    factor: positive(&params, "factor", &kind)?,
                    low_freq_factor: positive(&params, "low_freq_factor", &kind)?,
                    high_freq_factor: positive(&params, "high_freq_factor", &kind)?,
                    original_max_position_embeddings: positive(
                        &params,
                        "original_max_position_embeddings",
                        &kind,
                    )?,
                };
                if let RopeScaling::Llama3 {
                    low_freq_factor: l,
                    high_freq_factor: h,
                    ..
                } = s
                {
                    if h <= l {
                        return Err(format!(
                            "rope type `llama3`: `high_freq_factor` ({h}) must exceed \
                             `low_freq_factor` ({l})"
                        ));
                    }
                }
                s
            }
            "dynamic" => {
                return Err(
                    "unsupported rope type `dynamic`: its frequencies depend on the \
                            run's sequence length"
                        .to_string(),
                )
            }
            other => return Err(format!("unsupported rope type `{other}`")),
        };
        Ok(Rope { theta, scaling })
    }

    /// The `dim / 2` inverse frequencies for a rotary dim of `dim` (even).
    pub fn inv_freq(&self, dim: usize) -> Vec<f64> {
        let base = default_inv_freq(self.theta, dim);
        match self.scaling {
            RopeScaling::Default => base,
            RopeScaling::Linear { factor } => base.into_iter().map(|f| f / factor).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: old,
            } => base
                .into_iter()
                .map(|f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < old / high_freq_factor {
                        f
                    } else if wavelen > old / low_freq_factor {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect(),
        }
    }
}

/// `1 / theta^(2i / dim)` for `i` in `0..dim/2`.
pub fn default_inv_freq(theta: f64, dim: usize) -> Vec<f64> {
    (0..dim / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f64 / dim as f64))
        .collect()
}

/// The `cos`, `sin` tables `[seq, 2·inv_freq.len()]` in the builder's dtype for positions
/// `0..seq` (`seq` symbolic): `emb = concat(freqs, freqs)` with
/// `freqs = positions[:, None] · inv_freq[None, :]` (the rotate-half layout).
pub fn tables(b: &mut Builder, seq: &Dim, inv_freq: &[f64]) -> Result<(ValueId, ValueId), Error> {
    let dtype = b.dtype;
    let pos = b.positions(seq, dtype)?;
    let pos = b.op(
        Op::Reshape {
            shape: vec![seq.clone(), Dim::known(1)],
        },
        &[pos],
    )?;
    let t = Tensor::from_f64_values(b.dtype, vec![1, inv_freq.len()], inv_freq)
        .map_err(kiln_compiler::Error::from)?;
    let inv = b.constant("rotary.inv_freq", &t);
    let freqs = b.bin(BinaryOp::Mul, pos, inv)?;
    let emb = b.op(Op::Concat { axis: -1 }, &[freqs, freqs])?;
    let cos = b.op(Op::Unary(UnaryOp::Cos), &[emb])?;
    let sin = b.op(Op::Unary(UnaryOp::Sin), &[emb])?;
    Ok((cos, sin))
}
