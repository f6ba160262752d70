//! ONNX `RotaryEmbedding` (opset 23) and `SwiGLU` importers, decomposed into slice / mul /
//! concat ops, and the head-layout helpers that the `Attention` importer shares.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_nn::{bin, bin_c, float_input, reshape, un};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, Dim, Op, UnaryOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("RotaryEmbedding", rotary_embedding);
    r.add("SwiGLU", swiglu);
}

/// The dims of an operand.
pub(super) fn dims(ctx: &Ctx, o: &Operand) -> Vec<Dim> {
    ctx.ty(o).shape.0
}

/// A dim that must be known at import time (`what` names it in the error).
pub(super) fn known(d: &Dim, what: &str) -> NResult<i64> {
    d.as_known()
        .ok_or(())
        .or_else(|_| unsupported(format!("{what} must be known at import time, got {d}")))
}

/// `[B, S, H·D] -> [B, H, S, D]`.
pub(super) fn split_heads(ctx: &mut Ctx, x: &Operand, heads: i64, what: &str) -> NResult<Operand> {
    let d = dims(ctx, x);
    if heads < 1 || d[2].as_known().is_some_and(|h| h % heads != 0) {
        return invalid(format!(
            "{what} hidden size {} does not split into {heads} heads",
            d[2]
        ));
    }
    let shape = vec![
        d[0].clone(),
        d[1].clone(),
        Dim::known(heads),
        d[2].floor_div(&Dim::known(heads)),
    ];
    let x = reshape(ctx, x, shape)?;
    ctx.emit1(
        Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        &[x],
    )
}

/// `[B, Hkv, S, D] -> [B, Hkv·g, S, D]`, each kv head repeated `g` times in place.
pub(super) fn repeat_heads(ctx: &mut Ctx, x: &Operand, g: i64) -> NResult<Operand> {
    if g == 1 {
        return Ok(x.clone());
    }
    let d = dims(ctx, x);
    let one = Dim::known(1);
    let x5 = reshape(
        ctx,
        x,
        vec![d[0].clone(), d[1].clone(), one, d[2].clone(), d[3].clone()],
    )?;
    let big = vec![
        d[0].clone(),
        d[1].clone(),
        Dim::known(g),
        d[2].clone(),
        d[3].clone(),
    ];
    let x5 = ctx.emit1(Op::Expand { shape: big }, &[x5])?;
    reshape(
        ctx,
        &x5,
        vec![
            d[0].clone(),
            d[1].mul(&Dim::known(g)),
            d[2].clone(),
            d[3].clone(),
        ],
    )
}

/// Rotates the first `rotary_embedding_dim` features of each head: `x1·cos - x2·sin`,
/// `x1·sin + x2·cos` for the halves (or, interleaved, the even/odd features).
fn rotary_embedding(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n, 0)?;
    let mut table = |i: usize| -> NResult<Operand> {
        let t = n.input(i)?.clone();
        match n.opt_input(3) {
            Some(p) => ctx.emit1(Op::Gather { axis: 0 }, &[t, p.clone()]),
            None => Ok(t),
        }
    };
    let trig = [table(1)?, table(2)?];
    let heads = n.int("num_heads", 0);
    let rot = n.int("rotary_embedding_dim", 0);
    let interleaved = n.int("interleaved", 0) != 0;
    Ok(vec![rotate(ctx, &x, trig, heads, rot, interleaved)?])
}

