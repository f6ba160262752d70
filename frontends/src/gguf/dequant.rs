//! ggml tensor types (the block formats of llama.cpp's `ggml-quants.c`) and their conversion to
//! f32: F32, F16, BF16, the 32-element blocks Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the 256-element
//! K-quant super-blocks Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K. Other types are known by size (so a
//! file holding them parses) and refused when a tensor of theirs is loaded.

use half::f16;
use kiln_runtime::kernels::blocks::BlockFormat;

/// A ggml tensor type, by its id in the GGUF tensor info.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
}

/// Elements per super-block of the K-quants.
const QK_K: usize = 256;

/// `(type, id, name, elements per block, bytes per block)`, as ggml defines them.
const TYPES: &[(GgmlType, u32, &str, usize, usize)] = {
    use GgmlType::*;
    &[
        (F32, 0, "F32", 1, 4),
        (F16, 1, "F16", 1, 2),
        (Q4_0, 2, "Q4_0", 32, 18),
        (Q4_1, 3, "Q4_1", 32, 20),
        (Q5_0, 6, "Q5_0", 32, 22),
        (Q5_1, 7, "Q5_1", 32, 24),
        (Q8_0, 8, "Q8_0", 32, 34),
        (Q8_1, 9, "Q8_1", 32, 40),
        (Q2_K, 10, "Q2_K", QK_K, 84),
        (Q3_K, 11, "Q3_K", QK_K, 110),
        (Q4_K, 12, "Q4_K", QK_K, 144),
        (Q5_K, 13, "Q5_K", QK_K, 176),
        (Q6_K, 14, "Q6_K", QK_K, 210),
        (Q8_K, 15, "Q8_K", QK_K, 292),
        (IQ2_XXS, 16, "IQ2_XXS", QK_K, 66),
        (IQ2_XS, 17, "IQ2_XS", QK_K, 74),
        (IQ3_XXS, 18, "IQ3_XXS", QK_K, 98),
        (IQ1_S, 19, "IQ1_S", QK_K, 50),
        (IQ4_NL, 20, "IQ4_NL", 32, 18),
        (IQ3_S, 21, "IQ3_S", QK_K, 110),
        (IQ2_S, 22, "IQ2_S", QK_K, 82),
        (IQ4_XS, 23, "IQ4_XS", QK_K, 136),
        (I8, 24, "I8", 1, 1),
        (I16, 25, "I16", 1, 2),
        (I32, 26, "I32", 1, 4),
        (I64, 27, "I64", 1, 8),
        (F64, 28, "F64", 1, 8),
        (IQ1_M, 29, "IQ1_M", QK_K, 56),
        (BF16, 30, "BF16", 1, 2),
        (TQ1_0, 34, "TQ1_0", QK_K, 54),
        (TQ2_0, 35, "TQ2_0", QK_K, 66),
        (MXFP4, 39, "MXFP4", 32, 17),
    ]
};

impl GgmlType {
    fn entry(self) -> (GgmlType, u32, &'static str, usize, usize) {
        // Every variant has a row; the fallback is never taken.
        TYPES
            .iter()
            .copied()
            .find(|e| e.0 == self)
            .unwrap_or((self, u32::MAX, "?", 1, 1))
    }

    /// The type with GGUF id `id`, if ggml defines it.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        TYPES.iter().find(|e| e.1 == id).map(|e| e.0)
    }

    /// The type's id in GGUF files.
    pub fn id(self) -> u32 {
        self.entry().1
    }

    /// ggml's name for the type (`Q4_K`).
    pub fn name(self) -> &'static str {
        self.entry().2
    }

    /// The block format Kiln can keep this type in (`Q4_0`, `Q4_1`, `Q8_0`), if any.
    pub fn block_format(self) -> Option<BlockFormat> {
        match self {
            GgmlType::Q4_0 => Some(BlockFormat::Q4_0),
            GgmlType::Q4_1 => Some(BlockFormat::Q4_1),
            GgmlType::Q8_0 => Some(BlockFormat::Q8_0),
            _ => None,
        }
    }

    /// `(elements, bytes)` of one block.
    pub fn block(self) -> (usize, usize) {
        let e = self.entry();
        (e.3, e.4)
    }

    /// `(elements, bytes)` of a tensor with `dims` (innermost first): rows must hold whole
    /// blocks, and every product is checked.
    pub fn byte_len(self, dims: &[usize]) -> Result<(usize, usize), String> {
        let (be, bb) = self.block();
        let numel = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("the element count of dims {dims:?} overflows"))?;
        let row = dims.first().copied().unwrap_or(1);
        if !row.is_multiple_of(be) {
            return Err(format!(
                "rows of {row} elements are not whole {} blocks of {be}",
                self.name()
            ));
        }
        let len = (numel / be)
            .checked_mul(bb)
            .ok_or_else(|| format!("the byte length of dims {dims:?} overflows"))?;
        Ok((numel, len))
    }
}

