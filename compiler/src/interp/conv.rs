//! Convolution, transposed convolution and pooling over N spatial dims.

use super::util::KResult;
use crate::ir::PoolKind;
use kiln_runtime::Tensor;

pub fn conv(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    strides: &[i64],
    pads: &[i64],
    dilations: &[i64],
    group: i64,
) -> KResult<Tensor> {
    let _ = (x, w, b, strides, pads, dilations, group);
    Err("not written yet".to_string())
}

#[allow(clippy::too_many_arguments)]
pub fn conv_transpose(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    strides: &[i64],
    pads: &[i64],
    dilations: &[i64],
    group: i64,
    output_padding: &[i64],
) -> KResult<Tensor> {
    let _ = (x, w, b, strides, pads, dilations, group, output_padding);
    Err("not written yet".to_string())
}

#[allow(clippy::too_many_arguments)]
pub fn pool(
    x: &Tensor,
    kind: PoolKind,
    kernel: &[i64],
    strides: &[i64],
    pads: &[i64],
    dilations: &[i64],
    ceil_mode: bool,
    count_include_pad: bool,
) -> KResult<Tensor> {
    let _ = (
        x,
        kind,
        kernel,
        strides,
        pads,
        dilations,
        ceil_mode,
        count_include_pad,
    );
    Err("not written yet".to_string())
}
