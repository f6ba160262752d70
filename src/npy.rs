//! The `.npy` array format (versions 1.0, 2.0 and 3.0): header parsing and encoding.
//!
//! Only what Kiln exchanges is supported: little-endian, C-order arrays of the dtypes in
//! [`descr_of`]. Errors here carry no file or key; [`crate::npz`] wraps them with both.

use kiln_runtime::{DType, Tensor};

/// The six magic bytes that start every `.npy` file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Why one `.npy` member could not be decoded (wrapped with file and key by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NpyFault {
    BadMagic,
    UnsupportedVersion {
        major: u8,
        minor: u8,
    },
    BadHeader(String),
    UnsupportedDType(String),
    BigEndian(String),
    FortranOrder,
    ShapeOverflow(Vec<usize>),
    SizeMismatch {
        shape: Vec<usize>,
        dtype: DType,
        expected: usize,
        found: usize,
    },
}

/// The numpy `descr` Kiln writes for a dtype. bf16 has no numpy dtype: it is stored as its raw
/// bits under `<u2`, which reads back as u16; [`crate::npz::bits_as_bf16`] turns such an array
/// into bf16 where a model input expects bf16.
pub fn descr_of(d: DType) -> &'static str {
    match d {
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::BF16 => "<u2",
        DType::F64 => "<f8",
        DType::I64 => "<i8",
        DType::I32 => "<i4",
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::I16 => "<i2",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
    }
}

/// The dtype for a numpy `descr`, or the fault that rejects it.
pub(crate) fn dtype_of(descr: &str) -> Result<DType, NpyFault> {
    let (order, kind) = match descr.char_indices().nth(1) {
        Some((i, _)) => descr.split_at(i),
        None => return Err(NpyFault::UnsupportedDType(descr.to_string())),
    };
    let one_byte = match kind {
        "i1" => Some(DType::I8),
        "u1" => Some(DType::U8),
        "b1" => Some(DType::Bool),
        _ => None,
    };
    if let Some(d) = one_byte {
        // Byte order is meaningless for one-byte types; numpy writes `|`.
        return match order {
            "|" | "<" | ">" | "=" => Ok(d),
            _ => Err(NpyFault::UnsupportedDType(descr.to_string())),
        };
    }
    let d = match kind {
        "f4" => DType::F32,
        "f2" => DType::F16,
        "u2" => DType::U16,
        "i2" => DType::I16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "f8" => DType::F64,
        "i8" => DType::I64,
        "i4" => DType::I32,
        _ => return Err(NpyFault::UnsupportedDType(descr.to_string())),
    };
    match order {
        "<" => Ok(d),
        ">" => Err(NpyFault::BigEndian(descr.to_string())),
        _ => Err(NpyFault::UnsupportedDType(descr.to_string())),
    }
}

/// Encodes a tensor as a version 1.0 `.npy` file (2.0 when the header needs it), header padded
/// so the data starts at a multiple of 64 bytes, as numpy does.
pub fn encode(t: &Tensor) -> Vec<u8> {
    let shape = match t.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        dims => {
            let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        }
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr_of(t.dtype())
    );
    let v1 = header.len() + 1 + 10 <= usize::from(u16::MAX);
    let prefix = if v1 { 10 } else { 12 };
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(prefix + header.len() + t.len() * t.dtype().size());
    out.extend_from_slice(MAGIC);
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&t.to_le_bytes());
    out
}

/// Decodes a whole `.npy` file.
pub(crate) fn decode(bytes: &[u8]) -> Result<Tensor, NpyFault> {
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(NpyFault::BadMagic);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_size, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => return Err(NpyFault::UnsupportedVersion { major, minor }),
    };
    let truncated = || NpyFault::BadHeader("the file ends inside the header".to_string());
    let len_bytes = bytes.get(8..8 + len_size).ok_or_else(truncated)?;
    let header_len = len_bytes
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let start = 8 + len_size;
    let raw = start
        .checked_add(header_len)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(truncated)?;
    let header: String = if utf8 {
        std::str::from_utf8(raw)
            .map_err(|_| NpyFault::BadHeader("the header is not UTF-8".to_string()))?
            .to_string()
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let h = crate::npy_header::parse(&header).map_err(NpyFault::BadHeader)?;
    let dtype = dtype_of(&h.descr)?;
    if h.fortran_order {
        return Err(NpyFault::FortranOrder);
    }
    let data = &bytes[start + header_len..];
    let expected = h
        .shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| NpyFault::ShapeOverflow(h.shape.clone()))?;
    if data.len() != expected {
        return Err(NpyFault::SizeMismatch {
            shape: h.shape,
            dtype,
            expected,
            found: data.len(),
        });
    }
    Tensor::from_le_bytes(dtype, h.shape.clone(), data)
        .map_err(|_| NpyFault::ShapeOverflow(h.shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_headers_are_aligned_and_decode() {
        for shape in [vec![], vec![0], vec![3], vec![2, 3, 1]] {
            let n: usize = shape.iter().product();
            let t = Tensor::from_f32(shape.clone(), (0..n).map(|i| i as f32).collect()).unwrap();
            let b = encode(&t);
            let header_len = u16::from_le_bytes([b[8], b[9]]) as usize;
            assert_eq!((10 + header_len) % 64, 0);
            assert_eq!(decode(&b).unwrap(), t);
        }
    }

    #[test]
    fn descrs_map_both_ways() {
        for d in DType::ALL {
            // bf16 has no numpy type: its bits are stored as `<u2`, read back as u16.
            let back = if d == DType::BF16 { DType::U16 } else { d };
            assert_eq!(dtype_of(descr_of(d)), Ok(back));
        }
        assert_eq!(dtype_of("<i1"), Ok(DType::I8));
        assert_eq!(dtype_of(">f4"), Err(NpyFault::BigEndian(">f4".into())));
        assert_eq!(
            dtype_of("<c8"),
            Err(NpyFault::UnsupportedDType("<c8".into()))
        );
        assert_eq!(dtype_of("|O"), Err(NpyFault::UnsupportedDType("|O".into())));
        assert_eq!(dtype_of(""), Err(NpyFault::UnsupportedDType("".into())));
        assert_eq!(dtype_of("é"), Err(NpyFault::UnsupportedDType("é".into())));
    }

    #[test]
    fn decode_rejects_bad_prefixes() {
        assert_eq!(decode(b"NUMPY"), Err(NpyFault::BadMagic));
        assert_eq!(
            decode(b"\x93NUMPY\x04\x00\x00\x00"),
            Err(NpyFault::UnsupportedVersion { major: 4, minor: 0 })
        );
        assert!(matches!(
            decode(b"\x93NUMPY\x01\x00\xff\x00{"),
            Err(NpyFault::BadHeader(_))
        ));
        assert!(matches!(
            decode(b"\x93NUMPY\x02\x00\xff"),
            Err(NpyFault::BadHeader(_))
        ));
    }
}
