//! Random small graphs for the `differential` target, chosen by the fuzz input: elementwise
//! unary and binary ops (with Full, broadcast-weight, scalar and pool operands), GEMMs with
//! weights (bias, GELU/ReLU, residual), products of values, softmax / log-softmax over any axis,
//! LayerNorm / SkipLayerNorm / RmsNorm, the exporters' primitive forms of LayerNorm, GELU and
//! attention (which the e-graph fuses), reductions, transposes, reshapes, concat, slice and
//! gather, over small static shapes. Weight and input values come from a splitmix64 stream
//! seeded by the input.
//!
//! Numerics (the CPU backend computes in f32, the interpreter in f64 rounded per op): every
//! value carries a rough magnitude bound and is squashed by a tanh once it passes
//! [`MAX_MAG`]; logarithms, roots and reciprocals read `sigmoid(x) + c` with `c ≥ 0.5`;
//! divisors lie in [0.5, 1.5]; powers take bases in [0.5, 1.5]; norms read their input plus a
//! fixed spread so that no row is nearly constant; nothing discontinuous (floor, comparisons,
//! arg-max) is generated, so a tolerance check is meaningful.

use arbitrary::Unstructured;
use kiln_compiler::ir::{
    BinaryOp, DType, Dim, GeluApprox, Graph, Op, ReduceOp, Shape, TensorType, UnaryOp, ValueId,
    Weight,
};
use kiln_runtime::Tensor;
use std::collections::BTreeMap;

/// A value whose magnitude bound passes this is squashed by a tanh before further use.
pub const MAX_MAG: f64 = 8.0;
/// The most elements of any generated value.
const MAX_ELEMS: usize = 4096;
/// The most steps of one graph.
const MAX_STEPS: usize = 12;

/// splitmix64: the values of weights and inputs.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// A pool value: its id, static shape and a rough bound on its magnitude.
#[derive(Debug, Clone)]
struct Pv {
    v: ValueId,
    shape: Vec<usize>,
    mag: f64,
}

/// A generated case: the graph and the feeds of its inputs.
#[derive(Debug)]
pub struct Case {
    /// The graph (verified by construction: every node went through `Graph::add_node`).
    pub graph: Graph,
    /// One feed per graph input.
    pub feeds: BTreeMap<String, Tensor>,
}

struct Gen<'a, 'b> {
    u: &'b mut Unstructured<'a>,
    rng: Rng,
    g: Graph,
    pool: Vec<Pv>,
    extra_outputs: Vec<ValueId>,
}

fn dims(shape: &[usize]) -> Shape {
    Shape(shape.iter().map(|&d| Dim::known(d as i64)).collect())
}

