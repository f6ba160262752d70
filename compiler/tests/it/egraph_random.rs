//! Property test of the optimizer pipeline: random small graphs over `f32[batch, 3, 4]` that mix
//! elementwise, reduction, softmax and matmul ops with embedded fusable chains — LayerNorm,
//! RmsNorm and GELU (erf and tanh) in their various spellings, with random constants, axes and
//! affine shapes that sometimes violate a rule's guard — go through
//! `kiln_compiler::optimize::optimize`, which must succeed and give a graph that verifies and
//! computes what the input graph computes under the reference interpreter (rtol 1e-4,
//! atol 1e-5). Every embedded chain whose guards all hold must fuse (the result has at least
//! that many fused ops), and a graph without chains gains none.
//!
//! Values are kept in a moderate range and well conditioned (weights in [-0.5, 0.5], constant
//! factors in [0.5, 1.5], products of two values go through a sigmoid, a LayerNorm's input gets
//! a residual-like weight added, a GELU's input is bounded to [-2.5, 2.5]) so that f32 rounding
//! of the unfused chains — the cancellation in `x - mean(x)` and in `1 + erf(x/√2)` for very
//! negative x — stays far below the tolerance.

use crate::common;

use kiln_compiler::ir::{BinaryOp, DType, Dim, Graph, Op, ReduceOp, Shape, TensorType, UnaryOp};
use kiln_compiler::ir::{ValueDef, ValueId};
use kiln_compiler::optimize::optimize;
use proptest::prelude::*;

const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-5;

use common::GraphBuilder;

/// A graph under construction: every pooled value is `f32[batch, 3, 4]`.
struct Builder {
    base: GraphBuilder,
    pool: Vec<ValueId>,
    /// The embedded chains (each result becomes a graph output, so none is dead code).
    chains: Vec<Chain>,
}

/// An embedded chain: its result, the fused op it is a spelling of, and whether every guard
/// of that op's rule holds.
#[derive(Debug, Clone, Copy)]
struct Chain {
    root: ValueId,
    op: &'static str,
    valid: bool,
}

impl Builder {
    fn scalar(&mut self, v: f64) -> ValueId {
        self.base.weight(vec![], vec![v])
    }

    fn mean(&mut self, x: ValueId, axis: i64) -> ValueId {
        self.base.node(
            Op::Reduce {
                op: ReduceOp::Mean,
                axes: vec![axis],
                keepdims: true,
            },
            &[x],
        )
    }

    fn pooled(&mut self, b: u8) -> ValueId {
        self.pool[b as usize % self.pool.len()]
    }

    /// A random ε: valid (in (0, 1e-3)) or not, and whether it is.
    fn eps(&mut self) -> (f64, bool) {
        if self.base.rng.one_in(5) {
            (self.base.rng.pick(&[0.01, 0.5, 2e-3]), false)
        } else {
            (self.base.rng.pick(&[1e-5, 1e-6, 1e-4]), true)
        }
    }

    /// The last axis (as -1 or 2), or now and then axis 1; and whether it is the last.
    fn axis(&mut self) -> (i64, bool) {
        if self.base.rng.one_in(6) {
            (1, false)
        } else {
            (self.base.rng.pick(&[-1, 2]), true)
        }
    }

    /// An affine parameter: `[4]` (valid) or now and then `[3, 4]` / `[1, 4]` (invalid).
    fn affine(&mut self) -> (ValueId, bool) {
        if self.base.rng.one_in(6) {
            let shape = self.base.rng.pick(&[vec![3, 4], vec![1, 4]]);
            (self.base.random_weight(shape, 0.5, 1.5), false)
        } else {
            (self.base.random_weight(vec![4], 0.5, 1.5), true)
        }
    }

    /// `s²` as `Pow(s, 2)` or `Mul(s, s)`; now and then `Pow(s, 4)` (invalid).
    fn square(&mut self, s: ValueId) -> (ValueId, bool) {
        match self.base.rng.below(6) {
            0 => {
                let four = self.scalar(4.0);
                (self.base.bin(BinaryOp::Pow, s, four), false)
            }
            1 | 2 => (self.base.node(Op::Binary(BinaryOp::Mul), &[s, s]), true),
            _ => {
                let two = self.scalar(2.0);
                (self.base.node(Op::Binary(BinaryOp::Pow), &[s, two]), true)
            }
        }
    }

