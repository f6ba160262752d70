//! Index-driven gathers: `gather` (numpy `take` along an axis) and `gather_elements` (ONNX
//! GatherElements). Indices are i64 or i32; negative ones count from the end of the axis.

use super::{checked_count, make, take};
use crate::reference::util::{normalize_axis, strides, unravel, KResult};
use crate::{Tensor, TensorData};

/// The index tensor's values; only i64 and i32 are accepted.
fn index_values(indices: &Tensor) -> KResult<Vec<i64>> {
    match indices.data() {
        TensorData::I64(v) => Ok(v.clone()),
        TensorData::I32(v) => Ok(v.iter().map(|&i| i64::from(i)).collect()),
        other => Err(format!("indices must be i64 or i32, got {}", other.dtype())),
    }
}

/// Resolves a possibly negative index against axis `axis` of size `dim`.
fn resolve_index(i: i64, dim: usize, axis: usize) -> KResult<usize> {
    let d = i128::from(dim as u64);
    let r = if i < 0 {
        i128::from(i) + d
    } else {
        i128::from(i)
    };
    if r < 0 || r >= d {
        return Err(if dim == 0 {
            format!("index {i} is out of range: axis {axis} has size 0")
        } else {
            format!(
                "index {i} is out of range for axis {axis} of size {dim} (valid range {}..={})",
                -d,
                d - 1
            )
        });
    }
    // 0 ≤ r < dim, so it fits.
    Ok(r as usize)
}

/// numpy `take(data, indices, axis)`: the output shape is
/// `data.shape[..axis] ++ indices.shape ++ data.shape[axis+1..]`.
pub fn gather(data: &Tensor, indices: &Tensor, axis: i64) -> KResult<Tensor> {
    let ax = normalize_axis(axis, data.rank())?;
    let d = data.shape()[ax];
    let picks: Vec<usize> = index_values(indices)?
        .into_iter()
        .map(|i| resolve_index(i, d, ax))
        .collect::<KResult<_>>()?;
    let out_shape: Vec<usize> = data.shape()[..ax]
        .iter()
        .chain(indices.shape())
        .chain(&data.shape()[ax + 1..])
        .copied()
        .collect();
    checked_count(&out_shape)?;
    let outer: usize = data.shape()[..ax].iter().product();
    let inner: usize = data.shape()[ax + 1..].iter().product();
    let picks = &picks;
    let idx: Vec<usize> = (0..outer)
        .flat_map(|o| {
            picks
                .iter()
                .flat_map(move |&k| (0..inner).map(move |j| (o * d + k) * inner + j))
        })
        .collect();
    make(out_shape, take(data.data(), &idx)?)
}

/// ONNX GatherElements: `y[p] = data[p with p[axis] replaced by indices[p]]`; the output has
/// indices' shape. indices must have data's rank, and on every other axis a size no larger
/// than data's (ONNX Runtime's rule).
pub fn gather_elements(data: &Tensor, indices: &Tensor, axis: i64) -> KResult<Tensor> {
    let rank = data.rank();
    if indices.rank() != rank {
        return Err(format!(
            "indices {:?} must have the rank of data {:?}",
            indices.shape(),
            data.shape()
        ));
    }
    let ax = normalize_axis(axis, rank)?;
    for a in (0..rank).filter(|&a| a != ax) {
        if indices.shape()[a] > data.shape()[a] {
            return Err(format!(
                "indices {:?} are larger than data {:?} on axis {a}",
                indices.shape(),
                data.shape()
            ));
        }
    }
    let ds = strides(data.shape());
    let idx: Vec<usize> = index_values(indices)?
        .into_iter()
        .enumerate()
        .map(|(l, i)| {
            let mut pos = unravel(l, indices.shape());
            pos[ax] = resolve_index(i, data.shape()[ax], ax)?;
            Ok(pos.iter().zip(&ds).map(|(p, s)| p * s).sum())
        })
        .collect::<KResult<_>>()?;
    make(indices.shape().to_vec(), take(data.data(), &idx)?)
}
