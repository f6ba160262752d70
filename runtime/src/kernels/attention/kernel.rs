//! One attention task — a block of up to 32 query rows of one (batch, head) — generic over the
//! vector ISA: transpose the queries, then for each block of [`BK`] included keys compute the
//! transposed scores, fold them into the running (online) softmax, and accumulate `P·V`; finally
//! divide by the softmax sums and write the output rows.

use super::job::Job;
use super::micro::{self, PvArgs, ScoreArgs};
use super::rotary::fill_qt;
use super::simd::{Simd, LANES};

/// Keys per online-softmax step.
pub(super) const BK: usize = 64;
/// The largest query block (two vectors of rows).
pub(super) const BQ_MAX: usize = 2 * LANES;

/// Per-thread scratch: `O(D·32 + 64·32 + 32·Dv)` floats.
#[derive(Debug)]
pub(super) struct Scratch {
    /// Transposed query block, `d × bq`.
    qt: Vec<f32>,
    /// Scores, then probabilities, of one key block, `BK × bq`.
    st: Vec<f32>,
    /// Output accumulators, `bq × dvp`.
    acc: Vec<f32>,
    /// Accumulator row stride: `Dv` rounded up to whole vectors.
    dvp: usize,
}

impl Scratch {
    /// Scratch for head dims `d` and `dv`.
    pub(super) fn new(d: usize, dv: usize) -> Self {
        let dvp = dv.div_ceil(LANES) * LANES;
        Scratch {
            qt: vec![0.0; d * BQ_MAX],
            st: vec![0.0; BK * BQ_MAX],
            acc: vec![0.0; BQ_MAX * dvp],
            dvp,
        }
    }

    /// Makes the buffers fit head dims `d` and `dv` (growing, never shrinking them).
    pub(super) fn fit(&mut self, d: usize, dv: usize) {
        let dvp = dv.div_ceil(LANES) * LANES;
        let grow = |v: &mut Vec<f32>, n: usize| {
            if v.len() < n {
                v.resize(n, 0.0);
            }
        };
        grow(&mut self.qt, d * BQ_MAX);
        grow(&mut self.st, BK * BQ_MAX);
        grow(&mut self.acc, BQ_MAX * dvp);
        self.dvp = dvp;
    }
}

/// Runs task `task` of `job` (see [`Job::tasks`]).
///
/// # Safety
/// `job` was built by `job::run` from a call accepted by `validate::check_all`, `scratch` was made
/// for the job's head dims, and no other task with the same index runs concurrently.
#[inline(always)]
pub(super) unsafe fn run_task<S: Simd>(s: S, job: &Job<'_>, task: usize, scratch: &mut Scratch) {
    // SAFETY: forwarded contract.
    unsafe {
        if job.bq == LANES {
            run_block::<S, 1>(s, job, task, scratch);
        } else {
            run_block::<S, 2>(s, job, task, scratch);
        }
    }
}

/// The running state of the online softmax of a query block (rows across lanes).
struct Online<V, const RV: usize> {
    /// The running maximum of each row.
    m: [V; RV],
    /// The running sum of each row.
    l: [V; RV],
    /// The factor by which the last step scaled the earlier accumulators, per row.
    alpha: [f32; BQ_MAX],
}

