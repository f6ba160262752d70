//! Register-tiled inner loops of the attention kernel, generic over the vector ISA:
//! transposed scores `sᵀ[c][rows] = scale·Σ_d qᵀ[d][rows]·k_c[d] (+ bias_c)` for a block of keys,
//! and `acc[row][e] += p[c][row]·v_c[e]` for a block of probabilities.
//!
//! Everything here is `#[inline(always)]` so that it is compiled inside the caller's
//! `#[target_feature]` function.

use super::simd::{Simd, LANES};

/// Where a score step reads and writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct ScoreArgs<'a> {
    /// Transposed query block, `qt[x·bq + row]`.
    pub qt: *const f32,
    /// Row stride of `qt` and `st`.
    pub bq: usize,
    /// Head dim of q and k.
    pub d: usize,
    /// Key row of each key of the block.
    pub krow: &'a [*const f32],
    /// Transposed scores `st[c·bq + row]`.
    pub st: *mut f32,
    /// Factor applied to `q·kᵀ`.
    pub scale: f32,
    /// A bias per key of the block (the same for every row), as long as `krow`.
    pub bias: Option<&'a [f32]>,
}

/// Scores of the `NC` keys from key `c` against `RV·16` query rows: one register tile.
///
/// # Safety
/// `a.qt` holds `d × bq` readable floats (`bq ≥ RV·16`); each `a.krow[c + i]`, `i < NC`, has `d`
/// readable floats; `a.st + (c + i)·bq .. + RV·16` is writable for `i < NC`.
#[inline(always)]
unsafe fn score_tile<S: Simd, const RV: usize, const NC: usize>(s: S, a: &ScoreArgs<'_>, c: usize) {
    let (qt, bq, d) = (a.qt, a.bq, a.d);
    let st = a.st.wrapping_add(c * bq);
    let bias = a.bias.map(|b| &b[c..]);
    let krow: [*const f32; NC] = std::array::from_fn(|i| a.krow[c + i]);
    let mut acc = [[s.splat(0.0); RV]; NC];
    for x in 0..d {
        // SAFETY: `x < d` and `rv·16 + 16 ≤ bq`, inside the `d × bq` of `qt`.
        let qv: [S::V; RV] =
            std::array::from_fn(|rv| unsafe { s.load(qt.add(x * bq + rv * LANES)) });
        for c in 0..NC {
            // SAFETY: `krow[c]` has `d > x` readable floats.
            let kb = s.splat(unsafe { *krow[c].add(x) });
            for (a, &q) in acc[c].iter_mut().zip(&qv) {
                *a = s.fma(q, kb, *a);
            }
        }
    }
    let sc = s.splat(a.scale);
    for (c, acc_c) in acc.iter().enumerate() {
        let add = s.splat(bias.map_or(0.0, |b| b[c]));
        for (rv, &a) in acc_c.iter().enumerate() {
            // SAFETY: `st + c·bq + rv·16 .. + 16` is writable (contract).
            unsafe { s.store(st.add(c * bq + rv * LANES), s.fma(a, sc, add)) };
        }
    }
}

/// Runs `NC`-key tiles from key `c` while `NC` keys remain; returns the first key not done.
///
/// # Safety
/// As [`scores`].
#[inline(always)]
unsafe fn score_tiles<S: Simd, const RV: usize, const NC: usize>(
    s: S,
    a: &ScoreArgs<'_>,
    mut c: usize,
) -> usize {
    while c + NC <= a.krow.len() {
        // SAFETY: keys `c .. c + NC` exist, and their rows of `st` lie in the `krow.len() × bq`
        // block the caller provides.
        unsafe { score_tile::<S, RV, NC>(s, a, c) };
        c += NC;
    }
    c
}

/// Transposed scaled scores of the keys `a.krow` against the query block in `a.qt`, written to
/// `st[c·bq + row]`, plus `bias[c]` when given (a bias that is the same for every row).
///
/// # Safety
/// `a.qt` holds `d × bq` readable floats (`bq = RV·16`); every `a.krow[c]` has `d` readable
/// floats; `a.st` has `krow.len() × bq` writable floats; `a.bias`, if any, is as long as `krow`.
#[inline(always)]
pub(super) unsafe fn scores<S: Simd, const RV: usize>(s: S, a: &ScoreArgs<'_>) {
    // SAFETY: forwarded contract; each call covers whole tiles inside `krow`.
    unsafe {
        let mut c = 0;
        if S::WIDE {
            c = score_tiles::<S, RV, 8>(s, a, c);
            c = score_tiles::<S, RV, 4>(s, a, c);
        } else if RV == 1 {
            c = score_tiles::<S, RV, 4>(s, a, c);
        } else {
            c = score_tiles::<S, RV, 2>(s, a, c);
        }
        score_tiles::<S, RV, 1>(s, a, c);
    }
}

/// Where a `P·V` step reads and writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct PvArgs<'a> {
    /// Probabilities `p[c][row]` at `st + c·bq + row`.
    pub st: *const f32,
    /// Row stride of `st`.
    pub bq: usize,
    /// Value row of each key of the block.
    pub vrow: &'a [*const f32],
    /// Accumulators, row `r` at `acc + r·dvp`.
    pub acc: *mut f32,
    /// Row stride of `acc` (a multiple of 16 ≥ Dv).
    pub dvp: usize,
}

