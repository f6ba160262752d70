//! Kiln runtime: host tensors and (later) the `.kiln` artifact loader and executor.
//!
//! This crate never depends on the compiler: an application that only runs artifacts compiles
//! none of the optimizer, code generator or frontends.

mod dtype;
mod error;
mod tensor;

pub use dtype::DType;
pub use error::Error;
pub use half::{bf16, f16};
pub use tensor::{Tensor, TensorData};