/// One online-softmax step over the `nc` keys from `c0` of the block in `st` (rows across lanes):
/// excluded entries (key position `≥ limits` of the row) weigh 0, the running maximum `o.m` and
/// sum `o.l` are updated, `st` is overwritten with the probabilities and the factor by which the
/// earlier accumulators must be scaled is written to `o.alpha`.
///
/// # Safety
/// `st` has `nc × RV·16` readable and writable floats (row stride `RV·16`).
#[inline(always)]
unsafe fn softmax_step<S: Simd, const RV: usize>(
    s: S,
    st: *mut f32,
    nc: usize,
    c0: usize,
    limits: &[S::V; RV],
    o: &mut Online<S::V, RV>,
) {
    let Online { m, l, alpha } = o;
    let bq = RV * LANES;
    let (ninf, zero, one) = (s.splat(f32::NEG_INFINITY), s.splat(0.0), s.splat(1.0));
    for rv in 0..RV {
        let at = |c: usize| st.wrapping_add(c * bq + rv * LANES);
        let mut block_max = ninf;
        let mut pos = s.splat(c0 as f32);
        for c in 0..nc {
            // SAFETY: `c < nc`, inside the block (contract).
            let x = unsafe { s.load(at(c)) };
            block_max = s.max(block_max, s.select(s.lt(pos, limits[rv]), x, ninf));
            pos = s.add(pos, one);
        }
        let new_max = s.max(m[rv], block_max);
        // A row whose included scores are all -∞ so far subtracts 0 instead (no ∞ − ∞).
        let shift = s.select(s.eq(new_max, ninf), zero, new_max);
        let a = s.exp(s.sub(m[rv], shift));
        let mut sum = zero;
        let mut pos = s.splat(c0 as f32);
        for c in 0..nc {
            // SAFETY: as above.
            let x = unsafe { s.load(at(c)) };
            let p = s.select(s.lt(pos, limits[rv]), s.exp(s.sub(x, shift)), zero);
            // SAFETY: as above.
            unsafe { s.store(at(c), p) };
            sum = s.add(sum, p);
            pos = s.add(pos, one);
        }
        l[rv] = s.fma(l[rv], a, sum);
        m[rv] = new_max;
        // SAFETY: `rv·16 + 16 ≤ BQ_MAX`.
        unsafe { s.store(alpha.as_mut_ptr().add(rv * LANES), a) };
    }
}

