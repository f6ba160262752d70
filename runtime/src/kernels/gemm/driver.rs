//! The ISA-independent GEMM driver: splits the output between threads, blocks over `m` and `k`
//! for the caches, and hands `MR × NR` tiles to the micro-kernel of the chosen instruction set.

use std::ops::Range;

use rayon::prelude::*;

use super::types::{Epilogue, Finish, Isa, Matrix, MatrixMut, Shape, Tile, NR, PARALLEL_THRESHOLD};
use crate::kernels::send_ptr::SendPtr;

/// Bytes of `A` per cache block for the AVX-512 kernel: the `MC × KC` block of `A` stays in L2
/// (1 MiB on Zen 4) while every panel of the task runs over it.
const A_BLOCK_BYTES_AVX512: usize = 512 * 1024;

/// Bytes of `A` per cache block for `isa`. The AVX2 and portable kernels get a quarter of this
/// machine's L2 (64 KiB to 512 KiB), so that the block, the panel streaming past it and the C
/// tiles share it: on a Zen 3 core (512 KiB of L2) a 512 KiB block ran a 300×576×1536 product
/// about 20% slower on one thread than a 128 KiB one (`cargo bench --bench blocks`, median of
/// three interleaved runs each).
fn a_block_bytes(isa: Isa) -> usize {
    static AVX2: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    match isa {
        Isa::Avx512 => A_BLOCK_BYTES_AVX512,
        _ => *AVX2
            .get_or_init(|| (l2_bytes().unwrap_or(512 * 1024) / 4).clamp(64 * 1024, 512 * 1024)),
    }
}

/// This core's L2 size from sysfs (`cpu0/cache/index2/size`, `512K`), if Linux tells it.
fn l2_bytes() -> Option<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index2/size").ok()?;
    let text = text.trim();
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: usize = digits.parse().ok()?;
    n.checked_mul(match unit {
        "K" => 1024,
        "M" => 1024 * 1024,
        _ => return None,
    })
}
/// Largest k-block: the `KC × NR` slice of a panel (256 KiB) stays in L2 while every row strip of
/// the `A` block runs over it. Measured on Zen 4, streaming a whole panel slice from L2 beats
/// k-blocks sized for L1 (which cost a reload of the `C` tile per block), so MiniLM's `k ≤ 1536`
/// runs unblocked.
const KC_MAX: usize = 2048;
/// Tasks per thread in a parallel product (rayon balances them between the threads).
const TASKS_PER_THREAD: usize = 4;

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

/// The checked arguments of one product.
struct Problem<'a> {
    isa: Isa,
    n: usize,
    k: usize,
    a: &'a [f32],
    lda: usize,
    b: &'a [f32],
    c: SendPtr,
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
/// stride `ldc`, the bias has `n` elements, `m, n ≥ 1`, and the CPU supports `isa`. Without
/// `parallel` it runs on the calling thread.
pub(super) fn run(
    isa: Isa,
    shape: Shape,
    a: Matrix<'_>,
    b: &[f32],
    c: MatrixMut<'_>,
    ep: &Epilogue,
    parallel: bool,
) {
    let Shape { m, n, k } = shape;
    let (a, lda, ldc) = (a.data, a.stride, c.stride);
    let panels = n.div_ceil(NR);
    let mr = mr(isa);
    // A few tasks per thread so that rayon can balance them when a core is busy, but none with
    // less than `PARALLEL_THRESHOLD` multiply-adds (a product below twice that runs on the
    // calling thread). Split the panels first (a task then streams only its share of the
    // weights, and tasks over other panels of the same rows cost nothing extra), then the rows
    // when there are too few panels.
    let work = m * n * k.max(1);
    let tasks = if parallel {
        (rayon::current_num_threads() * TASKS_PER_THREAD)
            .min(work / PARALLEL_THRESHOLD)
            .max(1)
    } else {
        1
    };
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
        c: SendPtr(c.data.as_mut_ptr()),
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
        let mc_blk = (a_block_bytes(self.isa) / (4 * kc_step) / mr).max(1) * mr;
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
                            c: self.c.wrapping_add(i0 * ldc + j0),
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

/// One column panel of a product whose `B` is not pre-packed (a block-quantized weight
/// dequantized panel by panel): `C[rows, j0 .. j0 + cols] = epilogue(A[rows, ..] · panel)`, on
/// the calling thread, blocked over `m` and `k` as [`run`] does.
///
/// # Safety
/// The CPU supports `isa`; `a` spans `rows.end × k` with stride `lda`; `panel` holds at least
/// `k·NR` elements (k-major, `NR` per k step); `1 ≤ cols ≤ NR`; `c` points to a buffer in which
/// `c + r·ldc + j0 + x` is readable and writable for `r in rows, x < cols`, and so are the
/// residual (readable, same offsets) and the bias (`j0 + x`) when present; no other thread
/// touches those elements of `C` during the call, and `C` overlaps no input.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn panel_rows(
    isa: Isa,
    a: Matrix<'_>,
    k: usize,
    panel: &[f32],
    c: SendPtr,
    ldc: usize,
    (j0, cols): (usize, usize),
    rows: Range<usize>,
    ep: &Epilogue,
) {
    let mr = mr(isa);
    let lda = if k == 0 { 0 } else { a.stride };
    let kblocks = k.div_ceil(KC_MAX).max(1);
    let kc_step = k.div_ceil(kblocks).max(1);
    let mc_blk = (a_block_bytes(isa) / (4 * kc_step) / mr).max(1) * mr;
    for mc0 in rows.clone().step_by(mc_blk) {
        let mc1 = (mc0 + mc_blk).min(rows.end);
        for p0 in (0..k.max(1)).step_by(kc_step) {
            let kc = kc_step.min(k - p0.min(k));
            let last = p0 + kc >= k;
            for i0 in (mc0..mc1).step_by(mr) {
                let finish = last.then(|| Finish {
                    bias: ep.bias.map_or(std::ptr::null(), |b| b[j0..].as_ptr()),
                    residual: ep
                        .residual
                        .map_or(std::ptr::null(), |r| r.as_ptr().wrapping_add(i0 * ldc + j0)),
                    activation: ep.activation,
                });
                let tile = Tile {
                    a: a.data.as_ptr().wrapping_add(i0 * lda + p0),
                    lda,
                    b: panel[p0 * NR..].as_ptr(),
                    kc,
                    c: c.wrapping_add(i0 * ldc + j0),
                    ldc,
                    rows: mr.min(mc1 - i0),
                    cols,
                    accumulate: p0 > 0,
                    finish,
                };
                // SAFETY: the caller's contract covers every offset of the tile (rows within
                // `rows`, columns within `j0 .. j0 + cols`, k within the panel); rows ≤ MR by
                // construction; the ISA is available.
                unsafe { run_tile(isa, &tile) };
            }
        }
    }
}
