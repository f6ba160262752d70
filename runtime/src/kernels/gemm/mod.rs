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
mod epilogue;
mod pack;
mod portable;
#[cfg(test)]
pub(crate) mod tests;

pub use epilogue::{gelu_erf, gelu_tanh};
pub use pack::{pack_b, pack_b_transposed, packed_len};

/// Width of a packed column panel (two zmm or four ymm registers of `f32`).
pub const NR: usize = 32;

/// The fewest multiply-adds (`m·n·k`) a parallel task gets: products with less than twice this
/// run single-threaded.
pub const PARALLEL_THRESHOLD: usize = 64 * 1024;

/// Which micro-kernel family runs a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512F: 12 × 32 tiles in zmm registers.
    Avx512,
    /// AVX2 + FMA3: 6 × 16 tiles in ymm registers.
    Avx2Fma,
    /// Plain Rust, vectorised by the compiler; runs anywhere.
    Portable,
}

impl Isa {
    /// The best kernel family this CPU can run.
    pub fn detect() -> Isa {
        if Isa::Avx512.available() {
            Isa::Avx512
        } else if Isa::Avx2Fma.available() {
            Isa::Avx2Fma
        } else {
            Isa::Portable
        }
    }

    /// True when this CPU can run the kernel family (always true for [`Isa::Portable`]).
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Element-wise function applied after the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `0.5·x·(1 + erf(x/√2))` (erf by a rational approximation, |error| ≤ 1e-6).
    GeluErf,
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
    GeluTanh,
}

/// What is applied to each output element after the product, in this order: bias, activation,
/// residual.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// One value per output column (length ≥ `n`), added to every row.
    pub bias: Option<&'a [f32]>,
    /// Applied after the bias.
    pub activation: Activation,
    /// An `m × n` matrix with row stride `ldc` (the same as `C`), added last.
    pub residual: Option<&'a [f32]>,
}

/// A GEMM call whose arguments do not describe valid matrices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GemmError {
    /// A buffer is shorter than its shape and stride need.
    #[error("GEMM operand `{operand}` has {len} elements but needs at least {needed}")]
    TooShort {
        /// Which operand (`a`, `b`, `b_packed`, `c`, `bias`, `residual`, `out`).
        operand: &'static str,
        /// Its length.
        len: usize,
        /// The length its shape and stride need.
        needed: usize,
    },
    /// A row stride shorter than a row.
    #[error("GEMM operand `{operand}` has row stride {stride}, shorter than its rows ({row})")]
    BadStride {
        /// Which operand.
        operand: &'static str,
        /// The row stride given.
        stride: usize,
        /// The row length.
        row: usize,
    },
    /// A size whose element count overflows `usize`.
    #[error("GEMM of shape m={m} n={n} k={k} overflows the address space")]
    Overflow {
        /// Rows of `A` and `C`.
        m: usize,
        /// Columns of `B` and `C`.
        n: usize,
        /// The reduction length.
        k: usize,
    },
    /// The requested kernel family needs CPU features this machine lacks.
    #[error("GEMM kernel {isa:?} needs CPU features this machine lacks")]
    IsaUnavailable {
        /// The kernel family asked for.
        isa: Isa,
    },
}

/// Elements a `rows × cols` matrix with row stride `stride` spans (0 when empty), checking the
/// stride.
fn span(
    operand: &'static str,
    rows: usize,
    cols: usize,
    stride: usize,
) -> Result<usize, GemmError> {
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    if stride < cols {
        return Err(GemmError::BadStride {
            operand,
            stride,
            row: cols,
        });
    }
    (rows - 1)
        .checked_mul(stride)
        .and_then(|x| x.checked_add(cols))
        .ok_or(GemmError::Overflow {
            m: rows,
            n: cols,
            k: stride,
        })
}

/// Fails unless `len ≥ needed`.
fn check_len(operand: &'static str, len: usize, needed: usize) -> Result<(), GemmError> {
    if len < needed {
        return Err(GemmError::TooShort {
            operand,
            len,
            needed,
        });
    }
    Ok(())
}

/// `C = epilogue(A · B)` with `B` packed by [`pack_b`] or [`pack_b_transposed`].
///
/// `a` is `m × k` with row stride `lda`, `c` and the residual are `m × n` with row stride `ldc`.
/// Columns of `C` beyond `n` within a row stride are left untouched.
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b_packed: &[f32],
    c: &mut [f32],
    ldc: usize,
    ep: &Epilogue,
) -> Result<(), GemmError> {
    if !isa.available() {
        return Err(GemmError::IsaUnavailable { isa });
    }
    m.checked_mul(n)
        .and_then(|x| x.checked_mul(k.max(1)))
        .ok_or(GemmError::Overflow { m, n, k })?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    check_len("a", a.len(), span("a", m, k, lda)?)?;
    check_len("b_packed", b_packed.len(), packed_len(k, n))?;
    let c_span = span("c", m, n, ldc)?;
    check_len("c", c.len(), c_span)?;
    if let Some(bias) = ep.bias {
        check_len("bias", bias.len(), n)?;
    }
    if let Some(residual) = ep.residual {
        check_len("residual", residual.len(), c_span)?;
    }
    let lda = if k == 0 { 0 } else { lda };
    driver::run(isa, m, n, k, a, lda, b_packed, c, ldc, ep);
    Ok(())
}

thread_local! {
    /// Scratch for packing an unpacked `B` in [`gemm`]; taken out while in use so that a nested
    /// call (rayon may run another job on this thread while it waits) gets a fresh one.
    static B_SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `C = epilogue(A · B)` with an unpacked `B`: row-major `k × n` with row stride `ldb`, or, when
/// `b_trans`, its transpose stored row-major `n × k` with row stride `ldb`. `B` is packed into a
/// thread-local scratch buffer first, then [`gemm_packed`] runs.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    b_trans: bool,
    c: &mut [f32],
    ldc: usize,
    ep: &Epilogue,
) -> Result<(), GemmError> {
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
        pack::pack_strided_transposed(b, ldb, k, n, packed)
    } else {
        pack::pack_strided(b, ldb, k, n, packed)
    }
    .and_then(|()| gemm_packed(isa, m, n, k, a, lda, packed, c, ldc, ep));
    B_SCRATCH.with(|s| s.set(scratch));
    result
}