/// [`run_task`] for query blocks of `RV·16` rows.
///
/// # Safety
/// As [`run_task`].
#[inline(always)]
unsafe fn run_block<S: Simd, const RV: usize>(
    s: S,
    job: &Job<'_>,
    task: usize,
    scratch: &mut Scratch,
) {
    let bq = RV * LANES;
    let dims = job.dims;
    let (d, dv, dvp) = (dims.d, dims.dv, scratch.dvp);
    let blocks = dims.sq.div_ceil(bq);
    let (bh, i0) = (task / blocks, (task % blocks) * bq);
    let (b, h) = (bh / dims.heads, bh % dims.heads);
    let kvh = h / (dims.heads / dims.kv_heads);
    let rows = bq.min(dims.sq - i0);
    let keys = job.keys(b);

    // Included keys per row (a prefix of `keys`), as counts and as lane limits.
    let mut counts = [0usize; BQ_MAX];
    let mut limits_f = [0f32; BQ_MAX];
    for r in 0..rows {
        counts[r] = job.included(keys, i0 + r);
        limits_f[r] = counts[r] as f32;
    }
    let c_end = counts[..rows].iter().copied().max().unwrap_or(0);
    // SAFETY: `rv·16 + 16 ≤ BQ_MAX` floats of `limits_f`.
    let limits: [S::V; RV] =
        std::array::from_fn(|rv| unsafe { s.load(limits_f.as_ptr().add(rv * LANES)) });

    fill_qt(job, b, h, i0, rows, bq, &mut scratch.qt);
    scratch.acc[..rows * dvp].fill(0.0);
    let kbase = b * job.k.stride_b + kvh * job.k.stride_h;
    let vbase = b * job.v.stride_b + kvh * job.v.stride_h;
    let bias_base = job.bias.map(|bv| (bv, b * bv.stride_b + h * bv.stride_h));
    let mut krow = [std::ptr::null::<f32>(); BK];
    let mut vrow = [std::ptr::null::<f32>(); BK];
    let mut bias_c = [0f32; BK];
    let mut online = Online {
        m: [s.splat(f32::NEG_INFINITY); RV],
        l: [s.splat(0.0); RV],
        alpha: [0f32; BQ_MAX],
    };
    let mut block_counts = [0usize; BQ_MAX];

    let mut c0 = 0;
    while c0 < c_end {
        let nc = BK.min(c_end - c0);
        let block = &keys[c0..c0 + nc];
        for (c, &j) in block.iter().enumerate() {
            let j = j as usize;
            krow[c] = job.k.data.as_ptr().wrapping_add(kbase + j * job.k.stride_s);
            vrow[c] = job.v.data.as_ptr().wrapping_add(vbase + j * job.v.stride_s);
        }
        // A bias constant along the query axis is added per key inside the score tiles.
        let row_bias = match bias_base {
            Some((bv, base)) if bv.stride_q == 0 => {
                for (c, &j) in block.iter().enumerate() {
                    bias_c[c] = bv.data[base + j as usize * bv.stride_k];
                }
                Some(&bias_c[..nc])
            }
            _ => None,
        };
        let args = ScoreArgs {
            qt: scratch.qt.as_ptr(),
            bq,
            d,
            krow: &krow[..nc],
            st: scratch.st.as_mut_ptr(),
            scale: job.scale,
            bias: row_bias,
        };
        // SAFETY: validation put `d` floats of every included key row of `k` inside its slice;
        // `qt` holds `d × bq` floats, `st` holds `BK × bq ≥ nc × bq`.
        unsafe { micro::scores::<S, RV>(s, &args) };
        if let Some((bv, base)) = bias_base.filter(|(bv, _)| bv.stride_q != 0) {
            for r in 0..rows {
                let row = base + (i0 + r) * bv.stride_q;
                for (c, &j) in block.iter().enumerate() {
                    scratch.st[c * bq + r] += bv.data[row + j as usize * bv.stride_k];
                }
            }
        }
        let st = scratch.st.as_mut_ptr();
        // SAFETY: `st` holds `nc × bq` floats.
        unsafe { softmax_step::<S, RV>(s, st, nc, c0, &limits, &mut online) };
        if c0 > 0 {
            for (r, &a) in online.alpha.iter().enumerate().take(rows) {
                if a != 1.0 {
                    scratch.acc[r * dvp..r * dvp + dv]
                        .iter_mut()
                        .for_each(|x| *x *= a);
                }
            }
        }
        for r in 0..rows {
            block_counts[r] = counts[r].saturating_sub(c0).min(nc);
        }
        let args = PvArgs {
            st,
            bq,
            vrow: &vrow[..nc],
            acc: scratch.acc.as_mut_ptr(),
            dvp,
        };
        // SAFETY: rows below `rows` of `st` and `acc` are in the scratch; validation put `dv`
        // floats of every included value row inside `v`.
        unsafe { micro::pv::<S>(s, &args, &block_counts[..rows], dv) };
        c0 += nc;
    }

    let mut sums = [0f32; BQ_MAX];
    for (rv, lv) in online.l.iter().enumerate() {
        // SAFETY: `rv·16 + 16 ≤ BQ_MAX`.
        unsafe { s.store(sums.as_mut_ptr().add(rv * LANES), *lv) };
    }
    let out = job.out;
    let tail = s.first(dv % LANES);
    for r in 0..rows {
        // A row with no included key is zeros; one whose included scores were all -∞ is 0/0.
        let inv = s.splat(if counts[r] == 0 { 0.0 } else { 1.0 / sums[r] });
        let dst = out
            .ptr
            .wrapping_add(b * out.stride_b + h * out.stride_h + (i0 + r) * out.stride_s);
        let src = scratch.acc[r * dvp..].as_ptr();
        let mut e = 0;
        // SAFETY: validation put the `dv` floats of every output row inside `out`, and this task
        // is the only writer of rows `i0 .. i0 + rows` of (b, h); `acc` rows hold `dvp ≥ dv`.
        unsafe {
            while e + LANES <= dv {
                s.store(dst.add(e), s.mul(s.load(src.add(e)), inv));
                e += LANES;
            }
            if e < dv {
                s.store_masked(dst.add(e), s.mul(s.load(src.add(e)), inv), tail);
            }
        }
    }
}
