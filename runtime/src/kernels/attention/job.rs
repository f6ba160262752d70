//! One validated attention call prepared for the kernels: the included-key lists per batch and
//! the output pointer shared by the tasks.

use super::simd::LANES;
use super::types::{Dims, Inputs, Params};
use super::views::{BiasView, Rotary, View, ViewMut};
use crate::kernels::send_ptr::SendPtr;

/// The output base pointer and strides, shared by all tasks (which write disjoint rows: each
/// (batch, head, row) belongs to exactly one task, and validation rejected overlapping rows).
#[derive(Debug, Clone, Copy)]
pub(super) struct OutPtr {
    /// Element `[0, 0, 0, 0]`.
    pub ptr: SendPtr,
    /// Elements between batches.
    pub stride_b: usize,
    /// Elements between heads.
    pub stride_h: usize,
    /// Elements between rows.
    pub stride_s: usize,
}

/// Everything a task reads. Only built by `tasks::run` after validation, which is what the kernels'
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
    keys: &'a [u32],
    /// `(start, len)` of each batch's list in `keys`.
    key_ranges: &'a [(usize, usize)],
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

/// The included keys of every batch into `keys` and `ranges` (cleared first): one shared
/// `0..Sk` list without a mask.
pub(super) fn key_lists(
    batch: usize,
    sk: usize,
    mask: Option<&[u8]>,
    keys: &mut Vec<u32>,
    ranges: &mut Vec<(usize, usize)>,
) {
    keys.clear();
    ranges.clear();
    match mask {
        None => {
            keys.extend(0..sk as u32);
            ranges.resize(batch, (0, sk));
        }
        Some(mask) => {
            for row in mask.chunks_exact(sk.max(1)).take(batch) {
                let start = keys.len();
                keys.extend((0..sk as u32).filter(|&j| row[j as usize] != 0));
                ranges.push((start, keys.len() - start));
            }
            ranges.resize(batch, (0, 0));
        }
    }
}

impl<'a> Job<'a> {
    /// The job of a validated call whose keys (in `inputs`) are already rotated when rotary is
    /// on, with the key lists of [`key_lists`].
    pub(super) fn new(
        dims: &Dims,
        p: &Params,
        inputs: Inputs<'a>,
        out: ViewMut<'_>,
        (keys, key_ranges): (&'a [u32], &'a [(usize, usize)]),
    ) -> Job<'a> {
        Job {
            dims: *dims,
            scale: p.scale,
            causal: p.causal,
            q: inputs.q,
            k: inputs.k,
            v: inputs.v,
            bias: inputs.bias,
            rotary: inputs.rotary,
            bq: if dims.sq <= LANES { LANES } else { 2 * LANES },
            out: OutPtr {
                ptr: SendPtr(out.data.as_mut_ptr()),
                stride_b: out.stride_b,
                stride_h: out.stride_h,
                stride_s: out.stride_s,
            },
            keys,
            key_ranges,
        }
    }
}
