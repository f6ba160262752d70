//! 2-D (and 1-D) convolution on f32 in NCHW layout (Kiln's `Op::Conv` for one or two spatial
//! dims): im2col into a thread-local scratch buffer and the packed-weight GEMM, or a direct loop
//! for convolutions with few output channels per group (depthwise).
//!
//! # Semantics
//!
//! `x [N, C, H, W]`, weight `[M, C/group, KH, KW]`, optional bias `[M]`, output `[N, M, OH, OW]`:
//! `y[n, m, oh, ow] = act(b[m] + Σ_{c, i, j} x[n, g·C/group + c, oh·sh + i·dh − top,
//! ow·sw + j·dw − left] · w[m, c, i, j])` with `g = m / (M/group)`, out-of-range input positions
//! reading zero, and `OH = ⌊(H + top + bottom − ((KH−1)·dh + 1)) / sh⌋ + 1` (likewise `OW`) —
//! the reference kernel's definition. A 1-D convolution is the case `H = KH = 1`
//! ([`ConvParams::conv1d`], [`ConvParams::from_shapes`]).
//!
//! # Paths and packed-weight layouts
//!
//! The path depends only on `M/group` (so packing only needs `C`, `M`, `KH`, `KW`, `group`):
//!
//! - **GEMM** (`M/group > 4`). Per image, the input is transposed to NHWC in scratch. The output
//!   pixels are cut into row blocks (sized so a block's im2col matrix stays in L2); per block,
//!   `colᵀ [pixels, group·Kg]` is built with `Kg = KH·KW·C/group` columns per group in
//!   `(i, j, c)` order, and per group `colᵀ_g [pixels, Kg] · Wᵀ_g [Kg, M/group]` runs as
//!   [`gemm_packed`] with the bias and activation in its epilogue, giving `[pixels, M]`, which
//!   is transposed into the NCHW output. A 1×1 kernel with stride 1 and no padding skips im2col
//!   (`A` is the NHWC image itself). Packed weights: for each group in order, [`pack_b`] of
//!   `Wᵀ_g` (`Kg × M/group`, row `(i·KW + j)·C/group + c`, column `m`), each
//!   [`packed_len`]`(Kg, M/group)` long.
//! - **Direct** (`M/group ≤ 4`, e.g. depthwise). Each output plane accumulates
//!   `w · (shifted input row)` over channels and taps, row by row; the bias starts the sums and
//!   the activation follows. Packed weights: the weight itself, `[M, C/group, KH, KW]`.
//!
//! # Threads
//!
//! Work runs in the caller's rayon pool: over images, over row blocks of an image, over output
//! planes on the direct path, and inside each GEMM. The GEMM path accumulates in the GEMM's
//! order, the direct path channel by channel, both in f32.

mod direct;
mod gemm_path;
mod layout;
mod params;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;

use super::gemm::{pack_b, packed_len, Activation, GemmError, Isa};
use params::Geometry;
pub use params::{Conv1d, ConvParams};

/// A convolution call whose arguments are inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvError {
    /// A size that must be at least 1 is zero.
    #[error("conv parameter `{field}` is zero")]
    ZeroSize {
        /// Which parameter (`c`, `m`, `h`, `w`, `kh`, `kw`, `group`, `strides`, `dilations`).
        field: &'static str,
    },
    /// The group count does not divide the channel counts.
    #[error("conv group {group} does not divide input channels {c} and output channels {m}")]
    Group {
        /// Groups.
        group: usize,
        /// Input channels.
        c: usize,
        /// Output channels.
        m: usize,
    },
    /// The dilated kernel is larger than the padded input, so the output would be empty.
    #[error("conv kernel span {span} exceeds the padded input {axis} {padded}")]
    EmptyOutput {
        /// `height` or `width`.
        axis: &'static str,
        /// `(kernel − 1)·dilation + 1`.
        span: usize,
        /// Input size plus both pads.
        padded: usize,
    },
    /// A size or element count overflows.
    #[error("conv {what} is too large")]
    Overflow {
        /// What overflowed.
        what: &'static str,
    },
    /// A buffer does not have the length the parameters give it.
    #[error("conv operand `{operand}` has {len} elements, expected {expected}")]
    Length {
        /// Which buffer (`x`, `w`, `packed_w`, `bias`, `out`).
        operand: &'static str,
        /// Its length.
        len: usize,
        /// The length the parameters need.
        expected: usize,
    },
    /// The requested kernel family needs CPU features this machine lacks.
    #[error("conv kernel {isa:?} needs CPU features this machine lacks")]
    IsaUnavailable {
        /// The kernel family asked for.
        isa: Isa,
    },
    /// Shapes or attributes that this kernel does not handle (only 1 or 2 spatial dims).
    #[error(
        "conv of input {x_shape:?} with weight {w_shape:?} and these attributes is not supported"
    )]
    Unsupported {
        /// Input shape.
        x_shape: Vec<usize>,
        /// Weight shape.
        w_shape: Vec<usize>,
    },
    /// A negative stride, pad, dilation or group.
    #[error("conv attribute `{name}` has negative value {value}")]
    NegativeAttribute {
        /// The attribute.
        name: &'static str,
        /// Its value.
        value: i64,
    },
    /// The weight's second dim is not `C / group`.
    #[error("conv weight {w_shape:?} needs dim 1 = channels / group = {channels_per_group}")]
    WeightShape {
        /// The weight shape.
        w_shape: Vec<usize>,
        /// `C / group`.
        channels_per_group: usize,
    },
    /// The GEMM rejected a call (an internal inconsistency).
    #[error("conv GEMM failed: {source}")]
    Gemm {
        /// The GEMM's error.
        source: GemmError,
    },
}

