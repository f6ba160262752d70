//! Up-front checks of an attention call: dims, every view against the dims (largest index inside
//! its slice, overflow-checked) and output rows that do not overlap. The unsafe kernels rely on
//! these checks for every memory access they make.

use super::types::{AttentionError, Dims, Inputs};
use super::views::{View, ViewMut};

/// The largest key count the kernels index exactly (key positions are compared as `f32`).
pub(super) const MAX_KEYS: usize = 1 << 24;

/// The largest index reached by `(extent, stride)` axes plus a contiguous inner run of `inner`
/// elements, or `None` when nothing is reached (an extent is zero).
fn last_index(
    operand: &'static str,
    axes: &[(usize, usize)],
    inner: usize,
) -> Result<Option<usize>, AttentionError> {
    if inner == 0 || axes.iter().any(|&(n, _)| n == 0) {
        return Ok(None);
    }
    let overflow = AttentionError::Overflow { operand };
    let mut last = inner - 1;
    for &(n, stride) in axes {
        last = (n - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(last))
            .ok_or(overflow.clone())?;
    }
    Ok(Some(last))
}

/// Fails unless every index reached by the axes lies inside a slice of `len` elements.
fn check_reach(
    operand: &'static str,
    len: usize,
    axes: &[(usize, usize)],
    inner: usize,
) -> Result<(), AttentionError> {
    match last_index(operand, axes, inner)? {
        Some(last) if last >= len => Err(AttentionError::TooShort {
            operand,
            len,
            needed_index: last,
        }),
        _ => Ok(()),
    }
}

/// Checks a `[B, heads, s, d]` input view.
fn check_view(
    operand: &'static str,
    v: &View<'_>,
    batch: usize,
    heads: usize,
    s: usize,
    d: usize,
) -> Result<(), AttentionError> {
    let axes = [(batch, v.stride_b), (heads, v.stride_h), (s, v.stride_s)];
    check_reach(operand, v.data.len(), &axes, d)
}

/// Fails when two distinct (batch, head, row) rows of `Dv` elements of the output could share an
/// element: sorted by stride, each axis must step past everything the inner axes span.
fn check_disjoint(dims: &Dims, out: &ViewMut<'_>) -> Result<(), AttentionError> {
    let err = AttentionError::OverlappingOutput {
        stride_b: out.stride_b,
        stride_h: out.stride_h,
        stride_s: out.stride_s,
        dv: dims.dv,
    };
    let mut axes = [
        (out.stride_s, dims.sq),
        (out.stride_h, dims.heads),
        (out.stride_b, dims.batch),
    ];
    axes.sort_unstable();
    let mut span = dims.dv;
    for (stride, n) in axes {
        if n <= 1 {
            continue;
        }
        if stride < span {
            return Err(err);
        }
        span = stride
            .checked_mul(n - 1)
            .and_then(|x| x.checked_add(span))
            .ok_or(AttentionError::Overflow { operand: "out" })?;
    }
    Ok(())
}

/// Every check of an attention call, in operand order.
pub(super) fn check_all(
    dims: &Dims,
    inputs: &Inputs<'_>,
    out: &ViewMut<'_>,
) -> Result<(), AttentionError> {
    let Inputs {
        q,
        k,
        v,
        bias,
        key_mask,
        rotary,
    } = inputs;
    let Dims {
        batch,
        heads,
        kv_heads,
        sq,
        sk,
        d,
        dv,
    } = *dims;
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(AttentionError::Heads { heads, kv_heads });
    }
    if sk > MAX_KEYS {
        return Err(AttentionError::TooManyKeys { sk, max: MAX_KEYS });
    }
    check_view("q", q, batch, heads, sq, d)?;
    check_view("k", k, batch, kv_heads, sk, d)?;
    check_view("v", v, batch, kv_heads, sk, dv)?;
    if let Some(b) = bias {
        let axes = [
            (batch, b.stride_b),
            (heads, b.stride_h),
            (sq, b.stride_q),
            (sk, b.stride_k),
        ];
        check_reach("bias", b.data.len(), &axes, 1)?;
    }
    if let Some(m) = *key_mask {
        check_reach("key_mask", m.len(), &[(batch, sk)], sk)?;
    }
    if let Some(r) = rotary {
        if sq != sk || d % 2 != 0 {
            return Err(AttentionError::Rotary { sq, sk, d });
        }
        let axes = [(batch, r.stride_b), (sq, r.stride_s)];
        check_reach("cos", r.cos.len(), &axes, d)?;
        check_reach("sin", r.sin.len(), &axes, d)?;
    }
    let out_view = [
        (batch, out.stride_b),
        (heads, out.stride_h),
        (sq, out.stride_s),
    ];
    check_reach("out", out.data.len(), &out_view, dv)?;
    if batch > 0 && heads > 0 && sq > 0 && dv > 0 {
        check_disjoint(dims, out)?;
    }
    Ok(())
}
