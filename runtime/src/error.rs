//! The runtime's error type.

/// Everything that can go wrong in `kiln-runtime`.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// A tensor's element count does not match its shape.
    #[error("tensor of shape {shape:?} needs {expected} elements of {dtype}, got {found}")]
    ElementCount {
        /// The declared shape.
        shape: Vec<usize>,
        /// The element type.
        dtype: &'static str,
        /// `product(shape)`.
        expected: usize,
        /// The number of elements supplied.
        found: usize,
    },
    /// A byte buffer's length does not match the shape and dtype.
    #[error("tensor of shape {shape:?} and dtype {dtype} needs {expected} bytes, got {found}")]
    ByteCount {
        /// The declared shape.
        shape: Vec<usize>,
        /// The element type.
        dtype: &'static str,
        /// `product(shape) * dtype size`.
        expected: usize,
        /// The number of bytes supplied.
        found: usize,
    },
    /// A shape whose element count overflows `usize`.
    #[error("shape {shape:?} has more elements than fit in memory")]
    ShapeOverflow {
        /// The offending shape.
        shape: Vec<usize>,
    },
    /// An unknown dtype name.
    #[error(
        "unknown dtype `{name}` (expected one of f32, f16, bf16, f64, i64, i32, i8, u8, bool)"
    )]
    UnknownDType {
        /// The name that was given.
        name: String,
    },
}
