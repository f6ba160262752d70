//! Matrix multiplication with numpy `matmul` semantics.
//!
//! A rank-1 left operand `[K]` is treated as `[1, K]` and a rank-1 right operand `[K]` as
//! `[K, 1]`; the promoted dim is removed from the result. The leading (batch) dims of both
//! operands broadcast numpy-style. Floats accumulate in f64 in order `k = 0..K` and are rounded
//! to the output dtype once; integers accumulate in i64 with wrapping.

use super::elementwise::{broadcast, element_count};
use super::util::{broadcast_indices, KResult};
use crate::{DType, Tensor};

/// The parts of one operand: batch dims and the matrix dims `rows × cols`.
struct Operand {
    batch: Vec<usize>,
    rows: usize,
    cols: usize,
}

fn split(shape: &[usize], left: bool) -> Operand {
    match shape {
        // Rank 1: [K] is a row vector on the left and a column vector on the right.
        [k] if left => Operand {
            batch: vec![],
            rows: 1,
            cols: *k,
        },
        [k] => Operand {
            batch: vec![],
            rows: *k,
            cols: 1,
        },
        _ => {
            let r = shape.len();
            Operand {
                batch: shape[..r - 2].to_vec(),
                rows: shape[r - 2],
                cols: shape[r - 1],
            }
        }
    }
}

/// The checked layout of `matmul(a, b)`: output shape, matrix dims and, per output batch
/// element, the matrix index in `a` and in `b`.
struct Layout {
    shape: Vec<usize>,
    m: usize,
    k: usize,
    n: usize,
    ia: Vec<usize>,
    ib: Vec<usize>,
}

