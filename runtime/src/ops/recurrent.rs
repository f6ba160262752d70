//! The kinds of the recurrent layers (`Op::Recurrent`: ONNX `LSTM`, `GRU`, `RNN`): cells,
//! directions and the activation functions with their `alpha`/`beta`. The checked view of the
//! whole op is `recurrent_spec.rs`.

use super::attr::{AttrReader, AttrValue, OpAttr};
use super::define::named_enum;
use serde::{Deserialize, Serialize};

named_enum! {
    /// The cell of a recurrent layer; it names the op.
    pub enum RnnCell as kind "" "" {
        /// Gates `i, o, f, c` (ONNX order), cell state, optional peepholes.
        Lstm => "lstm",
        /// Gates `z, r, h`.
        Gru => "gru",
        /// One gate.
        Rnn => "rnn",
    }
}

named_enum! {
    /// Which way a recurrent layer walks the sequence.
    pub enum RnnDirection as word {
        Forward => "forward",
        Reverse => "reverse",
        /// Forward then reverse, stacked on the direction axis of every output.
        Bidirectional => "bidirectional",
    }
}

named_enum! {
    /// The activation functions ONNX allows in recurrent layers (`alpha`, `beta` as noted).
    pub enum RnnActivation as word {
        /// `max(0, x)`.
        Relu => "relu",
        Tanh => "tanh",
        /// `1 / (1 + e^-x)`.
        Sigmoid => "sigmoid",
        /// `alpha·x + beta`.
        Affine => "affine",
        /// `x` if `x ≥ 0` else `alpha·x`.
        LeakyRelu => "leaky_relu",
        /// `x` if `x ≥ alpha` else 0.
        ThresholdedRelu => "thresholded_relu",
        /// `alpha·tanh(beta·x)`.
        ScaledTanh => "scaled_tanh",
        /// `min(max(alpha·x + beta, 0), 1)`.
        HardSigmoid => "hard_sigmoid",
        /// `x` if `x ≥ 0` else `alpha·(e^x − 1)`.
        Elu => "elu",
        /// `x / (1 + |x|)`.
        Softsign => "softsign",
        /// `ln(1 + e^x)`.
        Softplus => "softplus",
    }
}

impl RnnActivation {
    /// The function at `x` in f64 (the reference kernel's definition).
    pub fn eval(self, x: f64, alpha: f64, beta: f64) -> f64 {
        match self {
            RnnActivation::Relu => x.max(0.0),
            RnnActivation::Tanh => x.tanh(),
            RnnActivation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            RnnActivation::Affine => alpha * x + beta,
            RnnActivation::LeakyRelu => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            RnnActivation::ThresholdedRelu => {
                if x >= alpha {
                    x
                } else {
                    0.0
                }
            }
            RnnActivation::ScaledTanh => alpha * (beta * x).tanh(),
            RnnActivation::HardSigmoid => (alpha * x + beta).clamp(0.0, 1.0),
            RnnActivation::Elu => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x.exp_m1()
                }
            }
            RnnActivation::Softsign => x / (1.0 + x.abs()),
            RnnActivation::Softplus => {
                // ln(1 + e^x) without overflow: x + ln(1 + e^-x) for positive x.
                if x > 0.0 {
                    x + (-x).exp().ln_1p()
                } else {
                    x.exp().ln_1p()
                }
            }
        }
    }
}

impl OpAttr for Vec<RnnActivation> {
    type Key<'a> = &'a Self;

    fn key(&self) -> &Self {
        self
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(AttrValue::List(
            self.iter().map(|a| AttrValue::Ident(a.name())).collect(),
        ))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        let names: Vec<&'static str> = RnnActivation::ALL.iter().map(|a| a.name()).collect();
        r.words(name, &names)
            .into_iter()
            .filter_map(|i| RnnActivation::ALL.get(i).copied())
            .collect()
    }
}

/// One activation of a layer with its parameters (unused ones are 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActivationFn {
    /// The function.
    pub kind: RnnActivation,
    /// Its `alpha`.
    pub alpha: f64,
    /// Its `beta`.
    pub beta: f64,
}

impl ActivationFn {
    /// The function at `x`.
    pub fn eval(&self, x: f64) -> f64 {
        self.kind.eval(x, self.alpha, self.beta)
    }
}
