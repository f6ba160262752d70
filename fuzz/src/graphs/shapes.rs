//! The `differential` generator's reduction and data-movement steps: reductions, transposes,
//! reshapes, concat, slice, gather and a round trip through another dtype.

use super::{dims, elems, Gen, Pv, Step, MAX_ELEMS};
use kiln_compiler::ir::{DType, Dim, Op, ReduceOp, UnaryOp, Weight};
use kiln_runtime::Tensor;

impl Gen<'_, '_> {
    pub(super) fn reduce(&mut self) -> Step {
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

    pub(super) fn transpose(&mut self) -> Step {
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
    pub(super) fn reshape(&mut self) -> Step {
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

    pub(super) fn concat(&mut self) -> Step {
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

    pub(super) fn slice(&mut self) -> Step {
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
    pub(super) fn gather(&mut self) -> Step {
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
    pub(super) fn other_dtype(&mut self) -> Step {
        let p = self.pooled()?;
        let d = self.node1(Op::Cast { to: DType::F64 }, &[p.v])?;
        let t = self.un(UnaryOp::Tanh, d)?;
        let v = self.node1(Op::Cast { to: DType::F32 }, &[t])?;
        Some(Pv { v, mag: 1.0, ..p })
    }
}
