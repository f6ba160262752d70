//! Products over block-quantized weights kept quantized (ggml's `Q4_0`, `Q4_1`, `Q8_0` from a
//! GGUF file): `C = epilogue(A · Wᵀ)` with `W` stored `n × k` as `n` rows of `k / 32` blocks, the
//! arithmetic in f32 on exactly the values the scalar dequantization gives.
//!
//! A decode step (`m ≤` [`DOT_ROWS`]) reads each weight row once and takes its dot product with
//! every row of `A`, dequantizing in registers: the weights cross memory at 4.5 to 8.5 bits per
//! element instead of 32, which is what bounds decoding. Longer products (a prefill) dequantize
//! one column panel of `W` at a time into a per-thread buffer in the packed GEMM layout and run
//! the f32 GEMM micro-kernels over it, so they keep the GEMM's speed for the cost of one
//! dequantization per panel.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod format;
#[cfg(test)]
mod tests;

pub use format::{BlockFormat, BLOCK};

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use super::gemm::{
    check_len, check_operands, panel_rows, Epilogue, GemmError, Isa, Matrix, MatrixMut, Shape, NR,
    PARALLEL_THRESHOLD,
};
use super::scratch::Reusable;
use super::send_ptr::SendPtr;

/// Products with at most this many rows take dot products against the quantized rows; longer
/// ones dequantize panels for the GEMM micro-kernels.
pub const DOT_ROWS: usize = 4;

/// Tasks per thread in a parallel product.
const TASKS_PER_THREAD: usize = 4;

thread_local! {
    static PANEL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}
/// Per-thread panel (`k·NR`) and row (`k`) buffers of the panel path.
static PANEL_SCRATCH: Reusable<f32> = Reusable::new(&PANEL);

/// Bytes of a `n × k` weight in `format`, `None` unless `k` is a whole number of blocks or on
/// overflow.
pub fn blocks_len(format: BlockFormat, k: usize, n: usize) -> Option<usize> {
    format.row_bytes(k)?.checked_mul(n)
}

/// `C = epilogue(A · Wᵀ)`: `a` is `m × k`, `w` holds `n` rows of `k` elements in `format`
/// (`k` a multiple of [`BLOCK`]), `c` and the residual are `m × n` with `c`'s row stride. The
/// current rayon pool's threads share the work.
pub fn gemm_blocks(
    isa: Isa,
    shape: Shape,
    a: Matrix<'_>,
    w: &[u8],
    format: BlockFormat,
    c: MatrixMut<'_>,
    ep: &Epilogue,
) -> Result<(), GemmError> {
    let Shape { m, n, k } = shape;
    let row_bytes = format
        .row_bytes(k)
        .ok_or(GemmError::PartialBlock { k, block: BLOCK })?;
    if !check_operands(isa, shape, &a, &c, ep)? {
        return Ok(());
    }
    let w_len = row_bytes
        .checked_mul(n)
        .ok_or(GemmError::Overflow { m, n, k })?;
    check_len("w", w.len(), w_len)?;
    let p = Product {
        simd: simd(isa),
        isa,
        shape,
        a: Matrix {
            data: a.data,
            stride: if k == 0 { 0 } else { a.stride },
        },
        w,
        row_bytes,
        format,
        c: SendPtr(c.data.as_mut_ptr()),
        ldc: c.stride,
        ep,
    };
    let tasks = (rayon::current_num_threads() * TASKS_PER_THREAD)
        .min(m * n * k.max(1) / PARALLEL_THRESHOLD)
        .max(1);
    if m <= DOT_ROWS {
        let per = n.div_ceil(tasks);
        let run = |t: usize| p.dots(t * per..((t + 1) * per).min(n));
        if tasks == 1 {
            run(0);
        } else {
            (0..n.div_ceil(per)).into_par_iter().for_each(run);
        }
    } else {
        let panels = n.div_ceil(NR);
        let per = panels.div_ceil(tasks);
        let tn = panels.div_ceil(per);
        let tm = tasks.div_ceil(tn).min(m.div_ceil(ROW_UNIT));
        let run = |t: usize| {
            let rows = split(m, tm, t / tn);
            let first = (t % tn) * per;
            p.panels(first..(first + per).min(panels), rows);
        };
        if tm * tn == 1 {
            run(0);
        } else {
            (0..tm * tn).into_par_iter().for_each(run);
        }
    }
    Ok(())
}

/// Rows are split between tasks in multiples of this (a multiple of every micro-kernel's `MR`).
const ROW_UNIT: usize = 12;

/// `0..m` split into `parts` pieces in units of [`ROW_UNIT`]; piece `index`.
fn split(m: usize, parts: usize, index: usize) -> Range<usize> {
    let units = m.div_ceil(ROW_UNIT);
    let lo = units * index / parts;
    let hi = units * (index + 1) / parts;
    (lo * ROW_UNIT).min(m)..(hi * ROW_UNIT).min(m)
}

/// Whether the AVX2 paths may run for `isa` (every AVX-512 CPU has AVX2, FMA and F16C, but
/// check).
fn simd(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa != Isa::Portable
            && Isa::Avx2Fma.available()
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        false
    }
}

