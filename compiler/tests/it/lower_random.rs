//! Differential property test of the CPU backend: random graphs over `f32[batch, r, c]` inputs
//! (several `r × c`) mixing fused elementwise chains with Full/Row/Col/Scalar operands, GEMMs
//! with packed weights and GELU/ReLU/residual epilogues, batched GEMMs on values with absorbed
//! transposes, LayerNorm / SkipLayerNorm / RmsNorm / softmax row kernels, row gathers, reshape
//! aliases and reference fallbacks (f64 and bool ops, norms over other axes) are lowered,
//! compiled to an in-memory `.kiln` artifact, loaded and run at `batch` = 1, then 3, then 1
//! again in one session of one artifact; every output must match the reference interpreter
//! (rtol 1e-4, atol 1e-5). Each plan's memory assignment is checked too: a step's outputs share
//! no slot with its inputs (except an in-place elementwise step over a dying `Full` input) and
//! no two values share a slot while both are live.
//!
//! Numerics: the runtime computes in f32 (polynomial exp, libm tanh/log, f32 GEMM sums) while the
//! interpreter rounds each op's f64 result to f32, so values are kept moderate and well
//! conditioned: every value has a rough magnitude estimate and is squashed by a tanh when it
//! grows past 8; logarithms, roots and reciprocals read `sigmoid(x) + c`; divisors lie in
//! [0.5, 1.5]; powers take bases in [0.5, 1.5] (or small integer exponents); norms read their
//! input plus a random spread so no row is nearly constant. `floor`, `ceil` and comparisons read
//! only values the runtime computes bit-identically to the interpreter (inputs, weights and
//! correctly rounded arithmetic on them), so no rounding difference can move a step edge.

use crate::common;

use kiln_compiler::codegen::{GenKernel, RowOp};
use kiln_compiler::ir::{BinaryOp, DType, Dim, GeluApprox, Graph, Op, ReduceOp, Shape};
use kiln_compiler::ir::{TensorType, UnaryOp, ValueId};
use kiln_compiler::lower::lower;
use kiln_compiler::{compile, Options, Target};
use kiln_runtime::plan::ValueId as PlanValueId;
use kiln_runtime::plan::{Access, Activation, GemmB, Kernel, Plan, SlotId, Storage};
use kiln_runtime::{LoadOptions, Model};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use std::collections::BTreeMap;

const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-5;
/// A value whose magnitude estimate passes this is squashed by a tanh before further use.
const MAX_MAG: f64 = 8.0;

use common::{GraphBuilder, Rng};

/// A value of the pool (`f32[batch, r, c]` unless stated), with a rough bound on its magnitude
/// and whether the runtime computes it bit-identically to the interpreter.
#[derive(Debug, Clone, Copy)]
struct Pv {
    v: ValueId,
    mag: f64,
    exact: bool,
}

struct Builder {
    base: GraphBuilder,
    /// Rows and columns of the pool's values `[batch, r, c]`.
    r: usize,
    c: usize,
    pool: Vec<Pv>,
    outputs: Vec<(String, ValueId)>,
    /// The `ids` input of the gathers, once one exists.
    ids: Option<ValueId>,
}

fn batch() -> Dim {
    Dim::sym("batch")
}

fn ty(dtype: DType, dims: Vec<Dim>) -> TensorType {
    TensorType::new(dtype, Shape(dims))
}

/// The pool's shape `[batch, r, c]`: c = 8 leaves no scalar tail after the 4-lane loops, the
/// others do; 33 and 61 span two 32-column GEMM panels, and `[3·24, 61]·[61, 61]` is past the
/// GEMM driver's parallel threshold.
const SHAPES: [(usize, usize); 6] = [(5, 8), (3, 7), (4, 13), (2, 19), (6, 33), (24, 61)];
/// Hidden widths of the feed-forward blocks.
const HIDDEN: [usize; 3] = [16, 21, 40];

impl Builder {
    fn main_dims(&self) -> Vec<Dim> {
        vec![
            batch(),
            Dim::known(self.r as i64),
            Dim::known(self.c as i64),
        ]
    }

    /// The range of a `[k, n]` GEMM weight keeping products about as large as their inputs.
    fn gemm_range(k: usize) -> f64 {
        1.0 / (k as f64).sqrt()
    }

    /// A constant as `[]`, `[1]` or `[1, 1, 1]` (all read as a Scalar).
    fn scalar(&mut self, v: f64) -> ValueId {
        let shape = self.base.rng.pick(&[vec![], vec![1], vec![1, 1, 1]]);
        self.base.random_weight(shape, v, v)
    }

    /// A vector over the last axis as `[c]`, `[1, c]` or `[1, 1, c]` (read as a Row).
    fn row(&mut self, lo: f64, hi: f64) -> ValueId {
        let c = self.c;
        let shape = self.base.rng.pick(&[vec![c], vec![1, c], vec![1, 1, c]]);
        self.base.random_weight(shape, lo, hi)
    }

    /// A pool value (the latest one half of the time, so chains form), squashed when large.
    fn pooled(&mut self, b: u8) -> Pv {
        let i = if b & 1 == 0 {
            self.pool.len() - 1
        } else {
            (b as usize >> 1) % self.pool.len()
        };
        let p = self.pool[i];
        if p.mag <= MAX_MAG {
            return p;
        }
        let v = self.base.un(UnaryOp::Tanh, p.v);
        Pv {
            v,
            mag: 1.0,
            exact: false,
        }
    }

    /// An exact pool value (the first input is one).
    fn exact(&mut self, b: u8) -> Pv {
        let exact: Vec<Pv> = self.pool.iter().copied().filter(|p| p.exact).collect();
        exact[b as usize % exact.len()]
    }

