//! ONNX `Einsum`, lowered onto IR ops: repeated labels in one term become a diagonal
//! (transpose, reshape, strided slice), labels used once are summed away, and operands are
//! contracted left to right as batched matmuls (transpose + reshape + matmul + reshape).

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_linalg::matmul;
use super::ops_util::{dims, one, product, reshape, transpose};
use super::Registry;
use kiln_compiler::ir::{Dim, Op, ReduceOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Einsum", einsum);
}

/// Labels of ellipsis dims are `ELLIPSIS + k`, k counted over the broadcast ellipsis dims.
const ELLIPSIS: u32 = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Label(u8),
    Ellipsis,
}

/// Tokens of one term: letters and at most one `...`; spaces are ignored.
fn tokens(term: &str) -> NResult<Vec<Tok>> {
    let b = term.as_bytes();
    let (mut i, mut out) = (0, Vec::new());
    while i < b.len() {
        match b[i] {
            b'.' if b[i..].starts_with(b"...") && !out.contains(&Tok::Ellipsis) => {
                out.push(Tok::Ellipsis);
                i += 3;
            }
            c if c.is_ascii_alphabetic() => {
                out.push(Tok::Label(c));
                i += 1;
            }
            b' ' => i += 1,
            _ => return invalid(format!("Einsum: bad term `{term}`")),
        }
    }
    Ok(out)
}

/// The number of dims a term's ellipsis stands for, given the operand's rank.
fn ellipsis_rank(toks: &[Tok], rank: usize, term: &str) -> NResult<usize> {
    let explicit = toks.iter().filter(|t| matches!(t, Tok::Label(_))).count();
    let has = toks.contains(&Tok::Ellipsis);
    match rank.checked_sub(explicit) {
        Some(e) if has || e == 0 => Ok(if has { e } else { 0 }),
        _ => invalid(format!(
            "Einsum: term `{term}` does not match an operand of rank {rank}"
        )),
    }
}

/// A term's labels with its ellipsis expanded to `e` right-aligned labels out of `total`.
fn labels(toks: &[Tok], e: usize, total: usize) -> Vec<u32> {
    let mut out = Vec::new();
    for t in toks {
        match t {
            Tok::Label(c) => out.push(u32::from(*c)),
            Tok::Ellipsis => out.extend((total - e..total).map(|k| ELLIPSIS + k as u32)),
        }
    }
    out
}

/// An operand with one label per dim.
struct Term {
    x: Operand,
    labels: Vec<u32>,
}

/// Replaces the first label repeated in `t` by its diagonal, until labels are unique.
fn take_diagonals(ctx: &mut Ctx, t: &mut Term) -> NResult<()> {
    loop {
        let l = &t.labels;
        let Some((p, q)) =
            (0..l.len()).find_map(|p| (p + 1..l.len()).find(|&q| l[q] == l[p]).map(|q| (p, q)))
        else {
            return Ok(());
        };
        let d = dims(ctx, &t.x);
        let Some(n) = d[p].as_known().filter(|_| d[p] == d[q]) else {
            return unsupported(
                "Einsum: a repeated label (diagonal) over dims that are symbolic or differ",
            );
        };
        let Some(nn) = n.checked_mul(n) else {
            return invalid(format!("Einsum: diagonal of size {n} is too large"));
        };
        let mut perm: Vec<usize> = (0..d.len()).filter(|&i| i != p && i != q).collect();
        let mut shape: Vec<Dim> = perm.iter().map(|&i| d[i].clone()).collect();
        let mut new_labels: Vec<u32> = perm.iter().map(|&i| t.labels[i]).collect();
        perm.extend([p, q]);
        let x = transpose(ctx, &t.x, perm.iter().map(|&i| i as i64).collect())?;
        shape.push(Dim::known(nn));
        let x = reshape(ctx, &x, shape)?;
        let slice = Op::Slice {
            axes: vec![-1],
            starts: vec![Dim::known(0)],
            ends: vec![Dim::known(nn)],
            steps: vec![n + 1],
        };
        t.x = ctx.emit1(slice, &[x])?;
        new_labels.push(t.labels[p]);
        t.labels = new_labels;
    }
}

/// Sums away the labels of `t` that `keep` rejects.
fn sum_unused(ctx: &mut Ctx, t: &mut Term, keep: impl Fn(u32) -> bool) -> NResult<()> {
    let axes: Vec<i64> = (0..t.labels.len())
        .filter(|&i| !keep(t.labels[i]))
        .map(|i| i as i64)
        .collect();
    if axes.is_empty() {
        return Ok(());
    }
    t.x = ctx.emit1(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes,
            keepdims: false,
        },
        std::slice::from_ref(&t.x),
    )?;
    t.labels.retain(|l| keep(*l));
    Ok(())
}

/// The dims of `t` for `ls`, in that order.
fn dims_of(ctx: &Ctx, t: &Term, ls: &[u32]) -> Vec<Dim> {
    let d = dims(ctx, &t.x);
    ls.iter()
        .map(|l| d[t.labels.iter().position(|m| m == l).unwrap_or(0)].clone())
        .collect()
}

/// t transposed so its labels come in the order `ls` (a permutation of its labels).
fn permute(ctx: &mut Ctx, t: &Term, ls: &[u32]) -> NResult<Operand> {
    let perm = ls
        .iter()
        .map(|l| t.labels.iter().position(|m| m == l).unwrap_or(0) as i64)
        .collect();
    transpose(ctx, &t.x, perm)
}