/// Rotary embedding of `x`, 3-D `[B, S, H·D]` (split into `heads` heads) or 4-D `[B, H, S, D]`:
/// the first `rot` features of each head (all when `rot` is 0) are rotated by the `[cos, sin]`
/// tables of shape `[B or 1, S, rot/2]`, `x1·cos - x2·sin`, `x1·sin + x2·cos` for the halves
/// (or, interleaved, the even/odd features); the other features pass through.
pub(super) fn rotate(
    ctx: &mut Ctx,
    x: &Operand,
    trig: [Operand; 2],
    heads: i64,
    rot: i64,
    interleaved: bool,
) -> NResult<Operand> {
    let shape = dims(ctx, x);
    let one = Dim::known(1);
    // Work in [B, S, H, D] (3-D input) or [B, H, S, D] (4-D); the trig tables get a 1 for H.
    let (xh, trig_axis) = match shape.len() {
        3 => {
            let h = heads;
            if h < 1 || shape[2].as_known().is_some_and(|d| d % h != 0) {
                return invalid(format!(
                    "3-D input of hidden size {} needs num_heads dividing it, got {h}",
                    shape[2]
                ));
            }
            let hd = Dim::known(h);
            let v = vec![
                shape[0].clone(),
                shape[1].clone(),
                hd.clone(),
                shape[2].floor_div(&hd),
            ];
            (reshape(ctx, x, v)?, 2)
        }
        4 => (x.clone(), 1),
        r => {
            return invalid(format!(
                "RotaryEmbedding input must be 3-D or 4-D, got rank {r}"
            ))
        }
    };
    let d = known(&dims(ctx, &xh)[3], "the head size")?;
    let r = match rot {
        0 => d,
        r if r > 0 && r <= d && r % 2 == 0 => r,
        r => {
            return invalid(format!(
                "rotary_embedding_dim {r} must be even and at most the head size {d}"
            ))
        }
    };
    let mut tables = Vec::with_capacity(2);
    for t in trig {
        let td = dims(ctx, &t);
        if td.len() != 3 || td[2].as_known().is_some_and(|h| h != r / 2) {
            return invalid(format!(
                "cos/sin caches give shape {td:?}, expected [B, S, {}]",
                r / 2
            ));
        }
        let mut v = td[..2].to_vec();
        v.insert(trig_axis, one.clone());
        v.push(td[2].clone());
        tables.push(reshape(ctx, &t, v)?);
    }
    let slice = |ctx: &mut Ctx, x: &Operand, s: i64, e: i64, step: i64| -> NResult<Operand> {
        let op = Op::Slice {
            axes: vec![3],
            starts: vec![Dim::known(s)],
            ends: vec![Dim::known(e)],
            steps: vec![step],
        };
        ctx.emit1(op, std::slice::from_ref(x))
    };
    let (x1, x2) = if interleaved {
        (slice(ctx, &xh, 0, r, 2)?, slice(ctx, &xh, 1, r, 2)?)
    } else {
        (slice(ctx, &xh, 0, r / 2, 1)?, slice(ctx, &xh, r / 2, r, 1)?)
    };
    let (c, s) = (&tables[0], &tables[1]);
    let (a, bq) = (
        bin(ctx, BinaryOp::Mul, c, &x1)?,
        bin(ctx, BinaryOp::Mul, s, &x2)?,
    );
    let real = bin(ctx, BinaryOp::Sub, &a, &bq)?;
    let (a, bq) = (
        bin(ctx, BinaryOp::Mul, s, &x1)?,
        bin(ctx, BinaryOp::Mul, c, &x2)?,
    );
    let imag = bin(ctx, BinaryOp::Add, &a, &bq)?;
    let mut rot = if interleaved {
        let mut v = dims(ctx, &real);
        v.push(one);
        let (re, im) = (reshape(ctx, &real, v.clone())?, reshape(ctx, &imag, v)?);
        let pairs = ctx.emit1(Op::Concat { axis: 4 }, &[re, im])?;
        let mut v = dims(ctx, &xh);
        v[3] = Dim::known(r);
        reshape(ctx, &pairs, v)?
    } else {
        ctx.emit1(Op::Concat { axis: 3 }, &[real, imag])?
    };
    if r < d {
        let rest = slice(ctx, &xh, r, d, 1)?;
        rot = ctx.emit1(Op::Concat { axis: 3 }, &[rot, rest])?;
    }
    if shape.len() == 3 {
        reshape(ctx, &rot, shape)
    } else {
        Ok(rot)
    }
}

/// `a · sigmoid(alpha · a) · b`.
fn swiglu(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let a = float_input(ctx, n, 0)?;
    let b = n.input(1)?.clone();
    let alpha = f64::from(n.float("alpha", 1.0));
    let scaled = if alpha == 1.0 {
        a.clone()
    } else {
        bin_c(ctx, BinaryOp::Mul, &a, alpha)?
    };
    let gate = un(ctx, UnaryOp::Sigmoid, &scaled)?;
    let swish = bin(ctx, BinaryOp::Mul, &a, &gate)?;
    Ok(vec![bin(ctx, BinaryOp::Mul, &swish, &b)?])
}
