//! Convolution parameters: the public [`ConvParams`], its constructors from ONNX-style shapes and
//! attributes, and the checked geometry every entry point derives from it before touching data.

use super::ConvError;

/// Largest element count of any buffer the kernel reads, writes or allocates (bytes fit `isize`).
const MAX_ELEMENTS: usize = isize::MAX as usize / 8;

/// Output channels per group at or below which the direct path runs instead of im2col + GEMM (a
/// GEMM panel is 32 columns wide, so a narrower product wastes most of each tile).
pub(super) const DIRECT_MAX_MG: usize = 4;

/// A 2-D convolution: `x [n, c, h, w]` with weight `[m, c/group, kh, kw]` gives
/// `[n, m, out_h, out_w]`. A 1-D convolution is the case `h = kh = 1` (see
/// [`ConvParams::conv1d`]).
///
/// Packing the weights ([`super::pack_weights`], [`super::packed_weights_len`]) depends only on
/// `c`, `m`, `kh`, `kw` and `group`, so it can be done before `n`, `h` and `w` are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvParams {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub m: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// `[stride_h, stride_w]`, each ≥ 1.
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`: ONNX order, begin pads then end pads.
    pub pads: [usize; 4],
    /// `[dilation_h, dilation_w]`, each ≥ 1.
    pub dilations: [usize; 2],
    /// Groups; divides `c` and `m`. `group = c = m` is a depthwise convolution.
    pub group: usize,
}

/// A 1-D convolution `x [n, c, l]` with weight `[m, c/group, k]`, for [`ConvParams::conv1d`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv1d {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input length.
    pub l: usize,
    /// Output channels.
    pub m: usize,
    /// Kernel length.
    pub k: usize,
    /// Stride, ≥ 1.
    pub stride: usize,
    /// `[begin, end]` pads.
    pub pads: [usize; 2],
    /// Dilation, ≥ 1.
    pub dilation: usize,
    /// Groups; divides `c` and `m`.
    pub group: usize,
}

impl ConvParams {
    /// A 1-D convolution as the 2-D case `h = kh = 1`.
    pub fn conv1d(p: Conv1d) -> ConvParams {
        ConvParams {
            n: p.n,
            c: p.c,
            h: 1,
            w: p.l,
            m: p.m,
            kh: 1,
            kw: p.k,
            strides: [1, p.stride],
            pads: [0, p.pads[0], 0, p.pads[1]],
            dilations: [1, p.dilation],
            group: p.group,
        }
    }

    /// Parameters of `Op::Conv { strides, pads, dilations, group }` on an input of shape
    /// `x_shape` (`[N, C, L]` or `[N, C, H, W]`) and a weight of shape `w_shape`. The attribute
    /// lengths must match the spatial rank (`pads` holds the begin pads, then the end pads).
    pub fn from_shapes(
        x_shape: &[usize],
        w_shape: &[usize],
        strides: &[i64],
        pads: &[i64],
        dilations: &[i64],
        group: i64,
    ) -> Result<ConvParams, ConvError> {
        let k = x_shape.len().wrapping_sub(2);
        if !(1..=2).contains(&k)
            || w_shape.len() != x_shape.len()
            || strides.len() != k
            || dilations.len() != k
            || pads.len() != 2 * k
        {
            return Err(ConvError::Unsupported {
                x_shape: x_shape.to_vec(),
                w_shape: w_shape.to_vec(),
            });
        }
        let attr = |name: &'static str, v: i64| {
            usize::try_from(v).map_err(|_| ConvError::NegativeAttribute { name, value: v })
        };
        let list = |name: &'static str, v: &[i64]| -> Result<Vec<usize>, ConvError> {
            v.iter().map(|&a| attr(name, a)).collect()
        };
        let (s, d, p) = (
            list("strides", strides)?,
            list("dilations", dilations)?,
            list("pads", pads)?,
        );
        let group = attr("group", group)?;
        let (n, c, m) = (x_shape[0], x_shape[1], w_shape[0]);
        let params = if k == 1 {
            ConvParams::conv1d(Conv1d {
                n,
                c,
                l: x_shape[2],
                m,
                k: w_shape[2],
                stride: s[0],
                pads: [p[0], p[1]],
                dilation: d[0],
                group,
            })
        } else {
            ConvParams {
                n,
                c,
                h: x_shape[2],
                w: x_shape[3],
                m,
                kh: w_shape[2],
                kw: w_shape[3],
                strides: [s[0], s[1]],
                pads: [p[0], p[1], p[2], p[3]],
                dilations: [d[0], d[1]],
                group,
            }
        };
        let cg = c.checked_div(group).unwrap_or(0);
        if w_shape[1] != cg {
            return Err(ConvError::WeightShape {
                w_shape: w_shape.to_vec(),
                channels_per_group: cg,
            });
        }
        Ok(params)
    }

    /// Output height `⌊(h + top + bottom − ((kh − 1)·dh + 1)) / sh⌋ + 1`; an error when the
    /// dilated kernel is taller than the padded input or a size is zero.
    pub fn out_h(&self) -> Result<usize, ConvError> {
        out_size(
            "height",
            self.h,
            self.kh,
            self.strides[0],
            self.dilations[0],
            self.pads[0],
            self.pads[2],
        )
    }

    /// Output width, as [`ConvParams::out_h`] along the width.
    pub fn out_w(&self) -> Result<usize, ConvError> {
        out_size(
            "width",
            self.w,
            self.kw,
            self.strides[1],
            self.dilations[1],
            self.pads[1],
            self.pads[3],
        )
    }

    /// The output shape `[n, m, out_h, out_w]`.
    pub fn out_shape(&self) -> Result<[usize; 4], ConvError> {
        Geometry::new(self).map(|g| [g.n, g.m, g.oh, g.ow])
    }
}

/// Output size along one axis, checked.
fn out_size(
    axis: &'static str,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    begin: usize,
    end: usize,
) -> Result<usize, ConvError> {
    let zero = |field| Err(ConvError::ZeroSize { field });
    if input == 0 {
        return zero(if axis == "height" { "h" } else { "w" });
    }
    if kernel == 0 {
        return zero(if axis == "height" { "kh" } else { "kw" });
    }
    if stride == 0 {
        return zero("strides");
    }
    if dilation == 0 {
        return zero("dilations");
    }
    let overflow = ConvError::Overflow {
        what: "padded input size",
    };
    let padded = input
        .checked_add(begin)
        .and_then(|v| v.checked_add(end))
        .ok_or(overflow)?;
    let span = (kernel - 1)
        .checked_mul(dilation)
        .and_then(|v| v.checked_add(1))
        .ok_or(ConvError::Overflow {
            what: "dilated kernel size",
        })?;
    if span > padded {
        return Err(ConvError::EmptyOutput { axis, span, padded });
    }
    Ok((padded - span) / stride + 1)
}

/// [`ConvParams`] checked, with everything the kernels derive from it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub m: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    /// Top pad.
    pub pt: usize,
    /// Left pad.
    pub pl: usize,
    pub dh: usize,
    pub dw: usize,
    pub g: usize,
    /// Input channels per group.
    pub cg: usize,
    /// Output channels per group.
    pub mg: usize,
    pub oh: usize,
    pub ow: usize,
    /// Reduction length per group, `kh·kw·cg`.
    pub kg: usize,
    /// Elements of one input image, `c·h·w`.
    pub x_image: usize,
    /// Elements of one output image, `m·oh·ow`.
    pub out_image: usize,
}

impl Geometry {
    /// Checks `p` for zero sizes, groups, an empty output and element counts that overflow.
    pub fn new(p: &ConvParams) -> Result<Geometry, ConvError> {
        for (field, v) in [("c", p.c), ("m", p.m), ("group", p.group)] {
            if v == 0 {
                return Err(ConvError::ZeroSize { field });
            }
        }
        let (oh, ow) = (p.out_h()?, p.out_w()?);
        if !p.c.is_multiple_of(p.group) || !p.m.is_multiple_of(p.group) {
            return Err(ConvError::Group {
                group: p.group,
                c: p.c,
                m: p.m,
            });
        }
        let count = |what: &'static str, dims: &[usize]| {
            dims.iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .filter(|&e| e <= MAX_ELEMENTS)
                .ok_or(ConvError::Overflow { what })
        };
        let (cg, mg) = (p.c / p.group, p.m / p.group);
        let kg = count("weight", &[p.kh, p.kw, cg])?;
        count("weight", &[p.m, kg])?;
        let x_image = count("input", &[p.c, p.h, p.w])?;
        count("input", &[p.n, x_image])?;
        let out_image = count("output", &[p.m, oh, ow])?;
        count("output", &[p.n, out_image])?;
        // Scratch rows of im2col hold `group·kg` values.
        count("im2col row", &[p.group, kg, 1024])?;
        Ok(Geometry {
            n: p.n,
            c: p.c,
            h: p.h,
            w: p.w,
            m: p.m,
            kh: p.kh,
            kw: p.kw,
            sh: p.strides[0],
            sw: p.strides[1],
            pt: p.pads[0],
            pl: p.pads[1],
            dh: p.dilations[0],
            dw: p.dilations[1],
            g: p.group,
            cg,
            mg,
            oh,
            ow,
            kg,
            x_image,
            out_image,
        })
    }

    /// True when the direct path runs (few output channels per group, e.g. depthwise).
    pub fn direct(&self) -> bool {
        self.mg <= DIRECT_MAX_MG
    }

    /// Output pixels per image.
    pub fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// Range of output positions `o` along one axis whose tap `k` reads inside `0..input`, given
    /// `pos = o·stride + k·dilation − pad`.
    pub fn valid_range(
        out: usize,
        input: usize,
        stride: usize,
        tap_offset: usize,
        pad: usize,
    ) -> std::ops::Range<usize> {
        // pos ≥ 0  ⇔  o·stride ≥ pad − tap_offset.
        let lo = pad.saturating_sub(tap_offset).div_ceil(stride);
        // pos < input  ⇔  o·stride < input + pad − tap_offset.
        let hi = match (input + pad).checked_sub(tap_offset) {
            Some(room) => room.div_ceil(stride),
            None => 0,
        };
        lo.min(out)..hi.clamp(lo.min(out), out)
    }
}
