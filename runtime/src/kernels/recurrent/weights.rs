//! Per-direction weights in the forms the steps read, prepared once per call: `Wᵀ` and `Rᵀ`
//! packed for [`gemm_packed`](crate::kernels::gemm::gemm_packed), and the biases folded into
//! the input projection wherever they are plain additions.
//!
//! The per-step product `h·Rᵀ` covers every gate except GRU's `h` gate without
//! `linear_before_reset`, whose product `(r ⊙ h)·Rhᵀ` needs `r` first and gets its own packed
//! matrix. The projection's bias is `Wb + Rb`, except for GRU's `h` gate with
//! `linear_before_reset`, where `Rbh` sits inside `r ⊙ (h·Rhᵀ + Rbh)` and is kept apart.

use super::types::{zeros, Inputs, RecurrentError};
use crate::kernels::gemm::{pack_b_transposed, packed_len};
use crate::ops::{RecurrentSpec, RnnCell, RnnDims};

/// One direction's prepared weights.
#[derive(Debug)]
pub(super) struct DirWeights {
    /// `Wᵀ` packed, `input × gates·hidden`.
    pub w: Vec<f32>,
    /// `Rᵀ` of the per-step product, packed, `hidden × step_n`.
    pub r: Vec<f32>,
    /// GRU without `linear_before_reset`: `Rhᵀ` packed, `hidden × hidden` (else empty).
    pub rh: Vec<f32>,
    /// The input projection's bias, `gates·hidden`.
    pub bias_x: Vec<f32>,
    /// GRU with `linear_before_reset`: `Rbh`, `hidden` (else empty).
    pub bias_rh: Vec<f32>,
    /// Peepholes `i, o, f`, `3·hidden` (LSTM; zeros when absent, empty otherwise).
    pub p: Vec<f32>,
}

/// Columns of the per-step product `h·Rᵀ`: every gate, except GRU's `h` gate when it needs `r`.
pub(super) fn step_columns(spec: &RecurrentSpec, dims: &RnnDims) -> usize {
    if spec.cell == RnnCell::Gru && !spec.linear_before_reset {
        2 * dims.hidden
    } else {
        dims.gates * dims.hidden
    }
}

/// `bt` (row-major `n × k`) transposed and packed.
fn packed(bt: &[f32], k: usize, n: usize) -> Result<Vec<f32>, RecurrentError> {
    let mut out = zeros(packed_len(k, n))?;
    pack_b_transposed(bt, k, n, &mut out)?;
    Ok(out)
}

/// Direction `d`'s weights. The caller checked every length against `dims`.
pub(super) fn prepare(
    spec: &RecurrentSpec,
    dims: &RnnDims,
    inp: &Inputs,
    d: usize,
) -> Result<DirWeights, RecurrentError> {
    let (n, isz) = (dims.hidden, dims.input);
    let gh = dims.gates * n;
    let w = &inp.w[d * gh * isz..(d + 1) * gh * isz];
    let r = &inp.r[d * gh * n..(d + 1) * gh * n];
    let step_n = step_columns(spec, dims);
    let gru_split = spec.cell == RnnCell::Gru && !spec.linear_before_reset;
    let gru_lbr = spec.cell == RnnCell::Gru && spec.linear_before_reset;
    let mut bias_x = zeros(gh)?;
    let mut bias_rh = Vec::new();
    if let Some(b) = inp.b {
        let b = &b[d * 2 * gh..(d + 1) * 2 * gh];
        let (wb, rb) = b.split_at(gh);
        for (j, o) in bias_x.iter_mut().enumerate() {
            let recurrent = if gru_lbr && j >= 2 * n { 0.0 } else { rb[j] };
            *o = wb[j] + recurrent;
        }
        if gru_lbr {
            bias_rh = rb[2 * n..].to_vec();
        }
    } else if gru_lbr {
        bias_rh = zeros(n)?;
    }
    let p = match (spec.cell, inp.p) {
        (RnnCell::Lstm, Some(p)) => p[d * 3 * n..(d + 1) * 3 * n].to_vec(),
        (RnnCell::Lstm, None) => zeros(3 * n)?,
        _ => Vec::new(),
    };
    Ok(DirWeights {
        w: packed(w, isz, gh)?,
        r: packed(&r[..step_n * n], n, step_n)?,
        rh: if gru_split {
            packed(&r[2 * n * n..], n, n)?
        } else {
            Vec::new()
        },
        bias_x,
        bias_rh,
        p,
    })
}
