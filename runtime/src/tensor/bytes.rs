//! A [`Tensor`]'s elements as little-endian bytes and back: what the executor copies into and
//! out of its arena and what artifacts and `.npy` files store.

use super::{element_count, Tensor, TensorData};
use crate::{DType, Error};
use half::{bf16, f16};

impl Tensor {
    /// The elements as little-endian bytes (bool: one byte, 0 or 1).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len() * self.dtype().size()];
        // The buffer has exactly the length `write_le_bytes` asks for.
        let written = self.write_le_bytes(&mut out);
        debug_assert!(written);
        out
    }

    /// Writes the elements as little-endian bytes into `out`, which must hold exactly
    /// `len() · dtype().size()` bytes (as [`Tensor::to_le_bytes`] returns them, without the
    /// allocation). Returns false, writing nothing, when the length differs.
    pub fn write_le_bytes(&self, out: &mut [u8]) -> bool {
        let size = self.dtype().size();
        if out.len() != self.len().saturating_mul(size) {
            return false;
        }
        macro_rules! put {
            ($v:expr) => {
                for (x, o) in $v.iter().zip(out.chunks_exact_mut(size)) {
                    o.copy_from_slice(&x.to_le_bytes());
                }
            };
        }
        match &self.data {
            TensorData::F32(v) => put!(v),
            TensorData::F16(v) => put!(v),
            TensorData::BF16(v) => put!(v),
            TensorData::F64(v) => put!(v),
            TensorData::I64(v) => put!(v),
            TensorData::I32(v) => put!(v),
            TensorData::I8(v) => put!(v),
            TensorData::U8(v) => out.copy_from_slice(v),
            TensorData::I16(v) => put!(v),
            TensorData::U16(v) => put!(v),
            TensorData::U32(v) => put!(v),
            TensorData::U64(v) => put!(v),
            TensorData::Bool(v) => v
                .iter()
                .zip(out.iter_mut())
                .for_each(|(&x, o)| *o = x as u8),
        }
        true
    }

    /// Parses little-endian bytes of `dtype` (bool: any non-zero byte is true).
    pub fn from_le_bytes(dtype: DType, shape: Vec<usize>, bytes: &[u8]) -> Result<Tensor, Error> {
        let n = element_count(&shape)?;
        let expected = n
            .checked_mul(dtype.size())
            .ok_or_else(|| Error::ShapeOverflow {
                shape: shape.clone(),
            })?;
        if bytes.len() != expected {
            return Err(Error::ByteCount {
                shape,
                dtype: dtype.name(),
                expected,
                found: bytes.len(),
            });
        }
        fn chunks<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
            b.chunks_exact(N)
                .map(|c| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(c);
                    f(a)
                })
                .collect()
        }
        let data = match dtype {
            DType::F32 => TensorData::F32(chunks(bytes, f32::from_le_bytes)),
            DType::F16 => TensorData::F16(chunks(bytes, f16::from_le_bytes)),
            DType::BF16 => TensorData::BF16(chunks(bytes, bf16::from_le_bytes)),
            DType::F64 => TensorData::F64(chunks(bytes, f64::from_le_bytes)),
            DType::I64 => TensorData::I64(chunks(bytes, i64::from_le_bytes)),
            DType::I32 => TensorData::I32(chunks(bytes, i32::from_le_bytes)),
            DType::I8 => TensorData::I8(chunks(bytes, i8::from_le_bytes)),
            DType::U8 => TensorData::U8(bytes.to_vec()),
            DType::I16 => TensorData::I16(chunks(bytes, i16::from_le_bytes)),
            DType::U16 => TensorData::U16(chunks(bytes, u16::from_le_bytes)),
            DType::U32 => TensorData::U32(chunks(bytes, u32::from_le_bytes)),
            DType::U64 => TensorData::U64(chunks(bytes, u64::from_le_bytes)),
            DType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        };
        Tensor::new(shape, data)
    }
}
