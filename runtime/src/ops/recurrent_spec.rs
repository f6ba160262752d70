//! [`RecurrentSpec`]: the checked view of an `Op::Recurrent`'s attributes that shape inference,
//! the reference kernel, the plan and the native kernel share (which optional operand sits at
//! which input, how many gates and outputs there are), and [`RnnDims`], the sizes of one run
//! checked against every operand's shape, with the element offsets of the layouts.

use super::op::Op;
use super::recurrent::{ActivationFn, RnnCell, RnnDirection};
use serde::{Deserialize, Serialize};

/// The inputs of a recurrent layer, in ONNX order; all but `X`, `W`, `R` are optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RnnInput {
    /// `[seq, batch, input]` (`[batch, seq, input]` when batch-first).
    X,
    /// `[dirs, gates·hidden, input]`.
    W,
    /// `[dirs, gates·hidden, hidden]`.
    R,
    /// `[dirs, 2·gates·hidden]`: `Wb` then `Rb`.
    B,
    /// `[batch]` (i32 or i64): steps past a sequence's length give zeros and keep the state.
    SeqLens,
    /// `[dirs, batch, hidden]` (`[batch, dirs, hidden]` when batch-first).
    InitialH,
    /// As `InitialH` (LSTM only).
    InitialC,
    /// `[dirs, 3·hidden]` peepholes `i, o, f` (LSTM only).
    P,
}

/// The attributes of an [`Op::Recurrent`], checked: what the kernels read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecurrentSpec {
    /// The cell.
    pub cell: RnnCell,
    /// The direction.
    pub direction: RnnDirection,
    /// Hidden units (≥ 1).
    pub hidden_size: u32,
    /// The activations, per direction in order (`f, g, h` for LSTM, `f, g` for GRU, `f` for RNN).
    pub activations: Vec<ActivationFn>,
    /// Gate pre-activations are clamped to `[-clip, clip]` (infinite: no clip).
    pub clip: f64,
    /// LSTM: the forget gate is `1 − i`.
    pub input_forget: bool,
    /// GRU: `r ⊙ (h·Rhᵀ + Rbh)` instead of `(r ⊙ h)·Rhᵀ + Rbh`.
    pub linear_before_reset: bool,
    /// ONNX `layout = 1`: batch is the first axis of X, Y, the states.
    pub batch_first: bool,
    /// Which optional inputs are present: `B`, `sequence_lens`, `initial_h`, `initial_c`, `P`.
    pub present: [bool; 5],
}

impl RecurrentSpec {
    /// The spec of `op`, checked; an error for another op or inconsistent attributes.
    pub fn of(op: &Op) -> Result<RecurrentSpec, String> {
        let Op::Recurrent {
            cell,
            direction,
            hidden_size,
            activations,
            activation_alpha,
            activation_beta,
            clip,
            input_forget,
            linear_before_reset,
            batch_first,
            bias,
            seq_lens,
            initial_h,
            initial_c,
            peepholes,
        } = op
        else {
            return Err(format!("{} is not a recurrent layer", op.name()));
        };
        let spec = RecurrentSpec {
            cell: *cell,
            direction: *direction,
            hidden_size: *hidden_size,
            activations: activations
                .iter()
                .zip(activation_alpha.iter().zip(activation_beta))
                .map(|(&kind, (&alpha, &beta))| ActivationFn { kind, alpha, beta })
                .collect(),
            clip: *clip,
            input_forget: *input_forget,
            linear_before_reset: *linear_before_reset,
            batch_first: *batch_first,
            present: [*bias, *seq_lens, *initial_h, *initial_c, *peepholes],
        };
        let n = activations.len();
        if activation_alpha.len() != n || activation_beta.len() != n {
            return Err(format!(
                "{n} activations but {} alphas and {} betas",
                activation_alpha.len(),
                activation_beta.len()
            ));
        }
        spec.check()?;
        Ok(spec)
    }

    /// Checks the attributes' consistency (also run on a decoded plan's steps).
    pub fn check(&self) -> Result<(), String> {
        let want = self.directions() * self.activations_per_direction();
        if self.activations.len() != want {
            return Err(format!(
                "{} activations, expected {want} ({} per direction)",
                self.activations.len(),
                self.activations_per_direction()
            ));
        }
        if self.hidden_size == 0 {
            return Err("hidden_size must be at least 1".into());
        }
        if self.clip.is_nan() || self.clip <= 0.0 {
            return Err(format!("clip must be positive, got {}", self.clip));
        }
        let lstm = self.cell == RnnCell::Lstm;
        if !lstm && (self.present[3] || self.present[4] || self.input_forget) {
            return Err("initial_c, peepholes and input_forget are LSTM-only".into());
        }
        if self.cell != RnnCell::Gru && self.linear_before_reset {
            return Err("linear_before_reset is GRU-only".into());
        }
        Ok(())
    }

