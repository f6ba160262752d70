//! ONNX `LSTM`, `GRU` and `RNN` (opsets 1–22) as one `Op::Recurrent` each, batch and sequence
//! left symbolic (nothing is unrolled). Attribute differences between opsets: `output_sequence`
//! (before 7) does not change what is computed (requested outputs are), `linear_before_reset`
//! exists from GRU-3, `layout` from 14, bf16 from 22. Activations follow ONNX Runtime: names are
//! case-insensitive, `activation_alpha`/`activation_beta` are consumed in order by the functions
//! that take them (defaults LeakyRelu 0.01, HardSigmoid 0.2/0.5, Elu 1.0, otherwise 0), and a
//! bidirectional layer given one direction's list uses it for both. `DynamicQuantizeLSTM` is
//! `ops_rnn_quant.rs`.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{dims, dtype};
use super::Registry;
use kiln_compiler::ir::{DType, Dim, Op, RnnActivation, RnnCell, RnnDirection};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("LSTM", |c, n| import(c, n, RnnCell::Lstm));
    r.add("GRU", |c, n| import(c, n, RnnCell::Gru));
    r.add("RNN", |c, n| import(c, n, RnnCell::Rnn));
    super::ops_rnn_quant::register(r);
}

/// The default activations of one direction.
fn default_activations(cell: RnnCell) -> &'static [RnnActivation] {
    use RnnActivation::{Sigmoid, Tanh};
    match cell {
        RnnCell::Lstm => &[Sigmoid, Tanh, Tanh],
        RnnCell::Gru => &[Sigmoid, Tanh],
        RnnCell::Rnn => &[Tanh],
    }
}

/// An ONNX activation name (any case).
fn activation(name: &str) -> Option<RnnActivation> {
    use RnnActivation::*;
    Some(match name.to_ascii_lowercase().as_str() {
        "relu" => Relu,
        "tanh" => Tanh,
        "sigmoid" => Sigmoid,
        "affine" => Affine,
        "leakyrelu" => LeakyRelu,
        "thresholdedrelu" => ThresholdedRelu,
        "scaledtanh" => ScaledTanh,
        "hardsigmoid" => HardSigmoid,
        "elu" => Elu,
        "softsign" => Softsign,
        "softplus" => Softplus,
        _ => return None,
    })
}

/// Whether the function takes `alpha` and `beta`, and their defaults.
fn params(a: RnnActivation) -> ((bool, bool), (f64, f64)) {
    use RnnActivation::*;
    match a {
        Affine | ScaledTanh => ((true, true), (0.0, 0.0)),
        HardSigmoid => ((true, true), (0.2, 0.5)),
        LeakyRelu => ((true, false), (0.01, 0.0)),
        Elu => ((true, false), (1.0, 0.0)),
        ThresholdedRelu => ((true, false), (0.0, 0.0)),
        Relu | Tanh | Sigmoid | Softsign | Softplus => ((false, false), (0.0, 0.0)),
    }
}

/// The activations with their alphas and betas, `dirs` directions' worth.
type Activations = (Vec<RnnActivation>, Vec<f64>, Vec<f64>);

fn activations(n: &NodeView, cell: RnnCell, dirs: usize) -> NResult<Activations> {
    let per = default_activations(cell).len();
    let mut acts = match n.attr("activations") {
        None => default_activations(cell).to_vec(),
        Some(a) => a
            .strings
            .iter()
            .map(|s| {
                let s = String::from_utf8_lossy(s);
                activation(&s)
                    .ok_or(())
                    .or_else(|()| unsupported(format!("activations: unknown activation `{s}`")))
            })
            .collect::<NResult<Vec<_>>>()?,
    };
    if acts.len() == per && dirs == 2 {
        acts.extend_from_within(..);
    }
    if acts.len() != per * dirs {
        return invalid(format!(
            "activations has {} entries, expected {} ({per} per direction)",
            acts.len(),
            per * dirs
        ));
    }
    let given_alpha = n.floats("activation_alpha").unwrap_or_default();
    let given_beta = n.floats("activation_beta").unwrap_or_default();
    let (mut ai, mut bi) = (given_alpha.iter(), given_beta.iter());
    let (mut alphas, mut betas) = (Vec::new(), Vec::new());
    for &a in &acts {
        let ((takes_a, takes_b), (da, db)) = params(a);
        let alpha = if takes_a {
            ai.next().map_or(da, |&v| f64::from(v))
        } else {
            0.0
        };
        let beta = if takes_b {
            bi.next().map_or(db, |&v| f64::from(v))
        } else {
            0.0
        };
        alphas.push(alpha);
        betas.push(beta);
    }
    Ok((acts, alphas, betas))
}