/// Contracts `a` with `b`, keeping the labels `keep` accepts.
fn contract(ctx: &mut Ctx, mut a: Term, mut b: Term, keep: impl Fn(u32) -> bool) -> NResult<Term> {
    let (la, lb) = (a.labels.clone(), b.labels.clone());
    sum_unused(ctx, &mut a, |l| keep(l) || lb.contains(&l))?;
    sum_unused(ctx, &mut b, |l| keep(l) || la.contains(&l))?;
    let shared = |l: &u32| b.labels.contains(l);
    let batch: Vec<u32> = a
        .labels
        .iter()
        .copied()
        .filter(|l| shared(l) && keep(*l))
        .collect();
    let summed: Vec<u32> = a
        .labels
        .iter()
        .copied()
        .filter(|l| shared(l) && !keep(*l))
        .collect();
    let a_only: Vec<u32> = a.labels.iter().copied().filter(|l| !shared(l)).collect();
    let b_only: Vec<u32> = b
        .labels
        .iter()
        .copied()
        .filter(|l| !a.labels.contains(l))
        .collect();
    let (a_batch, b_batch) = (dims_of(ctx, &a, &batch), dims_of(ctx, &b, &batch));
    let (a_keep, b_keep) = (dims_of(ctx, &a, &a_only), dims_of(ctx, &b, &b_only));
    let k = product(&dims_of(ctx, &a, &summed));
    let order_a: Vec<u32> = batch
        .iter()
        .chain(&a_only)
        .chain(&summed)
        .copied()
        .collect();
    let order_b: Vec<u32> = batch
        .iter()
        .chain(&summed)
        .chain(&b_only)
        .copied()
        .collect();
    let xa = permute(ctx, &a, &order_a)?;
    let xb = permute(ctx, &b, &order_b)?;
    let mut sa = a_batch.clone();
    sa.extend([product(&a_keep), k.clone()]);
    let mut sb = b_batch.clone();
    sb.extend([k, product(&b_keep)]);
    let xa = reshape(ctx, &xa, sa)?;
    let xb = reshape(ctx, &xb, sb)?;
    let y = matmul(ctx, &xa, &xb)?;
    let mut shape: Vec<Dim> = a_batch
        .iter()
        .zip(&b_batch)
        .map(|(p, q)| {
            if p.as_known() == Some(1) {
                q.clone()
            } else {
                p.clone()
            }
        })
        .collect();
    shape.extend(a_keep);
    shape.extend(b_keep);
    let y = reshape(ctx, &y, shape)?;
    Ok(Term {
        x: y,
        labels: batch.into_iter().chain(a_only).chain(b_only).collect(),
    })
}

fn einsum(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let eq = n.string("equation", "");
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let inputs = n.present_inputs();
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != inputs.len() {
        return invalid(format!(
            "Einsum: equation `{eq}` has {} terms for {} inputs",
            terms.len(),
            inputs.len()
        ));
    }
    let toks = terms
        .iter()
        .map(|t| tokens(t))
        .collect::<NResult<Vec<_>>>()?;
    let ell = (0..terms.len())
        .map(|i| ellipsis_rank(&toks[i], dims(ctx, &inputs[i]).len(), terms[i]))
        .collect::<NResult<Vec<_>>>()?;
    let total = ell.iter().copied().max().unwrap_or(0);
    let mut ops: Vec<Term> = (0..terms.len())
        .map(|i| Term {
            x: inputs[i].clone(),
            labels: labels(&toks[i], ell[i], total),
        })
        .collect();
    let out: Vec<u32> = match rhs {
        Some(r) => labels(&tokens(r)?, total, total),
        None => {
            let all: Vec<u32> = ops.iter().flat_map(|t| t.labels.iter().copied()).collect();
            let mut once: Vec<u32> = all
                .iter()
                .copied()
                .filter(|&l| l < ELLIPSIS && all.iter().filter(|&&m| m == l).count() == 1)
                .collect();
            once.sort_unstable();
            (0..total as u32)
                .map(|k| ELLIPSIS + k)
                .chain(once)
                .collect()
        }
    };
    if (0..out.len()).any(|i| out[i + 1..].contains(&out[i])) {
        return invalid(format!("Einsum: output of `{eq}` repeats a label"));
    }
    for t in &mut ops {
        take_diagonals(ctx, t)?;
    }
    let mut rest = ops.into_iter();
    let Some(mut acc) = rest.next() else {
        return invalid("Einsum needs at least one input");
    };
    let rest: Vec<Term> = rest.collect();
    let later: Vec<Vec<u32>> = rest.iter().map(|t| t.labels.clone()).collect();
    for (i, t) in rest.into_iter().enumerate() {
        let after: Vec<u32> = later[i + 1..].iter().flatten().copied().collect();
        acc = contract(ctx, acc, t, |l| out.contains(&l) || after.contains(&l))?;
    }
    sum_unused(ctx, &mut acc, |l| out.contains(&l))?;
    if let Some(l) = out.iter().find(|l| !acc.labels.contains(l)) {
        return invalid(format!(
            "Einsum: output label {} of `{eq}` is not in any input",
            *l as u8 as char
        ));
    }
    one(permute(ctx, &acc, &out)?)
}
