//! Kiln runtime: host tensors, the `.kiln` artifact format and loader, the execution plan, the
//! executor with its library kernels, and the reference kernels of every op.
//!
//! This crate never depends on the compiler: an application that only runs artifacts compiles
//! none of the optimizer, code generator or frontends.

pub mod artifact;
pub mod budget;
pub mod code;
pub mod cpu;
mod dtype;
mod error;
mod exec;
pub mod kernels;
mod model;
pub mod ops;
pub mod plan;
pub mod reference;
mod tensor;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

pub use budget::{BudgetError, MemoryBudget};
pub use cpu::{CpuFeature, CpuFeatures};
pub use dtype::DType;
pub use error::Error;
pub use exec::{Layout, Session, State};
pub use half::{bf16, f16};
pub use model::{LoadOptions, Model};
pub use tensor::{Tensor, TensorData};
