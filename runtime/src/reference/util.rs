//! Index arithmetic shared by the interpreter's kernels: axes, strides, broadcasting, and
//! dtype-generic element picking.

use crate::TensorData;

/// Result type of the kernels: the message is wrapped with the node by the caller.
pub type KResult<T> = std::result::Result<T, String>;

/// Resolves a possibly negative axis against `rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> KResult<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(0) {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}

/// Row-major strides (in elements) of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        // Saturating: a shape with a zero dim can have an overflowing product elsewhere.
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// The numpy broadcast of several shapes.
pub fn broadcast_shapes(shapes: &[&[usize]]) -> KResult<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(format!("shapes {shapes:?} do not broadcast"));
            }
        }
    }
    Ok(out)
}

/// For every element of `out_shape` (row-major), the linear index of the element of a tensor of
/// shape `src` that broadcasting maps to it. `src` must broadcast to `out_shape`.
pub fn broadcast_indices(src: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let n: usize = out_shape.iter().product();
    let rank = out_shape.len();
    let off = rank - src.len();
    let src_strides = strides(src);
    // Per output axis: the source stride, or 0 where the source dim is missing or 1.
    let eff: Vec<usize> = (0..rank)
        .map(|i| {
            if i < off || src[i - off] == 1 {
                0
            } else {
                src_strides[i - off]
            }
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    let mut lin = 0usize;
    for _ in 0..n {
        out.push(lin);
        for ax in (0..rank).rev() {
            idx[ax] += 1;
            lin += eff[ax];
            if idx[ax] < out_shape[ax] {
                break;
            }
            lin -= eff[ax] * idx[ax];
            idx[ax] = 0;
        }
    }
    out
}

/// Converts a linear index into a multi-index for `shape`.
pub fn unravel(mut lin: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for i in (0..shape.len()).rev() {
        if shape[i] > 0 {
            idx[i] = lin % shape[i];
            lin /= shape[i];
        }
    }
    idx
}

/// `data[i]` for every `i` in `idx`, in order, for any dtype, without converting values.
pub fn take(data: &TensorData, idx: &[usize]) -> KResult<TensorData> {
    fn pick<T: Copy>(v: &[T], idx: &[usize]) -> KResult<Vec<T>> {
        idx.iter()
            .map(|&i| {
                v.get(i).copied().ok_or_else(|| {
                    format!(
                        "internal: element {i} out of range for {} elements",
                        v.len()
                    )
                })
            })
            .collect()
    }
    Ok(match data {
        TensorData::F32(v) => TensorData::F32(pick(v, idx)?),
        TensorData::F16(v) => TensorData::F16(pick(v, idx)?),
        TensorData::BF16(v) => TensorData::BF16(pick(v, idx)?),
        TensorData::F64(v) => TensorData::F64(pick(v, idx)?),
        TensorData::I64(v) => TensorData::I64(pick(v, idx)?),
        TensorData::I32(v) => TensorData::I32(pick(v, idx)?),
        TensorData::I8(v) => TensorData::I8(pick(v, idx)?),
        TensorData::U8(v) => TensorData::U8(pick(v, idx)?),
        TensorData::I16(v) => TensorData::I16(pick(v, idx)?),
        TensorData::U16(v) => TensorData::U16(pick(v, idx)?),
        TensorData::U32(v) => TensorData::U32(pick(v, idx)?),
        TensorData::U64(v) => TensorData::U64(pick(v, idx)?),
        TensorData::Bool(v) => TensorData::Bool(pick(v, idx)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(
            broadcast_shapes(&[&[2, 1, 3], &[4, 1]]).unwrap(),
            vec![2, 4, 3]
        );
        assert!(broadcast_shapes(&[&[2, 3], &[4, 3]]).is_err());
        assert_eq!(broadcast_shapes(&[&[], &[0, 2]]).unwrap(), vec![0, 2]);
        assert_eq!(broadcast_indices(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_indices(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_indices(&[], &[2]), vec![0, 0]);
        assert!(broadcast_indices(&[1], &[0]).is_empty());
    }

    #[test]
    fn axes_and_strides() {
        assert_eq!(normalize_axis(-1, 3), Ok(2));
        assert!(normalize_axis(3, 3).is_err());
        assert!(normalize_axis(0, 0).is_err());
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(unravel(7, &[2, 3, 4]), vec![0, 1, 3]);
    }
}