fn direction(n: &NodeView) -> NResult<RnnDirection> {
    match n.string("direction", "forward").as_str() {
        // Opset 1 declared the default as "foward".
        "forward" | "foward" => Ok(RnnDirection::Forward),
        "reverse" => Ok(RnnDirection::Reverse),
        "bidirectional" => Ok(RnnDirection::Bidirectional),
        d => unsupported(format!(
            "direction = `{d}` (forward, reverse and bidirectional are defined)"
        )),
    }
}

/// A 0/1 attribute; another value is refused as unsupported.
fn flag(n: &NodeView, name: &str) -> NResult<bool> {
    match n.int(name, 0) {
        0 => Ok(false),
        1 => Ok(true),
        v => unsupported(format!("{name} = {v} (only 0 and 1 are defined)")),
    }
}

/// A layer's inputs after the importer's own preprocessing (`DynamicQuantizeLSTM` dequantizes
/// W and R first): `x, w, r` and the optional ones in ONNX order.
pub(super) struct Operands {
    pub x: Operand,
    pub w: Operand,
    pub r: Operand,
    /// `b, sequence_lens, initial_h, initial_c, p`.
    pub optional: [Option<Operand>; 5],
}

/// Importer of `LSTM`, `GRU`, `RNN`.
fn import(ctx: &mut Ctx, n: &NodeView, cell: RnnCell) -> NResult<Vec<Operand>> {
    let max_inputs = if cell == RnnCell::Lstm { 8 } else { 6 };
    if n.inputs.len() > max_inputs {
        return invalid(format!(
            "{} takes at most {max_inputs} inputs, got {}",
            n.node.op_type,
            n.inputs.len()
        ));
    }
    let ops = Operands {
        x: n.input(0)?.clone(),
        w: n.input(1)?.clone(),
        r: n.input(2)?.clone(),
        optional: [3, 4, 5, 6, 7].map(|i| n.opt_input(i).cloned()),
    };
    let layout = if n.opset >= 14 { n.int("layout", 0) } else { 0 };
    emit_layer(ctx, n, cell, ops, layout)
}

/// Emits the layer for `ops` with the node's attributes (`layout` given by the caller).
pub(super) fn emit_layer(
    ctx: &mut Ctx,
    n: &NodeView,
    cell: RnnCell,
    ops: Operands,
    layout: i64,
) -> NResult<Vec<Operand>> {
    let dt = dtype(ctx, &ops.x);
    if !dt.is_float() {
        return invalid(format!("{} takes float inputs, got {dt}", n.node.op_type));
    }
    let direction = direction(n)?;
    let dirs = if direction == RnnDirection::Bidirectional {
        2
    } else {
        1
    };
    let (activations, activation_alpha, activation_beta) = activations(n, cell, dirs)?;
    let hidden = match n.attr("hidden_size") {
        Some(a) => a.i,
        None => match dims(ctx, &ops.r).get(2).and_then(Dim::as_known) {
            Some(h) => h,
            None => return unsupported("hidden_size absent and R's last dim unknown"),
        },
    };
    let Ok(hidden_size) = u32::try_from(hidden) else {
        return invalid(format!("hidden_size {hidden} is out of range"));
    };
    let clip = match n.attr("clip") {
        None => f64::INFINITY,
        Some(a) if a.f > 0.0 => f64::from(a.f),
        Some(a) => return invalid(format!("clip must be positive, got {}", a.f)),
    };
    let batch_first = match layout {
        0 => false,
        1 => true,
        v => return unsupported(format!("layout = {v} (only 0 and 1 are defined)")),
    };
    let input_forget = cell == RnnCell::Lstm && flag(n, "input_forget")?;
    let linear_before_reset = cell == RnnCell::Gru && flag(n, "linear_before_reset")?;
    if let Some(ty) = ops.optional[1].as_ref().map(|o| dtype(ctx, o)) {
        if ty != DType::I32 && ty != DType::I64 {
            return invalid(format!("sequence_lens must be int32, got {ty}"));
        }
    }
    let present = ops.optional.each_ref().map(Option::is_some);
    let op = Op::Recurrent {
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
        bias: present[0],
        seq_lens: present[1],
        initial_h: present[2],
        initial_c: present[3],
        peepholes: present[4],
    };
    let mut inputs = vec![ops.x, ops.w, ops.r];
    inputs.extend(ops.optional.into_iter().flatten());
    ctx.emit(op, &inputs)
}
