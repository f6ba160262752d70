//! The per-step product `C = A·B` for tasks of one or two rows (batch 1 or 2), on the GEMM's
//! packed `B`. The GEMM micro-kernel holds two accumulators per row (one 32-column panel), so
//! with a single row every k step waits for the previous FMA; here the accumulators of a row
//! span `P` panels at once, giving 8–16 independent FMA chains that the loads of `B` (from L2)
//! keep busy: AVX-512 `P = 4` (8 or 16 zmm accumulators), AVX2 `P = 2` for one row and 1 for
//! two (8 ymm). A trailing group of fewer panels runs one panel at a time. Other instruction
//! sets use the GEMM.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::types::CheckedIsa;
use crate::kernels::gemm::{Isa, NR};

/// The largest row count this path takes.
pub(super) const MAX_ROWS: usize = 2;

/// The operands of one product, lengths checked by [`product`].
#[derive(Clone, Copy)]
struct Args {
    k: usize,
    n: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
}

/// Copies the first `cols` of `acc` (a 32-column panel row) to `dst`.
///
/// # Safety
/// `dst` is valid for `cols ≤ NR` writes.
#[inline(always)]
unsafe fn store(acc: &[f32; NR], dst: *mut f32, cols: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { std::ptr::copy_nonoverlapping(acc.as_ptr(), dst, cols.min(NR)) };
}

/// Panels `p0..p0 + P`, rows `0..M`, with AVX-512.
///
/// # Safety
/// The CPU has AVX-512F; `x` spans `M` rows of A (`k` each), the packed B's panels
/// `p0..p0 + P` (`k·NR` each) and `M` rows of C (`n` each, columns of the panels < n).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn group512<const M: usize, const P: usize>(x: Args, p0: usize) {
    let mut acc = [[[_mm512_setzero_ps(); 2]; P]; M];
    // SAFETY: (whole body) every read is `a[r·k + kk]` with r < M, kk < k, or within panels
    // p0..p0 + P of B at `kk·NR + 0..32`; every write is within row r < M of C, columns
    // `(p0 + q)·NR + 0..cols` with cols clipped to n (the caller's contract).
    unsafe {
        for kk in 0..x.k {
            let mut bv = [[_mm512_setzero_ps(); 2]; P];
            for (q, v) in bv.iter_mut().enumerate() {
                let p = x.b.add((p0 + q) * x.k * NR + kk * NR);
                *v = [_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))];
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*x.a.add(r * x.k + kk));
                for (acc_q, v) in acc_r.iter_mut().zip(&bv) {
                    acc_q[0] = _mm512_fmadd_ps(av, v[0], acc_q[0]);
                    acc_q[1] = _mm512_fmadd_ps(av, v[1], acc_q[1]);
                }
            }
        }
        let mut out = [0f32; NR];
        for (r, acc_r) in acc.iter().enumerate() {
            for (q, acc_q) in acc_r.iter().enumerate() {
                _mm512_storeu_ps(out.as_mut_ptr(), acc_q[0]);
                _mm512_storeu_ps(out.as_mut_ptr().add(16), acc_q[1]);
                let j0 = (p0 + q) * NR;
                store(&out, x.c.add(r * x.n + j0), x.n - j0);
            }
        }
    }
}

/// Panels `p0..p0 + P`, rows `0..M`, with AVX2 + FMA.
///
/// # Safety
/// As [`group512`], with AVX2 and FMA instead of AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group256<const M: usize, const P: usize>(x: Args, p0: usize) {
    let mut acc = [[[_mm256_setzero_ps(); 4]; P]; M];
    // SAFETY: as in `group512`.
    unsafe {
        for kk in 0..x.k {
            let mut bv = [[_mm256_setzero_ps(); 4]; P];
            for (q, v) in bv.iter_mut().enumerate() {
                let p = x.b.add((p0 + q) * x.k * NR + kk * NR);
                *v = std::array::from_fn(|i| _mm256_loadu_ps(p.add(8 * i)));
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*x.a.add(r * x.k + kk));
                for (acc_q, v) in acc_r.iter_mut().zip(&bv) {
                    for (s, &b) in acc_q.iter_mut().zip(v) {
                        *s = _mm256_fmadd_ps(av, b, *s);
                    }
                }
            }
        }
        let mut out = [0f32; NR];
        for (r, acc_r) in acc.iter().enumerate() {
            for (q, acc_q) in acc_r.iter().enumerate() {
                for (i, &s) in acc_q.iter().enumerate() {
                    _mm256_storeu_ps(out.as_mut_ptr().add(8 * i), s);
                }
                let j0 = (p0 + q) * NR;
                store(&out, x.c.add(r * x.n + j0), x.n - j0);
            }
        }
    }
}

/// `c (m × n, row stride n) = a (m × k, row stride k) · B`, `B` packed (`packed_len(k, n)`
/// values), for `1 ≤ m ≤ MAX_ROWS` on AVX-512 or AVX2. Returns false (computing nothing) for
/// other shapes, instruction sets or short buffers, so that the caller uses the GEMM instead.
pub(super) fn product(
    isa: CheckedIsa,
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) -> bool {
    let panels = n.div_ceil(NR);
    let fits = (1..=MAX_ROWS).contains(&m)
        && k > 0
        && a.len() >= m * k
        && c.len() >= m * n
        && panels.checked_mul(NR * k).is_some_and(|len| b.len() >= len);
    if !fits {
        return false;
    }
    let x = Args {
        k,
        n,
        a: a.as_ptr(),
        b: b.as_ptr(),
        c: c.as_mut_ptr(),
    };
    #[cfg(target_arch = "x86_64")]
    macro_rules! run {
        ($group:ident, $m:literal, $p:literal) => {{
            let full = panels / $p * $p;
            for p0 in (0..full).step_by($p) {
                // SAFETY: the CPU runs the instruction set (a `CheckedIsa`), and the lengths
                // checked above cover m rows of A and C and every panel of B.
                unsafe { $group::<$m, $p>(x, p0) };
            }
            for p0 in full..panels {
                // SAFETY: as above.
                unsafe { $group::<$m, 1>(x, p0) };
            }
        }};
    }
    match (isa.isa(), m) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 1) => run!(group512, 1, 4),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, _) => run!(group512, 2, 4),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2Fma, 1) => run!(group256, 1, 2),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2Fma, _) => run!(group256, 2, 1),
        _ => return false,
    }
    true
}
