//! The GEMM's shared types, a leaf of the folder: the panel width, the kernel families, the
//! epilogue, the operands of a product, the errors and the length checks, and the tile that the
//! driver hands to the micro-kernels.

use crate::kernels::numerics::{gelu_erf, gelu_tanh};

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

impl Activation {
    /// Applies the activation to one value (the scalar versions of the vector kernels').
    #[inline]
    pub(crate) fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::GeluErf => gelu_erf(x),
            Activation::GeluTanh => gelu_tanh(x),
        }
    }
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
    /// A block-quantized weight whose rows are not a whole number of blocks.
    #[error("a block-quantized weight needs k = {k} to be a multiple of the block size {block}")]
    PartialBlock {
        /// The reduction length.
        k: usize,
        /// Elements per block.
        block: usize,
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
pub(crate) fn span(
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
pub(crate) fn check_len(operand: &'static str, len: usize, needed: usize) -> Result<(), GemmError> {
    if len < needed {
        return Err(GemmError::TooShort {
            operand,
            len,
            needed,
        });
    }
    Ok(())
}

/// The sizes of a product `C (m × n) = A (m × k) · B (k × n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Rows of `A` and `C`.
    pub m: usize,
    /// Columns of `B` and `C`.
    pub n: usize,
    /// The reduction length: columns of `A`, rows of `B`.
    pub k: usize,
}

/// A row-major matrix operand: its elements and its row stride (elements between rows).
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    /// The elements, row `r` starting at `r·stride`.
    pub data: &'a [f32],
    /// Elements between the starts of two rows.
    pub stride: usize,
}

/// The row-major output matrix: its elements and its row stride.
#[derive(Debug)]
pub struct MatrixMut<'a> {
    /// The elements, row `r` starting at `r·stride`.
    pub data: &'a mut [f32],
    /// Elements between the starts of two rows.
    pub stride: usize,
}

/// One micro-kernel invocation: `C[rows × cols] (+)= A[rows × kc] · B[kc × NR]`, then the
/// epilogue when `finish` is set.
///
/// Invariants the driver guarantees and the kernels rely on: `1 ≤ rows ≤` the kernel's `MR`,
/// `1 ≤ cols ≤ NR`; `a + r·lda + p` is readable for `r < rows, p < kc`; `b + p·NR + x` is
/// readable for `p < kc, x < NR`; `c + r·ldc + x` is readable and writable, and `bias + x` and
/// `residual + r·ldc + x` (when not null) are readable, for `r < rows, x < cols`; `c` does not
/// overlap `a`, `b`, `bias` or `residual`, and no other thread touches this tile of `C`.
#[derive(Debug)]
pub(super) struct Tile {
    pub a: *const f32,
    pub lda: usize,
    pub b: *const f32,
    pub kc: usize,
    pub c: *mut f32,
    pub ldc: usize,
    pub rows: usize,
    pub cols: usize,
    /// Add to the current contents of `C` (a later k-block) instead of overwriting them.
    pub accumulate: bool,
    /// The last k-block: apply the epilogue before storing.
    pub finish: Option<Finish>,
}

/// The epilogue of one tile, its pointers already offset to the tile.
#[derive(Debug, Clone, Copy)]
pub(super) struct Finish {
    /// Bias at the tile's first column, or null.
    pub bias: *const f32,
    /// Residual at the tile's first element (row stride `ldc`), or null.
    pub residual: *const f32,
    pub activation: Activation,
}

/// The checks every product shares: the ISA is available, `m·n·k` fits a `usize`, and unless
/// the product is empty (`m` or `n` is 0, the `Ok(false)` case: nothing to compute), `A`, `C`,
/// the bias and the residual hold what their shapes and strides need.
pub(crate) fn check_operands(
    isa: Isa,
    shape: Shape,
    a: &Matrix<'_>,
    c: &MatrixMut<'_>,
    ep: &Epilogue,
) -> Result<bool, GemmError> {
    let Shape { m, n, k } = shape;
    if !isa.available() {
        return Err(GemmError::IsaUnavailable { isa });
    }
    m.checked_mul(n)
        .and_then(|x| x.checked_mul(k.max(1)))
        .ok_or(GemmError::Overflow { m, n, k })?;
    if m == 0 || n == 0 {
        return Ok(false);
    }
    check_len("a", a.data.len(), span("a", m, k, a.stride)?)?;
    let c_span = span("c", m, n, c.stride)?;
    check_len("c", c.data.len(), c_span)?;
    if let Some(bias) = ep.bias {
        check_len("bias", bias.len(), n)?;
    }
    if let Some(residual) = ep.residual {
        check_len("residual", residual.len(), c_span)?;
    }
    Ok(true)
}