    /// 2 when bidirectional, else 1.
    pub fn directions(&self) -> usize {
        match self.direction {
            RnnDirection::Bidirectional => 2,
            _ => 1,
        }
    }

    /// Gates per direction: 4 (LSTM), 3 (GRU), 1 (RNN).
    pub fn gates(&self) -> usize {
        match self.cell {
            RnnCell::Lstm => 4,
            RnnCell::Gru => 3,
            RnnCell::Rnn => 1,
        }
    }

    /// Activations per direction: 3 (LSTM), 2 (GRU), 1 (RNN).
    pub fn activations_per_direction(&self) -> usize {
        match self.cell {
            RnnCell::Lstm => 3,
            RnnCell::Gru => 2,
            RnnCell::Rnn => 1,
        }
    }

    /// Outputs: `Y, Y_h` and, for LSTM, `Y_c`.
    pub fn outputs(&self) -> usize {
        if self.cell == RnnCell::Lstm {
            3
        } else {
            2
        }
    }

    /// Number of inputs: `X, W, R` and the present optional ones.
    pub fn inputs(&self) -> usize {
        3 + self.present.iter().filter(|&&p| p).count()
    }

    /// The position of `which` among the op's inputs, `None` when absent.
    pub fn input_index(&self, which: RnnInput) -> Option<usize> {
        let optional = match which {
            RnnInput::X => return Some(0),
            RnnInput::W => return Some(1),
            RnnInput::R => return Some(2),
            RnnInput::B => 0,
            RnnInput::SeqLens => 1,
            RnnInput::InitialH => 2,
            RnnInput::InitialC => 3,
            RnnInput::P => 4,
        };
        self.present[optional].then(|| 3 + self.present[..optional].iter().filter(|&&p| p).count())
    }

    /// Whether direction `d` (0 or 1) walks the sequence backwards.
    pub fn is_reverse(&self, d: usize) -> bool {
        match self.direction {
            RnnDirection::Forward => false,
            RnnDirection::Reverse => true,
            RnnDirection::Bidirectional => d == 1,
        }
    }

    /// The activations of direction `d`.
    pub fn activations_of(&self, d: usize) -> &[ActivationFn] {
        let n = self.activations_per_direction();
        self.activations.get(d * n..(d + 1) * n).unwrap_or(&[])
    }

    /// Whether pre-activations are clipped.
    pub fn clips(&self) -> bool {
        self.clip.is_finite()
    }
}

/// The sizes of one run of a recurrent layer, checked against every operand's shape; element
/// counts of the operands and outputs fit `usize`, so offsets below them cannot overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RnnDims {
    /// Sequence length (X's time axis).
    pub seq: usize,
    /// Batch size.
    pub batch: usize,
    /// Input features.
    pub input: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Directions (1 or 2).
    pub dirs: usize,
    /// Gates per direction.
    pub gates: usize,
    /// Batch is the first axis of X, Y and the states.
    pub batch_first: bool,
}

/// `dims.iter().product()`, or an error when it overflows.
fn count(what: &str, dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("{what} {dims:?} has too many elements"))
}