fn half(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Converts `numel` elements stored as `ty` in `bytes` to f32; an unsupported type or a byte
/// length that does not match is an error message.
pub fn dequantize(ty: GgmlType, bytes: &[u8], numel: usize) -> Result<Vec<f32>, String> {
    let (be, bb) = ty.block();
    if !numel.is_multiple_of(be) || (numel / be).checked_mul(bb) != Some(bytes.len()) {
        return Err(format!(
            "{} bytes do not hold {numel} elements of type {}",
            bytes.len(),
            ty.name()
        ));
    }
    let block: fn(&[u8], &mut [f32]) = match ty {
        GgmlType::F32 => |b, y| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => |b, y| y[0] = half(b, 0),
        GgmlType::BF16 => {
            |b, y| y[0] = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)
        }
        // The formats Kiln can also keep quantized: one definition, the runtime's.
        GgmlType::Q4_0 => |b, y| BlockFormat::Q4_0.dequantize(b, y),
        GgmlType::Q4_1 => |b, y| BlockFormat::Q4_1.dequantize(b, y),
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q5_1 => q5_1,
        GgmlType::Q8_0 => |b, y| BlockFormat::Q8_0.dequantize(b, y),
        GgmlType::Q2_K => q2_k,
        GgmlType::Q3_K => q3_k,
        GgmlType::Q4_K => q4_k,
        GgmlType::Q5_K => q5_k,
        GgmlType::Q6_K => q6_k,
        GgmlType::Q8_K => q8_k,
        other => return Err(format!("ggml type {} is not supported yet", other.name())),
    };
    let mut out = vec![0f32; numel];
    for (b, y) in bytes.chunks_exact(bb).zip(out.chunks_exact_mut(be)) {
        block(b, y);
    }
    Ok(out)
}

/// The 5-bit values of a Q5 block: nibbles of `qs` with the fifth bit from `qh`.
fn five_bits(qh: &[u8], qs: &[u8], j: usize) -> (i32, i32) {
    let h = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let h0 = ((h >> j) << 4) & 0x10;
    let h1 = (h >> (j + 12)) & 0x10;
    (
        (u32::from(qs[j] & 0xF) | h0) as i32,
        (u32::from(qs[j] >> 4) | h1) as i32,
    )
}

/// `d: f16, qh: u32, qs: [u8; 16]`: `d · (q − 16)`.
fn q5_0(b: &[u8], y: &mut [f32]) {
    let d = half(b, 0);
    for j in 0..16 {
        let (x0, x1) = five_bits(&b[2..6], &b[6..22], j);
        y[j] = (x0 - 16) as f32 * d;
        y[j + 16] = (x1 - 16) as f32 * d;
    }
}

/// `d, m: f16, qh: u32, qs: [u8; 16]`: `d · q + m`.
fn q5_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (half(b, 0), half(b, 2));
    for j in 0..16 {
        let (x0, x1) = five_bits(&b[4..8], &b[8..24], j);
        y[j] = x0 as f32 * d + m;
        y[j + 16] = x1 as f32 * d + m;
    }
}

/// `scales: [u8; 16], qs: [u8; 64], d, dmin: f16`: 2-bit values in 16 groups of 16, each with a
/// 4-bit scale and a 4-bit min.
fn q2_k(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (half(b, 80), half(b, 82));
    let mut is = 0;
    let mut out = 0;
    for half_block in 0..2 {
        let q = &qs[32 * half_block..32 * half_block + 32];
        for shift in [0, 2, 4, 6] {
            for part in 0..2 {
                let sc = scales[is];
                is += 1;
                let (dl, ml) = (d * f32::from(sc & 0xF), dmin * f32::from(sc >> 4));
                for &ql in &q[16 * part..16 * part + 16] {
                    y[out] = dl * f32::from((ql >> shift) & 3) - ml;
                    out += 1;
                }
            }
        }
    }
}

