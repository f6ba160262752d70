//! The run of a validated attention call: keys rotated once when rotary is on, then the rayon
//! loop over (batch, head, query block) that hands each task to the kernel of the chosen
//! instruction set.

use super::job::Job;
use super::kernel::{self, Scratch};
use super::rotary;
use super::simd::Portable;
use super::types::{Dims, Inputs, Params};
use super::views::{View, ViewMut};
use crate::kernels::gemm::Isa;
use rayon::prelude::*;

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
    let job = Job::new(dims, p, Inputs { k, ..inputs }, out);
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
