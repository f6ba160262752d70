//! One step's gate equations over the rows of a task (one row per batch entry), after the
//! per-step product has left `h·Rᵀ` in `gates`: the projection row `x·Wᵀ + bias` is added,
//! then each gate is clipped and activated as a whole slice, so every loop is a plain
//! elementwise loop over `hidden` values. Each function is compiled three times, for AVX-512,
//! AVX2 + FMA and the baseline, by the `per_isa!` wrappers, and the loops vectorise for each.
//! Inactive rows (past their sequence's length) are left untouched.

use super::math::{apply, apply_unclipped};
use super::types::CheckedIsa;
use crate::kernels::gemm::Isa;
use crate::ops::ActivationFn;

/// What every cell reads besides its own state.
#[derive(Debug)]
pub(super) struct Rows<'a> {
    /// Hidden units.
    pub n: usize,
    /// The per-step product, one row of `stride` values per batch entry of the task.
    pub gates: &'a mut [f32],
    /// Elements per row of `gates`.
    pub stride: usize,
    /// The projections; row `i` starts at `xw_at[i]` (active rows only).
    pub xw: &'a [f32],
    /// Where each row's projection starts.
    pub xw_at: &'a [usize],
    /// Which rows take this step.
    pub active: &'a [bool],
    /// The direction's activations.
    pub acts: &'a [ActivationFn],
    /// Clip bound (infinite: none).
    pub clip: f32,
}

// Elementwise helpers: zipped slices (no bounds checks) as separate parameters (no aliasing),
// inlined into each instruction set's copy, so each loop vectorises.

/// `dst += a`.
#[inline(always)]
fn add(dst: &mut [f32], a: &[f32]) {
    dst.iter_mut().zip(a).for_each(|(d, &a)| *d += a);
}

/// `dst += x + p ⊙ c` (a gate with its peephole).
#[inline(always)]
fn peephole(dst: &mut [f32], x: &[f32], p: &[f32], c: &[f32]) {
    for (d, ((&x, &p), &c)) in dst.iter_mut().zip(x.iter().zip(p).zip(c)) {
        *d += x + p * c;
    }
}

/// `dst = 1 − a`.
#[inline(always)]
fn one_minus(dst: &mut [f32], a: &[f32]) {
    dst.iter_mut().zip(a).for_each(|(d, &a)| *d = 1.0 - a);
}

/// `c = f ⊙ c + i ⊙ g`.
#[inline(always)]
fn cell_state(c: &mut [f32], f: &[f32], i: &[f32], g: &[f32]) {
    for (c, ((&f, &i), &g)) in c.iter_mut().zip(f.iter().zip(i).zip(g)) {
        *c = f * *c + i * g;
    }
}

/// `dst = a ⊙ b`.
#[inline(always)]
fn product(dst: &mut [f32], a: &[f32], b: &[f32]) {
    for (d, (&a, &b)) in dst.iter_mut().zip(a.iter().zip(b)) {
        *d = a * b;
    }
}

/// `dst += r ⊙ (hr + b)` (GRU's `h` gate with `linear_before_reset`).
#[inline(always)]
fn reset_linear(dst: &mut [f32], r: &[f32], hr: &[f32], b: &[f32]) {
    for (d, ((&r, &hr), &b)) in dst.iter_mut().zip(r.iter().zip(hr).zip(b)) {
        *d += r * (hr + b);
    }
}

/// `h = (1 − z) ⊙ cand + z ⊙ h`.
#[inline(always)]
fn update(h: &mut [f32], z: &[f32], cand: &[f32]) {
    for (h, (&z, &c)) in h.iter_mut().zip(z.iter().zip(cand)) {
        *h = (1.0 - z) * c + z * *h;
    }
}

