//! Library kernels: hand-written hot loops (GEMM with packed weights, attention) with
//! `std::arch` AVX-512 and AVX2/FMA paths chosen at run time and a portable path elsewhere.

pub mod attention;
pub mod blocks;
pub mod conv;
pub mod gemm;
pub mod native;
pub mod numerics;
pub mod recurrent;
pub(crate) mod scratch;
mod send_ptr;
