//! GGUF metadata values: the thirteen value types (integers of every width, floats, bool,
//! string, arrays of one element type, nested arrays) and typed accessors that read them the
//! way loaders need (any integer width as `u64`, any number as `f64`), and their decoding: every
//! array count is bounded by the bytes left (each element takes a known minimum) before the
//! vector is allocated, and arrays nest at most 8 deep.

use super::reader::Cursor;

/// How deep arrays of arrays may nest (llama.cpp writes none; the bound keeps recursion small).
const MAX_NESTING: usize = 8;

/// Reads one value of GGUF value type `ty`.
pub(super) fn read(c: &mut Cursor, ty: u32) -> Result<Value, String> {
    scalar(c, ty, 0)
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float32`.
    F32(f32),
    /// `float64`.
    F64(f64),
    /// `bool` (a byte that is 0 or 1).
    Bool(bool),
    /// `string`.
    Str(String),
    /// `array`: every element of one type, stored as a vector of that type.
    Array(Array),
}

/// An array value, one vector per element type (so a byte array costs a byte per element).
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// `uint8` elements.
    U8(Vec<u8>),
    /// `int8` elements.
    I8(Vec<i8>),
    /// `uint16` elements.
    U16(Vec<u16>),
    /// `int16` elements.
    I16(Vec<i16>),
    /// `uint32` elements.
    U32(Vec<u32>),
    /// `int32` elements.
    I32(Vec<i32>),
    /// `uint64` elements.
    U64(Vec<u64>),
    /// `int64` elements.
    I64(Vec<i64>),
    /// `float32` elements.
    F32(Vec<f32>),
    /// `float64` elements.
    F64(Vec<f64>),
    /// `bool` elements.
    Bool(Vec<bool>),
    /// `string` elements.
    Str(Vec<String>),
    /// Nested arrays.
    Array(Vec<Array>),
}

impl Value {
    /// An integer value (of any integer type) that fits a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A number (float or integer) as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// A string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A bool value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// An array of strings.
    pub fn as_strs(&self) -> Option<&[String]> {
        match self {
            Value::Array(Array::Str(v)) => Some(v),
            _ => None,
        }
    }

    /// An array of integers of any type as `i64` (`None` for other arrays or a `u64` past
    /// `i64::MAX`).
    pub fn as_ints(&self) -> Option<Vec<i64>> {
        let Value::Array(a) = self else { return None };
        match a {
            Array::U8(v) => Some(v.iter().map(|&x| x.into()).collect()),
            Array::I8(v) => Some(v.iter().map(|&x| x.into()).collect()),
            Array::U16(v) => Some(v.iter().map(|&x| x.into()).collect()),
            Array::I16(v) => Some(v.iter().map(|&x| x.into()).collect()),
            Array::U32(v) => Some(v.iter().map(|&x| x.into()).collect()),
            Array::I32(v) => Some(v.iter().map(|&x| x.into()).collect()),
            Array::I64(v) => Some(v.clone()),
            Array::U64(v) => v.iter().map(|&x| i64::try_from(x).ok()).collect(),
            _ => None,
        }
    }
}

/// The smallest encoding of one value of type `ty` (for bounding counts), or `None` for an
/// unknown type.
fn min_size(ty: u32) -> Option<usize> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => 8,  // the string's length
        9 => 12, // element type + count
        _ => return None,
    })
}

fn scalar(c: &mut Cursor, ty: u32, depth: usize) -> Result<Value, String> {
    Ok(match ty {
        0 => Value::U8(c.array::<1>()?[0]),
        1 => Value::I8(i8::from_le_bytes(c.array()?)),
        2 => Value::U16(u16::from_le_bytes(c.array()?)),
        3 => Value::I16(i16::from_le_bytes(c.array()?)),
        4 => Value::U32(c.u32()?),
        5 => Value::I32(i32::from_le_bytes(c.array()?)),
        6 => Value::F32(f32::from_le_bytes(c.array()?)),
        7 => Value::Bool(boolean(c)?),
        8 => Value::Str(c.string()?),
        9 => Value::Array(array(c, depth + 1)?),
        10 => Value::U64(c.u64()?),
        11 => Value::I64(i64::from_le_bytes(c.array()?)),
        12 => Value::F64(f64::from_le_bytes(c.array()?)),
        _ => return Err(format!("unknown value type {ty}")),
    })
}

fn boolean(c: &mut Cursor) -> Result<bool, String> {
    let at = c.pos();
    match c.array::<1>()?[0] {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(format!("bool byte {b} at offset {at} is neither 0 nor 1")),
    }
}

/// Reads `n` elements with `f`, the count already bounded by the bytes left.
fn elems<T>(
    c: &mut Cursor,
    n: usize,
    mut f: impl FnMut(&mut Cursor) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(f(c)?);
    }
    Ok(v)
}

fn array(c: &mut Cursor, depth: usize) -> Result<Array, String> {
    if depth > MAX_NESTING {
        return Err(format!("arrays nested deeper than {MAX_NESTING}"));
    }
    let ty = c.u32()?;
    let min = min_size(ty).ok_or_else(|| format!("unknown array element type {ty}"))?;
    let n = c.count(min, "array length")?;
    Ok(match ty {
        0 => Array::U8(c.take(n)?.to_vec()),
        1 => Array::I8(elems(c, n, |c| Ok(i8::from_le_bytes(c.array()?)))?),
        2 => Array::U16(elems(c, n, |c| Ok(u16::from_le_bytes(c.array()?)))?),
        3 => Array::I16(elems(c, n, |c| Ok(i16::from_le_bytes(c.array()?)))?),
        4 => Array::U32(elems(c, n, |c| c.u32())?),
        5 => Array::I32(elems(c, n, |c| Ok(i32::from_le_bytes(c.array()?)))?),
        6 => Array::F32(elems(c, n, |c| Ok(f32::from_le_bytes(c.array()?)))?),
        7 => Array::Bool(elems(c, n, boolean)?),
        8 => Array::Str(elems(c, n, |c| c.string())?),
        9 => Array::Array(elems(c, n, |c| array(c, depth + 1))?),
        10 => Array::U64(elems(c, n, |c| c.u64())?),
        11 => Array::I64(elems(c, n, |c| Ok(i64::from_le_bytes(c.array()?)))?),
        12 => Array::F64(elems(c, n, |c| Ok(f64::from_le_bytes(c.array()?)))?),
        _ => return Err(format!("unknown array element type {ty}")),
    })
}