    /// `sigmoid(x)·(hi - lo) + lo`, a value in [lo, hi] of x's shape.
    fn ranged(&mut self, x: ValueId, lo: f64, hi: f64) -> ValueId {
        let s = self.base.un(UnaryOp::Sigmoid, x);
        let k = self.scalar(hi - lo);
        let s = self.base.bin(BinaryOp::Mul, s, k);
        let c = self.scalar(lo);
        self.base.bin(BinaryOp::Add, s, c)
    }

    /// A Col operand `[batch, r, 1]`: a reduction of a pool value over the last axis.
    fn col(&mut self, b: u8) -> Pv {
        let p = self.pooled(b);
        let op = self
            .base
            .rng
            .pick(&[ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min]);
        let op = Op::Reduce {
            op,
            axes: vec![self.base.rng.pick(&[-1, 2])],
            keepdims: true,
        };
        let v = self.base.node(op, &[p.v]);
        Pv { v, ..p }
    }

    /// A second operand for an elementwise op over `f32[batch, r, c]`: Full (a pool value), Row,
    /// Scalar or Col; when `range` is given, its values lie in that range.
    fn operand(&mut self, b: u8, range: Option<(f64, f64)>) -> Pv {
        let (lo, hi) = range.unwrap_or((-1.0, 1.0));
        let weight = |v, mag| Pv {
            v,
            mag,
            exact: true,
        };
        let p = match b % 6 {
            0 => {
                let v = self.row(lo, hi);
                weight(v, lo.abs().max(hi.abs()))
            }
            1 => {
                let c = self.base.rng.uniform(lo, hi);
                let v = self.scalar(c);
                weight(v, c.abs())
            }
            2 => self.col(b >> 3),
            _ => self.pooled(b >> 3),
        };
        match range {
            Some((lo, hi)) if !self.is_weight(p.v) => Pv {
                v: self.ranged(p.v, lo, hi),
                mag: lo.abs().max(hi.abs()),
                exact: false,
            },
            _ => p,
        }
    }

    fn producer(&self, v: ValueId) -> kiln_compiler::ir::NodeId {
        match self.base.g.value(v).def {
            kiln_compiler::ir::ValueDef::Node { node, .. } => node,
            _ => unreachable!("a node result"),
        }
    }

    fn is_weight(&self, v: ValueId) -> bool {
        matches!(
            self.base.g.value(v).def,
            kiln_compiler::ir::ValueDef::Weight(_)
        )
    }

    /// One unary elementwise op (or a short chain keeping its domain valid).
    fn unary(&mut self, b: [u8; 4]) -> Pv {
        let p = self.pooled(b[1]);
        let plain = [
            UnaryOp::Neg,
            UnaryOp::Abs,
            UnaryOp::Relu,
            UnaryOp::Tanh,
            UnaryOp::Erf,
            UnaryOp::Sigmoid,
            UnaryOp::Sin,
            UnaryOp::Cos,
        ];
        let k = b[2] as usize % 17;
        if k < plain.len() {
            let op = plain[k];
            let v = self.base.un(op, p.v);
            let bounded = k >= 3;
            let exact = p.exact && !bounded;
            let mag = if bounded { 1.0 } else { p.mag };
            return Pv { v, mag, exact };
        }
        let inexact = |v, mag| Pv {
            v,
            mag,
            exact: false,
        };
        match k {
            8 => {
                // exp(min(x, c)) ≤ e^1.5.
                let c = self.base.rng.uniform(0.5, 1.5);
                let c = self.scalar(c);
                let m = self.base.bin(BinaryOp::Min, p.v, c);
                let v = self.base.un(UnaryOp::Exp, m);
                inexact(v, 4.5)
            }
            9..=12 => {
                // log, sqrt, rsqrt, 1/x of sigmoid(x) + c, c ∈ {0.1, 0.5}.
                let s = self.base.un(UnaryOp::Sigmoid, p.v);
                let c = self.base.rng.pick(&[0.1, 0.5]);
                let cv = self.scalar(c);
                let pos = self.base.bin(BinaryOp::Add, s, cv);
                let (op, mag) = match k {
                    9 => (UnaryOp::Log, 2.4),
                    10 => (UnaryOp::Sqrt, 1.3),
                    11 => (UnaryOp::Rsqrt, 3.2),
                    _ => (UnaryOp::Reciprocal, 10.0),
                };
                let v = self.base.un(op, pos);
                inexact(v, mag)
            }
            13 | 14 => {
                // floor/ceil of an exact value (times 2, exactly).
                let e = self.exact(b[3]);
                let x = if self.base.rng.coin() {
                    let two = self.scalar(2.0);
                    self.base.bin(BinaryOp::Mul, e.v, two)
                } else {
                    e.v
                };
                let op = if k == 13 {
                    UnaryOp::Floor
                } else {
                    UnaryOp::Ceil
                };
                let v = self.base.un(op, x);
                Pv {
                    v,
                    mag: 2.0 * e.mag + 1.0,
                    exact: true,
                }
            }
            _ => {
                let approx = if k == 15 {
                    GeluApprox::None
                } else {
                    GeluApprox::Tanh
                };
                let v = self.base.node(Op::Gelu { approx }, &[p.v]);
                inexact(v, p.mag)
            }
        }
    }