fn layout(a: &Tensor, b: &Tensor) -> KResult<Layout> {
    let dt = a.dtype();
    if b.dtype() != dt {
        return Err(format!("matmul: dtype mismatch, {dt} vs {}", b.dtype()));
    }
    if dt == DType::Bool {
        return Err("matmul does not take bool".to_string());
    }
    if a.rank() == 0 || b.rank() == 0 {
        return Err(format!(
            "matmul needs operands of rank ≥ 1, got shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        ));
    }
    let (l, r) = (split(a.shape(), true), split(b.shape(), false));
    let (m, k, n) = (l.rows, l.cols, r.cols);
    if r.rows != k {
        return Err(format!(
            "matmul: inner dims differ, shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        ));
    }
    let batch = broadcast(&[&l.batch, &r.batch])?;
    // Linear index of each output batch element's matrix in a and in b.
    let ia = broadcast_indices(&l.batch, &batch);
    let ib = broadcast_indices(&r.batch, &batch);
    let mut shape = batch.clone();
    if a.rank() > 1 {
        shape.push(m);
    }
    if b.rank() > 1 {
        shape.push(n);
    }
    element_count(&[element_count(&batch)?, m, n])?;
    Ok(Layout {
        shape,
        m,
        k,
        n,
        ia,
        ib,
    })
}

/// Element (i, j) of matrix `t` in an operand with `rows × cols` matrices.
fn at(t: usize, i: usize, j: usize, rows: usize, cols: usize) -> usize {
    (t * rows + i) * cols + j
}

/// `matmul(a, b)` of float operands as its shape and unrounded f64 values (the fused
/// `matmul_bias` adds its bias before rounding once).
pub(super) fn matmul_f64(a: &Tensor, b: &Tensor) -> KResult<(Vec<usize>, Vec<f64>)> {
    let p = layout(a, b)?;
    if !a.dtype().is_float() {
        return Err(format!("matmul: expected floats, got {}", a.dtype()));
    }
    let (m, k, n) = (p.m, p.k, p.n);
    let (av, bv) = (a.to_f64_vec(), b.to_f64_vec());
    let mut out = Vec::new();
    for (&ta, &tb) in p.ia.iter().zip(&p.ib) {
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for q in 0..k {
                    acc += av[at(ta, i, q, m, k)] * bv[at(tb, q, j, k, n)];
                }
                out.push(acc);
            }
        }
    }
    Ok((p.shape, out))
}

pub fn matmul(a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    let dt = a.dtype();
    let result = if dt.is_float() && b.dtype() == dt {
        let (shape, out) = matmul_f64(a, b)?;
        Tensor::from_f64_values(dt, shape, &out)
    } else {
        let p = layout(a, b)?;
        let (m, k, n) = (p.m, p.k, p.n);
        let (av, bv) = (a.to_i64_vec(), b.to_i64_vec());
        let mut out = Vec::new();
        for (&ta, &tb) in p.ia.iter().zip(&p.ib) {
            for i in 0..m {
                for j in 0..n {
                    let mut acc: i64 = 0;
                    for q in 0..k {
                        let prod = av[at(ta, i, q, m, k)].wrapping_mul(bv[at(tb, q, j, k, n)]);
                        acc = acc.wrapping_add(prod);
                    }
                    out.push(acc);
                }
            }
        }
        Tensor::from_i64_values(dt, p.shape, &out)
    };
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::matmul as mm;
    use crate::{DType, Tensor};

    fn t(dt: DType, shape: &[usize], v: &[f64]) -> Tensor {
        Tensor::from_f64_values(dt, shape.to_vec(), v).unwrap()
    }

    fn ti(dt: DType, shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_i64_values(dt, shape.to_vec(), v).unwrap()
    }

    #[test]
    fn matmul_matrix_vector_and_batched() {
        // a = arange(6).reshape(2,3) - 2, b = arange(6).reshape(3,2) * 0.5, v = [1,-2,3];
        // numpy: a@b, v@b, a@v, v@v.
        let a = t(DType::F64, &[2, 3], &[-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]);
        let b = t(DType::F64, &[3, 2], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
        let v = t(DType::F64, &[3], &[1.0, -2.0, 3.0]);
        let ab = mm(&a, &b).unwrap();
        assert_eq!(
            (ab.shape(), ab.to_f64_vec()),
            (&[2, 2][..], vec![-1.0, -2.5, 8.0, 11.0])
        );
        let vb = mm(&v, &b).unwrap();
        assert_eq!((vb.shape(), vb.to_f64_vec()), (&[2][..], vec![4.0, 5.0]));
        let av = mm(&a, &v).unwrap();
        assert_eq!((av.shape(), av.to_f64_vec()), (&[2][..], vec![0.0, 6.0]));
        let vv = mm(&v, &v).unwrap();
        assert_eq!((vv.shape(), vv.to_f64_vec()), (&[][..], vec![14.0]));
        // Batch dims broadcast: A = arange(12).reshape(2,1,2,3), B = arange(18).reshape(3,3,2) - 5.
        let ba: Vec<f64> = (0..12).map(f64::from).collect();
        let bb: Vec<f64> = (0..18).map(|i| f64::from(i) - 5.0).collect();
        let y = mm(
            &t(DType::F32, &[2, 1, 2, 3], &ba),
            &t(DType::F32, &[3, 3, 2], &bb),
        )
        .unwrap();
        assert_eq!(y.shape(), &[2, 3, 2, 2]);
        #[rustfmt::skip]
        let want = [-5.0, -2.0, -32.0, -20.0, 13.0, 16.0, 40.0, 52.0, 31.0, 34.0, 112.0, 124.0,
                    -59.0, -38.0, -86.0, -56.0, 67.0, 88.0, 94.0, 124.0, 193.0, 214.0, 274.0, 304.0];
        assert_eq!(y.to_f64_vec(), want);
        // Integer matmul wraps in the output dtype: 100*2 + 100*1 = 300 → 44 in i8.
        let i = mm(
            &ti(DType::I8, &[1, 2], &[100, 100]),
            &ti(DType::I8, &[2], &[2, 1]),
        )
        .unwrap();
        assert_eq!((i.shape(), i.to_i64_vec()), (&[1][..], vec![44]));
        // Empty inner dim gives zeros.
        let z = mm(&t(DType::F64, &[2, 0], &[]), &t(DType::F64, &[0, 3], &[])).unwrap();
        assert_eq!(z.to_f64_vec(), vec![0.0; 6]);
        assert!(mm(&a, &a).unwrap_err().contains("inner"));
        assert!(mm(&a, &t(DType::F32, &[3, 2], &[0.0; 6]))
            .unwrap_err()
            .contains("dtype"));
        assert!(mm(&t(DType::F64, &[], &[1.0]), &v).is_err());
        let b1 = t(DType::F64, &[2, 3, 2], &[0.0; 12]);
        assert!(mm(&t(DType::F64, &[3, 2, 3], &[0.0; 18]), &b1).is_err());
    }
}