/// Defines `$name(isa, args)` running `$generic(args)` compiled for the checked instruction set.
macro_rules! per_isa {
    ($(#[$m:meta])* $name:ident => $generic:ident($($arg:ident: $ty:ty),*)) => {
        $(#[$m])*
        pub(super) fn $name(isa: CheckedIsa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            fn avx512($($arg: $ty),*) {
                $generic($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) {
                $generic($($arg),*)
            }
            match isa.isa() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: a `CheckedIsa` is only made for an instruction set this CPU runs.
                Isa::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Isa::Avx2Fma => unsafe { avx2($($arg),*) },
                _ => $generic($($arg),*),
            }
        }
    };
}

per_isa! {
    /// LSTM: gates `i, o, f, c`; updates `c` and `h` (`[rows × n]`); `p` holds `i, o, f`
    /// peepholes; `tmp` is `n` values of scratch.
    lstm => lstm_rows(r: &mut Rows, c: &mut [f32], h: &mut [f32], p: &[f32], input_forget: bool, tmp: &mut [f32])
}

#[inline(always)]
fn lstm_rows(
    r: &mut Rows,
    c: &mut [f32],
    h: &mut [f32],
    p: &[f32],
    input_forget: bool,
    tmp: &mut [f32],
) {
    let n = r.n;
    let (pi, po, pf) = (&p[..n], &p[n..2 * n], &p[2 * n..3 * n]);
    let [f_act, g_act, h_act] = [&r.acts[0], &r.acts[1], &r.acts[2]];
    for (row, &on) in r.active.iter().enumerate() {
        if !on {
            continue;
        }
        let xw = &r.xw[r.xw_at[row]..r.xw_at[row] + 4 * n];
        let (xi, xo, xf, xc) = (&xw[..n], &xw[n..2 * n], &xw[2 * n..3 * n], &xw[3 * n..]);
        let g = &mut r.gates[row * r.stride..row * r.stride + 4 * n];
        let (gi, rest) = g.split_at_mut(n);
        let (go, rest) = rest.split_at_mut(n);
        let (gf, gc) = rest.split_at_mut(n);
        let c = &mut c[row * n..(row + 1) * n];
        let h = &mut h[row * n..(row + 1) * n];
        peephole(gi, xi, pi, c);
        peephole(gf, xf, pf, c);
        add(gc, xc);
        apply(f_act, r.clip, gi);
        if input_forget {
            one_minus(gf, gi);
        } else {
            apply(f_act, r.clip, gf);
        }
        apply(g_act, r.clip, gc);
        cell_state(c, gf, gi, gc);
        peephole(go, xo, po, c);
        apply(f_act, r.clip, go);
        let tmp = &mut tmp[..n];
        tmp.copy_from_slice(c);
        apply_unclipped(h_act, tmp);
        product(h, go, tmp);
    }
}

per_isa! {
    /// GRU, first half: activates `z` and `r` in `gates` (columns `0..2n` of each row) and,
    /// when `rh` is not empty (no `linear_before_reset`), writes `r ⊙ h` there.
    gru_gates => gru_gates_rows(r: &mut Rows, h: &[f32], rh: &mut [f32])
}

#[inline(always)]
fn gru_gates_rows(r: &mut Rows, h: &[f32], rh: &mut [f32]) {
    let n = r.n;
    let f_act = &r.acts[0];
    for (row, &on) in r.active.iter().enumerate() {
        if !on {
            continue;
        }
        let xw = &r.xw[r.xw_at[row]..r.xw_at[row] + 2 * n];
        let zr = &mut r.gates[row * r.stride..row * r.stride + 2 * n];
        add(zr, xw);
        apply(f_act, r.clip, zr);
        if !rh.is_empty() {
            product(
                &mut rh[row * n..(row + 1) * n],
                &zr[n..],
                &h[row * n..(row + 1) * n],
            );
        }
    }
}

per_isa! {
    /// GRU, second half: `h = (1 − z) ⊙ g(pre) + z ⊙ h` with `pre = xw_h + hh` where `hh` is
    /// `(r ⊙ h)·Rhᵀ` (rows of `n` in `hh`) or, with `linear_before_reset`, `r ⊙ (h·Rhᵀ + Rbh)`
    /// (`h·Rhᵀ` in `gates` columns `2n..3n`, `bias_rh` = Rbh); `tmp` is `n` values of scratch.
    gru_out => gru_out_rows(r: &mut Rows, h: &mut [f32], hh: &[f32], bias_rh: &[f32], tmp: &mut [f32])
}

#[inline(always)]
fn gru_out_rows(r: &mut Rows, h: &mut [f32], hh: &[f32], bias_rh: &[f32], tmp: &mut [f32]) {
    let n = r.n;
    let g_act = &r.acts[1];
    let pre = &mut tmp[..n];
    for (row, &on) in r.active.iter().enumerate() {
        if !on {
            continue;
        }
        let xw = &r.xw[r.xw_at[row] + 2 * n..r.xw_at[row] + 3 * n];
        let g = &r.gates[row * r.stride..];
        let (z, rg) = (&g[..n], &g[n..2 * n]);
        let pre = &mut pre[..n];
        pre.copy_from_slice(xw);
        if bias_rh.is_empty() {
            add(pre, &hh[row * n..(row + 1) * n]);
        } else {
            reset_linear(pre, rg, &g[2 * n..3 * n], bias_rh);
        }
        apply(g_act, r.clip, pre);
        update(&mut h[row * n..(row + 1) * n], z, pre);
    }
}

per_isa! {
    /// RNN: `h = f(gates + xw)`.
    rnn => rnn_rows(r: &mut Rows, h: &mut [f32])
}

#[inline(always)]
fn rnn_rows(r: &mut Rows, h: &mut [f32]) {
    let n = r.n;
    for (row, &on) in r.active.iter().enumerate() {
        if !on {
            continue;
        }
        let xw = &r.xw[r.xw_at[row]..r.xw_at[row] + n];
        let h = &mut h[row * n..(row + 1) * n];
        h.copy_from_slice(&r.gates[row * r.stride..row * r.stride + n]);
        add(h, xw);
        apply(&r.acts[0], r.clip, h);
    }
}
