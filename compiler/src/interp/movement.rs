//! Data movement: reshape, transpose, expand, slice, concat, split, gather, pad, range, tile,
//! trilu, shape_of.

use super::util::KResult;
use crate::ir::{Bindings, Dim, PadMode};
use kiln_runtime::{DType, Tensor};

pub fn reshape(x: &Tensor, shape: &[Dim], b: &Bindings) -> KResult<Tensor> {
    let _ = (x, shape, b);
    Err("not written yet".to_string())
}

pub fn transpose(x: &Tensor, perm: &[i64]) -> KResult<Tensor> {
    let _ = (x, perm);
    Err("not written yet".to_string())
}

pub fn expand(x: &Tensor, shape: &[Dim], b: &Bindings) -> KResult<Tensor> {
    let _ = (x, shape, b);
    Err("not written yet".to_string())
}

pub fn slice(
    x: &Tensor,
    axes: &[i64],
    starts: &[Dim],
    ends: &[Dim],
    steps: &[i64],
    b: &Bindings,
) -> KResult<Tensor> {
    let _ = (x, axes, starts, ends, steps, b);
    Err("not written yet".to_string())
}

pub fn concat(xs: &[&Tensor], axis: i64) -> KResult<Tensor> {
    let _ = (xs, axis);
    Err("not written yet".to_string())
}

pub fn split(x: &Tensor, axis: i64, sizes: &[Dim], b: &Bindings) -> KResult<Vec<Tensor>> {
    let _ = (x, axis, sizes, b);
    Err("not written yet".to_string())
}

pub fn gather(data: &Tensor, indices: &Tensor, axis: i64) -> KResult<Tensor> {
    let _ = (data, indices, axis);
    Err("not written yet".to_string())
}

pub fn gather_elements(data: &Tensor, indices: &Tensor, axis: i64) -> KResult<Tensor> {
    let _ = (data, indices, axis);
    Err("not written yet".to_string())
}

pub fn pad(x: &Tensor, pads: &[i64], mode: PadMode, value: f64) -> KResult<Tensor> {
    let _ = (x, pads, mode, value);
    Err("not written yet".to_string())
}

pub fn range(start: &Dim, limit: &Dim, delta: &Dim, dtype: DType, b: &Bindings) -> KResult<Tensor> {
    let _ = (start, limit, delta, dtype, b);
    Err("not written yet".to_string())
}

pub fn tile(x: &Tensor, repeats: &[i64]) -> KResult<Tensor> {
    let _ = (x, repeats);
    Err("not written yet".to_string())
}

pub fn trilu(x: &Tensor, upper: bool, k: i64) -> KResult<Tensor> {
    let _ = (x, upper, k);
    Err("not written yet".to_string())
}

pub fn shape_of(x: &Tensor, start: i64, end: Option<i64>) -> KResult<Tensor> {
    let _ = (x, start, end);
    Err("not written yet".to_string())
}
