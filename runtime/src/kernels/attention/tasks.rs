//! The run of a validated attention call: keys rotated once when rotary is on, then the rayon
//! loop over (batch, head, query block) that hands each task to the kernel of the chosen
//! instruction set.

use super::job::{key_lists, Job};
use super::kernel::{self, Scratch};
use super::rotary;
use super::simd::Portable;
use super::types::{Dims, Inputs, Params};
use super::views::{View, ViewMut};
use crate::kernels::gemm::Isa;
use crate::kernels::scratch::Reusable;
use rayon::prelude::*;
use std::cell::RefCell;

/// Calls with fewer multiply-adds than this run on the calling thread.
const SERIAL_WORK: usize = 1 << 16;

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
pub(super) fn run(isa: Isa, dims: &Dims, p: &Params, inputs: Inputs<'_>, out: ViewMut<'_>) {
    if dims.batch == 0 || dims.heads == 0 || dims.sq == 0 || dims.dv == 0 {
        return;
    }
    let rotated_k;
    let k = match &inputs.rotary {
        Some(r) => {
            rotated_k = rotary::rotate_keys(dims, &inputs.k, r);
            View::contiguous(&rotated_k, dims.kv_heads, dims.sk, dims.d)
        }
        None => inputs.k,
    };
    let mask = inputs.key_mask;
    // Keys the key operand can hold (a cache's capacity, read off its head stride): the key
    // lists are sized for them at once instead of growing with every decode step.
    let room = dims.sk.max(inputs.k.stride_h / dims.d.max(1));
    KEYS.with(|keys| {
        RANGES.with(|ranges| {
            keys.reserve(dims.batch.saturating_mul(room).saturating_sub(keys.len()));
            key_lists(dims.batch, dims.sk, mask, keys, ranges);
            let job = Job::new(dims, p, Inputs { k, ..inputs }, out, (keys, ranges));
            run_job(isa, dims, &job);
        })
    });
}

thread_local! {
    static KEYS_TLS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static RANGES_TLS: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
    static SCRATCH_TLS: RefCell<Vec<Scratch>> = const { RefCell::new(Vec::new()) };
}
/// The key lists of a call, reused from call to call.
static KEYS: Reusable<u32> = Reusable::new(&KEYS_TLS);
/// The per-batch ranges of the key lists.
static RANGES: Reusable<(usize, usize)> = Reusable::new(&RANGES_TLS);
/// Each thread's kernel scratch (one entry once used), reused from task to task.
static SCRATCH: Reusable<Scratch> = Reusable::new(&SCRATCH_TLS);

/// Sizes this thread's attention buffers for calls with head dims `d`, `dv` over at most
/// `batch × keys` keys, so that such calls never grow them (see `Session::reserve`).
pub(crate) fn warm_thread(batch: usize, keys: usize, d: usize, dv: usize) {
    KEYS.with(|k| k.reserve(batch.saturating_mul(keys).saturating_sub(k.len())));
    RANGES.with(|r| r.reserve(batch.saturating_sub(r.len())));
    SCRATCH.with(|s| {
        if s.is_empty() {
            s.push(Scratch::new(d, dv));
        }
        s[0].fit(d, dv);
    });
}

/// Runs task `t` with this thread's scratch, made or grown for the job's head dims.
fn run_with_scratch(backend: Backend, job: &Job<'_>, t: usize) {
    SCRATCH.with(|s| {
        if s.is_empty() {
            s.push(Scratch::new(job.dims.d, job.dims.dv));
        }
        s[0].fit(job.dims.d, job.dims.dv);
        backend.run(job, t, &mut s[0]);
    });
}

fn run_job(isa: Isa, dims: &Dims, job: &Job<'_>) {
    let backend = Backend::new(isa);
    // Below ~64k multiply-adds, handing tasks to other threads costs more than it saves.
    let work = (dims.sq * dims.sk).saturating_mul(dims.batch * dims.heads * (dims.d + dims.dv));
    if job.tasks() == 1 || work < SERIAL_WORK {
        for t in 0..job.tasks() {
            run_with_scratch(backend, job, t);
        }
    } else {
        (0..job.tasks())
            .into_par_iter()
            .for_each(|t| run_with_scratch(backend, job, t));
    }
}
