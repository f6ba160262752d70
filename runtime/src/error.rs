//! The runtime's error type.

/// Everything that can go wrong in `kiln-runtime`.
#[derive(Debug, thiserror::Error)]
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
    /// An artifact that cannot be loaded (the message names the file and what is wrong).
    #[error(transparent)]
    Artifact(Box<crate::artifact::ArtifactError>),
    /// An artifact whose plan section is invalid.
    #[error("{file}: {source}")]
    Plan {
        /// The artifact file.
        file: String,
        /// What is wrong with the plan.
        source: crate::plan::PlanError,
    },
    /// An artifact whose assets section is invalid.
    #[error("{file}: assets section: {source}")]
    Assets {
        /// The artifact file.
        file: String,
        /// What is wrong with the section.
        source: crate::artifact::AssetsError,
    },
    /// An artifact whose code section cannot be loaded.
    #[error("{file}: code section: {source}")]
    Code {
        /// The artifact file.
        file: String,
        /// What is wrong with the object code.
        source: Box<crate::code::CodeError>,
    },
    /// An input that does not match the plan (name, dtype, rank or dims).
    #[error(transparent)]
    Input(#[from] crate::ops::InputError),
    /// A step that failed while running.
    #[error("{step}: {message}")]
    Step {
        /// The step and the IR node it came from.
        step: String,
        /// What went wrong.
        message: String,
    },
    /// A run that would need more memory than its budget ([`crate::LoadOptions::max_memory`]).
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
    /// A run that could not start (shapes that do not evaluate, memory, threads).
    #[error("{message}")]
    Run {
        /// What went wrong.
        message: String,
    },
}

impl From<crate::artifact::ArtifactError> for Error {
    fn from(e: crate::artifact::ArtifactError) -> Error {
        Error::Artifact(Box::new(e))
    }
}
