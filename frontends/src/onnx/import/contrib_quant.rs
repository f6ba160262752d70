//! ONNX Runtime's `MatMulNBits` (`com.microsoft`): 2-, 4- or 8-bit block-quantized weights,
//! dequantized at import time into a float `[K, N]` weight for an IR `matmul` (plus the bias).
//!
//! Layout (ONNX Runtime's `ContribOperators.md`, checked against its CPU kernel): `B` is uint8
//! `[N, k_blocks, block_size·bits/8]`, `k_blocks = ceil(K / block_size)`; the codes of a block
//! run along K, packed low bits first (for 4 bits: element 2i in the low nibble of byte i).
//! `scales` is `[N, k_blocks]` (or flat). `zero_points` is either uint8 packed the same way per
//! row, `[N, ceil(k_blocks·bits/8)]` (or flat), or float `[N, k_blocks]`; without it the zero
//! point is `2^(bits-1)`. `W[k, n] = (code - zero_point) · scale` for the block of `k`.

use super::contrib_common::shape;
use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{binary, dims, one, require_float};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Op};
use kiln_runtime::{Tensor, TensorData};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add_in("com.microsoft", "MatMulNBits", matmul_nbits);
}

/// The shape attributes, validated.
#[derive(Debug, Clone, Copy)]
struct Layout {
    k: usize,
    n: usize,
    bits: usize,
    block: usize,
    k_blocks: usize,
    /// Bytes per block of codes.
    blob: usize,
}

impl Layout {
    fn read(n: &NodeView) -> NResult<Layout> {
        let bits = n.int("bits", 4);
        if !matches!(bits, 2 | 4 | 8) {
            return unsupported(format!("MatMulNBits bits = {bits} (only 2, 4 and 8)"));
        }
        let prepacked = n.int("weight_prepacked", 0);
        if prepacked != 0 {
            return unsupported(format!(
                "MatMulNBits weight_prepacked = {prepacked} (an execution-provider layout)"
            ));
        }
        let positive = |name: &str| -> NResult<usize> {
            let v = n.req_int(name)?;
            usize::try_from(v).ok().filter(|&v| v > 0).ok_or_else(|| {
                super::ctx::NodeError::Invalid(format!("{name} must be positive, got {v}"))
            })
        };
        let (k, n_out, block) = (positive("K")?, positive("N")?, positive("block_size")?);
        if block < 16 || !block.is_power_of_two() {
            return invalid(format!(
                "block_size must be a power of two of at least 16, got {block}"
            ));
        }
        let bits = bits as usize;
        Ok(Layout {
            k,
            n: n_out,
            bits,
            block,
            k_blocks: k.div_ceil(block),
            blob: checked(&[block, bits], "a block")? / 8,
        })
    }

    /// Bytes per row of packed zero points.
    fn zp_row(&self) -> NResult<usize> {
        Ok(checked(&[self.k_blocks, self.bits], "zero points")?.div_ceil(8))
    }
}

/// The product of `v`, or an error naming `what` when it overflows.
fn checked(v: &[usize], what: &str) -> NResult<usize> {
    v.iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or_else(|| super::ctx::NodeError::Invalid(format!("the size of {what} overflows")))
}

/// Code `i` of a packed little-endian bit stream (`bits` divides 8, so none straddles bytes).
fn code(bytes: &[u8], i: usize, bits: usize) -> u8 {
    let bit = i * bits;
    let mask = ((1u16 << bits) - 1) as u8;
    (bytes[bit / 8] >> (bit % 8)) & mask
}

/// The constant value of input `i`, which must be an initializer with `len` elements.
fn constant(ctx: &mut Ctx, n: &NodeView, i: usize, what: &str, len: usize) -> NResult<Tensor> {
    let Some(t) = ctx.const_tensor(n.input(i)?) else {
        return unsupported(format!(
            "MatMulNBits {what} computed in the graph (it must be an initializer)"
        ));
    };
    if t.len() != len {
        return invalid(format!(
            "MatMulNBits {what} has shape {:?} ({} elements), expected {len}",
            t.shape(),
            t.len()
        ));
    }
    Ok(t)
}