    /// One binary elementwise op with a Full, Row, Col or Scalar second operand.
    fn binary(&mut self, b: [u8; 4]) -> Pv {
        let p = self.pooled(b[1]);
        let ops = [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Max,
            BinaryOp::Min,
            BinaryOp::Pow,
        ];
        let op = ops[b[2] as usize % ops.len()];
        let (x, q) = match op {
            BinaryOp::Mul => (p, self.operand(b[3], Some((-1.5, 1.5)))),
            BinaryOp::Div => (p, self.operand(b[3], Some((0.5, 1.5)))),
            BinaryOp::Pow if b[3].is_multiple_of(4) && p.mag <= 4.0 => {
                // An integer exponent: negative bases are fine.
                let e = self.base.rng.pick(&[2.0, 3.0]);
                let e = self.scalar(e);
                let v = self.base.node(Op::Binary(op), &[p.v, e]);
                return Pv {
                    v,
                    mag: p.mag.powi(3),
                    exact: false,
                };
            }
            BinaryOp::Pow => {
                let base = self.ranged(p.v, 0.5, 1.5);
                let base = Pv {
                    v: base,
                    mag: 1.5,
                    exact: false,
                };
                (base, self.operand(b[3], Some((-2.0, 2.0))))
            }
            _ => (p, self.operand(b[3], None)),
        };
        let v = if op == BinaryOp::Sub && self.base.rng.coin() {
            self.base.node(Op::Binary(op), &[q.v, x.v])
        } else if matches!(op, BinaryOp::Div | BinaryOp::Pow) {
            self.base.node(Op::Binary(op), &[x.v, q.v])
        } else {
            self.base.bin(op, x.v, q.v)
        };
        let mag = match op {
            BinaryOp::Add | BinaryOp::Sub => x.mag + q.mag,
            BinaryOp::Mul => x.mag * 1.5,
            BinaryOp::Div => x.mag * 2.0,
            BinaryOp::Pow => 4.0,
            _ => x.mag.max(q.mag),
        };
        let exact = x.exact && q.exact && op != BinaryOp::Pow;
        Pv { v, mag, exact }
    }

    /// A GEMM with a `[c, c]` weight: bias or not, then maybe GELU/ReLU and a residual add.
    /// Now and then its intermediate result is pooled too (a second consumer blocks the epilogue).
    fn matmul(&mut self, b: [u8; 4]) -> Pv {
        let p = self.pooled(b[1]);
        let (c, wr) = (self.c, Self::gemm_range(self.c));
        let w = self.base.random_weight(vec![c, c], -wr, wr);
        self.gemm_with_epilogue(p, w, b)
    }

    /// `p·w` (plus a Row bias when `b[2]` is even), then maybe GELU/ReLU and a residual add;
    /// now and then the product is pooled too (a second consumer blocks the epilogue).
    fn gemm_with_epilogue(&mut self, p: Pv, w: ValueId, b: [u8; 4]) -> Pv {
        let mut y = if b[2] & 1 == 0 {
            let bias = self.row(-0.5, 0.5);
            self.base.node(Op::MatMulBias, &[p.v, w, bias])
        } else {
            self.base.node(Op::MatMul, &[p.v, w])
        };
        let mut mag = 1.2 * p.mag + 0.5;
        if self.base.rng.one_in(4) {
            self.pool.push(Pv {
                v: y,
                mag,
                exact: false,
            });
        }
        y = match (b[2] >> 1) % 6 {
            0 | 1 => self.base.node(
                Op::Gelu {
                    approx: GeluApprox::None,
                },
                &[y],
            ),
            2 => self.base.node(
                Op::Gelu {
                    approx: GeluApprox::Tanh,
                },
                &[y],
            ),
            3 => self.base.un(UnaryOp::Relu, y),
            _ => y,
        };
        if b[2] & 0x40 != 0 {
            let q = self.pooled(b[3]);
            y = self.base.bin(BinaryOp::Add, y, q.v);
            mag += q.mag;
        }
        Pv {
            v: y,
            mag,
            exact: false,
        }
    }

    /// A feed-forward block: `x + W2·gelu(W1·x + b1) (+ b2)` through a hidden width from
    /// [`HIDDEN`].
    fn ffn(&mut self, b: [u8; 4]) -> Pv {
        let p = self.pooled(b[1]);
        let (c, hw) = (self.c, self.base.rng.pick(&HIDDEN));
        let w1 = self
            .base
            .random_weight(vec![c, hw], -Self::gemm_range(c), Self::gemm_range(c));
        let b1 = self.base.random_weight(vec![hw], -0.5, 0.5);
        let h = self.base.node(Op::MatMulBias, &[p.v, w1, b1]);
        let approx = self.base.rng.pick(&[GeluApprox::None, GeluApprox::Tanh]);
        let h = self.base.node(Op::Gelu { approx }, &[h]);
        let w2r = 0.7 * Self::gemm_range(hw);
        let w2 = self.base.random_weight(vec![hw, c], -w2r, w2r);
        let o = if self.base.rng.coin() {
            let b2 = self.row(-0.5, 0.5);
            self.base.node(Op::MatMulBias, &[h, w2, b2])
        } else {
            self.base.node(Op::MatMul, &[h, w2])
        };
        let v = self.base.bin(BinaryOp::Add, p.v, o);
        Pv {
            v,
            mag: 2.5 * p.mag + 1.0,
            exact: false,
        }
    }