impl RecurrentSpec {
    /// The run's sizes from the input shapes (in input order), each shape checked.
    pub fn dims(&self, shapes: &[&[usize]]) -> Result<RnnDims, String> {
        if shapes.len() != self.inputs() {
            return Err(format!(
                "takes {} inputs, got {}",
                self.inputs(),
                shapes.len()
            ));
        }
        let &[s0, s1, input] = shapes[0] else {
            return Err(format!("x must be rank 3, got shape {:?}", shapes[0]));
        };
        let (seq, batch) = if self.batch_first { (s1, s0) } else { (s0, s1) };
        let hidden = self.hidden_size as usize;
        let dims = RnnDims {
            seq,
            batch,
            input,
            hidden,
            dirs: self.directions(),
            gates: self.gates(),
            batch_first: self.batch_first,
        };
        let gh = count("the gate width", &[dims.gates, hidden])?;
        let state = dims.state_shape();
        let want = |which: RnnInput| -> Result<Vec<usize>, String> {
            Ok(match which {
                RnnInput::X => shapes[0].to_vec(),
                RnnInput::W => vec![dims.dirs, gh, input],
                RnnInput::R => vec![dims.dirs, gh, hidden],
                RnnInput::B => vec![dims.dirs, count("b", &[2, gh])?],
                RnnInput::SeqLens => vec![batch],
                RnnInput::InitialH | RnnInput::InitialC => state.to_vec(),
                RnnInput::P => vec![dims.dirs, count("p", &[3, hidden])?],
            })
        };
        for which in RnnInput::ALL {
            let Some(i) = self.input_index(which) else {
                continue;
            };
            let w = want(which)?;
            if shapes[i] != w.as_slice() {
                return Err(format!(
                    "{} has shape {:?}, expected {w:?}",
                    which.name(),
                    shapes[i]
                ));
            }
            count(which.name(), &w)?;
        }
        count("y", &dims.y_shape())?;
        Ok(dims)
    }
}

impl RnnInput {
    /// Every input, in ONNX order.
    pub const ALL: [RnnInput; 8] = [
        RnnInput::X,
        RnnInput::W,
        RnnInput::R,
        RnnInput::B,
        RnnInput::SeqLens,
        RnnInput::InitialH,
        RnnInput::InitialC,
        RnnInput::P,
    ];

    /// The ONNX name.
    pub fn name(self) -> &'static str {
        match self {
            RnnInput::X => "x",
            RnnInput::W => "w",
            RnnInput::R => "r",
            RnnInput::B => "b",
            RnnInput::SeqLens => "sequence_lens",
            RnnInput::InitialH => "initial_h",
            RnnInput::InitialC => "initial_c",
            RnnInput::P => "p",
        }
    }
}

impl RnnDims {
    /// Each batch entry's length: `sequence_lens` (checked to lie in `0..=seq`), else `seq`.
    pub fn lengths(&self, lens: Option<&[i64]>) -> Result<Vec<usize>, String> {
        let Some(lens) = lens else {
            return Ok(vec![self.seq; self.batch]);
        };
        if lens.len() != self.batch {
            return Err(format!(
                "sequence_lens has {} entries for a batch of {}",
                lens.len(),
                self.batch
            ));
        }
        lens.iter()
            .enumerate()
            .map(|(b, &l)| match usize::try_from(l) {
                Ok(l) if l <= self.seq => Ok(l),
                _ => Err(format!(
                    "sequence_lens[{b}] = {l} is outside 0..={} (the sequence length)",
                    self.seq
                )),
            })
            .collect()
    }

    /// The shape of `y`.
    pub fn y_shape(&self) -> [usize; 4] {
        if self.batch_first {
            [self.batch, self.seq, self.dirs, self.hidden]
        } else {
            [self.seq, self.dirs, self.batch, self.hidden]
        }
    }

    /// The shape of `y_h`, `y_c`, `initial_h`, `initial_c`.
    pub fn state_shape(&self) -> [usize; 3] {
        if self.batch_first {
            [self.batch, self.dirs, self.hidden]
        } else {
            [self.dirs, self.batch, self.hidden]
        }
    }

    /// Offset of row `(t, b)` of x (`input` elements).
    pub fn x_offset(&self, t: usize, b: usize) -> usize {
        let row = if self.batch_first {
            b * self.seq + t
        } else {
            t * self.batch + b
        };
        row * self.input
    }

    /// Elements between the x rows of steps `t` and `t + 1` of one batch entry.
    pub fn x_step_stride(&self) -> usize {
        if self.batch_first {
            self.input
        } else {
            self.batch * self.input
        }
    }

    /// Offset of row `(t, d, b)` of y (`hidden` elements).
    pub fn y_offset(&self, t: usize, d: usize, b: usize) -> usize {
        let row = if self.batch_first {
            (b * self.seq + t) * self.dirs + d
        } else {
            (t * self.dirs + d) * self.batch + b
        };
        row * self.hidden
    }

    /// Offset of row `(d, b)` of a state (`hidden` elements).
    pub fn state_offset(&self, d: usize, b: usize) -> usize {
        let row = if self.batch_first {
            b * self.dirs + d
        } else {
            d * self.batch + b
        };
        row * self.hidden
    }
}
