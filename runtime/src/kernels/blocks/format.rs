//! The block formats a quantized weight can keep in an artifact (ggml's `Q4_0`, `Q4_1` and
//! `Q8_0`, byte for byte as GGUF files store them) and their exact scalar dequantization, the
//! definition every other path (the SIMD kernels, the GGUF frontend) reproduces bit for bit.

use half::f16;
use serde::{Deserialize, Serialize};

/// Elements per block, in every format.
pub const BLOCK: usize = 32;

/// A ggml block format. Each block holds [`BLOCK`] consecutive elements of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlockFormat {
    /// `d: f16, qs: [u8; 16]`: element `i < 16` is `(qs[i] & 0xF) − 8`, element `i + 16` is
    /// `(qs[i] >> 4) − 8`, each times `d`.
    Q4_0,
    /// `d: f16, m: f16, qs: [u8; 16]`: nibbles as in `Q4_0` without the offset, `d · q + m`.
    Q4_1,
    /// `d: f16, qs: [i8; 32]`: `d · q`.
    Q8_0,
}

impl BlockFormat {
    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_0 => 18,
            BlockFormat::Q4_1 => 20,
            BlockFormat::Q8_0 => 34,
        }
    }

    /// ggml's name of the format (`Q4_1`).
    pub const fn name(self) -> &'static str {
        match self {
            BlockFormat::Q4_0 => "Q4_0",
            BlockFormat::Q4_1 => "Q4_1",
            BlockFormat::Q8_0 => "Q8_0",
        }
    }

    /// Bytes of one row of `k` elements, `None` unless `k` is a whole number of blocks (or on
    /// overflow).
    pub fn row_bytes(self, k: usize) -> Option<usize> {
        if !k.is_multiple_of(BLOCK) {
            return None;
        }
        (k / BLOCK).checked_mul(self.block_bytes())
    }

    /// Dequantizes one block (`block.len() ≥ block_bytes()`) into `out`: the multiply and the
    /// add of `Q4_1` are rounded separately (no fused multiply-add), as ggml does.
    pub fn dequantize_block(self, block: &[u8], out: &mut [f32; BLOCK]) {
        let half = |at: usize| f16::from_le_bytes([block[at], block[at + 1]]).to_f32();
        let d = half(0);
        match self {
            BlockFormat::Q4_0 => {
                for (j, &q) in block[2..18].iter().enumerate() {
                    out[j] = (i32::from(q & 0xF) - 8) as f32 * d;
                    out[j + 16] = (i32::from(q >> 4) - 8) as f32 * d;
                }
            }
            BlockFormat::Q4_1 => {
                let m = half(2);
                for (j, &q) in block[4..20].iter().enumerate() {
                    out[j] = f32::from(q & 0xF) * d + m;
                    out[j + 16] = f32::from(q >> 4) * d + m;
                }
            }
            BlockFormat::Q8_0 => {
                for (j, &q) in block[2..34].iter().enumerate() {
                    out[j] = f32::from(q as i8) * d;
                }
            }
        }
    }

    /// Dequantizes whole blocks: `out.len()` must be a multiple of [`BLOCK`] and `bytes` must
    /// hold `out.len() / BLOCK` blocks (extra bytes are ignored).
    ///
    /// # Panics
    /// When the lengths disagree (a caller bug: every caller checks its sizes first).
    pub fn dequantize(self, bytes: &[u8], out: &mut [f32]) {
        assert!(out.len().is_multiple_of(BLOCK), "whole blocks only");
        let bb = self.block_bytes();
        assert!(bytes.len() >= out.len() / BLOCK * bb, "too few bytes");
        for (block, dst) in bytes.chunks_exact(bb).zip(out.chunks_exact_mut(BLOCK)) {
            let dst: &mut [f32; BLOCK] = dst.try_into().expect("chunks of BLOCK");
            self.dequantize_block(block, dst);
        }
    }
}