    /// A GEMM on run-time values: attention-like `softmax(a·bᵀ·s)·c` over `[batch, r, r]`
    /// scores, or a product with a computed `[c, c]` matrix (maybe transposed; with the
    /// epilogues of [`Builder::gemm_with_epilogue`]), or with a `[1, c, c]` weight (the
    /// reference kernel).
    fn batched(&mut self, b: [u8; 4]) -> Pv {
        let p = self.pooled(b[1]);
        match b[2] % 4 {
            0 | 1 => {
                let q = self.pooled(b[3]);
                let (a, k) = if p.mag * q.mag > 4.0 {
                    (
                        self.base.un(UnaryOp::Tanh, p.v),
                        self.base.un(UnaryOp::Tanh, q.v),
                    )
                } else {
                    (p.v, q.v)
                };
                let kt = self.base.node(
                    Op::Transpose {
                        perm: vec![0, 2, 1],
                    },
                    &[k],
                );
                if self.base.rng.one_in(4) {
                    // A second consumer: the transpose runs on its own.
                    self.outputs.push(("kt".into(), kt));
                }
                let s = self.base.node(Op::MatMul, &[a, kt]);
                let c = self.scalar(Self::gemm_range(self.c));
                let s = self.base.bin(BinaryOp::Mul, s, c);
                let axis = self.base.rng.pick(&[-1, -1, 2, 1]);
                let sm = if self.base.rng.one_in(4) {
                    self.base.node(Op::LogSoftmax { axis }, &[s])
                } else {
                    self.base.node(Op::Softmax { axis }, &[s])
                };
                let c = self.pooled(b[3] >> 4);
                let log = self.base.g.node(self.producer(sm)).op.name() == "log_softmax";
                let v = self.base.node(Op::MatMul, &[sm, c.v]);
                Pv {
                    v,
                    mag: if log { 40.0 } else { 1.0 } * c.mag,
                    exact: false,
                }
            }
            2 => {
                let (c, wr) = (self.c, Self::gemm_range(self.c));
                let w = self.base.random_weight(vec![c, c], -wr, wr);
                let m = self.base.un(UnaryOp::Tanh, w);
                let m = if self.base.rng.coin() {
                    self.base.node(Op::Transpose { perm: vec![1, 0] }, &[m])
                } else {
                    m
                };
                let sel = [b[0], b[1], self.base.rng.next_u64() as u8, b[3]];
                self.gemm_with_epilogue(p, m, sel)
            }
            _ => {
                let (c, wr) = (self.c, Self::gemm_range(self.c));
                let w = self.base.random_weight(vec![1, c, c], -wr, wr);
                let v = self.base.node(Op::MatMul, &[p.v, w]);
                Pv {
                    v,
                    mag: 1.2 * p.mag,
                    exact: false,
                }
            }
        }
    }

    /// A gamma or beta for normalising over axes `axis..`: `[c]`, now and then `[1]` (which
    /// the row kernels do not take); over axes 1.. also `[1, c]` or `[r, c]`.
    fn norm_param(&mut self, axis: i64, lo: f64, hi: f64) -> ValueId {
        let shapes = if axis == 1 {
            vec![vec![self.c], vec![1, self.c], vec![self.r, self.c]]
        } else {
            vec![
                vec![self.c],
                vec![self.c],
                vec![self.c],
                vec![self.c],
                vec![1],
            ]
        };
        let shape = self.base.rng.pick(&shapes);
        self.base.random_weight(shape, lo, hi)
    }

    /// `x + spread`: a Row (fused) or `[r, c]` (reference) weight, so no row is nearly constant.
    fn spread(&mut self, x: ValueId) -> ValueId {
        let s = if self.base.rng.one_in(3) {
            self.base.random_weight(vec![self.r, self.c], -1.0, 1.0)
        } else {
            self.row(-1.0, 1.0)
        };
        self.base.bin(BinaryOp::Add, x, s)
    }

    /// LayerNorm, SkipLayerNorm or RmsNorm over a spread pool value, on the last axis (as -1
    /// or 2) or now and then over axes 1.. (the reference kernel).
    fn norm(&mut self, b: [u8; 4]) -> Pv {
        let p = self.pooled(b[1]);
        let x = self.spread(p.v);
        let eps = self.base.rng.pick(&[1e-5, 1e-6, 1e-3]);
        let axis = self.base.rng.pick(&[-1, -1, 2, 1]);
        let axis = if b[2] % 3 == 2 { -1 } else { axis };
        let gamma = self.norm_param(axis, 0.5, 1.5);
        let beta = (!self.base.rng.one_in(3)).then(|| self.norm_param(axis, -0.5, 0.5));
        let out = |v| Pv {
            v,
            mag: 5.0,
            exact: false,
        };
        match b[2] % 3 {
            0 => {
                let mut ins = vec![x, gamma];
                ins.extend(beta);
                out(self.base.node(Op::LayerNorm { axis, eps }, &ins))
            }
            1 => {
                let (skip, skip_mag) = match b[3] % 5 {
                    0 => (self.row(-1.0, 1.0), 1.0),
                    1 => (
                        self.base.random_weight(vec![self.r, self.c], -1.0, 1.0),
                        1.0,
                    ),
                    _ => {
                        let q = self.pooled(b[3] >> 3);
                        (q.v, q.mag)
                    }
                };
                let mut ins = vec![x, skip, gamma];
                ins.extend(beta);
                let ys = self.base.nodes(Op::SkipLayerNorm { axis, eps }, &ins);
                match b[3] >> 6 {
                    0 => self.pool.push(Pv {
                        v: ys[1],
                        mag: p.mag + 1.0 + skip_mag,
                        exact: false,
                    }),
                    1 => self.outputs.push(("sum".into(), ys[1])),
                    _ => {}
                }
                out(ys[0])
            }
            _ => out(self.base.node(Op::RmsNorm { eps }, &[x, gamma])),
        }
    }

    /// Softmax or LogSoftmax on the last axis (-1 or 2) or on axis 1 (the reference kernel).
    fn softmax(&mut self, b: [u8; 4]) -> Pv {
        let p = self.pooled(b[1]);
        let axis = self.base.rng.pick(&[-1, -1, 2, 1]);
        if b[2] & 1 == 0 {
            let v = self.base.node(Op::Softmax { axis }, &[p.v]);
            Pv {
                v,
                mag: 1.0,
                exact: false,
            }
        } else {
            let v = self.base.node(Op::LogSoftmax { axis }, &[p.v]);
            Pv {
                v,
                mag: 2.0 * p.mag + 2.1,
                exact: false,
            }
        }
    }

