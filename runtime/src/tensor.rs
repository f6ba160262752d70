//! Host tensors: a shape plus a typed, owned, row-major element buffer.

use crate::{DType, Error};
use half::{bf16, f16};

mod bytes;

/// Typed element storage of a [`Tensor`], row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// f32 elements.
    F32(Vec<f32>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
    /// f64 elements.
    F64(Vec<f64>),
    /// i64 elements.
    I64(Vec<i64>),
    /// i32 elements.
    I32(Vec<i32>),
    /// i8 elements.
    I8(Vec<i8>),
    /// u8 elements.
    U8(Vec<u8>),
    /// i16 elements.
    I16(Vec<i16>),
    /// u16 elements.
    U16(Vec<u16>),
    /// u32 elements.
    U32(Vec<u32>),
    /// u64 elements.
    U64(Vec<u64>),
    /// bool elements.
    Bool(Vec<bool>),
}

macro_rules! each_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::F32($v) => $body,
            TensorData::F16($v) => $body,
            TensorData::BF16($v) => $body,
            TensorData::F64($v) => $body,
            TensorData::I64($v) => $body,
            TensorData::I32($v) => $body,
            TensorData::I8($v) => $body,
            TensorData::U8($v) => $body,
            TensorData::I16($v) => $body,
            TensorData::U16($v) => $body,
            TensorData::U32($v) => $body,
            TensorData::U64($v) => $body,
            TensorData::Bool($v) => $body,
        }
    };
}

impl TensorData {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F16(_) => DType::F16,
            TensorData::BF16(_) => DType::BF16,
            TensorData::F64(_) => DType::F64,
            TensorData::I64(_) => DType::I64,
            TensorData::I32(_) => DType::I32,
            TensorData::I8(_) => DType::I8,
            TensorData::U8(_) => DType::U8,
            TensorData::I16(_) => DType::I16,
            TensorData::U16(_) => DType::U16,
            TensorData::U32(_) => DType::U32,
            TensorData::U64(_) => DType::U64,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        each_data!(self, v => v.len())
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dense host tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

/// `product(shape)`, or an error when it overflows.
pub fn element_count(shape: &[usize]) -> Result<usize, Error> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::ShapeOverflow {
            shape: shape.to_vec(),
        })
}

