//! A graph under construction with a random source: weights with given or random values, nodes
//! that panic with the op on a building error, and binary ops with commuting operands swapped at
//! random. The random-graph property tests wrap it with their own value pools.

use kiln_compiler::ir::{BinaryOp, DType, Graph, Op, UnaryOp, ValueId, Weight};
use kiln_runtime::test_util::Rng;
use kiln_runtime::Tensor;

/// A graph and the random source that chooses its weights and operand orders.
pub struct GraphBuilder {
    /// The graph built so far.
    pub g: Graph,
    /// The random source.
    pub rng: Rng,
}

impl GraphBuilder {
    /// An empty graph drawing from `Rng(seed)`.
    pub fn new(seed: u64) -> GraphBuilder {
        GraphBuilder {
            g: Graph::new(),
            rng: Rng(seed),
        }
    }

    /// An f32 weight `w<N>` of `shape` holding `values`.
    pub fn weight(&mut self, shape: Vec<usize>, values: Vec<f64>) -> ValueId {
        self.weight_of(DType::F32, shape, values)
    }

    /// A weight `w<N>` of `dtype` and `shape` holding `values`.
    pub fn weight_of(&mut self, dtype: DType, shape: Vec<usize>, values: Vec<f64>) -> ValueId {
        let t = Tensor::from_f64_values(dtype, shape, &values).unwrap();
        let name = format!("w{}", self.g.weights().len());
        self.g.add_weight(Weight::from_tensor(name, &t))
    }

    /// An f32 weight of `shape` with values uniform in [lo, hi).
    pub fn random_weight(&mut self, shape: Vec<usize>, lo: f64, hi: f64) -> ValueId {
        self.random_weight_of(DType::F32, shape, lo, hi)
    }

    /// A weight of `dtype` and `shape` with values uniform in [lo, hi) (then rounded to dtype).
    pub fn random_weight_of(
        &mut self,
        dtype: DType,
        shape: Vec<usize>,
        lo: f64,
        hi: f64,
    ) -> ValueId {
        let n = shape.iter().product();
        let v = (0..n).map(|_| self.rng.uniform(lo, hi)).collect();
        self.weight_of(dtype, shape, v)
    }

    /// Every result of `op(ins)`.
    pub fn nodes(&mut self, op: Op, ins: &[ValueId]) -> Vec<ValueId> {
        self.g
            .add_node(op.clone(), ins)
            .unwrap_or_else(|e| panic!("building {op:?}: {e}"))
    }

    /// The first result of `op(ins)`.
    pub fn node(&mut self, op: Op, ins: &[ValueId]) -> ValueId {
        self.nodes(op, ins)[0]
    }

    /// `op(x)`.
    pub fn un(&mut self, op: UnaryOp, x: ValueId) -> ValueId {
        self.node(Op::Unary(op), &[x])
    }

    /// `op(a, b)`, or `op(b, a)` at random for an op that commutes.
    pub fn bin(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> ValueId {
        let commutes = matches!(
            op,
            BinaryOp::Add | BinaryOp::Mul | BinaryOp::Max | BinaryOp::Min
        );
        if commutes && self.rng.coin() {
            self.node(Op::Binary(op), &[b, a])
        } else {
            self.node(Op::Binary(op), &[a, b])
        }
    }
}