    /// `n / r` as Div or Mul by Reciprocal.
    fn divide(&mut self, n: ValueId, r: ValueId) -> ValueId {
        if self.base.rng.coin() {
            self.base.node(Op::Binary(BinaryOp::Div), &[n, r])
        } else {
            let inv = self.base.un(UnaryOp::Reciprocal, r);
            self.base.bin(BinaryOp::Mul, n, inv)
        }
    }

    /// The legacy LayerNorm chain over `x` plus a residual-like `[1, 3, 4]` weight, in a random
    /// spelling. (The added weight spreads every row, so the unfused chain's f32 cancellation
    /// in `x - mean(x)` stays well below the tolerance even when `x` is nearly constant.)
    fn layer_norm(&mut self, x: ValueId) -> ValueId {
        let r = self.base.random_weight(vec![1, 3, 4], -1.0, 1.0);
        let x = self.base.bin(BinaryOp::Add, x, r);
        let (a1, ok1) = self.axis();
        let (a2, ok2) = self.axis();
        let (eps, ok_eps) = self.eps();
        let (gamma, ok_g) = self.affine();
        let beta = if self.base.rng.one_in(3) {
            None
        } else {
            Some(self.affine())
        };
        let m = self.mean(x, a1);
        let d = self.base.node(Op::Binary(BinaryOp::Sub), &[x, m]);
        let (sq, ok_sq) = self.square(d);
        let var = self.mean(sq, a2);
        let e = self.scalar(eps);
        let ve = self.base.bin(BinaryOp::Add, var, e);
        let std = self.base.un(UnaryOp::Sqrt, ve);
        let n = self.divide(d, std);
        let mut y = self.base.bin(BinaryOp::Mul, n, gamma);
        let mut ok_b = true;
        if let Some((b, ok)) = beta {
            y = self.base.bin(BinaryOp::Add, y, b);
            ok_b = ok;
        }
        self.chains.push(Chain {
            root: y,
            op: "layer_norm",
            valid: ok1 && ok2 && ok_eps && ok_g && ok_b && ok_sq,
        });
        y
    }

    /// The RmsNorm chain over `x`, in a random spelling.
    fn rms_norm(&mut self, x: ValueId) -> ValueId {
        let (axis, ok_axis) = self.axis();
        let (eps, ok_eps) = self.eps();
        let (gamma, ok_g) = self.affine();
        let (sq, ok_sq) = self.square(x);
        let ms = self.mean(sq, axis);
        let e = self.scalar(eps);
        let ve = self.base.bin(BinaryOp::Add, ms, e);
        let mut ok_one = true;
        let n = match self.base.rng.below(4) {
            0 => {
                let inv = self.base.un(UnaryOp::Rsqrt, ve);
                self.base.bin(BinaryOp::Mul, x, inv)
            }
            1 => {
                let r = self.base.un(UnaryOp::Sqrt, ve);
                self.divide(x, r)
            }
            _ => {
                let r = self.base.un(UnaryOp::Sqrt, ve);
                let v = if self.base.rng.one_in(5) {
                    ok_one = false;
                    2.0
                } else {
                    1.0
                };
                let one = self.scalar(v);
                let inv = self.base.node(Op::Binary(BinaryOp::Div), &[one, r]);
                self.base.bin(BinaryOp::Mul, x, inv)
            }
        };
        let y = self.base.bin(BinaryOp::Mul, n, gamma);
        self.chains.push(Chain {
            root: y,
            op: "rms_norm",
            valid: ok_axis && ok_eps && ok_g && ok_sq && ok_one,
        });
        y
    }

    /// `(constant, valid)`: `good` most of the time, else `bad`.
    fn constant(&mut self, good: f64, bad: f64) -> (ValueId, bool) {
        if self.base.rng.one_in(8) {
            (self.scalar(bad), false)
        } else {
            (self.scalar(good), true)
        }
    }