fn elems(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The result of a step: `None` drops the step (a shape that does not fit, a node the graph
/// refuses).
type Step = Option<Pv>;

impl Gen<'_, '_> {
    /// A choice in `0..n` from the input (0 once the input is used up).
    fn pick(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.u.choose_index(n).unwrap_or(0)
    }

    fn coin(&mut self) -> bool {
        self.pick(2) == 1
    }

    fn weight_values(&mut self, shape: Vec<usize>, values: Vec<f64>) -> ValueId {
        let t = Tensor::from_f64_values(DType::F32, shape, &values).expect("weight values");
        let name = format!("w{}", self.g.weights().len());
        self.g.add_weight(Weight::from_tensor(name, &t))
    }

    fn weight(&mut self, shape: Vec<usize>, lo: f64, hi: f64) -> ValueId {
        let n = elems(&shape);
        let v = (0..n).map(|_| self.rng.uniform(lo, hi)).collect();
        self.weight_values(shape, v)
    }

    /// A weight of `n` values spread evenly over [-1, 1] (rotated at random), so that its
    /// variance is bounded below.
    fn spread_weight(&mut self, shape: Vec<usize>) -> ValueId {
        let n = elems(&shape);
        let rot = self.rng.next_u64() as usize % n.max(1);
        let v = (0..n)
            .map(|i| {
                let j = (i + rot) % n;
                if n == 1 {
                    0.0
                } else {
                    -1.0 + 2.0 * j as f64 / (n - 1) as f64
                }
            })
            .collect();
        self.weight_values(shape, v)
    }

    fn scalar(&mut self, v: f64) -> ValueId {
        let shape = [vec![], vec![1]][self.rng.next_u64() as usize % 2].clone();
        self.weight_values(shape, vec![v])
    }

    fn node(&mut self, op: Op, ins: &[ValueId]) -> Option<Vec<ValueId>> {
        self.g.add_node(op, ins).ok()
    }

    fn node1(&mut self, op: Op, ins: &[ValueId]) -> Option<ValueId> {
        Some(self.node(op, ins)?[0])
    }

    fn un(&mut self, op: UnaryOp, x: ValueId) -> Option<ValueId> {
        self.node1(Op::Unary(op), &[x])
    }

    fn bin(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> Option<ValueId> {
        self.node1(Op::Binary(op), &[a, b])
    }

    /// A pool value (the latest one half of the time, so chains form), squashed when large.
    fn pooled(&mut self) -> Option<Pv> {
        let i = if self.coin() {
            self.pool.len() - 1
        } else {
            self.pick(self.pool.len())
        };
        let p = self.pool[i].clone();
        if p.mag <= MAX_MAG {
            return Some(p);
        }
        let v = self.un(UnaryOp::Tanh, p.v)?;
        Some(Pv { v, mag: 1.0, ..p })
    }

    /// A pool value of exactly `shape`, if any (squashed when large).
    fn pooled_of(&mut self, shape: &[usize]) -> Option<Pv> {
        let same: Vec<usize> = (0..self.pool.len())
            .filter(|&i| self.pool[i].shape == shape)
            .collect();
        if same.is_empty() {
            return None;
        }
        let i = same[self.pick(same.len())];
        let p = self.pool[i].clone();
        if p.mag <= MAX_MAG {
            return Some(p);
        }
        let v = self.un(UnaryOp::Tanh, p.v)?;
        Some(Pv { v, mag: 1.0, ..p })
    }

    /// `sigmoid(x)·(hi - lo) + lo`: a value in [lo, hi] of x's shape.
    fn ranged(&mut self, x: ValueId, lo: f64, hi: f64) -> Option<ValueId> {
        let s = self.un(UnaryOp::Sigmoid, x)?;
        let k = self.scalar(hi - lo);
        let s = self.bin(BinaryOp::Mul, s, k)?;
        let c = self.scalar(lo);
        self.bin(BinaryOp::Add, s, c)
    }

    /// A shape that broadcasts to `shape`: some dims set to 1, maybe leading dims dropped.
    fn broadcast_shape(&mut self, shape: &[usize]) -> Vec<usize> {
        let drop = self.pick(shape.len() + 1);
        shape[drop..]
            .iter()
            .map(|&d| if self.coin() { 1 } else { d })
            .collect()
    }

    /// A second elementwise operand for `x` with values in `range` (or of magnitude ≤ 1): a
    /// broadcast weight, a scalar, or a pool value of x's shape (ranged when asked).
    fn operand(&mut self, x: &Pv, range: Option<(f64, f64)>) -> Option<Pv> {
        let (lo, hi) = range.unwrap_or((-1.0, 1.0));
        let wmag = lo.abs().max(hi.abs());
        match self.pick(4) {
            0 => {
                let shape = self.broadcast_shape(&x.shape);
                let v = self.weight(shape.clone(), lo, hi);
                Some(Pv {
                    v,
                    shape,
                    mag: wmag,
                })
            }
            1 => {
                let c = self.rng.uniform(lo, hi);
                let v = self.scalar(c);
                Some(Pv {
                    v,
                    shape: vec![],
                    mag: wmag,
                })
            }
            _ => {
                let q = self.pooled_of(&x.shape.clone())?;
                match range {
                    Some((lo, hi)) => {
                        let v = self.ranged(q.v, lo, hi)?;
                        Some(Pv { v, mag: wmag, ..q })
                    }
                    None => Some(q),
                }
            }
        }
    }

    fn unary(&mut self) -> Step {
        let p = self.pooled()?;
        let plain = [
            UnaryOp::Neg,
            UnaryOp::Abs,
            UnaryOp::Relu,
            UnaryOp::Tanh,
            UnaryOp::Erf,
            UnaryOp::Sigmoid,
            UnaryOp::Sin,
            UnaryOp::Cos,
            UnaryOp::Atan,
            UnaryOp::Softsign,
        ];
        let k = self.pick(plain.len() + 8);
        if k < plain.len() {
            let v = self.un(plain[k], p.v)?;
            let mag = if k >= 3 { 1.6 } else { p.mag };
            return Some(Pv { v, mag, ..p });
        }
        match k - plain.len() {
            0 => {
                // exp(min(x, c)) ≤ e^1.5.
                let c = self.rng.uniform(0.5, 1.5);
                let c = self.scalar(c);
                let m = self.bin(BinaryOp::Min, p.v, c)?;
                let v = self.un(UnaryOp::Exp, m)?;
                Some(Pv { v, mag: 4.5, ..p })
            }
            1..=4 => {
                // log, sqrt, rsqrt, 1/x of sigmoid(x) + 0.5.
                let op = [
                    UnaryOp::Log,
                    UnaryOp::Sqrt,
                    UnaryOp::Rsqrt,
                    UnaryOp::Reciprocal,
                ][k - plain.len() - 1];
                let s = self.un(UnaryOp::Sigmoid, p.v)?;
                let c = self.scalar(0.5);
                let pos = self.bin(BinaryOp::Add, s, c)?;
                let v = self.un(op, pos)?;
                Some(Pv { v, mag: 2.0, ..p })
            }
            5 => {
                // softplus of a bounded value.
                let v = self.un(UnaryOp::Softplus, p.v)?;
                Some(Pv {
                    v,
                    mag: p.mag + 1.0,
                    ..p
                })
            }
            _ => {
                let approx = if self.coin() {
                    GeluApprox::None
                } else {
                    GeluApprox::Tanh
                };
                let v = self.node1(Op::Gelu { approx }, &[p.v])?;
                Some(Pv { v, ..p })
            }
        }
    }

    fn binary(&mut self) -> Step {
        let p = self.pooled()?;
        let ops = [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Max,
            BinaryOp::Min,
            BinaryOp::Pow,
        ];
        let op = ops[self.pick(ops.len())];
        let (x, q) = match op {
            BinaryOp::Mul => (p.clone(), self.operand(&p, Some((-1.5, 1.5)))?),
            BinaryOp::Div => (p.clone(), self.operand(&p, Some((0.5, 1.5)))?),
            BinaryOp::Pow => {
                let base = self.ranged(p.v, 0.5, 1.5)?;
                let base = Pv {
                    v: base,
                    mag: 1.5,
                    ..p.clone()
                };
                let e = self.operand(&p, Some((-2.0, 2.0)))?;
                (base, e)
            }
            _ => (p.clone(), self.operand(&p, None)?),
        };
        let swap = self.coin() && !matches!(op, BinaryOp::Div | BinaryOp::Pow);
        let v = if swap {
            self.bin(op, q.v, x.v)?
        } else {
            self.bin(op, x.v, q.v)?
        };
        let shape = self.g.value(v).ty.shape.eval(&Default::default()).ok()?;
        if elems(&shape) > MAX_ELEMS {
            return None;
        }
        let mag = match op {
            BinaryOp::Add | BinaryOp::Sub => x.mag + q.mag,
            BinaryOp::Mul => x.mag * q.mag,
            BinaryOp::Div => x.mag * 2.0,
            BinaryOp::Pow => 4.0,
            _ => x.mag.max(q.mag),
        };
        Some(Pv { v, shape, mag })
    }

    /// `x·w` with a `[k, n]` weight (plus a bias), then maybe GELU / ReLU and a residual add.
    fn matmul(&mut self) -> Step {
        let p = self.pooled()?;
        let k = *p.shape.last()?;
        let n = [k, k, 1, 3, 8, 16, 33][self.pick(7)];
        let mut shape = p.shape.clone();
        *shape.last_mut()? = n;
        if elems(&shape) > MAX_ELEMS {
            return None;
        }
        let r = 1.0 / (k as f64).sqrt();
        let w = self.weight(vec![k, n], -r, r);
        let mut y = if self.coin() {
            let b = self.weight(vec![n], -0.5, 0.5);
            self.node1(Op::MatMulBias, &[p.v, w, b])?
        } else {
            self.node1(Op::MatMul, &[p.v, w])?
        };
        let mut mag = 1.2 * p.mag + 0.5;
        y = match self.pick(5) {
            0 => self.node1(
                Op::Gelu {
                    approx: GeluApprox::None,
                },
                &[y],
            )?,
            1 => self.node1(
                Op::Gelu {
                    approx: GeluApprox::Tanh,
                },
                &[y],
            )?,
            2 => self.un(UnaryOp::Relu, y)?,
            _ => y,
        };
        if self.coin() {
            if let Some(q) = self.pooled_of(&shape) {
                y = self.bin(BinaryOp::Add, y, q.v)?;
                mag += q.mag;
            }
        }
        Some(Pv { v: y, shape, mag })
    }

    /// A product of two values: `a·bᵀ` over the last two axes (b of a's shape), scaled.
    fn value_matmul(&mut self) -> Step {
        let a = self.pooled()?;
        if a.shape.len() < 2 {
            return None;
        }
        let b = self.pooled_of(&a.shape)?;
        let r = a.shape.len();
        let m = a.shape[r - 2];
        let k = a.shape[r - 1];
        let mut shape = a.shape.clone();
        shape[r - 1] = m;
        if elems(&shape) > MAX_ELEMS {
            return None;
        }
        let mut perm: Vec<i64> = (0..r as i64).collect();
        perm.swap(r - 2, r - 1);
        let bt = self.node1(Op::Transpose { perm }, &[b.v])?;
        let s = self.node1(Op::MatMul, &[a.v, bt])?;
        let c = self.scalar(1.0 / (k as f64).sqrt());
        let v = self.bin(BinaryOp::Mul, s, c)?;
        Some(Pv {
            v,
            shape,
            mag: a.mag * b.mag * (k as f64).sqrt(),
        })
    }

    fn softmax(&mut self) -> Step {
        let p = self.pooled()?;
        let r = p.shape.len() as i64;
        if r == 0 {
            return None;
        }
        let axis = self.pick(2 * r as usize) as i64 - r;
        if self.coin() {
            let v = self.node1(Op::Softmax { axis }, &[p.v])?;
            Some(Pv { v, mag: 1.0, ..p })
        } else {
            let v = self.node1(Op::LogSoftmax { axis }, &[p.v])?;
            Some(Pv {
                v,
                mag: 2.0 * p.mag + 2.0 + (*p.shape.last()? as f64).ln(),
                ..p
            })
        }
    }

    /// `x + spread` over the axes `axis..`, so no normalised group is nearly constant.
    fn spread(&mut self, x: &Pv, axis: usize) -> Option<ValueId> {
        let s = self.spread_weight(x.shape[axis..].to_vec());
        self.bin(BinaryOp::Add, x.v, s)
    }

    /// LayerNorm (over the last axis or a suffix of axes), SkipLayerNorm or RmsNorm.
    fn norm(&mut self) -> Step {
        let p = self.pooled()?;
        let r = p.shape.len();
        if r == 0 || *p.shape.last()? < 2 {
            return None;
        }
        let eps = [1e-5, 1e-6, 1e-3][self.pick(3)];
        let kind = self.pick(3);
        let axis = if kind == 0 && self.coin() {
            self.pick(r)
        } else {
            r - 1
        };
        let x = self.spread(&p, axis)?;
        let x_mag = p.mag + 1.0;
        let axis_attr = if self.coin() {
            axis as i64
        } else {
            axis as i64 - r as i64
        };
        let gshape = if self.coin() {
            p.shape[axis..].to_vec()
        } else {
            vec![p.shape[r - 1]]
        };
        let gamma = self.weight(gshape.clone(), 0.5, 1.5);
        let beta = if self.coin() {
            Some(self.weight(gshape, -0.5, 0.5))
        } else {
            None
        };
        let mag = 1.5 * (elems(&p.shape[axis..]) as f64).sqrt() + 0.5;
        match kind {
            0 => {
                let mut ins = vec![x, gamma];
                ins.extend(beta);
                let v = self.node1(
                    Op::LayerNorm {
                        axis: axis_attr,
                        eps,
                    },
                    &ins,
                )?;
                Some(Pv { v, mag, ..p })
            }
            1 => {
                let skip = match self.pooled_of(&p.shape) {
                    Some(q) if self.coin() => q,
                    _ => {
                        let shape = self.broadcast_shape(&p.shape);
                        let v = self.weight(shape.clone(), -1.0, 1.0);
                        Pv { v, shape, mag: 1.0 }
                    }
                };
                let mut ins = vec![x, skip.v, gamma];
                ins.extend(beta);
                let ys = self.node(
                    Op::SkipLayerNorm {
                        axis: axis_attr,
                        eps,
                    },
                    &ins,
                )?;
                if self.coin() {
                    self.pool.push(Pv {
                        v: ys[1],
                        shape: p.shape.clone(),
                        mag: x_mag + skip.mag,
                    });
                }
                Some(Pv { v: ys[0], mag, ..p })
            }
            _ => {
                let gamma = self.weight(vec![p.shape[r - 1]], 0.5, 1.5);
                let v = self.node1(Op::RmsNorm { eps }, &[x, gamma])?;
                Some(Pv { v, mag, ..p })
            }
        }
    }

    /// LayerNorm over the last axis as exporters write it: mean, sub, pow 2 (or mul), mean, add
    /// eps, sqrt, div, mul gamma, add beta (the `ln-fuse` rule's pattern).
    fn layer_norm_primitives(&mut self) -> Step {
        let p = self.pooled()?;
        let r = p.shape.len();
        if r == 0 || *p.shape.last()? < 2 {
            return None;
        }
        let c = p.shape[r - 1];
        let x = self.spread(&p, r - 1)?;
        let mean = |s: &mut Self, v| {
            s.node1(
                Op::Reduce {
                    op: ReduceOp::Mean,
                    axes: vec![-1],
                    keepdims: true,
                },
                &[v],
            )
        };
        let m = mean(self, x)?;
        let d = self.bin(BinaryOp::Sub, x, m)?;
        let sq = if self.coin() {
            let two = self.scalar(2.0);
            self.bin(BinaryOp::Pow, d, two)?
        } else {
            self.bin(BinaryOp::Mul, d, d)?
        };
        let var = mean(self, sq)?;
        let eps = self.scalar(1e-5);
        let ve = self.bin(BinaryOp::Add, var, eps)?;
        let sd = self.un(UnaryOp::Sqrt, ve)?;
        let n = self.bin(BinaryOp::Div, d, sd)?;
        let gamma = self.weight(vec![c], 0.5, 1.5);
        let y = self.bin(BinaryOp::Mul, n, gamma)?;
        let beta = self.weight(vec![c], -0.5, 0.5);
        let v = self.bin(BinaryOp::Add, y, beta)?;
        Some(Pv {
            v,
            mag: 1.5 * (c as f64).sqrt() + 0.5,
            ..p
        })
    }

    /// GELU as exporters write it: `x·0.5·(1 + erf(x/√2))` or the tanh formula.
    fn gelu_primitives(&mut self) -> Step {
        let p = self.pooled()?;
        let x = p.v;
        let inner = if self.coin() {
            let s = self.scalar(std::f64::consts::SQRT_2);
            let xs = self.bin(BinaryOp::Div, x, s)?;
            self.un(UnaryOp::Erf, xs)?
        } else {
            let three = self.scalar(3.0);
            let cube = self.bin(BinaryOp::Pow, x, three)?;
            let k = self.scalar(0.044715);
            let kc = self.bin(BinaryOp::Mul, cube, k)?;
            let sum = self.bin(BinaryOp::Add, x, kc)?;
            let r = self.scalar((2.0 / std::f64::consts::PI).sqrt());
            let arg = self.bin(BinaryOp::Mul, sum, r)?;
            self.un(UnaryOp::Tanh, arg)?
        };
        let one = self.scalar(1.0);
        let opi = self.bin(BinaryOp::Add, inner, one)?;
        let half = self.scalar(0.5);
        let xh = self.bin(BinaryOp::Mul, x, half)?;
        let v = self.bin(BinaryOp::Mul, xh, opi)?;
        Some(Pv { v, ..p })
    }

    /// Multi-head self-attention over a `[b, s, c]` value as exporters write it: projections,
    /// `[b, s, h, d]` views transposed to `[b, h, s, d]`, `softmax(q·kᵀ·scale (+ mask))·v`, back to
    /// `[b, s, c]` (the `attention-fuse` rule's pattern).
    fn attention(&mut self) -> Step {
        let p = self.pooled()?;
        let [b, s, c] = p.shape[..] else {
            return None;
        };
        let heads = [1, 2, 4][self.pick(3)];
        if c % heads != 0 || elems(&[b, heads, s, s]) > MAX_ELEMS {
            return None;
        }
        let d = c / heads;
        let r = 1.0 / (c as f64).sqrt();
        let proj = |g: &mut Self| -> Option<ValueId> {
            let w = g.weight(vec![c, c], -r, r);
            let y = g.node1(Op::MatMul, &[p.v, w])?;
            let view = Shape(
                [b, s, heads, d]
                    .iter()
                    .map(|&x| Dim::known(x as i64))
                    .collect(),
            )
            .0;
            let y = g.node1(Op::Reshape { shape: view }, &[y])?;
            g.node1(
                Op::Transpose {
                    perm: vec![0, 2, 1, 3],
                },
                &[y],
            )
        };
        let q = proj(self)?;
        let k = proj(self)?;
        let v = proj(self)?;
        let kt = self.node1(
            Op::Transpose {
                perm: vec![0, 1, 3, 2],
            },
            &[k],
        )?;
        let scores = self.node1(Op::MatMul, &[q, kt])?;
        let scale = self.scalar(1.0 / (d as f64).sqrt());
        let mut scores = self.bin(BinaryOp::Mul, scores, scale)?;
        if self.coin() {
            // A causal additive mask [s, s]: 0 on and below the diagonal, -1e4 above.
            let m: Vec<f64> = (0..s * s)
                .map(|i| if i % s > i / s { -1e4 } else { 0.0 })
                .collect();
            let mask = self.weight_values(vec![s, s], m);
            scores = self.bin(BinaryOp::Add, scores, mask)?;
        }
        let probs = self.node1(Op::Softmax { axis: -1 }, &[scores])?;
        let o = self.node1(Op::MatMul, &[probs, v])?;
        let o = self.node1(
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[o],
        )?;
        let v = self.node1(
            Op::Reshape {
                shape: dims(&[b, s, c]).0,
            },
            &[o],
        )?;
        Some(Pv {
            v,
            mag: 1.2 * p.mag + 0.5,
            ..p
        })
    }

    fn reduce(&mut self) -> Step {
        let p = self.pooled()?;
        let r = p.shape.len();
        if r == 0 {
            return None;
        }
        let op = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min][self.pick(4)];
        let mut axes: Vec<i64> = (0..r as i64).filter(|_| self.coin()).collect();
        if axes.is_empty() {
            axes.push(self.pick(r) as i64);
        }
        let keepdims = self.coin();
        let n: usize = axes.iter().map(|&a| p.shape[a as usize]).product();
        let shape: Vec<usize> = (0..r)
            .filter_map(|i| {
                if axes.contains(&(i as i64)) {
                    keepdims.then_some(1)
                } else {
                    Some(p.shape[i])
                }
            })
            .collect();
        let axes = axes
            .into_iter()
            .map(|a| if self.coin() { a } else { a - r as i64 })
            .collect();
        let v = self.node1(Op::Reduce { op, axes, keepdims }, &[p.v])?;
        let mag = if op == ReduceOp::Sum {
            p.mag * n as f64
        } else {
            p.mag
        };
        Some(Pv { v, shape, mag })
    }

    fn transpose(&mut self) -> Step {
        let p = self.pooled()?;
        let r = p.shape.len();
        if r < 2 {
            return None;
        }
        let mut perm: Vec<usize> = (0..r).collect();
        for i in (1..r).rev() {
            let j = self.pick(i + 1);
            perm.swap(i, j);
        }
        let shape = perm.iter().map(|&i| p.shape[i]).collect();
        let perm = perm.into_iter().map(|i| i as i64).collect();
        let v = self.node1(Op::Transpose { perm }, &[p.v])?;
        Some(Pv { v, shape, ..p })
    }

    /// A view of another shape: two adjacent dims merged, a dim split in two, a unit dim
    /// inserted, or everything flattened.
    fn reshape(&mut self) -> Step {
        let p = self.pooled()?;
        let r = p.shape.len();
        let mut shape = p.shape.clone();
        match self.pick(4) {
            0 if r >= 2 => {
                let i = self.pick(r - 1);
                let m = shape[i] * shape[i + 1];
                shape.splice(i..i + 2, [m]);
            }
            1 if (1..5).contains(&r) => {
                let i = self.pick(r);
                let d = shape[i];
                let f = (2..=d).find(|f| d % f == 0).unwrap_or(1);
                shape.splice(i..i + 1, [f, d / f]);
            }
            2 if r < 5 => {
                let i = self.pick(r + 1);
                shape.insert(i, 1);
            }
            _ => shape = vec![elems(&p.shape)],
        }
        let v = self.node1(
            Op::Reshape {
                shape: dims(&shape).0,
            },
            &[p.v],
        )?;
        Some(Pv { v, shape, ..p })
    }

    fn concat(&mut self) -> Step {
        let p = self.pooled()?;
        let r = p.shape.len();
        if r == 0 || 2 * elems(&p.shape) > MAX_ELEMS {
            return None;
        }
        let q = self.pooled_of(&p.shape)?;
        let axis = self.pick(r);
        let mut shape = p.shape.clone();
        shape[axis] *= 2;
        let a = if self.coin() {
            axis as i64
        } else {
            axis as i64 - r as i64
        };
        let v = self.node1(Op::Concat { axis: a }, &[p.v, q.v])?;
        Some(Pv {
            v,
            shape,
            mag: p.mag.max(q.mag),
        })
    }

    fn slice(&mut self) -> Step {
        let p = self.pooled()?;
        let r = p.shape.len();
        if r == 0 {
            return None;
        }
        let axis = self.pick(r);
        let d = p.shape[axis];
        let start = self.pick(d);
        let end = start + 1 + self.pick(d - start);
        let step = 1 + self.pick(2);
        let mut shape = p.shape.clone();
        shape[axis] = (end - start).div_ceil(step);
        let v = self.node1(
            Op::Slice {
                axes: vec![axis as i64],
                starts: vec![Dim::known(start as i64)],
                ends: vec![Dim::known(end as i64)],
                steps: vec![step as i64],
            },
            &[p.v],
        )?;
        Some(Pv { v, shape, ..p })
    }

    /// Rows of a value picked by constant indices (in range, some negative) along an axis.
    fn gather(&mut self) -> Step {
        let p = self.pooled()?;
        let r = p.shape.len();
        if r == 0 {
            return None;
        }
        let axis = self.pick(r);
        let d = p.shape[axis] as i64;
        let n = 1 + self.pick(6);
        let idx: Vec<i64> = (0..n)
            .map(|_| (self.rng.next_u64() % (2 * d as u64)) as i64 - d)
            .collect();
        let t = Tensor::from_i64_values(DType::I64, vec![n], &idx).ok()?;
        let name = format!("w{}", self.g.weights().len());
        let ids = self.g.add_weight(Weight::from_tensor(name, &t));
        let mut shape = p.shape.clone();
        shape[axis] = n;
        if elems(&shape) > MAX_ELEMS {
            return None;
        }
        let v = self.node1(Op::Gather { axis: axis as i64 }, &[p.v, ids])?;
        Some(Pv { v, shape, ..p })
    }

    /// f64 arithmetic between casts (the reference kernels), or an f32 `where` on a constant
    /// condition.
    fn other_dtype(&mut self) -> Step {
        let p = self.pooled()?;
        let d = self.node1(Op::Cast { to: DType::F64 }, &[p.v])?;
        let t = self.un(UnaryOp::Tanh, d)?;
        let v = self.node1(Op::Cast { to: DType::F32 }, &[t])?;
        Some(Pv { v, mag: 1.0, ..p })
    }

    fn step(&mut self) {
        let y = match self.pick(19) {
            0..=2 => self.unary(),
            3..=5 => self.binary(),
            6 | 7 => self.matmul(),
            8 => self.value_matmul(),
            9 => self.softmax(),
            10 => self.norm(),
            11 => self.layer_norm_primitives(),
            12 => self.gelu_primitives(),
            13 => self.attention(),
            14 => self.reduce(),
            15 => self.transpose(),
            16 => self.reshape(),
            17 => match self.pick(4) {
                0 => self.concat(),
                1 => self.slice(),
                2 => self.gather(),
                _ => self.other_dtype(),
            },
            _ => {
                // A second output.
                if let Some(p) = self.pooled() {
                    self.extra_outputs.push(p.v);
                }
                None
            }
        };
        if let Some(y) = y {
            if elems(&y.shape) <= MAX_ELEMS {
                self.pool.push(y);
            }
        }
    }
}

/// A random graph and its feeds from a fuzz input; `None` when the input is too short to name
/// an input shape.
pub fn build(data: &[u8]) -> Option<Case> {
    let mut u = Unstructured::new(data);
    let seed: u64 = u.arbitrary().ok()?;
    let rank = 1 + u.choose_index(4).ok()?;
    let sizes = [1usize, 2, 3, 4, 5, 7, 8, 13, 16, 33];
    let mut shape: Vec<usize> = (0..rank)
        .map(|_| sizes[u.choose_index(sizes.len()).unwrap_or(0)])
        .collect();
    while elems(&shape) > 1024 {
        let i = shape.iter().enumerate().max_by_key(|(_, &d)| d)?.0;
        shape[i] = shape[i].div_ceil(2);
    }
    let mut gen = Gen {
        u: &mut u,
        rng: Rng(seed),
        g: Graph::new(),
        pool: Vec::new(),
        extra_outputs: Vec::new(),
    };
    let ty = TensorType::new(DType::F32, dims(&shape));
    let x = gen.g.add_input("x", ty.clone());
    gen.pool.push(Pv {
        v: x,
        shape: shape.clone(),
        mag: 2.0,
    });
    if gen.coin() {
        let y = gen.g.add_input("y", ty);
        gen.pool.push(Pv {
            v: y,
            shape: shape.clone(),
            mag: 2.0,
        });
    }
    for _ in 0..MAX_STEPS {
        if gen.u.is_empty() {
            break;
        }
        gen.step();
    }
    let last = gen.pool.last()?.v;
    gen.g.add_output("out", last);
    let extra = std::mem::take(&mut gen.extra_outputs);
    for (i, v) in extra.into_iter().enumerate() {
        gen.g.add_output(format!("extra{i}"), v);
    }
    let mut feeds = BTreeMap::new();
    for &v in gen.g.inputs() {
        let val = gen.g.value(v);
        let n = elems(&shape);
        let vals: Vec<f64> = (0..n).map(|_| gen.rng.uniform(-2.0, 2.0)).collect();
        let t = Tensor::from_f64_values(DType::F32, shape.clone(), &vals).ok()?;
        feeds.insert(val.name.clone()?, t);
    }
    Some(Case {
        graph: gen.g,
        feeds,
    })
}