/// `hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: f16`: 3-bit values (two low bits in
/// `qs`, the high bit in `hmask`, set meaning no −4 offset) with 16 six-bit scales.
fn q3_k(b: &[u8], y: &mut [f32]) {
    let (hm, qs, packed) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = half(b, 108);
    let mut scales = [0i32; 16];
    for (i, s) in scales.iter_mut().enumerate() {
        let low = (packed[i % 8] >> (4 * (i / 8))) & 0xF;
        let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
        *s = i32::from(low | (high << 4)) - 32;
    }
    let mut is = 0;
    let mut out = 0;
    let mut m = 1u8;
    for half_block in 0..2 {
        let q = &qs[32 * half_block..32 * half_block + 32];
        for shift in [0, 2, 4, 6] {
            for part in 0..2 {
                let dl = d * scales[is] as f32;
                is += 1;
                for l in 16 * part..16 * part + 16 {
                    let low = i32::from((q[l] >> shift) & 3);
                    let off = if hm[l] & m != 0 { 0 } else { 4 };
                    y[out] = dl * (low - off) as f32;
                    out += 1;
                }
            }
            m = m.wrapping_shl(1);
        }
    }
}

/// The six-bit scale and min of group `j` of a Q4_K / Q5_K block (`get_scale_min_k4`).
fn scale_min(j: usize, q: &[u8]) -> (f32, f32) {
    let (sc, m) = if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    };
    (f32::from(sc), f32::from(m))
}

/// `d, dmin: f16, scales: [u8; 12], qs: [u8; 128]`: 4-bit values in 8 groups of 32.
fn q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin, scales, qs) = (half(b, 0), half(b, 2), &b[4..16], &b[16..144]);
    for (g, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (s1, m1) = scale_min(2 * g, scales);
        let (s2, m2) = scale_min(2 * g + 1, scales);
        let (d1, m1, d2, m2) = (d * s1, dmin * m1, d * s2, dmin * m2);
        for l in 0..32 {
            y[l] = d1 * f32::from(q[l] & 0xF) - m1;
            y[l + 32] = d2 * f32::from(q[l] >> 4) - m2;
        }
    }
}

/// `d, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]`: Q4_K with a fifth bit.
fn q5_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin, scales) = (half(b, 0), half(b, 2), &b[4..16]);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    for (g, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (s1, m1) = scale_min(2 * g, scales);
        let (s2, m2) = scale_min(2 * g + 1, scales);
        let (d1, m1, d2, m2) = (d * s1, dmin * m1, d * s2, dmin * m2);
        let (u1, u2) = (1u8 << (2 * g), 2u8 << (2 * g));
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            y[l] = d1 * f32::from((q[l] & 0xF) + h1) - m1;
            y[l + 32] = d2 * f32::from((q[l] >> 4) + h2) - m2;
        }
    }
}

/// `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`: 6-bit values `− 32` in 16 groups.
fn q6_k(b: &[u8], y: &mut [f32]) {
    let d = half(b, 208);
    for n in 0..2 {
        let ql = &b[64 * n..64 * n + 64];
        let qh = &b[128 + 32 * n..128 + 32 * n + 32];
        let sc = &b[192 + 8 * n..192 + 8 * n + 8];
        let y = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = i32::from((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
            let q2 = i32::from((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            let q3 = i32::from((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            let q4 = i32::from((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            let s = |k: usize| d * f32::from(sc[is + k] as i8);
            y[l] = s(0) * q1 as f32;
            y[l + 32] = s(2) * q2 as f32;
            y[l + 64] = s(4) * q3 as f32;
            y[l + 96] = s(6) * q4 as f32;
        }
    }
}

/// `d: f32, qs: [i8; 256], bsums: [i16; 16]` (the sums are for dot products): `d · q`.
fn q8_k(b: &[u8], y: &mut [f32]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (yj, &q) in y.iter_mut().zip(&b[4..260]) {
        *yj = f32::from(q as i8) * d;
    }
}