    /// Reshapes to another view, maybe an op there (elementwise with a Row of the new last dim,
    /// or a row kernel), and back; the view is sometimes a graph output too.
    fn reshape(&mut self, b: [u8; 4]) -> Pv {
        let p = self.pooled(b[1]);
        let (rows, c) = (self.r as i64, self.c as i64);
        let (c1, c2) = if c % 2 == 0 { (2, c / 2) } else { (c, 1) };
        let views = [
            vec![batch(), Dim::known(rows * c)],
            vec![batch().mul(&Dim::known(rows)), Dim::known(c)],
            vec![batch(), Dim::known(rows), Dim::known(c1), Dim::known(c2)],
        ];
        let view = views[b[2] as usize % 3].clone();
        let last = view.last().and_then(Dim::as_known).unwrap() as usize;
        let r = self.base.node(Op::Reshape { shape: view }, &[p.v]);
        if b[2] & 0x10 != 0 {
            self.outputs.push(("view".into(), r));
        }
        let (r, mag, exact) = match b[3] % 7 {
            0 => {
                let w = self.base.random_weight(vec![last], -1.0, 1.0);
                (self.base.bin(BinaryOp::Add, r, w), p.mag + 1.0, p.exact)
            }
            1 => (self.base.node(Op::Softmax { axis: -1 }, &[r]), 1.0, false),
            // (Not over a single column, where an RmsNorm is a sign function of its input.)
            2 if last >= 4 => {
                let spread = self.base.random_weight(vec![last], -1.0, 1.0);
                let x = self.base.bin(BinaryOp::Add, r, spread);
                let gamma = self.base.random_weight(vec![last], 0.5, 1.5);
                let op = if self.base.rng.coin() {
                    Op::RmsNorm { eps: 1e-5 }
                } else {
                    Op::LayerNorm {
                        axis: -1,
                        eps: 1e-5,
                    }
                };
                (
                    self.base.node(op, &[x, gamma]),
                    1.5 * (last as f64).sqrt(),
                    false,
                )
            }
            3 => {
                // A reshape of a reshape: one alias of the root.
                let flat = vec![batch(), Dim::known(rows * c)];
                (
                    self.base.node(Op::Reshape { shape: flat }, &[r]),
                    p.mag,
                    p.exact,
                )
            }
            4 if b[2] % 3 == 1 => {
                // A GEMM on the view (a rank-2 `a` for `[batch·r, c]`).
                let wr = Self::gemm_range(self.c);
                let w = self.base.random_weight(vec![self.c, self.c], -wr, wr);
                let w = if self.base.rng.coin() {
                    self.base.un(UnaryOp::Tanh, w)
                } else {
                    w
                };
                (self.base.node(Op::MatMul, &[r, w]), 1.2 * p.mag, false)
            }
            5 if c1 == 2 && b[2] % 3 == 2 => {
                // Attention-like batched GEMMs over two batch dims: `[batch, r, 2, c/2]`.
                let t = self.base.un(UnaryOp::Tanh, r);
                let tt = self.base.node(
                    Op::Transpose {
                        perm: vec![0, 1, 3, 2],
                    },
                    &[t],
                );
                let s = self.base.node(Op::MatMul, &[t, tt]);
                let sm = self.base.node(Op::Softmax { axis: -1 }, &[s]);
                (self.base.node(Op::MatMul, &[sm, r]), p.mag, false)
            }
            _ => (r, p.mag, p.exact),
        };
        let shape = self.main_dims();
        let v = self.base.node(Op::Reshape { shape }, &[r]);
        Pv { v, mag, exact }
    }

    /// Ops the generated kernels do not take: f64 arithmetic between casts, comparisons of
    /// exact values selecting with `where` or cast to f32 and multiplied.
    fn other_dtype(&mut self, b: [u8; 4]) -> Pv {
        let p = self.pooled(b[1]);
        if b[2] % 4 == 3 {
            return self.gather(b);
        }
        if b[2].is_multiple_of(4) {
            let d = self.base.node(Op::Cast { to: DType::F64 }, &[p.v]);
            let t = self.base.un(UnaryOp::Tanh, d);
            let w = self
                .base
                .random_weight_of(DType::F64, vec![self.c], -1.5, 1.5);
            let m = self.base.bin(BinaryOp::Mul, t, w);
            let v = self.base.node(Op::Cast { to: DType::F32 }, &[m]);
            return Pv {
                v,
                mag: 1.5,
                exact: false,
            };
        }
        let e = self.exact(b[3]);
        let w = self.row(-1.0, 1.0);
        let cmp = self
            .base
            .rng
            .pick(&[BinaryOp::Gt, BinaryOp::Lt, BinaryOp::Ge]);
        let cond = self.base.node(Op::Binary(cmp), &[e.v, w]);
        if b[2] % 4 == 1 {
            let q = self.pooled(b[3] >> 2);
            let v = self.base.node(Op::Where, &[cond, p.v, q.v]);
            Pv {
                v,
                mag: p.mag.max(q.mag),
                exact: p.exact && q.exact,
            }
        } else {
            let c = self.base.node(Op::Cast { to: DType::F32 }, &[cond]);
            let v = self.base.bin(BinaryOp::Mul, p.v, c);
            Pv { v, ..p }
        }
    }