    /// A GELU chain (erf or tanh) over `2.5·tanh(x)`, in a random spelling and grouping. (The
    /// unfused `1 + erf(x/√2)` cancels in f32 for very negative x, where the fused op is exact;
    /// a later normalisation by a small column could magnify that past the tolerance.)
    fn gelu(&mut self, x: ValueId) -> ValueId {
        let t = self.base.un(UnaryOp::Tanh, x);
        let s = self.scalar(2.5);
        let x = self.base.bin(BinaryOp::Mul, t, s);
        let mut ok = true;
        let (half, ok_half) = self.constant(0.5, 0.6);
        let (one, ok_one) = self.constant(1.0, 1.1);
        ok &= ok_half && ok_one;
        let f = if self.base.rng.coin() {
            let u = if self.base.rng.coin() {
                let (c, ok_c) = self.constant(f64::from(std::f32::consts::SQRT_2), 1.5);
                ok &= ok_c;
                self.base.node(Op::Binary(BinaryOp::Div), &[x, c])
            } else {
                let (c, ok_c) = self.constant(f64::from(std::f32::consts::FRAC_1_SQRT_2), 0.6);
                ok &= ok_c;
                self.base.bin(BinaryOp::Mul, x, c)
            };
            self.base.un(UnaryOp::Erf, u)
        } else {
            let (k, ok_k) = self.constant(0.79788456, 0.9);
            let (c, ok_c) = self.constant(0.044715, 0.05);
            ok &= ok_k && ok_c;
            let arg = match self.base.rng.below(3) {
                // k·(x + c·x³), the cube as Pow.
                0 => {
                    let three = self.scalar(3.0);
                    let x3 = self.base.node(Op::Binary(BinaryOp::Pow), &[x, three]);
                    let cx3 = self.base.bin(BinaryOp::Mul, x3, c);
                    let p = self.base.bin(BinaryOp::Add, x, cx3);
                    self.base.bin(BinaryOp::Mul, p, k)
                }
                // k·(c·(x·x·x) + x).
                1 => {
                    let xx = self.base.node(Op::Binary(BinaryOp::Mul), &[x, x]);
                    let x3 = self.base.bin(BinaryOp::Mul, xx, x);
                    let cx3 = self.base.bin(BinaryOp::Mul, c, x3);
                    let p = self.base.bin(BinaryOp::Add, cx3, x);
                    self.base.bin(BinaryOp::Mul, k, p)
                }
                // BLOOM: (k·x)·(1 + c·x·x).
                _ => {
                    let kx = self.base.bin(BinaryOp::Mul, k, x);
                    let cx = self.base.bin(BinaryOp::Mul, c, x);
                    let cxx = self.base.bin(BinaryOp::Mul, cx, x);
                    let one_b = self.scalar(1.0);
                    let p = self.base.bin(BinaryOp::Add, one_b, cxx);
                    self.base.bin(BinaryOp::Mul, kx, p)
                }
            };
            self.base.un(UnaryOp::Tanh, arg)
        };
        let f1 = self.base.bin(BinaryOp::Add, f, one);
        let y = match self.base.rng.below(3) {
            0 => {
                let xh = self.base.bin(BinaryOp::Mul, x, half);
                self.base.bin(BinaryOp::Mul, xh, f1)
            }
            1 => {
                let xf = self.base.bin(BinaryOp::Mul, x, f1);
                self.base.bin(BinaryOp::Mul, xf, half)
            }
            _ => {
                let hf = self.base.bin(BinaryOp::Mul, half, f1);
                self.base.bin(BinaryOp::Mul, hf, x)
            }
        };
        self.chains.push(Chain {
            root: y,
            op: "gelu",
            valid: ok,
        });
        y
    }

