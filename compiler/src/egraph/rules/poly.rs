//! Small polynomials in one e-class: reads an expression built from `x`, constants, `Add`,
//! `Sub`, `Mul`, `Div` by a constant and `Pow` by a small integer as coefficients of
//! `1, x, x², …` — so a guard can ask "is this √(2/π)·(x + 0.044715·x³)?" whatever the
//! grouping, operand order and spelling of the cube (`Pow(x, 3)`, `x·x·x`, `x·(1 + c·x²)`).

use super::{bin, same};
use crate::egraph::analysis::scalar;
use crate::egraph::lang::KEGraph;
use crate::ir::BinaryOp;
use egg::Id;

/// Highest power tracked.
pub const DEGREE: usize = 4;

/// Coefficients of `1, x, …, x^DEGREE`.
pub type Poly = [f64; DEGREE + 1];

/// How deep an expression is read.
const MAX_DEPTH: usize = 6;

fn mul(a: &Poly, b: &Poly) -> Option<Poly> {
    let mut out = [0.0; DEGREE + 1];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            if x == 0.0 || y == 0.0 {
                continue;
            }
            *out.get_mut(i + j)? += x * y;
        }
    }
    Some(out)
}

fn zip(a: &Poly, b: &Poly, f: impl Fn(f64, f64) -> f64) -> Poly {
    let mut out = [0.0; DEGREE + 1];
    for i in 0..=DEGREE {
        out[i] = f(a[i], b[i]);
    }
    out
}

/// Class `t` as a polynomial in class `x` (None when it is not one this reader knows).
pub fn poly(eg: &KEGraph, t: Id, x: Id) -> Option<Poly> {
    read(eg, t, x, 0)
}

fn read(eg: &KEGraph, t: Id, x: Id, depth: usize) -> Option<Poly> {
    if same(eg, t, x) {
        let mut p = [0.0; DEGREE + 1];
        p[1] = 1.0;
        return Some(p);
    }
    if let Some(v) = scalar(eg, t) {
        let mut p = [0.0; DEGREE + 1];
        p[0] = v;
        return Some(p);
    }
    if depth >= MAX_DEPTH {
        return None;
    }
    let r = |c: Id| read(eg, c, x, depth + 1);
    for (a, b) in bin(eg, t, BinaryOp::Add) {
        if let (Some(pa), Some(pb)) = (r(a), r(b)) {
            return Some(zip(&pa, &pb, |u, v| u + v));
        }
    }
    for (a, b) in bin(eg, t, BinaryOp::Sub) {
        if let (Some(pa), Some(pb)) = (r(a), r(b)) {
            return Some(zip(&pa, &pb, |u, v| u - v));
        }
    }
    for (a, b) in bin(eg, t, BinaryOp::Mul) {
        if let (Some(pa), Some(pb)) = (r(a), r(b)) {
            if let Some(p) = mul(&pa, &pb) {
                return Some(p);
            }
        }
    }
    for (a, c) in bin(eg, t, BinaryOp::Div) {
        if let (Some(pa), Some(v)) = (r(a), scalar(eg, c).filter(|v| *v != 0.0)) {
            return Some(pa.map(|u| u / v));
        }
    }
    for (a, c) in bin(eg, t, BinaryOp::Pow) {
        let Some(n) =
            scalar(eg, c).filter(|n| n.fract() == 0.0 && (1.0..=DEGREE as f64).contains(n))
        else {
            continue;
        };
        if let Some(pa) = r(a) {
            let mut acc = pa;
            for _ in 1..n as usize {
                acc = mul(&acc, &pa)?;
            }
            return Some(acc);
        }
    }
    None
}

/// True when `p` equals `want` coefficient by coefficient within relative `rtol` (absolute
/// for zero coefficients: `rtol` times the largest wanted coefficient).
pub fn close(p: &Poly, want: &Poly, rtol: f64) -> bool {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    p.iter()
        .zip(want)
        .all(|(a, b)| (a - b).abs() <= rtol * b.abs().max(if *b == 0.0 { scale } else { 0.0 }))
}
