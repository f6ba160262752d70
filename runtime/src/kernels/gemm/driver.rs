//! The ISA-independent GEMM driver: splits the output between threads, blocks over `m` and `k`
//! for the caches, and hands `MR × NR` tiles to the micro-kernel of the chosen instruction set.

use std::ops::Range;

use rayon::prelude::*;

use super::{Activation, Epilogue, Isa, NR, PARALLEL_THRESHOLD};

/// Bytes of `A` per cache block: the `MC × KC` block of `A` stays in L2 (1 MiB on Zen 4) while
/// every panel of the task runs over it.
const A_BLOCK_BYTES: usize = 512 * 1024;
/// Largest k-block: the `KC × NR` slice of a panel (256 KiB) stays in L2 while every row strip of
/// the `A` block runs over it. Measured on Zen 4, streaming a whole panel slice from L2 beats
/// k-blocks sized for L1 (which cost a reload of the `C` tile per block), so MiniLM's `k ≤ 1536`
/// runs unblocked.
const KC_MAX: usize = 2048;
/// Tasks per thread in a parallel product (rayon balances them between the threads).
const TASKS_PER_THREAD: usize = 4;

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

/// Rows per micro-kernel call for `isa`.
fn mr(isa: Isa) -> usize {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => super::avx512::MR,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => super::avx2::MR,
        _ => super::portable::MR,
    }
}

/// Runs one tile on `isa`'s micro-kernel.
///
/// # Safety
/// `t` satisfies the invariants of [`Tile`] for `isa`, and the CPU supports `isa`.
unsafe fn run_tile(isa: Isa, t: &Tile) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees the tile invariants and that the CPU has AVX-512F.
        Isa::Avx512 => unsafe { super::avx512::tile(t) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees the tile invariants and that the CPU has AVX2 and FMA.
        Isa::Avx2Fma => unsafe { super::avx2::tile(t) },
        // SAFETY: the caller guarantees the tile invariants.
        _ => unsafe { super::portable::tile(t) },
    }
}

/// The output pointer, shared between tasks that write disjoint blocks of it.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint rectangles of C (see `run`), so sharing the pointer is sound.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// The checked arguments of one product.
struct Problem<'a> {
    isa: Isa,
    n: usize,
    k: usize,
    a: &'a [f32],
    lda: usize,
    b: &'a [f32],
    c: OutPtr,
    ldc: usize,
    ep: &'a Epilogue<'a>,
}

/// `range` split into `parts` nearly equal pieces in units of `unit`; piece `index`.
fn split(range: usize, unit: usize, parts: usize, index: usize) -> Range<usize> {
    let units = range.div_ceil(unit);
    let lo = units * index / parts;
    let hi = units * (index + 1) / parts;
    (lo * unit).min(range)..(hi * unit).min(range)
}

/// Runs the product. The caller (`gemm_packed`) has checked every length: `a` spans `m × k` with
/// stride `lda`, `b` holds `packed_len(k, n)` elements, `c` (and the residual) span `m × n` with
/// stride `ldc`, the bias has `n` elements, `m, n ≥ 1`, and the CPU supports `isa`.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    ep: &Epilogue,
) {
    let panels = n.div_ceil(NR);
    let mr = mr(isa);
    // A few tasks per thread so that rayon can balance them when a core is busy, but none with
    // less than `PARALLEL_THRESHOLD` multiply-adds (a product below twice that runs on the
    // calling thread). Split the panels first (a task then streams only its share of the
    // weights, and tasks over other panels of the same rows cost nothing extra), then the rows
    // when there are too few panels.
    let work = m * n * k.max(1);
    let tasks = (rayon::current_num_threads() * TASKS_PER_THREAD)
        .min(work / PARALLEL_THRESHOLD)
        .max(1);
    let per_task = panels.div_ceil(tasks);
    let tn = panels.div_ceil(per_task);
    let tm = tasks.div_ceil(tn).min(m.div_ceil(mr));
    let problem = Problem {
        isa,
        n,
        k,
        a,
        lda,
        b,
        c: OutPtr(c.as_mut_ptr()),
        ldc,
        ep,
    };
    if tm * tn == 1 {
        problem.task(0..m, 0..panels);
    } else {
        (0..tm * tn).into_par_iter().for_each(|t| {
            let rows = split(m, mr, tm, t / tn);
            let cols = (t % tn) * per_task..((t % tn + 1) * per_task).min(panels);
            problem.task(rows, cols);
        });
    }
}

impl Problem<'_> {
    /// Computes rows `rows` of the panels `panels` of `C`.
    fn task(&self, rows: Range<usize>, panels: Range<usize>) {
        let (k, n, lda, ldc) = (self.k, self.n, self.lda, self.ldc);
        let mr = mr(self.isa);
        let kblocks = k.div_ceil(KC_MAX).max(1);
        let kc_step = k.div_ceil(kblocks).max(1);
        let mc_blk = (A_BLOCK_BYTES / (4 * kc_step) / mr).max(1) * mr;
        for mc0 in rows.clone().step_by(mc_blk) {
            let mc1 = (mc0 + mc_blk).min(rows.end);
            for p0 in (0..k.max(1)).step_by(kc_step) {
                let kc = kc_step.min(k - p0.min(k));
                let last = p0 + kc >= k;
                for j in panels.clone() {
                    let j0 = j * NR;
                    let cols = NR.min(n - j0);
                    for i0 in (mc0..mc1).step_by(mr) {
                        let finish = last.then(|| Finish {
                            bias: self.ep.bias.map_or(std::ptr::null(), |b| b[j0..].as_ptr()),
                            residual: self
                                .ep
                                .residual
                                .map_or(std::ptr::null(), |r| r[i0 * ldc + j0..].as_ptr()),
                            activation: self.ep.activation,
                        });
                        let tile = Tile {
                            a: self.a.as_ptr().wrapping_add(i0 * lda + p0),
                            lda,
                            b: self.b[j * k * NR + p0 * NR..].as_ptr(),
                            kc,
                            c: self.c.0.wrapping_add(i0 * ldc + j0),
                            ldc,
                            rows: mr.min(mc1 - i0),
                            cols,
                            accumulate: p0 > 0,
                            finish,
                        };
                        // SAFETY: `run`'s caller checked that A, B, C, the bias and the residual
                        // span the whole problem, so every offset of the tile is in bounds; rows
                        // ≤ MR and cols ≤ NR by construction; tasks own disjoint row × panel
                        // blocks of C; the ISA was checked to be available.
                        unsafe { run_tile(self.isa, &tile) };
                    }
                }
            }
        }
    }
}
