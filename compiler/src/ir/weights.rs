//! The weight store: weights by id, never by value in the graph; bytes owned or memory-mapped.

use crate::error::{Error, Result};
use kiln_runtime::kernels::blocks::{BlockFormat, BLOCK};
use kiln_runtime::{DType, Tensor};
use std::fmt;
use std::sync::Arc;

/// Index of a weight in a [`WeightStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WeightId(pub u32);

/// Where a weight's bytes live.
#[derive(Clone)]
pub enum WeightData {
    /// Owned little-endian bytes.
    Owned(Arc<[u8]>),
    /// A region of a memory-mapped file.
    Mapped {
        /// The mapping (shared by every weight of the file).
        map: Arc<memmap2::Mmap>,
        /// Byte offset of the region.
        offset: usize,
        /// Byte length of the region.
        len: usize,
    },
    /// No data: the weight was printed without its values (see `PrintOptions`).
    Opaque,
}

impl fmt::Debug for WeightData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightData::Owned(b) => write!(f, "Owned({} bytes)", b.len()),
            WeightData::Mapped { offset, len, .. } => write!(f, "Mapped({len} bytes at {offset})"),
            WeightData::Opaque => f.write_str("Opaque"),
        }
    }
}

/// A named constant tensor.
#[derive(Debug, Clone)]
pub struct Weight {
    /// The name it had in the source model (kept for error messages and printing).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Concrete shape.
    pub shape: Vec<usize>,
    /// Kept block-quantized (see [`Weight::blocked`]): the bytes are blocks of this format, not
    /// `dtype` values.
    blocks: Option<BlockFormat>,
    data: WeightData,
}

impl Weight {
    /// A weight holding a copy of a host tensor's bytes.
    pub fn from_tensor(name: impl Into<String>, t: &Tensor) -> Weight {
        Weight {
            name: name.into(),
            dtype: t.dtype(),
            shape: t.shape().to_vec(),
            blocks: None,
            data: WeightData::Owned(t.to_le_bytes().into()),
        }
    }

    /// A weight from owned little-endian bytes; the length must match shape and dtype.
    pub fn from_bytes(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<usize>,
        bytes: Arc<[u8]>,
    ) -> Result<Weight> {
        let w = Weight {
            name: name.into(),
            dtype,
            shape,
            blocks: None,
            data: WeightData::Owned(bytes),
        };
        w.check_len(w.bytes().map_or(0, <[u8]>::len))?;
        Ok(w)
    }

    /// An f32 matrix `[rows, k]` kept block-quantized: `bytes` holds each row as `k / 32`
    /// blocks of `format` (ggml's layout). Its values are the blocks' exact dequantization
    /// ([`Weight::to_tensor`]); a GEMM that reads it as `Wᵀ` keeps the blocks in the artifact.
    pub fn blocked(
        name: impl Into<String>,
        format: BlockFormat,
        shape: Vec<usize>,
        bytes: Arc<[u8]>,
    ) -> Result<Weight> {
        let w = Weight {
            name: name.into(),
            dtype: DType::F32,
            shape,
            blocks: Some(format),
            data: WeightData::Owned(bytes),
        };
        w.check_len(w.bytes().map_or(0, <[u8]>::len))?;
        Ok(w)
    }

    /// The block format when the weight is kept block-quantized.
    pub fn blocks(&self) -> Option<BlockFormat> {
        self.blocks
    }

    /// A weight over a region of a memory-mapped file; the region must lie inside the mapping
    /// and match shape and dtype.
    pub fn mapped(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<usize>,
        map: Arc<memmap2::Mmap>,
        offset: usize,
        len: usize,
    ) -> Result<Weight> {
        let name = name.into();
        if offset.checked_add(len).is_none_or(|end| end > map.len()) {
            return Err(Error::Weight {
                name,
                message: format!(
                    "region {offset}+{len} lies past the end of the {}-byte file",
                    map.len()
                ),
            });
        }
        let w = Weight {
            name,
            dtype,
            shape,
            blocks: None,
            data: WeightData::Mapped { map, offset, len },
        };
        w.check_len(len)?;
        Ok(w)
    }

    /// A weight without data (its values were elided from IR text).
    pub fn opaque(name: impl Into<String>, dtype: DType, shape: Vec<usize>) -> Weight {
        Weight {
            name: name.into(),
            dtype,
            shape,
            blocks: None,
            data: WeightData::Opaque,
        }
    }

    fn check_len(&self, len: usize) -> Result<()> {
        let expected = self.byte_len()?;
        if len != expected {
            return Err(Error::Weight {
                name: self.name.clone(),
                message: format!(
                    "{} {:?} needs {expected} bytes, found {len}",
                    self.dtype, self.shape
                ),
            });
        }
        Ok(())
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Size of the stored data in bytes (an error when it overflows, or for a block-quantized
    /// weight that is not a matrix of whole blocks per row).
    pub fn byte_len(&self) -> Result<usize> {
        let err = |message: String| Error::Weight {
            name: self.name.clone(),
            message,
        };
        if let Some(format) = self.blocks {
            let [rows, k] = self.shape[..] else {
                return Err(err(format!(
                    "a {} weight must be a matrix, not {:?}",
                    format.name(),
                    self.shape
                )));
            };
            return format
                .row_bytes(k)
                .and_then(|r| r.checked_mul(rows))
                .ok_or_else(|| {
                    err(format!(
                        "{} rows of {k} elements are not whole blocks of {BLOCK}",
                        format.name()
                    ))
                });
        }
        self.shape
            .iter()
            .try_fold(self.dtype.size(), |a, &d| a.checked_mul(d))
            .ok_or_else(|| err("shape overflows".to_string()))
    }

    /// Where the bytes live.
    pub fn data(&self) -> &WeightData {
        &self.data
    }

    /// The raw little-endian bytes, or `None` for an opaque weight.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            WeightData::Owned(b) => Some(b),
            WeightData::Mapped { map, offset, len } => map.get(*offset..offset + len),
            WeightData::Opaque => None,
        }
    }