impl Tensor {
    /// Builds a tensor, checking that `data` has `product(shape)` elements.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor, Error> {
        let expected = element_count(&shape)?;
        if data.len() != expected {
            return Err(Error::ElementCount {
                dtype: data.dtype().name(),
                shape,
                expected,
                found: data.len(),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A rank-0 f32 tensor.
    pub fn scalar_f32(v: f32) -> Tensor {
        Tensor {
            shape: vec![],
            data: TensorData::F32(vec![v]),
        }
    }

    /// An f32 tensor from a shape and values.
    pub fn from_f32(shape: Vec<usize>, v: Vec<f32>) -> Result<Tensor, Error> {
        Tensor::new(shape, TensorData::F32(v))
    }

    /// An i64 tensor from a shape and values.
    pub fn from_i64(shape: Vec<usize>, v: Vec<i64>) -> Result<Tensor, Error> {
        Tensor::new(shape, TensorData::I64(v))
    }

    /// A zero-filled tensor.
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Result<Tensor, Error> {
        let n = element_count(&shape)?;
        Tensor::from_f64_values(dtype, shape, &vec![0.0; n])
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The rank (number of dimensions).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The element storage.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Consumes the tensor, returning its storage.
    pub fn into_data(self) -> TensorData {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same elements under another shape with the same element count.
    pub fn reshaped(mut self, shape: Vec<usize>) -> Result<Tensor, Error> {
        let expected = element_count(&shape)?;
        if expected != self.len() {
            return Err(Error::ElementCount {
                dtype: self.dtype().name(),
                shape,
                expected,
                found: self.len(),
            });
        }
        self.shape = shape;
        Ok(self)
    }

    /// Every element converted to f64 (bool: 0/1; integers exactly up to 2^53).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
            TensorData::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
            TensorData::F64(v) => v.clone(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I16(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::U16(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::U32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::U64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| if x { 1.0 } else { 0.0 }).collect(),
        }
    }

    /// Every element converted to i64 (floats truncate toward zero and saturate, NaN gives 0).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            TensorData::I64(v) => v.clone(),
            TensorData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I16(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::U16(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::U32(v) => v.iter().map(|&x| x as i64).collect(),
            // Wraps from 2^63 up (two's complement), as documented on `DType::U64`.
            TensorData::U64(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as i64).collect(),
            _ => self.to_f64_vec().into_iter().map(|x| x as i64).collect(),
        }
    }

    /// Element `i` converted to i64 as [`Tensor::to_i64_vec`] does, without copying the
    /// tensor; `None` past the end.
    pub fn i64_at(&self, i: usize) -> Option<i64> {
        Some(match &self.data {
            TensorData::I64(v) => *v.get(i)?,
            TensorData::I32(v) => i64::from(*v.get(i)?),
            TensorData::I8(v) => i64::from(*v.get(i)?),
            TensorData::U8(v) => i64::from(*v.get(i)?),
            TensorData::I16(v) => i64::from(*v.get(i)?),
            TensorData::U16(v) => i64::from(*v.get(i)?),
            TensorData::U32(v) => i64::from(*v.get(i)?),
            TensorData::U64(v) => *v.get(i)? as i64,
            TensorData::Bool(v) => i64::from(*v.get(i)?),
            TensorData::F32(v) => *v.get(i)? as i64,
            TensorData::F16(v) => v.get(i)?.to_f64() as i64,
            TensorData::BF16(v) => v.get(i)?.to_f64() as i64,
            TensorData::F64(v) => *v.get(i)? as i64,
        })
    }

    /// Replaces an i64 tensor's shape and elements in place, reusing both buffers: `fill`
    /// gets the cleared element vector and must leave `product(shape)` elements in it. A
    /// decode loop keeps its input tensors this way instead of building new ones per token.
    pub fn refill_i64(
        &mut self,
        shape: &[usize],
        fill: impl FnOnce(&mut Vec<i64>),
    ) -> Result<(), Error> {
        let TensorData::I64(v) = &mut self.data else {
            return Err(Error::ElementCount {
                dtype: self.data.dtype().name(),
                shape: shape.to_vec(),
                expected: 0,
                found: self.data.len(),
            });
        };
        let expected = element_count(shape)?;
        v.clear();
        fill(v);
        if v.len() != expected {
            let found = v.len();
            v.clear();
            v.resize(expected, 0);
            self.shape.clear();
            self.shape.extend_from_slice(shape);
            return Err(Error::ElementCount {
                dtype: "i64",
                shape: shape.to_vec(),
                expected,
                found,
            });
        }
        self.shape.clear();
        self.shape.extend_from_slice(shape);
        Ok(())
    }

    /// Every element as a bool (non-zero is true; NaN is true).
    pub fn to_bool_vec(&self) -> Vec<bool> {
        match &self.data {
            TensorData::Bool(v) => v.clone(),
            _ if self.dtype().is_float() => {
                self.to_f64_vec().into_iter().map(|x| x != 0.0).collect()
            }
            _ => self.to_i64_vec().into_iter().map(|x| x != 0).collect(),
        }
    }

    /// Builds a tensor of `dtype` from f64 values: floats round to nearest, integers truncate
    /// toward zero (saturating to i64, then wrapping to narrower types as numpy's `astype` does),
    /// bool is `x != 0`.
    pub fn from_f64_values(dtype: DType, shape: Vec<usize>, v: &[f64]) -> Result<Tensor, Error> {
        let data = match dtype {
            DType::F32 => TensorData::F32(v.iter().map(|&x| x as f32).collect()),
            DType::F16 => TensorData::F16(v.iter().map(|&x| f16::from_f64(x)).collect()),
            DType::BF16 => TensorData::BF16(v.iter().map(|&x| bf16::from_f64(x)).collect()),
            DType::F64 => TensorData::F64(v.to_vec()),
            DType::Bool => TensorData::Bool(v.iter().map(|&x| x != 0.0).collect()),
            _ => {
                let ints: Vec<i64> = v.iter().map(|&x| x as i64).collect();
                return Tensor::from_i64_values(dtype, shape, &ints);
            }
        };
        Tensor::new(shape, data)
    }

    /// Builds a tensor of `dtype` from i64 values: narrower integers wrap (two's complement),
    /// floats round to nearest, bool is `x != 0`.
    pub fn from_i64_values(dtype: DType, shape: Vec<usize>, v: &[i64]) -> Result<Tensor, Error> {
        let data = match dtype {
            DType::I64 => TensorData::I64(v.to_vec()),
            DType::I32 => TensorData::I32(v.iter().map(|&x| x as i32).collect()),
            DType::I8 => TensorData::I8(v.iter().map(|&x| x as i8).collect()),
            DType::U8 => TensorData::U8(v.iter().map(|&x| x as u8).collect()),
            DType::I16 => TensorData::I16(v.iter().map(|&x| x as i16).collect()),
            DType::U16 => TensorData::U16(v.iter().map(|&x| x as u16).collect()),
            DType::U32 => TensorData::U32(v.iter().map(|&x| x as u32).collect()),
            DType::U64 => TensorData::U64(v.iter().map(|&x| x as u64).collect()),
            DType::Bool => TensorData::Bool(v.iter().map(|&x| x != 0).collect()),
            _ => {
                let floats: Vec<f64> = v.iter().map(|&x| x as f64).collect();
                return Tensor::from_f64_values(dtype, shape, &floats);
            }
        };
        Tensor::new(shape, data)
    }

    /// Builds a bool tensor.
    pub fn from_bools(shape: Vec<usize>, v: Vec<bool>) -> Result<Tensor, Error> {
        Tensor::new(shape, TensorData::Bool(v))
    }

    /// Converts to another dtype with the rules of [`Tensor::from_f64_values`] /
    /// [`Tensor::from_i64_values`] (integer sources keep full i64 precision).
    pub fn cast(&self, to: DType) -> Tensor {
        let shape = self.shape.clone();
        let out = if self.dtype() == to {
            Ok(self.clone())
        } else if self.dtype().is_float() {
            Tensor::from_f64_values(to, shape, &self.to_f64_vec())
        } else {
            Tensor::from_i64_values(to, shape, &self.to_i64_vec())
        };
        // The shape and element count are unchanged, so construction cannot fail.
        out.unwrap_or_else(|_| unreachable!("cast preserves element count"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_element_count() {
        assert!(Tensor::from_f32(vec![2, 3], vec![0.0; 5]).is_err());
        assert!(Tensor::from_f32(vec![2, 3], vec![0.0; 6]).is_ok());
        assert!(Tensor::from_f32(vec![usize::MAX, 3], vec![]).is_err());
    }

    #[test]
    fn casts_follow_numpy_astype() {
        let t = Tensor::new(
            vec![5],
            TensorData::F32(vec![-1.7, 1.7, 2.5, 300.0, f32::NAN]),
        )
        .unwrap();
        assert_eq!(t.cast(DType::I64).to_i64_vec(), vec![-1, 1, 2, 300, 0]);
        assert_eq!(t.cast(DType::U8).to_i64_vec(), vec![255, 1, 2, 44, 0]);
        assert_eq!(
            t.cast(DType::Bool).to_bool_vec(),
            vec![true, true, true, true, true]
        );
        let i = Tensor::from_i64(vec![2], vec![i64::MAX, 3]).unwrap();
        assert_eq!(i.cast(DType::I64).to_i64_vec(), vec![i64::MAX, 3]);
    }

    #[test]
    fn bytes_round_trip_every_dtype() {
        for d in DType::ALL {
            let t = Tensor::from_f64_values(d, vec![2, 2], &[0.0, 1.0, -2.0, 3.5]).unwrap();
            let b = t.to_le_bytes();
            assert_eq!(b.len(), 4 * d.size());
            assert_eq!(Tensor::from_le_bytes(d, vec![2, 2], &b).unwrap(), t);
            assert!(Tensor::from_le_bytes(d, vec![2, 2], &b[1..]).is_err());
        }
    }
}
