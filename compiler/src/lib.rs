//! Kiln compiler: IR, verifier, text format, reference interpreter and optimizer passes.

pub mod codegen;
pub mod egraph;
pub mod error;
pub mod interp;
pub mod ir;
pub mod lower;
pub mod optimize;
pub mod passes;
pub mod text;

pub use error::{Error, Result};
pub use ir::verify::verify;
