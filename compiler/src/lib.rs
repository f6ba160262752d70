//! Kiln compiler: IR, verifier, text format, reference interpreter, optimizer passes, lowering,
//! code generation, and the [`pipeline`] that runs them for a [`Target`].

pub mod codegen;
pub mod egraph;
pub mod error;
pub mod interp;
pub mod ir;
pub mod lower;
pub mod optimize;
pub mod passes;
pub mod pipeline;
pub mod target;
pub mod text;

pub use error::{Error, Result};
pub use ir::verify::verify;
pub use pipeline::{compile, Compiled, Options, StageTimings};
pub use target::Target;
