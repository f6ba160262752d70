//! Code generation: fused elementwise and row-reduction kernels compiled by Cranelift into an
//! x86-64 ELF relocatable object, which `kiln_runtime::code::CodeModule` loads.
//!
//! - [`kernel`]: the kernel descriptions and their validation.
//! - [`compile_object`]: the object, one exported `extern "C" fn(args: *const *mut f32, rows:
//!   u64, cols: u64)` per kernel; loops run 4 lanes at a time (`f32x4`) with a scalar tail.
//! - `exp` (and so sigmoid and softmax) is an inline f32 polynomial; the GELUs are inline too,
//!   evaluated in f64 lane pairs; log, tanh, erf, pow, sin and cos call the runtime's `kiln_rt_*`
//!   functions (lane by lane in vector loops), as do floor/ceil on targets without SSE4.1. The
//!   object is non-PIC and imports them non-colocated, so its only relocations are
//!   `R_X86_64_64`.

mod elementwise;
mod emit;
mod isa;
pub mod kernel;
mod object;
mod rows;
#[cfg(test)]
mod tests;
mod wide;

pub use kernel::{
    Access, ElementwiseKernel, EwBinary, EwNode, EwUnary, GenKernel, RowKernel, RowOp,
};
pub use object::compile_object;
