//! Loading generated code: the relocatable x86-64 ELF object the compiler's Cranelift code
//! generator emits is parsed with `object`, its allocatable sections copied into a fresh anonymous
//! mapping, every relocation applied against the object's own symbols and the runtime symbol table
//! ([`symbols`]), and the mapping made read+execute — never writable and executable at once.
//!
//! Generated kernels share one C ABI, [`GenFn`]: `fn(args: *const *mut f32, rows: u64, cols:
//! u64)`, with `args` holding one base pointer per argument (inputs first, then outputs).
//!
//! Relocation types handled: `R_X86_64_64` (the only one the code generator emits: it is non-PIC
//! and calls runtime functions through absolute addresses), `R_X86_64_32`, `R_X86_64_32S`,
//! `R_X86_64_PC32`, `R_X86_64_PC64`, `R_X86_64_PLT32` (through a veneer in the mapping when the
//! runtime function is out of ±2 GiB) and `R_X86_64_GOTPCREL`/`GOTPCRELX`/`REX_GOTPCRELX` (GOT
//! slots in the mapping). Writable sections (`.data`, `.bss`) are loaded too, but read-only.

mod error;
mod layout;
mod loader;
mod reloc;
mod resolve;
pub mod symbols;
#[cfg(test)]
mod tests;

pub use error::CodeError;
pub use loader::{CodeModule, GenFn};
