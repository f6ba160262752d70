//! Per-direction weights in the forms the steps read: `Wᵀ` and `Rᵀ` packed for
//! [`gemm_packed`](crate::kernels::gemm::gemm_packed) (at compile time by [`pack_weights`] when
//! they are initializers, else once per call), and the biases folded into the input
//! projection wherever they are plain additions.
//!
//! The per-step product `h·Rᵀ` covers every gate except GRU's `h` gate without
//! `linear_before_reset`, whose product `(r ⊙ h)·Rhᵀ` needs `r` first and gets its own packed
//! matrix. The projection's bias is `Wb + Rb`, except for GRU's `h` gate with
//! `linear_before_reset`, where `Rbh` sits inside `r ⊙ (h·Rhᵀ + Rbh)` and is kept apart.
//!
//! Packed layout, direction after direction: `Wᵀ` (`input × gates·hidden`), `Rᵀ` of the
//! per-step product (`hidden × step columns`), then for GRU without `linear_before_reset`
//! `Rhᵀ` (`hidden × hidden`), each as [`pack_b_transposed`] writes it.

use super::types::{check_len, zeros, Inputs, RecurrentError, Weights};
use crate::kernels::gemm::{pack_b_transposed, packed_len};
use crate::ops::{RecurrentSpec, RnnCell, RnnDims};
use std::borrow::Cow;

/// One direction's prepared weights.
#[derive(Debug)]
pub(super) struct DirWeights<'a> {
    /// `Wᵀ` packed, `input × gates·hidden`.
    pub w: Cow<'a, [f32]>,
    /// `Rᵀ` of the per-step product, packed, `hidden × step_n`.
    pub r: Cow<'a, [f32]>,
    /// GRU without `linear_before_reset`: `Rhᵀ` packed, `hidden × hidden` (else empty).
    pub rh: Cow<'a, [f32]>,
    /// The input projection's bias, `gates·hidden`.
    pub bias_x: Vec<f32>,
    /// GRU with `linear_before_reset`: `Rbh`, `hidden` (else empty).
    pub bias_rh: Vec<f32>,
    /// Peepholes `i, o, f`, `3·hidden` (LSTM; zeros when absent, empty otherwise).
    pub p: Vec<f32>,
}

/// Columns of the per-step product `h·Rᵀ`: every gate, except GRU's `h` gate when it needs `r`.
pub(super) fn step_columns(spec: &RecurrentSpec, hidden: usize) -> usize {
    if gru_split(spec) {
        2 * hidden
    } else {
        spec.gates() * hidden
    }
}

/// GRU without `linear_before_reset`: `Rh` is a product of its own.
fn gru_split(spec: &RecurrentSpec) -> bool {
    spec.cell == RnnCell::Gru && !spec.linear_before_reset
}

/// The lengths of one direction's packed `Wᵀ`, `Rᵀ`, `Rhᵀ` (saturating; checked by callers).
fn part_lens(spec: &RecurrentSpec, input: usize) -> [usize; 3] {
    let n = spec.hidden_size as usize;
    let gh = spec.gates().saturating_mul(n);
    let rh = if gru_split(spec) { packed_len(n, n) } else { 0 };
    [
        packed_len(input, gh),
        packed_len(n, step_columns(spec, n)),
        rh,
    ]
}

/// Values of the packed weights of a layer with `input` features (`None` on overflow).
pub fn packed_weights_len(spec: &RecurrentSpec, input: usize) -> Option<usize> {
    let per = part_lens(spec, input).iter().try_fold(0usize, |a, &l| {
        (l != usize::MAX).then(|| a.checked_add(l))?
    })?;
    per.checked_mul(spec.directions())
}

/// Packs `w: [dirs, gates·hidden, input]` and `r: [dirs, gates·hidden, hidden]`.
pub fn pack_weights(
    spec: &RecurrentSpec,
    input: usize,
    w: &[f32],
    r: &[f32],
) -> Result<Vec<f32>, RecurrentError> {
    spec.check().map_err(RecurrentError::Spec)?;
    let too_big = || RecurrentError::Spec(format!("packed weights for input {input} overflow"));
    let total = packed_weights_len(spec, input).ok_or_else(too_big)?;
    let (n, dirs) = (spec.hidden_size as usize, spec.directions());
    let gh = spec.gates() * n;
    let w_len = gh.checked_mul(input).ok_or_else(too_big)?;
    check_len("w", w.len(), &[dirs, w_len])?;
    check_len("r", r.len(), &[dirs, gh, n])?;
    let mut out = zeros(total)?;
    let [lw, lr, lh] = part_lens(spec, input);
    for (d, chunk) in out.chunks_exact_mut(lw + lr + lh).enumerate() {
        let (pw, rest) = chunk.split_at_mut(lw);
        let (pr, ph) = rest.split_at_mut(lr);
        let (wd, rd) = (
            &w[d * w_len..(d + 1) * w_len],
            &r[d * gh * n..(d + 1) * gh * n],
        );
        pack_direction(spec, input, (wd, rd), [pw, pr, ph])?;
    }
    Ok(out)
}

/// Packs one direction's `w` and `r` into `out` (the three parts, sized by `part_lens`).
fn pack_direction(
    spec: &RecurrentSpec,
    input: usize,
    (w, r): (&[f32], &[f32]),
    [pw, pr, ph]: [&mut [f32]; 3],
) -> Result<(), RecurrentError> {
    let n = spec.hidden_size as usize;
    let step_n = step_columns(spec, n);
    pack_b_transposed(w, input, spec.gates() * n, pw)?;
    pack_b_transposed(&r[..step_n * n], n, step_n, pr)?;
    if !ph.is_empty() {
        pack_b_transposed(&r[2 * n * n..], n, n, ph)?;
    }
    Ok(())
}

/// Direction `d`'s weights. The caller checked every length against `dims`.
pub(super) fn prepare<'a>(
    spec: &RecurrentSpec,
    dims: &RnnDims,
    inp: &Inputs<'a>,
    d: usize,
) -> Result<DirWeights<'a>, RecurrentError> {
    let n = dims.hidden;
    let gh = dims.gates * n;
    let gru_lbr = spec.cell == RnnCell::Gru && spec.linear_before_reset;
    let (w, r, rh) = match inp.weights {
        Weights::Packed(all) => {
            let [lw, lr, lh] = part_lens(spec, dims.input);
            let per = lw + lr + lh;
            let own = &all[d * per..(d + 1) * per];
            let (w, rest) = own.split_at(lw);
            let (r, rh) = rest.split_at(lr);
            (Cow::Borrowed(w), Cow::Borrowed(r), Cow::Borrowed(rh))
        }
        Weights::Raw { w, r } => {
            let [lw, lr, lh] = part_lens(spec, dims.input);
            let (mut pw, mut pr, mut ph) = (zeros(lw)?, zeros(lr)?, zeros(lh)?);
            let wd = &w[d * gh * dims.input..(d + 1) * gh * dims.input];
            let rd = &r[d * gh * n..(d + 1) * gh * n];
            pack_direction(spec, dims.input, (wd, rd), [&mut pw, &mut pr, &mut ph])?;
            (Cow::Owned(pw), Cow::Owned(pr), Cow::Owned(ph))
        }
    };
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
        w,
        r,
        rh,
        bias_x,
        bias_rh,
        p,
    })
}
