//! Shape and dtype inference for every op, split by op category; this file holds the entry
//! point, the dispatch and the test helpers the categories share.

mod cache;
mod conv;
#[cfg(test)]
mod conv_tests;
mod ctx;
mod elementwise;
mod fused;
#[cfg(test)]
mod fused_tests;
#[cfg(test)]
mod fuzz_tests;
mod index;
mod linalg;
mod movement;
#[cfg(test)]
mod movement_tests;
mod recurrent;
#[cfg(test)]
mod recurrent_tests;
mod reduce;
mod scatter;

pub use elementwise::{broadcast_dim, broadcast_shapes, broadcasts_to};

use super::op::Op;
use super::types::{DType, Shape, TensorType};
use crate::error::Result;
use ctx::{ceil_div_dim, is_numeric, k, known_negative, Ctx};

/// The output types of `op` applied to inputs of types `inputs`, or why they do not type-check.
///
/// Checks arity first, rejects input shapes with negative known dims, then applies the op's
/// rules; never panics, whatever the inputs and attributes.
pub fn infer_types(op: &Op, inputs: &[TensorType]) -> Result<Vec<TensorType>> {
    let cx = Ctx::new(op, inputs);
    cx.check_arity()?;
    for (i, t) in inputs.iter().enumerate() {
        if let Some(d) = t.shape.0.iter().find(|d| known_negative(d)) {
            return cx.err(format!("input {i} has a negative dim {d} in {}", t.shape));
        }
    }
    let one = |t: TensorType| vec![t];
    let out = match op {
        Op::Unary(u) => elementwise::unary(&cx, *u).map(one),
        Op::Binary(b) => elementwise::binary(&cx, *b).map(one),
        Op::Where => elementwise::where_(&cx).map(one),
        Op::Cast { to } => elementwise::cast(&cx, *to).map(one),
        Op::Reduce { axes, keepdims, .. } => reduce::reduce(&cx, axes, *keepdims).map(one),
        Op::ArgReduce { axis, keepdims, .. } => reduce::arg_reduce(&cx, *axis, *keepdims).map(one),
        Op::Softmax { axis } | Op::LogSoftmax { axis } => reduce::softmax(&cx, *axis).map(one),
        Op::CumSum { axis, .. } => reduce::cumsum(&cx, *axis).map(one),
        Op::CumProd { axis, .. } => scatter::cumprod(&cx, *axis).map(one),
        Op::TopK { k, axis, .. } => scatter::topk(&cx, *k, *axis),
        Op::ScatterElements { axis, reduction } => {
            scatter::scatter_elements(&cx, *axis, *reduction).map(one)
        }
        Op::ScatterND { reduction } => scatter::scatter_nd(&cx, *reduction).map(one),
        Op::MatMul => linalg::matmul(&cx).map(one),
        Op::Conv {
            strides,
            pads,
            dilations,
            group,
        } => conv::conv(&cx, strides, pads, dilations, *group).map(one),
        Op::ConvTranspose {
            strides,
            pads,
            dilations,
            group,
            output_padding,
        } => conv::conv_transpose(&cx, strides, pads, dilations, *group, output_padding).map(one),
        Op::Pool {
            kind,
            kernel,
            strides,
            pads,
            dilations,
            ceil_mode,
            ..
        } => conv::pool(&cx, *kind, kernel, strides, pads, dilations, *ceil_mode).map(one),
        Op::Reshape { shape } => movement::reshape(&cx, shape).map(one),
        Op::Transpose { perm } => movement::transpose(&cx, perm).map(one),
        Op::Expand { shape } => movement::expand(&cx, shape).map(one),
        Op::Concat { axis } => movement::concat(&cx, *axis).map(one),
        Op::Split { axis, sizes } => movement::split(&cx, *axis, sizes),
        Op::Pad { pads, .. } => movement::pad(&cx, pads).map(one),
        Op::Tile { repeats } => movement::tile(&cx, repeats).map(one),
        Op::Trilu { .. } => movement::trilu(&cx).map(one),
        Op::ShapeOf { start, end } => movement::shape_of(&cx, *start, *end).map(one),
        Op::Slice {
            axes,
            starts,
            ends,
            steps,
        } => index::slice(&cx, axes, starts, ends, steps).map(one),
        Op::Gather { axis } => index::gather(&cx, *axis).map(one),
        Op::GatherElements { axis } => index::gather_elements(&cx, *axis).map(one),
        Op::Range {
            start,
            limit,
            delta,
            dtype,
        } => index::range(&cx, start, limit, delta, *dtype).map(one),
        Op::Dims { values } => Ok(one(TensorType::new(
            DType::I64,
            Shape::known(&[values.len() as i64]),
        ))),
        Op::LayerNorm { axis, .. } => fused::layer_norm(&cx, *axis).map(one),
        Op::SkipLayerNorm { axis, .. } => fused::skip_layer_norm(&cx, *axis),
        Op::MatMulBias => fused::matmul_bias(&cx).map(one),
        Op::RmsNorm { .. } => fused::rms_norm(&cx).map(one),
        Op::Gelu { .. } => fused::gelu(&cx).map(one),
        Op::Attention { .. } => fused::attention(&cx).map(one),
        Op::Recurrent { .. } => recurrent::recurrent(&cx),
        Op::Rotary => cache::rotary(&cx).map(one),
        Op::CacheWrite { axis, at } => cache::cache_write(&cx, *axis, at).map(one),
    }?;
    for (i, t) in out.iter().enumerate() {
        if let Some(d) = t.shape.0.iter().find(|d| known_negative(d)) {
            return cx.err(format!(
                "output {i} would have a negative dim {d} in {} (the sizes overflow)",
                t.shape
            ));
        }
    }
    if out.len() != op.num_outputs() {
        return cx.err(format!(
            "inferred {} outputs, expected {}",
            out.len(),
            op.num_outputs()
        ));
    }
    Ok(out)
}