    /// Rows of a `[6, c]` table picked by the `ids` input (i64 or i32 in [-6, 6), negative
    /// counting from the end): a row gather from a weight, or the reference kernel's gather
    /// from a computed table.
    fn gather(&mut self, b: [u8; 4]) -> Pv {
        let ids = match self.ids {
            Some(ids) => ids,
            None => {
                let dt = self.base.rng.pick(&[DType::I64, DType::I32]);
                let shape = vec![batch(), Dim::known(self.r as i64)];
                let ids = self.base.g.add_input("ids", ty(dt, shape));
                self.ids = Some(ids);
                ids
            }
        };
        let table = self.base.random_weight(vec![6, self.c], -2.0, 2.0);
        let (table, exact) = if b[3] & 1 == 0 {
            (table, true)
        } else {
            (self.base.un(UnaryOp::Tanh, table), false)
        };
        let v = self.base.node(Op::Gather { axis: 0 }, &[table, ids]);
        Pv { v, mag: 2.0, exact }
    }

    /// One random step; its result joins the pool.
    fn step(&mut self, b: [u8; 4]) {
        let y = match b[0] % 16 {
            0..=2 => self.unary(b),
            3..=5 => self.binary(b),
            6 | 7 => self.matmul(b),
            8 => self.ffn(b),
            9 | 10 => self.batched(b),
            11 | 12 => self.norm(b),
            13 => self.softmax(b),
            14 => self.reshape(b),
            _ => self.other_dtype(b),
        };
        self.pool.push(y);
    }
}

/// A random graph from `steps` and `seed`. Inputs: `x` (and maybe `y`, and an unread `z`);
/// outputs: the last value, values the steps chose, and sometimes a pool value, an input, a
/// weight or a reshape alias.
fn build(steps: &[[u8; 4]], seed: u64) -> Graph {
    let mut rng = Rng(seed);
    let (r, c) = SHAPES[rng.below(SHAPES.len())];
    let mut b = Builder {
        base: GraphBuilder {
            g: Graph::new(),
            rng,
        },
        r,
        c,
        pool: Vec::new(),
        outputs: Vec::new(),
        ids: None,
    };
    let x = b.base.g.add_input("x", ty(DType::F32, b.main_dims()));
    let input = |v| Pv {
        v,
        mag: 2.0,
        exact: true,
    };
    b.pool.push(input(x));
    if b.base.rng.coin() {
        let y = b.base.g.add_input("y", ty(DType::F32, b.main_dims()));
        b.pool.push(input(y));
    }
    if b.base.rng.one_in(4) {
        b.base
            .g
            .add_input("z", ty(DType::F32, vec![batch(), Dim::known(3)]));
    }
    for &s in steps {
        b.step(s);
    }
    let last = b.pool.last().unwrap().v;
    b.base.g.add_output("out", last);
    let extra = std::mem::take(&mut b.outputs);
    for (i, (name, v)) in extra.into_iter().enumerate() {
        b.base.g.add_output(format!("{name}{i}"), v);
    }
    if b.base.rng.coin() {
        let v = b.pool[b.base.rng.below(b.pool.len())].v;
        b.base.g.add_output("side", v);
    }
    if b.base.rng.one_in(4) {
        b.base.g.add_output("x_echo", x);
    }
    if b.base.rng.one_in(5) {
        let w = b.row(-1.0, 1.0);
        b.base.g.add_output("w_echo", w);
    }
    if b.base.rng.one_in(4) {
        let v = b.pool[b.base.rng.below(b.pool.len())].v;
        let flat = vec![batch(), Dim::known((b.r * b.c) as i64)];
        let r = b.base.node(Op::Reshape { shape: flat }, &[v]);
        b.base.g.add_output("flat", r);
    }
    b.base.g
}

