//! One task of a call: a direction and a range of batch entries, run through the whole
//! sequence. Steps go in chunks: first the input projection `x·Wᵀ + bias` of every step of the
//! chunk (one GEMM per batch entry, or one for all when the rows are contiguous), then per step
//! the product `h·Rᵀ` (one small GEMM for all rows) and the cell's gate equations. A batch entry
//! takes steps `0..len` (the reverse direction starting at `len − 1`); its `y` rows past `len`
//! are zeros.

use super::cells::{self, Rows};
use super::skinny;
use super::types::{zeros, CheckedIsa, Inputs, OutRows, RecurrentError};
use super::weights::{step_columns, DirWeights};
use crate::kernels::gemm::{gemm_packed, gemm_packed_serial, Epilogue, Matrix, MatrixMut, Shape};
use crate::ops::{RecurrentSpec, RnnCell, RnnDims};

/// Projection values per chunk (`steps · rows · gates·hidden`): 512 KiB, so a chunk's
/// projections stay in L2 while its steps read them.
const CHUNK_VALUES: usize = 128 * 1024;

/// What every task of a call shares.
#[derive(Debug)]
pub(super) struct Shared<'a> {
    pub isa: CheckedIsa,
    pub spec: &'a RecurrentSpec,
    pub dims: RnnDims,
    pub inp: &'a Inputs<'a>,
    pub weights: &'a [DirWeights<'a>],
    pub y: OutRows,
    pub y_h: OutRows,
    pub y_c: Option<OutRows>,
    /// The projection GEMM may use the pool's threads (the call runs a single task).
    pub parallel_projection: bool,
}

/// The time step that processing step `s` of a sequence of `len` reads in direction `rev`.
fn time(rev: bool, len: usize, s: usize) -> usize {
    if rev {
        len - 1 - s
    } else {
        s
    }
}