impl From<GemmError> for ConvError {
    fn from(source: GemmError) -> Self {
        ConvError::Gemm { source }
    }
}

/// Weight sizes `(group, C/group, M/group, Kg = KH·KW·C/group)`, checked.
fn weight_dims(p: &ConvParams) -> Result<(usize, usize, usize, usize), ConvError> {
    for (field, v) in [
        ("c", p.c),
        ("m", p.m),
        ("kh", p.kh),
        ("kw", p.kw),
        ("group", p.group),
    ] {
        if v == 0 {
            return Err(ConvError::ZeroSize { field });
        }
    }
    if !p.c.is_multiple_of(p.group) || !p.m.is_multiple_of(p.group) {
        return Err(ConvError::Group {
            group: p.group,
            c: p.c,
            m: p.m,
        });
    }
    let (cg, mg) = (p.c / p.group, p.m / p.group);
    let overflow = ConvError::Overflow { what: "weight" };
    let kg =
        p.kh.checked_mul(p.kw)
            .and_then(|v| v.checked_mul(cg))
            .ok_or(overflow.clone())?;
    let total = if mg <= params::DIRECT_MAX_MG {
        kg.checked_mul(p.m)
    } else {
        let len = packed_len(kg, mg);
        (len != usize::MAX)
            .then_some(len)
            .and_then(|l| l.checked_mul(p.group))
    };
    total
        .filter(|&t| t <= isize::MAX as usize / 8)
        .ok_or(overflow)?;
    Ok((p.group, cg, mg, kg))
}

/// Elements of [`pack_weights`]' output for `p` (which only reads `c`, `m`, `kh`, `kw`,
/// `group`); 0 when those are invalid.
pub fn packed_weights_len(p: &ConvParams) -> usize {
    match weight_dims(p) {
        Ok((g, _, mg, kg)) if mg > params::DIRECT_MAX_MG => g * packed_len(kg, mg),
        Ok((g, _, mg, kg)) => g * mg * kg,
        Err(_) => 0,
    }
}

/// Packs the conv weight `w` (`[M, C/group, KH, KW]`, row-major) for [`conv2d`]; the layout,
/// documented in the module docs, does not depend on the instruction set, nor on `n`, `h`, `w`,
/// strides, pads or dilations.
pub fn pack_weights(w: &[f32], p: &ConvParams) -> Result<Vec<f32>, ConvError> {
    let (g, cg, mg, kg) = weight_dims(p)?;
    let taps = p.kh * p.kw;
    if w.len() != p.m * kg {
        return Err(ConvError::Length {
            operand: "w",
            len: w.len(),
            expected: p.m * kg,
        });
    }
    if mg <= params::DIRECT_MAX_MG {
        return Ok(w.to_vec());
    }
    let plen = packed_len(kg, mg);
    let mut out = vec![0.0f32; g * plen];
    let mut wt = vec![0.0f32; kg * mg];
    for (gi, dst) in out.chunks_exact_mut(plen).enumerate() {
        // Wᵀ_g[(t·cg + c), mm] = w[g·mg + mm, c, t] for tap t = i·KW + j.
        for mm in 0..mg {
            let wm = &w[(gi * mg + mm) * kg..][..kg];
            for c in 0..cg {
                for t in 0..taps {
                    wt[(t * cg + c) * mg + mm] = wm[c * taps + t];
                }
            }
        }
        pack_b(&wt, kg, mg, dst)?;
    }
    Ok(out)
}

/// Fails unless `len == expected`.
fn check_len(operand: &'static str, len: usize, expected: usize) -> Result<(), ConvError> {
    if len != expected {
        return Err(ConvError::Length {
            operand,
            len,
            expected,
        });
    }
    Ok(())
}

/// `out = act(conv(x, W) + bias)`, NCHW in and out, with `packed_w` from [`pack_weights`] for
/// the same parameters. Every length is checked (exactly) before anything runs: `x` is
/// `n·c·h·w`, `bias` is `m`, `out` is `n·m·out_h·out_w`. `n = 0` does nothing.
pub fn conv2d(
    isa: Isa,
    p: &ConvParams,
    x: &[f32],
    packed_w: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    out: &mut [f32],
) -> Result<(), ConvError> {
    if !isa.available() {
        return Err(ConvError::IsaUnavailable { isa });
    }
    weight_dims(p)?;
    let geo = Geometry::new(p)?;
    check_len("x", x.len(), geo.n * geo.x_image)?;
    check_len("packed_w", packed_w.len(), packed_weights_len(p))?;
    if let Some(b) = bias {
        check_len("bias", b.len(), geo.m)?;
    }
    check_len("out", out.len(), geo.n * geo.out_image)?;
    if geo.n == 0 {
        return Ok(());
    }
    if geo.direct() {
        direct::run(&geo, x, packed_w, bias, activation, out);
        Ok(())
    } else {
        gemm_path::run(isa, &geo, x, packed_w, bias, activation, out)
    }
}
