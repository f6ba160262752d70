//! ONNX Runtime's `com.microsoft::DynamicQuantizeLSTM` (what `quantize_dynamic` makes of an
//! `LSTM` with initializer weights): int8 / uint8 `W: [dirs, input, 4·hidden]` and
//! `R: [dirs, hidden, 4·hidden]` (transposed against ONNX `LSTM`) with scales and zero points
//! per direction (`[dirs]`) or per gate row (`[dirs, 4·hidden]`), inputs 8–11. They are
//! initializers, so the importer dequantizes them into f32 `[dirs, 4·hidden, ·]` weights and
//! emits a float LSTM; ONNX Runtime instead quantizes X and h to uint8 at every step, so the two
//! differ by that rounding (see `tests/it/rnn_models.rs` for the tolerance).

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_rnn::{emit_layer, Operands};
use super::Registry;
use kiln_compiler::ir::{DType, RnnCell};
use kiln_runtime::Tensor;

/// Registers the importer.
pub fn register(r: &mut Registry) {
    r.add_in(
        "com.microsoft",
        "DynamicQuantizeLSTM",
        dynamic_quantize_lstm,
    );
}

fn dynamic_quantize_lstm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    if n.inputs.len() > 12 {
        return invalid(format!(
            "DynamicQuantizeLSTM takes at most 12 inputs, got {}",
            n.inputs.len()
        ));
    }
    let w = dequantize(ctx, n, 1, 8, "W")?;
    let r = dequantize(ctx, n, 2, 10, "R")?;
    let ops = Operands {
        x: n.input(0)?.clone(),
        w,
        r,
        optional: [3, 4, 5, 6, 7].map(|i| n.opt_input(i).cloned()),
    };
    emit_layer(ctx, n, RnnCell::Lstm, ops, 0)
}

/// A known tensor input, or an unsupported-input error naming it.
fn known(ctx: &mut Ctx, n: &NodeView, i: usize, what: &str) -> NResult<Tensor> {
    let o = n.input(i)?.clone();
    match ctx.const_tensor(&o) {
        Some(t) => Ok(t),
        None => unsupported(format!(
            "DynamicQuantizeLSTM {what} computed at run time (only initializers are dequantized)"
        )),
    }
}

/// Input `i` (`[dirs, k, gates]`, int8 or uint8) dequantized with the scale at input `s` and the
/// zero point at `s + 1`, transposed to `[dirs, gates, k]` f32.
fn dequantize(ctx: &mut Ctx, n: &NodeView, i: usize, s: usize, what: &str) -> NResult<Operand> {
    let q = known(ctx, n, i, what)?;
    if !matches!(q.dtype(), DType::I8 | DType::U8) {
        return invalid(format!(
            "DynamicQuantizeLSTM {what} must be int8 or uint8, got {}",
            q.dtype()
        ));
    }
    let &[dirs, k, gates] = q.shape() else {
        return invalid(format!(
            "DynamicQuantizeLSTM {what} must be rank 3, got shape {:?}",
            q.shape()
        ));
    };
    let scale = known(ctx, n, s, &format!("{what}_scale"))?;
    if !scale.dtype().is_float() {
        return invalid(format!("{what}_scale must be float, got {}", scale.dtype()));
    }
    let zero = match n.opt_input(s + 1) {
        Some(_) => {
            let z = known(ctx, n, s + 1, &format!("{what}_zero_point"))?;
            if z.dtype() != q.dtype() || z.shape() != scale.shape() {
                return invalid(format!(
                    "{what}_zero_point {}{:?} does not match {what} ({}) and its scale {:?}",
                    z.dtype(),
                    z.shape(),
                    q.dtype(),
                    scale.shape()
                ));
            }
            z.to_f64_vec()
        }
        None => vec![0.0; scale.len()],
    };
    // Per direction, or per gate row of each direction.
    let per_row = match *scale.shape() {
        [d] if d == dirs => false,
        [d, g] if d == dirs && g == gates => true,
        ref other => {
            return invalid(format!(
                "{what}_scale has shape {other:?}, expected [{dirs}] or [{dirs}, {gates}]"
            ))
        }
    };
    let (qv, sv) = (q.to_f64_vec(), scale.to_f64_vec());
    let mut out = Vec::new();
    if out.try_reserve_exact(qv.len()).is_err() {
        return invalid(format!("DynamicQuantizeLSTM {what} is too large"));
    }
    for d in 0..dirs {
        for g in 0..gates {
            let c = if per_row { d * gates + g } else { d };
            for j in 0..k {
                out.push((qv[(d * k + j) * gates + g] - zero[c]) * sv[c]);
            }
        }
    }
    let t = Tensor::from_f64_values(DType::F32, vec![dirs, gates, k], &out)?;
    Ok(ctx.constant(t))
}