/// Helpers shared by the category tests: types from text and one-line results.
#[cfg(test)]
pub(super) mod testing {
    use super::super::dim::Dim;
    use super::super::types::{DType, Shape};
    use super::*;

    /// Parses `f32[batch, seq+1, 4]` (dims may contain commas inside parentheses).
    pub fn ty(text: &str) -> TensorType {
        let (dt, rest) = text.split_once('[').expect("type text has a `[`");
        let body = rest.strip_suffix(']').expect("type text ends with `]`");
        let mut dims = Vec::new();
        let (mut depth, mut cur) = (0, String::new());
        for c in body.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if c == ',' && depth == 0 {
                dims.push(Dim::parse(cur.trim()).expect("dim parses"));
                cur.clear();
            } else {
                cur.push(c);
            }
        }
        if !cur.trim().is_empty() {
            dims.push(Dim::parse(cur.trim()).expect("dim parses"));
        }
        TensorType::new(DType::from_name(dt).expect("dtype"), Shape(dims))
    }

    /// Dims from text: `dims("batch, 4")`.
    pub fn dims(text: &str) -> Vec<Dim> {
        ty(&format!("f32[{text}]")).shape.0
    }

    fn run(op: &Op, inputs: &[&str]) -> Result<Vec<TensorType>> {
        let tys: Vec<TensorType> = inputs.iter().map(|s| ty(s)).collect();
        infer_types(op, &tys)
    }

    /// The inferred output types, joined by `; `; panics with the error when typing fails.
    pub fn ok(op: &Op, inputs: &[&str]) -> String {
        match run(op, inputs) {
            Ok(out) => out
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            Err(e) => panic!("expected success, got `{e}`"),
        }
    }

    /// The error's text (`op: message`); panics when typing succeeds.
    pub fn err(op: &Op, inputs: &[&str]) -> String {
        match run(op, inputs) {
            Ok(out) => panic!("expected an error, got {out:?}"),
            Err(e) => e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::op::{BinaryOp, UnaryOp};
    use super::super::types::DType;
    use super::testing::{err, ok};
    use super::*;

    #[test]
    fn arity_is_checked_first() {
        assert_eq!(
            err(&Op::Binary(BinaryOp::Add), &["f32[2]"]),
            "add: takes 2 inputs, got 1"
        );
        assert_eq!(
            err(&Op::Concat { axis: 0 }, &[]),
            "concat: takes at least 1 inputs, got 0"
        );
        let conv = Op::Conv {
            strides: vec![1],
            pads: vec![0, 0],
            dilations: vec![1],
            group: 1,
        };
        assert_eq!(
            err(&conv, &["f32[1, 1, 4]"; 4]),
            "conv: takes 2 to 3 inputs, got 4"
        );
        assert_eq!(ok(&Op::Unary(UnaryOp::Exp), &["f32[]"]), "f32[]");
    }

    #[test]
    fn negative_input_dims_are_rejected() {
        let x = TensorType::new(DType::F32, super::super::types::Shape::known(&[2, -3]));
        let e = infer_types(&Op::Unary(UnaryOp::Exp), &[x]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "exp: input 0 has a negative dim -3 in [2, -3]"
        );
    }
}
