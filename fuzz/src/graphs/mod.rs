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
    BinaryOp, DType, Dim, Graph, Op, Shape, TensorType, UnaryOp, ValueId, Weight,
};
use kiln_runtime::Tensor;
use std::collections::BTreeMap;

mod algebra;
mod norms;
mod shapes;

/// A value whose magnitude bound passes this is squashed by a tanh before further use.
pub const MAX_MAG: f64 = 8.0;
/// The most elements of any generated value.
const MAX_ELEMS: usize = 4096;
/// The most steps of one graph.
const MAX_STEPS: usize = 12;

/// splitmix64, the project's one test random source: the values of weights and inputs.
pub use kiln_runtime::test_util::Rng;

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