impl Shared<'_> {
    /// `C = A·B` with B packed, on this thread unless `parallel`.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        parallel: bool,
        shape: Shape,
        a: Matrix,
        b: &[f32],
        c: MatrixMut,
        bias: Option<&[f32]>,
    ) -> Result<(), RecurrentError> {
        let ep = Epilogue {
            bias,
            ..Epilogue::default()
        };
        let isa = self.isa.isa();
        if parallel {
            gemm_packed(isa, shape, a, b, c, &ep)?;
        } else {
            gemm_packed_serial(isa, shape, a, b, c, &ep)?;
        }
        Ok(())
    }

    /// A per-step product `c (m × n) = a (m × k) · B` (B packed): the skinny path for one or two
    /// rows, else the GEMM on this thread.
    fn step_product(
        &self,
        (m, n, k): (usize, usize, usize),
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
    ) -> Result<(), RecurrentError> {
        if m <= skinny::MAX_ROWS && skinny::product(self.isa, (m, n, k), a, b, c) {
            return Ok(());
        }
        let shape = Shape { m, n, k };
        let a = Matrix { data: a, stride: k };
        let c = MatrixMut { data: c, stride: n };
        self.gemm(false, shape, a, b, c, None)
    }

    /// Projections of processing steps `s0..s1` of rows `b0..b0 + lens.len()` into `xw`
    /// (row `i` at time `t` at `((t − lo[i])·rows + i)·gates·hidden`).
    fn project(
        &self,
        d: usize,
        b0: usize,
        lens: &[usize],
        (s0, s1): (usize, usize),
        xw: &mut [f32],
        lo: &mut [usize],
    ) -> Result<(), RecurrentError> {
        let (dims, w) = (&self.dims, &self.weights[d]);
        let (nb, gh, isz) = (lens.len(), dims.gates * dims.hidden, dims.input);
        let rev = self.spec.is_reverse(d);
        // Per row: the first time of the window and the number of steps in it.
        let window = |len: usize| {
            let count = s1.min(len).saturating_sub(s0);
            let first = if rev { len - s0.min(len) - count } else { s0 };
            (first, count)
        };
        for (i, &len) in lens.iter().enumerate() {
            lo[i] = window(len).0;
        }
        let bias = Some(w.bias_x.as_slice());
        let uniform = lens.iter().all(|&l| window(l) == window(lens[0]));
        if uniform && !dims.batch_first && nb == dims.batch {
            let (first, count) = window(lens[0]);
            if count > 0 {
                let shape = Shape {
                    m: count * nb,
                    n: gh,
                    k: isz,
                };
                let a = Matrix {
                    data: &self.inp.x[dims.x_offset(first, 0)..],
                    stride: isz,
                };
                let c = MatrixMut {
                    data: xw,
                    stride: gh,
                };
                self.gemm(self.parallel_projection, shape, a, &w.w, c, bias)?;
            }
            return Ok(());
        }
        for (i, &len) in lens.iter().enumerate() {
            let (first, count) = window(len);
            if count == 0 {
                continue;
            }
            let shape = Shape {
                m: count,
                n: gh,
                k: isz,
            };
            let a = Matrix {
                data: &self.inp.x[dims.x_offset(first, b0 + i)..],
                stride: dims.x_step_stride(),
            };
            let c = MatrixMut {
                data: &mut xw[i * gh..],
                stride: nb * gh,
            };
            self.gemm(self.parallel_projection, shape, a, &w.w, c, bias)?;
        }
        Ok(())
    }

    /// Runs direction `d` for batch entries `b0..b1`.
    pub(super) fn run(&self, d: usize, b0: usize, b1: usize) -> Result<(), RecurrentError> {
        let (spec, dims, w) = (self.spec, &self.dims, &self.weights[d]);
        let (n, nb) = (dims.hidden, b1 - b0);
        let gh = dims.gates * n;
        let step_n = step_columns(spec, n);
        let lens = &self.inp.lens[b0..b1];
        let max_len = lens.iter().copied().max().unwrap_or(0);
        let rev = spec.is_reverse(d);
        let lstm = spec.cell == RnnCell::Lstm;
        let gru_split = spec.cell == RnnCell::Gru && !spec.linear_before_reset;
        let (mut h, mut c) = (zeros(nb * n)?, zeros(if lstm { nb * n } else { 0 })?);
        for i in 0..nb {
            let at = dims.state_offset(d, b0 + i);
            if let Some(h0) = self.inp.initial_h {
                h[i * n..(i + 1) * n].copy_from_slice(&h0[at..at + n]);
            }
            if let (Some(c0), true) = (self.inp.initial_c, lstm) {
                c[i * n..(i + 1) * n].copy_from_slice(&c0[at..at + n]);
            }
        }
        let chunk = (CHUNK_VALUES / (nb * gh).max(1)).clamp(1, max_len.max(1));
        let mut xw = zeros(chunk * nb * gh)?;
        let mut gates = zeros(nb * step_n)?;
        let split_len = if gru_split { nb * n } else { 0 };
        let (mut rh, mut hh) = (zeros(split_len)?, zeros(split_len)?);
        let mut tmp = zeros(n)?;
        let (mut active, mut xw_at, mut lo) = (vec![false; nb], vec![0usize; nb], vec![0usize; nb]);
        for s0 in (0..max_len).step_by(chunk) {
            let s1 = (s0 + chunk).min(max_len);
            self.project(d, b0, lens, (s0, s1), &mut xw, &mut lo)?;
            for s in s0..s1 {
                for (i, &len) in lens.iter().enumerate() {
                    active[i] = s < len;
                    if active[i] {
                        xw_at[i] = ((time(rev, len, s) - lo[i]) * nb + i) * gh;
                    }
                }
                self.step_product((nb, step_n, n), &h, &w.r, &mut gates)?;
                let mut rows = Rows {
                    n,
                    gates: &mut gates,
                    stride: step_n,
                    xw: &xw,
                    xw_at: &xw_at,
                    active: &active,
                    acts: spec.activations_of(d),
                    clip: spec.clip as f32,
                };
                match spec.cell {
                    RnnCell::Lstm => {
                        let ifg = spec.input_forget;
                        cells::lstm(self.isa, &mut rows, &mut c, &mut h, &w.p, ifg, &mut tmp);
                    }
                    RnnCell::Gru => {
                        cells::gru_gates(self.isa, &mut rows, &h, &mut rh);
                        if gru_split {
                            self.step_product((nb, n, n), &rh, &w.rh, &mut hh)?;
                        }
                        cells::gru_out(self.isa, &mut rows, &mut h, &hh, &w.bias_rh, &mut tmp);
                    }
                    RnnCell::Rnn => cells::rnn(self.isa, &mut rows, &mut h),
                }
                for (i, &len) in lens.iter().enumerate() {
                    if active[i] {
                        let at = dims.y_offset(time(rev, len, s), d, b0 + i);
                        // SAFETY: y rows of direction `d` and batch entry `b0 + i` belong to
                        // this task alone, and the caller keeps the buffer borrowed.
                        unsafe { self.y.write(at, &h[i * n..(i + 1) * n]) };
                    }
                }
            }
        }
        for (i, &len) in lens.iter().enumerate() {
            let b = b0 + i;
            for t in len..dims.seq {
                // SAFETY: as above.
                unsafe { self.y.zero(dims.y_offset(t, d, b), n) };
            }
            let at = dims.state_offset(d, b);
            // SAFETY: state rows of `(d, b)` belong to this task alone.
            unsafe { self.y_h.write(at, &h[i * n..(i + 1) * n]) };
            if let (Some(y_c), true) = (&self.y_c, lstm) {
                // SAFETY: as above.
                unsafe { y_c.write(at, &c[i * n..(i + 1) * n]) };
            }
        }
        Ok(())
    }
}
