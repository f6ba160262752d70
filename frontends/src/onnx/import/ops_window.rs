//! The window generators (`HannWindow`, `HammingWindow`, `BlackmanWindow`) as constants: their
//! `size` input must be known at import, and the window is computed in f64 then cast to
//! `output_datatype`. `CenterCropPad` with a known `shape` input and known dims: one `Pad`
//! whose negative pads crop.

use super::ctx::{invalid, unsupported, Ctx, NResult, NodeError, Operand};
use super::node::NodeView;
use super::ops_util::{dims, norm_axis, one};
use super::Registry;
use crate::onnx::tensor::onnx_dtype;
use kiln_compiler::ir::{Op, PadMode};
use kiln_runtime::Tensor;
use std::f64::consts::PI;

/// Windows longer than this are refused (they become constants).
const MAX_SIZE: i64 = 1 << 24;

/// Registers the importers.
pub fn register(r: &mut Registry) {
    r.add("HannWindow", |c, n| window(c, n, hann));
    r.add("HammingWindow", |c, n| window(c, n, hamming));
    r.add("BlackmanWindow", |c, n| window(c, n, blackman));
    r.add("CenterCropPad", center_crop_pad);
}

/// `sin²(π·i / N)`.
fn hann(i: f64, n: f64) -> f64 {
    (i * PI / n).sin().powi(2)
}

/// `α - β·cos(2π·i / N)` with `α = 25/46`, `β = 1 - α`.
fn hamming(i: f64, n: f64) -> f64 {
    let alpha = 25.0 / 46.0;
    alpha - (i * PI * 2.0 / n).cos() * (1.0 - alpha)
}

/// `0.42 - 0.5·cos(2π·i / N) + 0.08·cos(4π·i / N)`.
fn blackman(i: f64, n: f64) -> f64 {
    (i * PI * 2.0 / n).cos() * -0.5 + (i * PI * 4.0 / n).cos() * 0.08 + 0.42
}

/// `N` is the size when `periodic` (the default), else the size minus one.
fn window(ctx: &mut Ctx, n: &NodeView, f: fn(f64, f64) -> f64) -> NResult<Vec<Operand>> {
    let op = n.node.op_type.clone();
    let size = n.input(0)?.clone();
    let Some(vals) = ctx.const_i64s(&size) else {
        return unsupported(format!("{op} with a size unknown at import"));
    };
    let &[size] = vals.as_slice() else {
        return invalid(format!(
            "{op} size must be a scalar, got {} values",
            vals.len()
        ));
    };
    if !(0..=MAX_SIZE).contains(&size) {
        return unsupported(format!("{op} of size {size}"));
    }
    let dt = onnx_dtype(n.int("output_datatype", 1) as i32).map_err(NodeError::Unsupported)?;
    let periodic = n.int("periodic", 1) != 0;
    let denom = if periodic { size } else { size - 1 } as f64;
    let w: Vec<f64> = (0..size).map(|i| f(i as f64, denom)).collect();
    let t = Tensor::from_f64_values(dt, vec![size as usize], &w)?;
    one(ctx.constant(t))
}

/// Centres x in `shape` along `axes` (all by default): the smaller half of the difference goes
/// before, the larger after, cropped where the target is smaller and zero-padded where larger.
fn center_crop_pad(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let Some(shape) = ctx.const_i64s(n.input(1)?) else {
        return unsupported("CenterCropPad with a shape unknown at import");
    };
    let xd = dims(ctx, &x);
    let rank = xd.len();
    let axes = match n.ints("axes") {
        Some(a) => a
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<NResult<Vec<_>>>()?,
        None => (0..rank).collect(),
    };
    if axes.len() != shape.len() {
        return invalid(format!(
            "CenterCropPad shape has {} values for {} axes",
            shape.len(),
            axes.len()
        ));
    }
    let mut pads = vec![0i64; 2 * rank];
    for (&a, &sh) in axes.iter().zip(&shape) {
        let Some(dim) = xd[a].as_known() else {
            return unsupported(format!("CenterCropPad on axis {a}, whose size is unknown"));
        };
        if sh < 0 {
            return invalid(format!("CenterCropPad target size {sh}"));
        }
        let d = sh - dim;
        let small = d.abs() / 2;
        let (begin, end) = (small, d.abs() - small);
        let sign = if d < 0 { -1 } else { 1 };
        pads[a] = sign * begin;
        pads[a + rank] = sign * end;
    }
    if pads.iter().all(|&p| p == 0) {
        return one(x);
    }
    let op = Op::Pad {
        pads,
        mode: PadMode::Constant,
        value: 0.0,
    };
    one(ctx.emit1(op, &[x])?)
}