    /// One random step on the pool.
    fn step(&mut self, b: [u8; 4]) {
        let v = self.pooled(b[1]);
        let w = self.pooled(b[2]);
        let y = match b[0] % 12 {
            0 | 1 => {
                let op = self.base.rng.pick(&[
                    UnaryOp::Neg,
                    UnaryOp::Abs,
                    UnaryOp::Tanh,
                    UnaryOp::Sigmoid,
                    UnaryOp::Relu,
                    UnaryOp::Erf,
                    UnaryOp::Sin,
                    UnaryOp::Cos,
                ]);
                self.base.un(op, v)
            }
            2 => {
                let op = self.base.rng.pick(&[
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Max,
                    BinaryOp::Min,
                ]);
                self.base.bin(op, v, w)
            }
            3 => {
                // A product kept bounded: v · sigmoid(w).
                let s = self.base.un(UnaryOp::Sigmoid, w);
                self.base.bin(BinaryOp::Mul, v, s)
            }
            4 => {
                let shape = self
                    .base
                    .rng
                    .pick(&[vec![], vec![4], vec![3, 1], vec![1, 3, 4]]);
                let op = self
                    .base
                    .rng
                    .pick(&[BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul]);
                // Factors away from 0, so no value shrinks to noise around an offset.
                let (lo, hi) = if op == BinaryOp::Mul {
                    (0.5, 1.5)
                } else {
                    (-0.5, 0.5)
                };
                let c = self.base.random_weight(shape, lo, hi);
                self.base.bin(op, v, c)
            }
            5 => {
                let op = self.base.rng.pick(&[
                    ReduceOp::Sum,
                    ReduceOp::Mean,
                    ReduceOp::Max,
                    ReduceOp::Min,
                ]);
                let axis = self.base.rng.pick(&[-1, 1]);
                let r = self.base.node(
                    Op::Reduce {
                        op,
                        axes: vec![axis],
                        keepdims: true,
                    },
                    &[v],
                );
                let op = self.base.rng.pick(&[BinaryOp::Add, BinaryOp::Sub]);
                self.base.node(Op::Binary(op), &[w, r])
            }
            6 => {
                let m = self.base.random_weight(vec![4, 4], -0.5, 0.5);
                self.base.node(Op::MatMul, &[v, m])
            }
            7 => {
                let axis = self.base.rng.pick(&[-1, 1, 2]);
                self.base.node(Op::Softmax { axis }, &[v])
            }
            8 => self.layer_norm(v),
            9 => self.rms_norm(v),
            _ => self.gelu(v),
        };
        self.pool.push(y);
    }
}

/// A random graph from `steps` and `seed`, and its embedded chains. Outputs: the last value,
/// every chain's result (`chain<i>`), and sometimes another value.
fn build(steps: &[[u8; 4]], seed: u64) -> (Graph, Vec<Chain>) {
    let mut b = Builder {
        base: GraphBuilder::new(seed),
        pool: Vec::new(),
        chains: Vec::new(),
    };
    let ty = TensorType::new(
        DType::F32,
        Shape(vec![
            Dim::parse("batch").unwrap(),
            Dim::known(3),
            Dim::known(4),
        ]),
    );
    let x = b.base.g.add_input("x", ty.clone());
    b.pool.push(x);
    if b.base.rng.coin() {
        let y = b.base.g.add_input("y", ty);
        b.pool.push(y);
    }
    for &s in steps {
        b.step(s);
    }
    let last = *b.pool.last().unwrap();
    b.base.g.add_output("out", last);
    for (i, c) in b.chains.iter().enumerate() {
        b.base.g.add_output(format!("chain{i}"), c.root);
    }
    if b.base.rng.coin() {
        // A shared intermediate: a fusion must keep it.
        let i = b.base.rng.below(b.pool.len());
        let v = b.pool[i];
        b.base.g.add_output("side", v);
    }
    (b.base.g, b.chains)
}

/// The op name of the node producing output `name` as its first result (None for an input,
/// a weight or a later result of a multi-result node).
fn producer(g: &Graph, name: &str) -> Option<&'static str> {
    let (_, v) = g.outputs().iter().find(|(n, _)| n == name)?;
    match g.value(*v).def {
        ValueDef::Node { node, index: 0 } => Some(g.node(node).op.name()),
        _ => None,
    }
}

fn fused_ops(g: &Graph) -> usize {
    g.node_ids()
        .filter(|&n| {
            matches!(
                g.node(n).op.name(),
                "layer_norm" | "skip_layer_norm" | "rms_norm" | "gelu" | "attention"
            )
        })
        .count()
}