/// The checked arguments of one product.
struct Product<'a> {
    simd: bool,
    isa: Isa,
    shape: Shape,
    a: Matrix<'a>,
    w: &'a [u8],
    row_bytes: usize,
    format: BlockFormat,
    c: SendPtr,
    ldc: usize,
    ep: &'a Epilogue<'a>,
}

impl Product<'_> {
    /// Columns `cols` of every row of `C` by dot products (the weight row stays in L1 while
    /// the rows of `A` pass over it).
    fn dots(&self, cols: Range<usize>) {
        let Shape { m, k, .. } = self.shape;
        let mut tmp = [0f32; BLOCK];
        for j in cols {
            let row = &self.w[j * self.row_bytes..(j + 1) * self.row_bytes];
            for r in 0..m {
                let a = &self.a.data[r * self.a.stride..r * self.a.stride + k];
                let v = if self.simd {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: AVX2/FMA/F16C checked by `simd`; `a` holds `k` elements and
                    // `row` `k / BLOCK` blocks (both slices are bounds-checked above).
                    unsafe {
                        avx2::dot(self.format, a.as_ptr(), row.as_ptr(), k / BLOCK)
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    unreachable!("no SIMD path off x86-64")
                } else {
                    let mut s = 0f32;
                    for (blk, a) in row
                        .chunks_exact(self.format.block_bytes())
                        .zip(a.chunks_exact(BLOCK))
                    {
                        self.format.dequantize_block(blk, &mut tmp);
                        s += tmp.iter().zip(a).map(|(w, a)| w * a).sum::<f32>();
                    }
                    s
                };
                self.store(r, j, v);
            }
        }
    }

    /// `C[r][j] = epilogue(v)`.
    fn store(&self, r: usize, j: usize, mut v: f32) {
        if let Some(b) = self.ep.bias {
            v += b[j];
        }
        v = self.ep.activation.apply(v);
        let at = r * self.ldc + j;
        if let Some(res) = self.ep.residual {
            v += res[at];
        }
        // SAFETY: `at` lies in C (checked: C spans m × n with stride ldc); the calling task
        // owns column `j` of every row, no other task writes it, and C overlaps no input.
        unsafe { *self.c.wrapping_add(at) = v };
    }

    /// Panels `panels` of rows `rows` of `C`: each panel dequantized, then the GEMM tiles.
    fn panels(&self, panels: Range<usize>, rows: Range<usize>) {
        let Shape { n, k, .. } = self.shape;
        PANEL_SCRATCH.with(|buf| {
            let need = k * NR + k;
            if buf.len() < need {
                buf.resize(need, 0.0);
            }
            let (panel, row) = buf.split_at_mut(k * NR);
            for j in panels {
                let j0 = j * NR;
                let cols = NR.min(n - j0);
                self.fill_panel(j0, cols, panel, row);
                // SAFETY: `gemm_blocks` checked that A spans m × k, C and the residual m × n
                // with stride ldc and the bias n; the panel holds k·NR elements; this task owns
                // rows `rows` of panel `j` (columns j0 .. j0 + cols ≤ n); the ISA is available.
                unsafe {
                    panel_rows(
                        self.isa,
                        self.a,
                        k,
                        panel,
                        self.c,
                        self.ldc,
                        (j0, cols),
                        rows.clone(),
                        self.ep,
                    );
                }
            }
        });
    }

    /// `panel` (k·NR) = rows `j0 .. j0 + cols` of `W` as columns of a packed GEMM panel,
    /// zero beyond `cols`; `row` (k elements) is scratch for the portable path.
    fn fill_panel(&self, j0: usize, cols: usize, panel: &mut [f32], row: &mut [f32]) {
        let k = self.shape.k;
        if self.simd {
            for c0 in (0..NR).step_by(8) {
                let rows = cols.saturating_sub(c0).min(8);
                let first = j0 + c0.min(cols);
                let src = &self.w[first * self.row_bytes..(first + rows) * self.row_bytes];
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX2/FMA/F16C checked by `simd`; `src` holds `rows` whole rows of
                // `k / BLOCK` blocks (bounds-checked slice); the panel holds k·NR elements, so
                // `c0 + p·NR + x` is in it for `p < k`, `x < 8` (c0 + 8 ≤ NR).
                unsafe {
                    avx2::panel_columns(
                        self.format,
                        src.as_ptr(),
                        self.row_bytes,
                        rows,
                        k / BLOCK,
                        panel[c0..].as_mut_ptr(),
                        NR,
                    )
                };
            }
            return;
        }
        for c in 0..cols {
            let src = &self.w[(j0 + c) * self.row_bytes..(j0 + c + 1) * self.row_bytes];
            self.format.dequantize(src, &mut row[..k]);
            for (p, &x) in row[..k].iter().enumerate() {
                panel[p * NR + c] = x;
            }
        }
        for c in cols..NR {
            for p in 0..k {
                panel[p * NR + c] = 0.0;
            }
        }
    }
}