    /// The values as a host tensor (copied).
    pub fn to_tensor(&self) -> Result<Tensor> {
        let bytes = self.bytes().ok_or_else(|| Error::Weight {
            name: self.name.clone(),
            message: "has no data (its values were elided from the IR text)".to_string(),
        })?;
        if let Some(format) = self.blocks {
            let mut values = vec![0f32; self.numel()];
            if bytes.len() != self.byte_len()? {
                return Err(Error::Weight {
                    name: self.name.clone(),
                    message: format!("{} bytes are not its {} blocks", bytes.len(), format.name()),
                });
            }
            format.dequantize(bytes, &mut values);
            return Ok(Tensor::from_f32(self.shape.clone(), values)?);
        }
        Ok(Tensor::from_le_bytes(
            self.dtype,
            self.shape.clone(),
            bytes,
        )?)
    }
}

/// All weights of a graph, addressed by [`WeightId`].
#[derive(Debug, Clone, Default)]
pub struct WeightStore {
    weights: Vec<Weight>,
}

impl WeightStore {
    /// Adds a weight and returns its id.
    pub fn add(&mut self, w: Weight) -> WeightId {
        self.weights.push(w);
        WeightId(self.weights.len() as u32 - 1)
    }

    /// The weight with this id.
    pub fn get(&self, id: WeightId) -> &Weight {
        &self.weights[id.0 as usize]
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Every weight with its id.
    pub fn iter(&self) -> impl Iterator<Item = (WeightId, &Weight)> {
        self.weights
            .iter()
            .enumerate()
            .map(|(i, w)| (WeightId(i as u32), w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn owned_and_mapped_weights_give_the_same_tensor() {
        let t = Tensor::from_f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let w = Weight::from_tensor("w", &t);
        assert_eq!(w.to_tensor().unwrap(), t);

        let path = std::env::temp_dir().join(format!("kiln-weights-{}.bin", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&[9u8; 8]).unwrap();
        f.write_all(&t.to_le_bytes()).unwrap();
        drop(f);
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: the file is private to this test and not modified while mapped.
        let map = Arc::new(unsafe { memmap2::Mmap::map(&file) }.unwrap());
        let m = Weight::mapped("m", DType::F32, vec![2, 2], map.clone(), 8, 16).unwrap();
        assert_eq!(m.to_tensor().unwrap(), t);
        assert!(Weight::mapped("bad", DType::F32, vec![2, 2], map.clone(), 16, 16).is_err());
        assert!(Weight::mapped("bad", DType::F32, vec![3], map, 8, 16).is_err());
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn opaque_weights_refuse_to_give_data() {
        let w = Weight::opaque("o", DType::F32, vec![4]);
        assert!(w.to_tensor().unwrap_err().to_string().contains("elided"));
        assert!(Weight::from_bytes("b", DType::F32, vec![2], Arc::from(vec![0u8; 7])).is_err());
    }

    #[test]
    fn blocked_weights_are_matrices_of_whole_blocks_and_read_as_their_values() {
        // Two Q8_0 rows of one block each: d = 0.5 and d = 2 (f16 bits 0x3800, 0x4000), quants
        // 0, 1, .., 31 (row 1 negated).
        let mut bytes = Vec::new();
        for (d, sign) in [(0x3800u16, 1i8), (0x4000, -1)] {
            bytes.extend_from_slice(&d.to_le_bytes());
            bytes.extend((0..32i8).map(|q| (sign * q) as u8));
        }
        let w = Weight::blocked(
            "w",
            BlockFormat::Q8_0,
            vec![2, 32],
            Arc::from(bytes.clone()),
        )
        .unwrap();
        assert_eq!(w.blocks(), Some(BlockFormat::Q8_0));
        assert_eq!((w.dtype, w.byte_len().unwrap()), (DType::F32, 68));
        let v = w.to_tensor().unwrap().to_f64_vec();
        assert_eq!((v[0], v[3], v[32], v[35]), (0.0, 1.5, 0.0, -6.0));
        let err = |shape: Vec<usize>, bytes: &[u8]| {
            Weight::blocked("w", BlockFormat::Q8_0, shape, Arc::from(bytes.to_vec()))
                .unwrap_err()
                .to_string()
        };
        assert!(err(vec![64], &bytes).contains("must be a matrix"));
        assert!(err(vec![2, 40], &bytes).contains("not whole blocks of 32"));
        assert!(err(vec![2, 32], &bytes[..67]).contains("needs 68 bytes, found 67"));
    }
}