/// The memory plan's invariants: a step's outputs share no slot with its inputs, except an
/// in-place generated step's output over a `Full` input that dies there; two values sharing a
/// slot are never live at once (inputs are live from before the first step, graph outputs to
/// the end, an unread value only at its definition).
fn check_plan(plan: &Plan) -> Result<(), String> {
    let n = plan.values.len();
    let end = plan.steps.len() as i64;
    let mut def: Vec<Option<i64>> = vec![None; n];
    let mut last: Vec<Option<i64>> = vec![None; n];
    for io in &plan.inputs {
        def[io.value.index()] = Some(-1);
    }
    for (i, s) in plan.steps.iter().enumerate() {
        for &v in &s.inputs {
            let r = plan.root(v).index();
            last[r] = last[r].max(Some(i as i64));
        }
        for &o in &s.outputs {
            def[o.index()] = Some(i as i64);
        }
    }
    for io in &plan.outputs {
        last[plan.root(io.value).index()] = Some(end);
    }
    // Whether step `i` may write its output over value `v`'s slot.
    let in_place_over = |i: i64, v: PlanValueId| {
        let s = &plan.steps[i as usize];
        let Kernel::Generated(gk) = &s.kernel else {
            return false;
        };
        gk.in_place
            && last[v.index()] == Some(i)
            && s.inputs
                .iter()
                .zip(&gk.access)
                .any(|(&w, a)| plan.root(w) == v && *a == Access::Full)
            && s.inputs
                .iter()
                .zip(&gk.access)
                .all(|(&w, a)| plan.root(w) != v || *a == Access::Full)
    };
    for (i, s) in plan.steps.iter().enumerate() {
        for &o in &s.outputs {
            for &v in &s.inputs {
                if plan.slot_of(o).is_some()
                    && plan.slot_of(o) == plan.slot_of(v)
                    && !in_place_over(i as i64, plan.root(v))
                {
                    return Err(format!(
                        "step {i} ({}) writes value {o} into slot {:?} of its input {v}",
                        s.origin,
                        plan.slot_of(o)
                    ));
                }
            }
        }
    }
    let mut by_slot: BTreeMap<SlotId, Vec<PlanValueId>> = BTreeMap::new();
    for v in (0..n).map(PlanValueId::from_index) {
        if let Storage::Slot(s) | Storage::Input { slot: s } = plan.value(v).storage {
            by_slot.entry(s).or_default().push(v);
        }
    }
    for (slot, vs) in &by_slot {
        for (j, &a) in vs.iter().enumerate() {
            for &b in &vs[j + 1..] {
                let span = |v: PlanValueId| {
                    let d = def[v.index()].unwrap_or(end);
                    (d, last[v.index()].unwrap_or(d).max(d))
                };
                let ((da, ea), (db, eb)) = (span(a), span(b));
                let apart = ea < db || eb < da;
                let handed_over =
                    (ea == db && in_place_over(db, a)) || (eb == da && in_place_over(da, b));
                if !apart && !handed_over {
                    return Err(format!(
                        "values {a} (live {da}..={ea}) and {b} (live {db}..={eb}) share slot {slot}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// What the lowered graphs exercised, by kind of step.
#[derive(Debug, Default)]
struct Coverage(BTreeMap<&'static str, usize>);

const KINDS: &[&str] = &[
    "packed gemm",
    "packed gemm + bias",
    "gemm gelu erf",
    "gemm gelu tanh",
    "gemm relu",
    "gemm residual",
    "value gemm epilogue",
    "value gemm",
    "value gemm, b transposed",
    "value gemm, b rank 2",
    "elementwise Full",
    "elementwise Row",
    "elementwise Col",
    "elementwise Scalar",
    "elementwise chain of 3+",
    "elementwise in place",
    "layer_norm",
    "skip_layer_norm",
    "skip_layer_norm sum out",
    "rms_norm",
    "softmax",
    "log_softmax",
    "reference",
    "reference f64",
    "alias",
    "weight output",
    "gather rows",
];

impl Coverage {
    fn hit(&mut self, what: &'static str) {
        assert!(KINDS.contains(&what), "unknown kind {what}");
        *self.0.entry(what).or_default() += 1;
    }

    fn add(&mut self, other: &Coverage) {
        for (k, n) in &other.0 {
            *self.0.entry(k).or_default() += n;
        }
    }

    fn counts(&self) -> Vec<(&'static str, usize)> {
        KINDS
            .iter()
            .map(|&k| (k, self.0.get(k).copied().unwrap_or(0)))
            .collect()
    }

    fn of(plan: &Plan, kernels: &[GenKernel]) -> Coverage {
        let mut c = Coverage::default();
        for s in &plan.steps {
            match &s.kernel {
                Kernel::Gemm(g) => {
                    match g.b {
                        GemmB::Packed { .. } => c.hit("packed gemm"),
                        // Random graphs have no block-quantized weights (a GGUF frontend's).
                        GemmB::Blocks { .. } => c.hit("block gemm"),
                        GemmB::Value { trans } => {
                            c.hit("value gemm");
                            if g.bias || g.residual || g.activation != Activation::None {
                                c.hit("value gemm epilogue");
                            }
                            if trans {
                                c.hit("value gemm, b transposed");
                            }
                            if plan.value(s.inputs[1]).ty.rank() == 2 {
                                c.hit("value gemm, b rank 2");
                            }
                        }
                    }
                    if g.bias && matches!(g.b, GemmB::Packed { .. }) {
                        c.hit("packed gemm + bias");
                    }
                    match g.activation {
                        Activation::GeluErf => c.hit("gemm gelu erf"),
                        Activation::GeluTanh => c.hit("gemm gelu tanh"),
                        Activation::Relu => c.hit("gemm relu"),
                        Activation::None => {}
                    }
                    if g.residual {
                        c.hit("gemm residual");
                    }
                }
                Kernel::Generated(gs) => {
                    let k = kernels.iter().find(|k| k.name() == gs.symbol);
                    match k {
                        Some(GenKernel::Elementwise(ek)) => {
                            for a in &gs.access {
                                c.hit(match a {
                                    Access::Full => "elementwise Full",
                                    Access::Row => "elementwise Row",
                                    Access::Col => "elementwise Col",
                                    Access::Scalar => "elementwise Scalar",
                                });
                            }
                            let ops = ek.nodes.len() - ek.inputs.len();
                            if ops >= 3 {
                                c.hit("elementwise chain of 3+");
                            }
                            let o = plan.slot_of(s.outputs[0]);
                            if s.inputs.iter().any(|&v| plan.slot_of(v) == o) {
                                c.hit("elementwise in place");
                            }
                        }
                        Some(GenKernel::Row(rk)) => c.hit(match rk.op {
                            RowOp::LayerNorm { skip: None, .. } => "layer_norm",
                            RowOp::LayerNorm { sum_out: true, .. } => "skip_layer_norm sum out",
                            RowOp::LayerNorm { .. } => "skip_layer_norm",
                            RowOp::RmsNorm { .. } => "rms_norm",
                            RowOp::Softmax { log: false } => "softmax",
                            RowOp::Softmax { log: true } => "log_softmax",
                        }),
                        None => {}
                    }
                }
                Kernel::Reference(_) => {
                    c.hit("reference");
                    if s.outputs
                        .iter()
                        .any(|&o| plan.value(o).ty.dtype == DType::F64)
                    {
                        c.hit("reference f64");
                    }
                }
                Kernel::GatherRows => c.hit("gather rows"),
                _ => {}
            }
        }
        for v in &plan.values {
            if matches!(v.storage, Storage::Alias(_)) {
                c.hit("alias");
            }
        }
        for io in &plan.outputs {
            if matches!(
                plan.value(plan.root(io.value)).storage,
                Storage::Weight { .. }
            ) {
                c.hit("weight output");
            }
        }
        c
    }
}

/// The plan's steps, one a line, for failure messages.
fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let k = match &s.kernel {
            Kernel::Reference(op) => format!("reference {}", op.name()),
            Kernel::Generated(g) => format!("{} {:?} in_place {}", g.symbol, g.access, g.in_place),
            other => format!("{other:?}"),
        };
        let slots = |vs: &[PlanValueId]| -> Vec<String> {
            vs.iter()
                .map(|&v| format!("{v}@{:?}", plan.slot_of(v).map(|s| s.0)))
                .collect()
        };
        out += &format!(
            "  {i}: {k}: {:?} -> {:?}  ({})\n",
            slots(&s.inputs),
            slots(&s.outputs),
            s.origin
        );
    }
    out
}

/// Builds, lowers, compiles and runs the graph of `steps`/`seed` at batch 1, 3 and 1 in one
/// session, comparing with the interpreter; returns what the plan exercised.
fn check(steps: &[[u8; 4]], seed: u64) -> Result<Coverage, String> {
    let g = build(steps, seed);
    let text = || kiln_compiler::text::print(&g).unwrap_or_else(|e| format!("(unprintable: {e})"));
    kiln_compiler::verify(&g).map_err(|e| format!("the generated graph: {e}\n{}", text()))?;
    let lowered = lower(&g).map_err(|e| format!("lower: {e}\n{}", text()))?;
    let plan_text = describe(&lowered.plan);
    check_plan(&lowered.plan).map_err(|e| format!("{e}\nplan:\n{plan_text}{}", text()))?;
    let cov = Coverage::of(&lowered.plan, &lowered.kernels);
    let bytes = compile(&g, &Target::host(), &Options::unoptimized())
        .map_err(|e| format!("compile: {e}\n{}", text()))?
        .to_bytes();
    let model = Model::from_bytes(bytes, &LoadOptions::default())
        .map_err(|e| format!("load: {e}\n{}", text()))?;
    let mut session = model.session();
    // Batch 1, then 3, then 1 again with other inputs: the last run's arena holds the batch-3
    // run's bytes, so a kernel relying on zeroed or stale memory shows.
    for (run, batch) in [1, 3, 1].into_iter().enumerate() {
        let ins = common::random_inputs(
            &g,
            &[("batch", batch as i64)],
            seed.wrapping_add(run as u64) ^ batch as u64,
        );
        let want = kiln_compiler::interp::run(&g, &ins).map_err(|e| format!("interpreter: {e}"))?;
        let got = session
            .run(&ins)
            .map_err(|e| format!("run at batch {batch}: {e}\nplan:\n{plan_text}{}", text()))?;
        common::compare_outputs(&want, &got, RTOL, ATOL)
            .map_err(|e| format!("batch {batch}: {e}\nplan:\n{plan_text}{}", text()))?;
    }
    Ok(cov)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x6b69_6c6e),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn lowered_random_graphs_match_the_interpreter(
        steps in prop::collection::vec(any::<[u8; 4]>(), 1..14),
        seed in any::<u64>(),
    ) {
        check(&steps, seed).map_err(TestCaseError::fail)?;
    }
}

/// The generator is not vacuous: over fixed seeds its graphs lower to every kind of step the
/// backend has (and pass the checks).
#[test]
fn generated_graphs_reach_every_kernel() {
    let mut total = Coverage::default();
    for seed in 0..40u64 {
        let mut rng = Rng(!seed);
        let steps: Vec<[u8; 4]> = (0..12)
            .map(|_| rng.next_u64().to_le_bytes()[..4].try_into().unwrap())
            .collect();
        let cov = check(&steps, seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        total.add(&cov);
    }
    for (what, n) in total.counts() {
        assert!(n >= 2, "only {n} × {what} over 40 graphs: {total:?}");
    }
}

/// The comparison is not vacuous: a graph whose artifact is checked against a perturbed copy of
/// the interpreter's results fails.
#[test]
fn a_perturbed_result_is_reported() {
    let steps = [[0u8, 0, 0, 0], [1, 1, 2, 3]];
    let g = build(&steps, 7);
    let inputs = common::random_inputs(&g, &[("batch", 1)], 7 ^ 1);
    let mut want = kiln_compiler::interp::run(&g, &inputs).unwrap();
    let got = want.clone();
    let (name, t) = want[0].clone();
    let mut v = t.to_f64_vec();
    v[0] += 1e-3 * (1.0 + v[0].abs());
    want[0] = (
        name,
        kiln_runtime::Tensor::from_f64_values(t.dtype(), t.shape().to_vec(), &v).unwrap(),
    );
    let err = common::compare_outputs(&want, &got, RTOL, ATOL).unwrap_err();
    assert!(err.contains("element 0"), "{err}");
    assert!(common::compare_outputs(&got, &got, RTOL, ATOL).is_ok());
}

/// The plan check is not vacuous: moving a live value into another live value's slot, or a
/// reference step's output into its input's slot, is reported.
#[test]
fn the_plan_check_reports_overlapping_slots() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, vec![batch(), Dim::known(4)]));
    let a = g.add_node(Op::Softmax { axis: 0 }, &[x]).unwrap()[0];
    let b = g.add_node(Op::Softmax { axis: 0 }, &[a]).unwrap()[0];
    let c = g.add_node(Op::Softmax { axis: 0 }, &[b]).unwrap()[0];
    g.add_output("a", a);
    g.add_output("c", c);
    let plan = lower(&g).unwrap().plan;
    check_plan(&plan).unwrap();
    let slot = |v: PlanValueId| plan.slot_of(v).unwrap();
    let [ia, ib, ic] = [0, 1, 2].map(|i| plan.steps[i].outputs[0]);

    let mut p = plan.clone();
    p.values[ic.index()].storage = Storage::Slot(slot(ia));
    let e = check_plan(&p).unwrap_err();
    assert!(e.contains("share slot"), "{e}");

    let mut p = plan.clone();
    p.values[ic.index()].storage = Storage::Slot(slot(ib));
    let e = check_plan(&p).unwrap_err();
    assert!(e.contains("step 2") && e.contains("writes value"), "{e}");
}
