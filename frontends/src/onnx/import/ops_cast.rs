//! ONNX importers: `Cast`, `CastLike`, `Identity` and `Dropout` (inference only).

use super::ctx::{unsupported, Ctx, NResult, NodeError, Operand};
use super::node::NodeView;
use super::ops_util::{cast, dtype, full_like, one};
use super::Registry;
use crate::onnx::proto::attribute_proto::AttributeType;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::tensor::onnx_dtype;
use kiln_compiler::ir::DType;

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Cast", cast_node);
    r.add("CastLike", cast_like);
    r.add("Identity", identity);
    r.add("Dropout", dropout);
}

/// Maps an ONNX data type code to a Kiln dtype; types Kiln lacks are unsupported.
fn target_dtype(code: i32) -> NResult<DType> {
    onnx_dtype(code).map_err(|m| {
        if m.starts_with("unsupported") {
            NodeError::Unsupported(format!("cast to {}", m.trim_start_matches("unsupported ")))
        } else {
            NodeError::Invalid(m)
        }
    })
}

/// `Cast`: `to` is a `DataType` code, or (opset 1) its name. `saturate` and `round_mode` only
/// affect float 8 targets, which Kiln does not have (they are refused by dtype).
fn cast_node(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let a = n.attr("to").ok_or_else(|| n.missing("to"))?;
    let code = if a.r#type == AttributeType::String as i32 || (a.i == 0 && !a.s.is_empty()) {
        let name = String::from_utf8_lossy(&a.s).to_ascii_uppercase();
        let found = (0..64)
            .filter_map(|c| DataType::try_from(c).ok())
            .find(|t| t.onnx_name() == name);
        match found {
            Some(t) => t as i32,
            None => {
                return Err(NodeError::Invalid(format!(
                    "Cast: unknown type name `{name}`"
                )))
            }
        }
    } else {
        i32::try_from(a.i)
            .map_err(|_| NodeError::Invalid(format!("Cast: bad type code {}", a.i)))?
    };
    let to = target_dtype(code)?;
    one(cast(ctx, n.input(0)?, to)?)
}

/// `CastLike(x, like)`: x cast to the dtype of `like`.
fn cast_like(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let to = dtype(ctx, n.input(1)?);
    one(cast(ctx, n.input(0)?, to)?)
}

fn identity(_ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    one(n.input(0)?.clone())
}

/// `Dropout` at inference: the output is the input, the optional mask all ones (bool from
/// opset 10, the input's dtype before). Training mode (opset < 7: `is_test = 0`, the default;
/// opset ≥ 12: a true `training_mode` input) is ignored unless the random mask is requested, or
/// the flag is only known at run time; those are refused.
fn dropout(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let (training, ratio) = if n.opset >= 12 {
        let training = match n.opt_input(2) {
            None => false,
            Some(t) => match ctx.const_tensor(t) {
                Some(t) => t.to_bool_vec().first().copied().unwrap_or(false),
                None => {
                    return unsupported("Dropout with a training_mode input computed at run time")
                }
            },
        };
        let ratio = match n.opt_input(1) {
            None => Some(0.5),
            Some(r) => ctx
                .const_tensor(r)
                .and_then(|t| t.to_f64_vec().first().copied()),
        };
        (training, ratio)
    } else {
        (
            n.opset < 7 && n.int("is_test", 0) == 0,
            Some(f64::from(n.float("ratio", 0.5))),
        )
    };
    let wants_mask = n.node.output.get(1).is_some_and(|s| !s.is_empty());
    // Kiln compiles for inference: a Dropout whose training flag is a constant is the identity,
    // as in ONNX Runtime's inference build (exporters often leave `training_mode=True` behind on
    // models whose reference outputs come from eval mode). Only a requested random mask is refused.
    if training && ratio != Some(0.0) && wants_mask {
        return unsupported(
            "Dropout in training mode with its random mask output is not supported",
        );
    }
    let mut outs = vec![x.clone()];
    if wants_mask {
        let mask_dtype = if n.opset >= 10 {
            DType::Bool
        } else {
            dtype(ctx, &x)
        };
        outs.push(full_like(ctx, &x, 1.0, mask_dtype)?);
    }
    Ok(outs)
}