/// Optimizes the graph of `steps`/`seed` and checks it; `Err` describes the failure.
fn check(steps: &[[u8; 4]], seed: u64) -> Result<(), String> {
    let (g, chains) = build(steps, seed);
    kiln_compiler::verify(&g).map_err(|e| format!("the generated graph: {e}"))?;
    let text = || kiln_compiler::text::print(&g).unwrap();
    let mut opt = g.clone();
    let report = optimize(&mut opt).map_err(|e| format!("optimize: {e}\n{}", text()))?;
    kiln_compiler::verify(&opt).map_err(|e| format!("the optimized graph: {e}\n{}", text()))?;
    let opt_text = || kiln_compiler::text::print(&opt).unwrap();
    for (i, c) in chains.iter().enumerate() {
        let producer = producer(&opt, &format!("chain{i}"));
        let fused = matches!(
            producer,
            Some("layer_norm" | "skip_layer_norm" | "rms_norm" | "gelu")
        );
        // A valid chain must fuse (into its op — a LayerNorm possibly with the residual add
        // before it as a skip_layer_norm — or, for a LayerNorm without β, possibly an RmsNorm
        // of the centred value); an invalid one must not become its op.
        let same_op =
            producer == Some(c.op) || (c.op == "layer_norm" && producer == Some("skip_layer_norm"));
        let bad = if c.valid { !fused } else { same_op };
        if bad {
            return Err(format!(
                "chain{i} ({}, guards {}) is produced by {producer:?} (misses {:?})\n{}\n\
                 optimized:\n{}",
                c.op,
                if c.valid { "hold" } else { "fail" },
                report.egraph.misses,
                text(),
                opt_text()
            ));
        }
    }
    if chains.is_empty() && fused_ops(&opt) > 0 {
        return Err(format!(
            "no chain but {} fused op(s)\n{}\noptimized:\n{}",
            fused_ops(&opt),
            text(),
            opt_text()
        ));
    }
    let ins = common::random_inputs(&g, &[("batch", 2)], seed);
    let before = kiln_compiler::interp::run(&g, &ins).map_err(|e| format!("run: {e}"))?;
    let after =
        kiln_compiler::interp::run(&opt, &ins).map_err(|e| format!("run optimized: {e}"))?;
    for ((name, w), (_, o)) in before.iter().zip(&after) {
        if w.shape() != o.shape() || w.dtype() != o.dtype() {
            return Err(format!("output `{name}` changed type"));
        }
        for (i, (a, b)) in w.to_f64_vec().iter().zip(o.to_f64_vec()).enumerate() {
            let same =
                (a.is_nan() && b.is_nan()) || *a == b || (a - b).abs() <= ATOL + RTOL * a.abs();
            if !same {
                return Err(format!(
                    "output `{name}` element {i}: {b} optimized, {a} before\n{}\noptimized:\n{}",
                    text(),
                    opt_text()
                ));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn optimized_random_graphs_verify_and_compute_the_same(
        steps in prop::collection::vec(any::<[u8; 4]>(), 1..16),
        seed in any::<u64>(),
    ) {
        check(&steps, seed).map_err(TestCaseError::fail)?;
    }
}

/// The generator is not vacuous: over fixed seeds it embeds valid and invalid chains of every
/// kind, and they pass the checks.
#[test]
fn generated_graphs_embed_and_fuse_chains() {
    let mut seen = std::collections::BTreeMap::new();
    for seed in 0..80u64 {
        let steps: Vec<[u8; 4]> = (0..12u64)
            .map(|i| (seed * 97 + i * 13).to_le_bytes()[..4].try_into().unwrap())
            .collect();
        check(&steps, seed).unwrap();
        for c in build(&steps, seed).1 {
            *seen.entry((c.op, c.valid)).or_insert(0) += 1;
        }
    }
    for op in ["layer_norm", "rms_norm", "gelu"] {
        for valid in [true, false] {
            assert!(
                seen.get(&(op, valid)).is_some_and(|&n| n >= 3),
                "too few {op} chains with valid = {valid}: {seen:?}"
            );
        }
    }
}