/// `acc[r0 + r][e_off ..] += Σ_{c ∈ cs} p[c][r0 + r] · v_c[e_off ..]` for `R` rows and `E`
/// vectors of the value dim; with `TAIL` the last vector is loaded under `tail`.
///
/// # Safety
/// `a.st` is readable for keys in `cs` and rows `r0 .. r0 + R`; `a.acc` rows `r0 .. r0 + R` are
/// readable and writable for `e_off .. e_off + 16·E`; each `a.vrow[c]`, `c ∈ cs`, is readable for
/// `e_off .. e_off + 16·E` (the last vector only in the lanes of `tail` when `TAIL`).
#[inline(always)]
unsafe fn pv_tile<S: Simd, const R: usize, const E: usize, const TAIL: bool>(
    s: S,
    a: &PvArgs<'_>,
    r0: usize,
    cs: std::ops::Range<usize>,
    e_off: usize,
    tail: S::M,
) {
    let accp = |r: usize, e: usize| a.acc.wrapping_add((r0 + r) * a.dvp + e_off + e * LANES);
    // SAFETY: accumulator rows `r0 .. r0 + R` are readable for these vectors (contract).
    let mut acc: [[S::V; E]; R] =
        std::array::from_fn(|r| std::array::from_fn(|e| unsafe { s.load(accp(r, e)) }));
    for c in cs {
        let vp = a.vrow[c].wrapping_add(e_off);
        let vv: [S::V; E] = std::array::from_fn(|e| {
            // SAFETY: value row `c` is readable for these vectors, the last one within `tail`.
            unsafe {
                if TAIL && e + 1 == E {
                    s.load_masked(vp.add(e * LANES), tail)
                } else {
                    s.load(vp.add(e * LANES))
                }
            }
        });
        let pp = a.st.wrapping_add(c * a.bq + r0);
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: `p[c][r0 + r]` is readable (contract).
            let p = s.splat(unsafe { *pp.add(r) });
            for e in 0..E {
                acc_r[e] = s.fma(p, vv[e], acc_r[e]);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (e, &v) in acc_r.iter().enumerate() {
            // SAFETY: accumulator rows are writable (contract).
            unsafe { s.store(accp(r, e), v) };
        }
    }
}

/// `P·V` for rows `0 .. counts.len()` where row `r` takes keys `0 .. counts[r]`, for the `E`
/// value vectors at `e_off`: groups of `R` rows share the keys all of them take, the rest is done
/// row by row.
///
/// # Safety
/// As [`pv_tile`] for every row and its keys.
#[inline(always)]
unsafe fn pv_rows<S: Simd, const R: usize, const E: usize, const TAIL: bool>(
    s: S,
    a: &PvArgs<'_>,
    counts: &[usize],
    e_off: usize,
    tail: S::M,
) {
    let mut r = 0;
    // SAFETY: every tile covers rows below `counts.len()` and keys below their counts.
    unsafe {
        while r + R <= counts.len() {
            let common = counts[r..r + R].iter().copied().min().unwrap_or(0);
            pv_tile::<S, R, E, TAIL>(s, a, r, 0..common, e_off, tail);
            for (rr, &n) in counts.iter().enumerate().skip(r).take(R) {
                if n > common {
                    pv_tile::<S, 1, E, TAIL>(s, a, rr, common..n, e_off, tail);
                }
            }
            r += R;
        }
        for (rr, &n) in counts.iter().enumerate().skip(r) {
            pv_tile::<S, 1, E, TAIL>(s, a, rr, 0..n, e_off, tail);
        }
    }
}

/// `P·V` over a `E`-vector slice of the value dim, choosing the row tile for the ISA.
///
/// # Safety
/// As [`pv`].
#[inline(always)]
unsafe fn pv_slice<S: Simd, const E: usize, const TAIL: bool>(
    s: S,
    a: &PvArgs<'_>,
    counts: &[usize],
    e_off: usize,
    tail: S::M,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match (S::WIDE, E) {
            (true, 4) => pv_rows::<S, 4, E, TAIL>(s, a, counts, e_off, tail),
            (true, _) => pv_rows::<S, 8, E, TAIL>(s, a, counts, e_off, tail),
            (false, 1) => pv_rows::<S, 4, E, TAIL>(s, a, counts, e_off, tail),
            (false, _) => pv_rows::<S, 2, E, TAIL>(s, a, counts, e_off, tail),
        }
    }
}

/// `acc[r][..dv] += Σ_{c < counts[r]} p[c][r] · v_c[..dv]` for every row `r < counts.len()`.
///
/// # Safety
/// `a.st` is readable for rows below `counts.len()` and keys below their counts; `a.acc` rows are
/// readable and writable for `dvp` floats; every `a.vrow[c]` used has `dv` readable floats.
#[inline(always)]
pub(super) unsafe fn pv<S: Simd>(s: S, a: &PvArgs<'_>, counts: &[usize], dv: usize) {
    let nvec = dv.div_ceil(LANES);
    let rem = dv % LANES;
    let tail = s.first(if rem == 0 { LANES } else { rem });
    let mut e = 0;
    while e < nvec {
        let left = nvec - e;
        let step = if S::WIDE && left >= 4 {
            4
        } else if left >= 2 {
            2
        } else {
            1
        };
        let off = e * LANES;
        // SAFETY: the `step` vectors at `off` lie inside `dvp`, and inside `dv` except for a tail
        // vector, which is loaded under the mask of the `rem` valid lanes.
        unsafe {
            match (step, rem != 0 && step == left) {
                (4, true) => pv_slice::<S, 4, true>(s, a, counts, off, tail),
                (4, false) => pv_slice::<S, 4, false>(s, a, counts, off, tail),
                (2, true) => pv_slice::<S, 2, true>(s, a, counts, off, tail),
                (2, false) => pv_slice::<S, 2, false>(s, a, counts, off, tail),
                (_, true) => pv_slice::<S, 1, true>(s, a, counts, off, tail),
                (_, false) => pv_slice::<S, 1, false>(s, a, counts, off, tail),
            }
        }
        e += step;
    }
}
