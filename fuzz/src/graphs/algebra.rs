//! The `differential` generator's elementwise and matrix steps: unary and binary ops over pool
//! values and weights, and GEMMs with weights or between values.

use super::{elems, Gen, Pv, Step, MAX_ELEMS};
use kiln_compiler::ir::{BinaryOp, GeluApprox, Op, UnaryOp};

impl Gen<'_, '_> {
    pub(super) fn unary(&mut self) -> Step {
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

    pub(super) fn binary(&mut self) -> Step {
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
    pub(super) fn matmul(&mut self) -> Step {
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
    pub(super) fn value_matmul(&mut self) -> Step {
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
}
