//! `Constant` and `Identity`-like importers that every model needs.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::Registry;
use kiln_runtime::Tensor;

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Constant", constant);
}

fn constant(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let a = n.node.attribute.first().ok_or_else(|| n.missing("value"))?;
    let t = match a.name.as_str() {
        "value" => {
            let t = a.t.as_ref().ok_or_else(|| n.missing("value"))?;
            ctx.decode_tensor(t)?
        }
        "value_float" => Tensor::scalar_f32(a.f),
        "value_floats" => Tensor::from_f32(vec![a.floats.len()], a.floats.clone())?,
        "value_int" => Tensor::from_i64(vec![], vec![a.i])?,
        "value_ints" => Tensor::from_i64(vec![a.ints.len()], a.ints.clone())?,
        "sparse_value" => return unsupported("sparse constants are not supported"),
        "value_string" | "value_strings" => return unsupported("string tensors are not supported"),
        other => return invalid(format!("unknown attribute `{other}`")),
    };
    Ok(vec![ctx.constant(t)])
}
