//! One validated attention call prepared for the kernels: the included-key lists per batch, the
//! rotated keys when rotary is on, the output pointer shared by the tasks, and the rayon loop over
//! (batch, head, query block) that hands each task to the kernel of the chosen instruction set.

use super::kernel::{self, Scratch};
use super::simd::{Portable, LANES};
use super::{rotary, BiasView, Dims, Isa, Params, Rotary, View, ViewMut};
use rayon::prelude::*;

/// Calls with fewer multiply-adds than this run on the calling thread.
const SERIAL_WORK: usize = 1 << 16;

/// The output base pointer and strides, shared by all tasks.
#[derive(Debug, Clone, Copy)]
pub(super) struct OutPtr {
    /// Element `[0, 0, 0, 0]`.
    pub ptr: *mut f32,
    /// Elements between batches.
    pub stride_b: usize,
    /// Elements between heads.
    pub stride_h: usize,
    /// Elements between rows.
    pub stride_s: usize,
}

// SAFETY: `OutPtr` is only dereferenced by tasks writing disjoint output rows (each
// (batch, head, row) belongs to exactly one task, and validation rejected overlapping rows), and
// the `&mut` it came from outlives the parallel loop.
unsafe impl Send for OutPtr {}
// SAFETY: as for `Send`: concurrent tasks never touch the same element.
unsafe impl Sync for OutPtr {}

/// Everything a task reads. Only built by [`run`] after validation, which is what the kernels'
/// unchecked accesses rely on.
#[derive(Debug)]
pub(super) struct Job<'a> {
    /// Sizes.
    pub dims: Dims,
    /// Score scale.
    pub scale: f32,
    /// Causal exclusion.
    pub causal: bool,
    /// Queries (rotated in the kernel when `rotary` is set).
    pub q: View<'a>,
    /// Keys, already rotated when `rotary` is set.
    pub k: View<'a>,
    /// Values.
    pub v: View<'a>,
    /// Additive bias.
    pub bias: Option<BiasView<'a>>,
    /// Rotary tables, applied to queries while they are transposed.
    pub rotary: Option<Rotary<'a>>,
    /// Query rows per task: 16 or 32.
    pub bq: usize,
    /// The output.
    pub out: OutPtr,
    /// Included key indices, ascending, for every batch (one shared list without a mask).
    keys: Vec<u32>,
    /// `(start, len)` of each batch's list in `keys`.
    key_ranges: Vec<(usize, usize)>,
}

impl Job<'_> {
    /// The included keys of batch `b`, ascending.
    pub(super) fn keys(&self, b: usize) -> &[u32] {
        let (start, len) = self.key_ranges[b];
        &self.keys[start..start + len]
    }

    /// How many of `keys` query row `i` attends to: with `causal`, those with index
    /// `j ≤ i + Sk − Sq`; they are a prefix of the list.
    pub(super) fn included(&self, keys: &[u32], i: usize) -> usize {
        if !self.causal {
            return keys.len();
        }
        let limit = i + self.dims.sk;
        if limit < self.dims.sq {
            return 0;
        }
        let limit = limit - self.dims.sq;
        keys.partition_point(|&j| j as usize <= limit)
    }

    /// Tasks: batch × heads × query blocks.
    pub(super) fn tasks(&self) -> usize {
        self.dims.batch * self.dims.heads * self.dims.sq.div_ceil(self.bq)
    }
}

/// The included keys of every batch: one shared `0..Sk` list without a mask.
fn key_lists(batch: usize, sk: usize, mask: Option<&[u8]>) -> (Vec<u32>, Vec<(usize, usize)>) {
    match mask {
        None => ((0..sk as u32).collect(), vec![(0, sk); batch]),
        Some(mask) => {
            let mut keys = Vec::new();
            let mut ranges = Vec::with_capacity(batch);
            for row in mask.chunks_exact(sk.max(1)).take(batch) {
                let start = keys.len();
                keys.extend((0..sk as u32).filter(|&j| row[j as usize] != 0));
                ranges.push((start, keys.len() - start));
            }
            ranges.resize(batch, (0, 0));
            (keys, ranges)
        }
    }
}

/// The kernel family of a run, holding its CPU-feature token.
#[derive(Debug, Clone, Copy)]
enum Backend {
    #[cfg(target_arch = "x86_64")]
    Avx512(super::avx512::Avx512),
    #[cfg(target_arch = "x86_64")]
    Avx2(super::avx2::Avx2),
    Portable,
}

impl Backend {
    /// The backend for `isa`; falls back to portable if the feature check disagrees.
    fn new(isa: Isa) -> Backend {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => super::avx512::Avx512::new().map_or(Backend::Portable, Backend::Avx512),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => super::avx2::Avx2::new().map_or(Backend::Portable, Backend::Avx2),
            _ => Backend::Portable,
        }
    }

    /// Runs task `t` of a validated job.
    fn run(self, job: &Job<'_>, t: usize, scratch: &mut Scratch) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `job` was built by `run` after `validate::check_all` accepted the call, and
            // the token proves the CPU features.
            Backend::Avx512(s) => unsafe { super::avx512::run_task(s, job, t, scratch) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Backend::Avx2(s) => unsafe { super::avx2::run_task(s, job, t, scratch) },
            // SAFETY: as above (the portable kernel needs no CPU feature).
            Backend::Portable => unsafe { kernel::run_task(Portable, job, t, scratch) },
        }
    }
}

/// Runs a call that `validate::check_all` accepted.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    isa: Isa,
    dims: &Dims,
    p: &Params,
    q: View<'_>,
    k: View<'_>,
    v: View<'_>,
    bias: Option<BiasView<'_>>,
    key_mask: Option<&[u8]>,
    rotary: Option<Rotary<'_>>,
    out: ViewMut<'_>,
) {
    if dims.batch == 0 || dims.heads == 0 || dims.sq == 0 || dims.dv == 0 {
        return;
    }
    let rotated_k;
    let k = match &rotary {
        Some(r) => {
            rotated_k = rotary::rotate_keys(dims, &k, r);
            View::contiguous(&rotated_k, dims.kv_heads, dims.sk, dims.d)
        }
        None => k,
    };
    let (keys, key_ranges) = key_lists(dims.batch, dims.sk, key_mask);
    let job = Job {
        dims: *dims,
        scale: p.scale,
        causal: p.causal,
        q,
        k,
        v,
        bias,
        rotary,
        bq: if dims.sq <= LANES { LANES } else { 2 * LANES },
        out: OutPtr {
            ptr: out.data.as_mut_ptr(),
            stride_b: out.stride_b,
            stride_h: out.stride_h,
            stride_s: out.stride_s,
        },
        keys,
        key_ranges,
    };
    let backend = Backend::new(isa);
    let new_scratch = || Scratch::new(dims.d, dims.dv);
    // Below ~64k multiply-adds, handing tasks to other threads costs more than it saves.
    let work = (dims.sq * dims.sk).saturating_mul(dims.batch * dims.heads * (dims.d + dims.dv));
    if job.tasks() == 1 || work < SERIAL_WORK {
        let mut scratch = new_scratch();
        for t in 0..job.tasks() {
            backend.run(&job, t, &mut scratch);
        }
    } else {
        (0..job.tasks())
            .into_par_iter()
            .for_each_init(new_scratch, |scratch, t| backend.run(&job, t, scratch));
    }
}