/// The zero point of every `(row, block)`, row-major.
fn zero_points(ctx: &mut Ctx, n: &NodeView, l: &Layout) -> NResult<Vec<f32>> {
    let cells = checked(&[l.n, l.k_blocks], "the scales")?;
    let Some(zp) = n.opt_input(3) else {
        return Ok(vec![(1u32 << (l.bits - 1)) as f32; cells]);
    };
    let dt = ctx.ty(zp).dtype;
    if dt.is_float() {
        let t = constant(ctx, n, 3, "zero_points", cells)?;
        return Ok(t.to_f64_vec().into_iter().map(|v| v as f32).collect());
    }
    if dt != DType::U8 {
        return invalid(format!(
            "MatMulNBits zero_points of dtype {dt} (uint8 or float)"
        ));
    }
    let row = l.zp_row()?;
    let t = constant(
        ctx,
        n,
        3,
        "zero_points",
        checked(&[l.n, row], "zero points")?,
    )?;
    let TensorData::U8(bytes) = t.data() else {
        return invalid("MatMulNBits zero_points are not uint8");
    };
    let mut out = Vec::with_capacity(cells);
    for r in 0..l.n {
        let packed = &bytes[r * row..(r + 1) * row];
        out.extend((0..l.k_blocks).map(|b| f32::from(code(packed, b, l.bits))));
    }
    Ok(out)
}

/// The dequantized `[K, N]` weight in `dtype`.
fn dequantize(ctx: &mut Ctx, n: &NodeView, l: &Layout, dtype: DType) -> NResult<Tensor> {
    let b_len = checked(&[l.n, l.k_blocks, l.blob], "B")?;
    let b = constant(ctx, n, 1, "B", b_len)?;
    if b.dtype() != DType::U8 || b.shape().first() != Some(&l.n) {
        return invalid(format!(
            "MatMulNBits B must be uint8 [N = {}, {}, {}], got {} {:?}",
            l.n,
            l.k_blocks,
            l.blob,
            b.dtype(),
            b.shape()
        ));
    }
    let TensorData::U8(codes) = b.data() else {
        return invalid("MatMulNBits B is not uint8");
    };
    let cells = checked(&[l.n, l.k_blocks], "the scales")?;
    if !ctx.ty(n.input(2)?).dtype.is_float() {
        return invalid("MatMulNBits scales must be float");
    }
    let scales = constant(ctx, n, 2, "scales", cells)?.to_f64_vec();
    let zps = zero_points(ctx, n, l)?;
    let total = checked(&[l.k, l.n], "the dequantized weight")?;
    let mut w = vec![0f32; total];
    let row_bytes = b_len / l.n;
    for r in 0..l.n {
        let row = &codes[r * row_bytes..(r + 1) * row_bytes];
        for k in 0..l.k {
            let cell = r * l.k_blocks + k / l.block;
            let q = f32::from(code(row, k, l.bits));
            w[k * l.n + r] = (q - zps[cell]) * scales[cell] as f32;
        }
    }
    let t = Tensor::from_f32(vec![l.k, l.n], w)?;
    Ok(if dtype == DType::F32 {
        t
    } else {
        t.cast(dtype)
    })
}

/// `(A, B, scales, [zero_points], [g_idx], [bias]) -> A · W + bias`. `accuracy_level` only
/// allows ONNX Runtime to compute with less precision, so it is ignored.
fn matmul_nbits(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let l = Layout::read(n)?;
    if n.opt_input(4).is_some() {
        return unsupported("MatMulNBits g_idx (deprecated act-order group indices)");
    }
    let a = n.input(0)?.clone();
    let dt = require_float(ctx, &a, "MatMulNBits")?;
    match dims(ctx, &a).last().map(|d| d.as_known()) {
        None => return invalid("MatMulNBits A is a scalar"),
        Some(Some(k)) if k != l.k as i64 => {
            return invalid(format!("MatMulNBits A has {k} features, K is {}", l.k))
        }
        _ => {}
    }
    let w = dequantize(ctx, n, &l, dt)?;
    let w = ctx.constant(w);
    let mut y = ctx.emit1(Op::MatMul, &[a, w])?;
    if let Some(bias) = n.opt_input(5) {
        let bd = dims(ctx, bias);
        if bd.len() != 1 || bd[0].as_known().is_some_and(|d| d != l.n as i64) {
            return invalid(format!(
                "MatMulNBits bias has shape {}, expected [{}]",
                shape(&bd),
                l.n
            ));
        }
        y = binary(ctx, BinaryOp::Add, &y, bias)?;
    }
    one(y)
}
