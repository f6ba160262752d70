//! The `differential` generator's normalising steps: softmax, the fused norms, the exporters'
//! primitive spellings of LayerNorm and GELU, and attention.

use super::{dims, elems, Gen, Pv, Step, MAX_ELEMS};
use kiln_compiler::ir::{BinaryOp, Dim, Op, ReduceOp, Shape, UnaryOp, ValueId};

impl Gen<'_, '_> {
    pub(super) fn softmax(&mut self) -> Step {
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
    pub(super) fn spread(&mut self, x: &Pv, axis: usize) -> Option<ValueId> {
        let s = self.spread_weight(x.shape[axis..].to_vec());
        self.bin(BinaryOp::Add, x.v, s)
    }

    /// LayerNorm (over the last axis or a suffix of axes), SkipLayerNorm or RmsNorm.
    pub(super) fn norm(&mut self) -> Step {
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
    pub(super) fn layer_norm_primitives(&mut self) -> Step {
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
    pub(super) fn gelu_primitives(&mut self) -> Step {
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
    pub(super) fn attention(&mut self) -> Step {
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
}
