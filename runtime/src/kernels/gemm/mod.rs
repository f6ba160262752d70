//! Single-precision GEMM with pre-packed weights and a fused epilogue (bias, activation,
//! residual), with AVX-512, AVX2/FMA and portable micro-kernels chosen by the caller.
//!
//! # Packed-weight layout
//!
//! `B` (`k × n`) is split into column panels of [`NR`] (= 32) columns. Panel `j` holds columns
//! `j·NR .. j·NR + NR` and is stored k-major: for `p in 0..k`, the `NR` values `B[p][j·NR + c]`.
//! Panels follow each other (panel `j` starts at `j·k·NR`); the last panel is zero-padded to `NR`
//! columns. There is no k-blocking in the layout: a k-block `p0..p1` of a panel is the contiguous
//! range `p0·NR .. p1·NR` of it, so the kernels block over `k` while reading. The layout does not
//! depend on the instruction set, so the compiler can pack at compile time for any x86-64 target.
//!
//! # Computation
//!
//! `C (m × n, row stride ldc) = epilogue(A (m × k, row stride lda) · B)` where the epilogue adds the
//! bias (one value per column), applies the activation, then adds the residual (`m × n`, row stride
//! `ldc`). With `k = 0`, `C = epilogue(0)`. Every length is checked before any kernel runs.
//!
//! # Threads
//!
//! Large products are split into a few blocks of the output per thread of the current rayon pool
//! (`pool.install(..)` is the caller's job), none with fewer than [`PARALLEL_THRESHOLD`]
//! multiply-adds; smaller products run on the calling thread.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod driver;
mod pack;
mod portable;
#[cfg(test)]
pub(crate) mod tests;
mod types;

pub use crate::kernels::numerics::{gelu_erf, gelu_tanh};
pub(crate) use driver::panel_rows;
pub use pack::{pack_b, pack_b_transposed, packed_len};
pub(crate) use types::{check_len, check_operands};
pub use types::{
    Activation, Epilogue, GemmError, Isa, Matrix, MatrixMut, Shape, NR, PARALLEL_THRESHOLD,
};

/// `C = epilogue(A · B)` with `B` packed by [`pack_b`] or [`pack_b_transposed`].
///
/// `a` is `m × k`, `c` and the residual are `m × n` with the row stride of `c`. Columns of `C`
/// beyond `n` within a row stride are left untouched.
pub fn gemm_packed(
    isa: Isa,
    shape: Shape,
    a: Matrix<'_>,
    b_packed: &[f32],
    c: MatrixMut<'_>,
    ep: &Epilogue,
) -> Result<(), GemmError> {
    checked_run(isa, shape, a, b_packed, c, ep, true)
}

/// [`gemm_packed`] on the calling thread only, for callers that split their work between
/// threads themselves (a recurrent layer's per-step products are too small to split).
pub fn gemm_packed_serial(
    isa: Isa,
    shape: Shape,
    a: Matrix<'_>,
    b_packed: &[f32],
    c: MatrixMut<'_>,
    ep: &Epilogue,
) -> Result<(), GemmError> {
    checked_run(isa, shape, a, b_packed, c, ep, false)
}

fn checked_run(
    isa: Isa,
    shape: Shape,
    a: Matrix<'_>,
    b_packed: &[f32],
    c: MatrixMut<'_>,
    ep: &Epilogue,
    parallel: bool,
) -> Result<(), GemmError> {
    let Shape { n, k, .. } = shape;
    if !check_operands(isa, shape, &a, &c, ep)? {
        return Ok(());
    }
    check_len("b_packed", b_packed.len(), packed_len(k, n))?;
    let a = Matrix {
        data: a.data,
        stride: if k == 0 { 0 } else { a.stride },
    };
    driver::run(isa, shape, a, b_packed, c, ep, parallel);
    Ok(())
}

thread_local! {
    /// Scratch for packing an unpacked `B` in [`gemm`]; taken out while in use so that a nested
    /// call (rayon may run another job on this thread while it waits) gets a fresh one.
    static B_SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `C = epilogue(A · B)` with an unpacked `B`: row-major `k × n`, or, when `b_trans`, its
/// transpose stored row-major `n × k` (with `b`'s row stride either way). `B` is packed into a
/// thread-local scratch buffer first, then [`gemm_packed`] runs.
pub fn gemm(
    isa: Isa,
    shape: Shape,
    a: Matrix<'_>,
    b: Matrix<'_>,
    b_trans: bool,
    c: MatrixMut<'_>,
    ep: &Epilogue,
) -> Result<(), GemmError> {
    let Shape { m, n, k } = shape;
    if !isa.available() {
        return Err(GemmError::IsaUnavailable { isa });
    }
    let len = packed_len(k, n);
    if len == usize::MAX {
        return Err(GemmError::Overflow { m, n, k });
    }
    let mut scratch = B_SCRATCH.with(|s| s.take());
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    let packed = &mut scratch[..len];
    let result = if b_trans {
        pack::pack_strided_transposed(b, k, n, packed)
    } else {
        pack::pack_strided(b, k, n, packed)
    }
    .and_then(|()| gemm_packed(isa, shape, a, packed, c, ep));
    B_SCRATCH.with(|s| s.set(scratch));
    result
}
