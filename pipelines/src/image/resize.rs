//! Pillow's `Image.resize` for 8-bit interleaved RGB, reproduced byte for byte.
//!
//! transformers' PIL image backend resizes with `PIL.Image.Image.resize(size, resample,
//! reducing_gap=None)` on an RGB image (the pipeline's `load_image` has already converted every
//! mode with `convert("RGB")`). For such an image Pillow does this (libImaging/Resample.c,
//! Geometry.c, _imaging.c `_resize`):
//!
//! * same size: a copy;
//! * NEAREST: an affine "scale" transform: source x of output column `x` is
//!   `trunc(a0 / 2 + a0 + a0 + ...)` (a running `f64` sum, `a0 = in / out`), rows alike;
//! * every other filter: a separable convolution. For each output pixel along an axis,
//!   `precompute_coeffs` centres the filter at `(i + 0.5) * scale`, widens its support by
//!   `scale` when downscaling, evaluates it at the source pixels' centres inside the rounded
//!   bounds, and divides by the sum. The coefficients become fixed point with 22 fractional bits
//!   (`PRECISION_BITS = 32 - 8 - 2`, rounded half away from zero), each output value is
//!   `clip8((1 << 21) + sum(pixel * coeff)) = clamp(that >> 22, 0, 255)`. The first pass stores
//!   8-bit values, which the second reads. Normally the horizontal pass runs first, on only the
//!   source rows the vertical pass reads; Pillow 13 runs the vertical pass first when the height
//!   shrinks by more than twice as many pixels as the width (`h - nh > 2 * (w - nw)`, `h > nh`).
//!   Older Pillow always went horizontal first, so results for such sizes depend on the version.
//!   An axis whose size does not change is not resampled.
//!
//! Everything is computed in the same types and order as the C code (`f64` for coefficients,
//! `f32` for the box corners, truncating casts), so the output matches Pillow exactly; the
//! trigonometric filters (Hamming, Lanczos) call the platform's `sin`/`cos` like Pillow does.
//!
//! Sizes of 0 are the caller's to refuse: with any width or height 0 this returns a buffer of
//! `new_width * new_height * 3` zeros (empty when an output size is 0) instead of panicking.

/// A resampling filter, as `PIL.Image.Resampling` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    Nearest,
    Box,
    Bilinear,
    Hamming,
    Bicubic,
    Lanczos,
    /// Magic Kernel Sharp 2013 (Pillow 12+)
    Mks2013,
    /// Magic Kernel Sharp 2021 (Pillow 12+)
    Mks2021,
}

impl Filter {
    /// The filter for a PIL resample code (`preprocessor_config.json`'s `"resample"`):
    /// 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming, 6 MKS2013, 7 MKS2021;
    /// other codes give `None`.
    pub fn from_pil(code: u32) -> Option<Filter> {
        match code {
            0 => Some(Filter::Nearest),
            1 => Some(Filter::Lanczos),
            2 => Some(Filter::Bilinear),
            3 => Some(Filter::Bicubic),
            4 => Some(Filter::Box),
            5 => Some(Filter::Hamming),
            6 => Some(Filter::Mks2013),
            7 => Some(Filter::Mks2021),
            _ => None,
        }
    }

    /// The PIL resample code of this filter.
    pub fn pil_code(self) -> u32 {
        match self {
            Filter::Nearest => 0,
            Filter::Lanczos => 1,
            Filter::Bilinear => 2,
            Filter::Bicubic => 3,
            Filter::Box => 4,
            Filter::Hamming => 5,
            Filter::Mks2013 => 6,
            Filter::Mks2021 => 7,
        }
    }

    /// Half-width of the kernel at scale 1 (Resample.c's `struct filter` support).
    fn support(self) -> f64 {
        match self {
            Filter::Nearest | Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
            Filter::Mks2013 => 2.5,
            Filter::Mks2021 => 4.5,
        }
    }

    /// The kernel, with the C code's comparisons and operation order.
    fn kernel(self, x: f64) -> f64 {
        match self {
            Filter::Nearest | Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // Pillow writes the constants as C floats: 0.54f and 0.46f
                    x.sin() / x * (0.54f32 as f64 + 0.46f32 as f64 * x.cos())
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
            // Pillow writes pow(v, 2), which C compilers and LLVM both turn into v * v
            Filter::Mks2013 => {
                let x = x.abs();
                if x < 0.5 {
                    17.0 / 16.0 - 7.0 / 4.0 * (x * x)
                } else if x < 1.5 {
                    (1.0 - x) * (7.0 / 4.0 - x)
                } else if x < 2.5 {
                    -1.0 / 8.0 * ((x - 5.0 / 2.0) * (x - 5.0 / 2.0))
                } else {
                    0.0
                }
            }
            Filter::Mks2021 => {
                let x = x.abs();
                if x < 0.5 {
                    577.0 / 576.0 - 239.0 / 144.0 * (x * x)
                } else if x < 1.5 {
                    35.0 / 36.0 * (x - 1.0) * (x - 239.0 / 140.0)
                } else if x < 2.5 {
                    1.0 / 6.0 * (x - 2.0) * (65.0 / 24.0 - x)
                } else if x < 3.5 {
                    1.0 / 36.0 * (x - 3.0) * (x - 15.0 / 4.0)
                } else if x < 4.5 {
                    -1.0 / 288.0 * ((x - 9.0 / 2.0) * (x - 9.0 / 2.0))
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// One axis' fixed-point coefficients: for output index `i`, source pixels
/// `first[i] .. first[i] + count[i]` weighted by `coeffs[i * ksize ..][.. count[i]]`.
struct Coeffs {
    ksize: usize,
    first: Vec<usize>,
    count: Vec<usize>,
    coeffs: Vec<i32>,
}

/// Resample.c `precompute_coeffs` + `normalize_coeffs_8bpc` for the box `[in0, in1)`.
fn precompute(in_size: usize, in0: f32, in1: f32, out_size: usize, filter: Filter) -> Coeffs {
    let scale = (in1 - in0) as f64 / out_size as f64;
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = filter.support() * filterscale;
    let ksize = (support.ceil() as usize)
        .saturating_mul(2)
        .saturating_add(1);
    let ss = 1.0 / filterscale;
    let mut first = Vec::with_capacity(out_size);
    let mut count = Vec::with_capacity(out_size);
    let mut coeffs = vec![0i32; out_size.saturating_mul(ksize)];
    let mut weights = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = in0 as f64 + (xx as f64 + 0.5) * scale;
        // C: (int)(v) truncates toward zero, then clamps to the image
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
        let n = (xmax - xmin).clamp(0, ksize as i64) as usize;
        let mut ww = 0.0;
        for (x, w) in weights.iter_mut().enumerate().take(n) {
            *w = filter.kernel(((x as i64 + xmin) as f64 - center + 0.5) * ss);
            ww += *w;
        }
        let row = &mut coeffs[xx * ksize..xx * ksize + n];
        for (c, &w) in row.iter_mut().zip(&weights[..n]) {
            let w = if ww != 0.0 { w / ww } else { w };
            let fixed = w * (1u32 << PRECISION_BITS) as f64;
            *c = if w < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        first.push(xmin as usize);
        count.push(n);
    }
    Coeffs {
        ksize,
        first,
        count,
        coeffs,
    }
}

#[inline]
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resize interleaved RGB (`src.len() == width * height * 3`, rows top to bottom) to
/// `new_width x new_height` exactly as Pillow's `Image.resize((new_width, new_height), filter)`
/// does for an RGB image.
///
/// # Panics
/// If `src.len()` is not `width * height * 3`. Sizes of 0 do not panic (see the module docs).
pub fn resize_rgb8(
    src: &[u8],
    width: usize,
    height: usize,
    new_width: usize,
    new_height: usize,
    filter: Filter,
) -> Vec<u8> {
    const C: usize = 3;
    let expected = width.checked_mul(height).and_then(|n| n.checked_mul(C));
    assert!(
        expected == Some(src.len()),
        "resize_rgb8: {} bytes given for a {width}x{height} RGB image",
        src.len()
    );
    let out_len = new_width.saturating_mul(new_height).saturating_mul(C);
    if width == 0 || height == 0 || new_width == 0 || new_height == 0 {
        return vec![0; out_len];
    }
    if width == new_width && height == new_height {
        return src.to_vec();
    }
    if filter == Filter::Nearest {
        return nearest(src, width, height, new_width, new_height);
    }

    // box = (0, 0, width, height) as C floats
    let need_horizontal = new_width != width;
    let need_vertical = new_height != height;
    // Pillow 13 (Resample.c ImagingResampleInner): when the height shrinks by more than twice
    // as many pixels as the width does, the vertical pass runs first
    let (w, h, nw, nh) = (
        width as i64,
        height as i64,
        new_width as i64,
        new_height as i64,
    );
    let horizontal_first = !(h - nh > 0 && h - nh > (w - nw) * 2);
    if horizontal_first {
        let vert = precompute(height, 0.0, height as f32, new_height, filter);
        let (img, row0) = if need_horizontal {
            // only the source rows the vertical pass reads
            let y_first = vert.first[0];
            let last = new_height - 1;
            let y_last = (vert.first[last] + vert.count[last]).max(y_first);
            let horiz = precompute(width, 0.0, width as f32, new_width, filter);
            (
                horizontal_pass(src, width, y_first, y_last - y_first, &horiz),
                y_first,
            )
        } else {
            (src.to_vec(), 0)
        };
        if need_vertical {
            vertical_pass(&img, new_width, row0, &vert)
        } else {
            img
        }
    } else {
        // here the height changes, so the vertical pass always runs
        let vert = precompute(height, 0.0, height as f32, new_height, filter);
        let img = vertical_pass(src, width, 0, &vert);
        if need_horizontal {
            let horiz = precompute(width, 0.0, width as f32, new_width, filter);
            horizontal_pass(&img, width, 0, new_height, &horiz)
        } else {
            img
        }
    }
}

/// Resample.c `ImagingResampleHorizontal_8bpc`: rows `row0 .. row0 + rows` of `img`
/// (`img_w` pixels wide) resampled to `coeffs.first.len()` columns.
fn horizontal_pass(img: &[u8], img_w: usize, row0: usize, rows: usize, coeffs: &Coeffs) -> Vec<u8> {
    const C: usize = 3;
    let out_w = coeffs.first.len();
    let mut out = vec![0u8; out_w * rows * C];
    for y in 0..rows {
        let src_row = &img[(y + row0) * img_w * C..(y + row0 + 1) * img_w * C];
        let out_row = &mut out[y * out_w * C..(y + 1) * out_w * C];
        for xx in 0..out_w {
            let x0 = coeffs.first[xx];
            let k = &coeffs.coeffs[xx * coeffs.ksize..][..coeffs.count[xx]];
            let mut acc = [1i64 << (PRECISION_BITS - 1); C];
            for (i, &kv) in k.iter().enumerate() {
                let p = &src_row[(x0 + i) * C..(x0 + i) * C + C];
                for c in 0..C {
                    acc[c] += p[c] as i64 * kv as i64;
                }
            }
            for c in 0..C {
                out_row[xx * C + c] = clip8(acc[c]);
            }
        }
    }
    out
}

/// Resample.c `ImagingResampleVertical_8bpc`: `img` (`img_w` pixels wide, its row 0 being
/// source row `row0`) resampled to `coeffs.first.len()` rows.
fn vertical_pass(img: &[u8], img_w: usize, row0: usize, coeffs: &Coeffs) -> Vec<u8> {
    const C: usize = 3;
    let out_h = coeffs.first.len();
    let stride = img_w * C;
    let mut out = vec![0u8; stride * out_h];
    for yy in 0..out_h {
        let y0 = coeffs.first[yy] - row0;
        let k = &coeffs.coeffs[yy * coeffs.ksize..][..coeffs.count[yy]];
        let out_row = &mut out[yy * stride..(yy + 1) * stride];
        for (xc, o) in out_row.iter_mut().enumerate() {
            let mut acc = 1i64 << (PRECISION_BITS - 1);
            for (i, &kv) in k.iter().enumerate() {
                acc += img[(y0 + i) * stride + xc] as i64 * kv as i64;
            }
            *o = clip8(acc);
        }
    }
    out
}

/// _imaging.c `_resize` NEAREST: ImagingTransformAffine -> ImagingScaleAffine with
/// a = [in_w / out_w, 0, 0, 0, in_h / out_h, 0] and fill: a running f64 position per axis,
/// `COORD` (-1 below zero, else truncation), pixels that fall outside stay 0.
fn nearest(
    src: &[u8],
    width: usize,
    height: usize,
    new_width: usize,
    new_height: usize,
) -> Vec<u8> {
    const C: usize = 3;
    let ax = (width as f32 - 0.0f32) as f64 / new_width as f64;
    let ay = (height as f32 - 0.0f32) as f64 / new_height as f64;
    let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
    let mut xin = Vec::with_capacity(new_width);
    let mut xo = ax * 0.5;
    for _ in 0..new_width {
        let x = coord(xo);
        xin.push((x >= 0 && x < width as i64).then_some(x as usize));
        xo += ax;
    }
    let mut out = vec![0u8; new_width * new_height * C];
    let mut yo = ay * 0.5;
    for y in 0..new_height {
        let yi = coord(yo);
        if yi >= 0 && yi < height as i64 {
            let row = &src[yi as usize * width * C..(yi as usize + 1) * width * C];
            for (x, xi) in xin.iter().enumerate() {
                if let Some(xi) = *xi {
                    out[(y * new_width + x) * C..][..C].copy_from_slice(&row[xi * C..xi * C + C]);
                }
            }
        }
        yo += ay;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic test picture with edges, gradients and extremes (0 and 255).
    fn picture(w: usize, h: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let t = (x * 37 + y * 91 + c * 53 + (x * y) % 7 * 29) % 256;
                    v.push(if (x + y + c) % 5 == 0 {
                        255 - (t as u8 & 1) * 255
                    } else {
                        t as u8
                    });
                }
            }
        }
        v
    }

    /// `W H NEW_W NEW_H PIL_CODE HEX` per line: Pillow 13's
    /// `Image.frombytes("RGB", (W, H), picture(W, H)).resize((NEW_W, NEW_H), PIL_CODE)`,
    /// written by tools/pil_resize_golden.py.
    const GOLDEN: &str = include_str!("../../tests/data/pil_resize_golden.txt");

    #[test]
    fn matches_pillow_golden_cases() {
        let mut n = 0;
        for line in GOLDEN
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| f[i].parse::<usize>().unwrap();
            let (w, h, nw, nh) = (num(0), num(1), num(2), num(3));
            let filter = Filter::from_pil(num(4) as u32).unwrap();
            let expected: Vec<u8> = (0..f[5].len() / 2)
                .map(|i| u8::from_str_radix(&f[5][2 * i..2 * i + 2], 16).unwrap())
                .collect();
            let got = resize_rgb8(&picture(w, h), w, h, nw, nh, filter);
            assert_eq!(got, expected, "{w}x{h} -> {nw}x{nh} with {filter:?}");
            n += 1;
        }
        assert!(n >= 12, "only {n} golden cases");
    }

    #[test]
    fn pil_codes_round_trip() {
        for code in 0..8 {
            assert_eq!(Filter::from_pil(code).unwrap().pil_code(), code);
        }
        assert_eq!(Filter::from_pil(8), None);
    }

    #[test]
    fn same_size_is_a_copy_and_zero_sizes_do_not_panic() {
        let p = picture(4, 3);
        assert_eq!(resize_rgb8(&p, 4, 3, 4, 3, Filter::Lanczos), p);
        assert_eq!(
            resize_rgb8(&p, 4, 3, 0, 5, Filter::Bilinear),
            Vec::<u8>::new()
        );
        assert_eq!(resize_rgb8(&[], 0, 3, 2, 2, Filter::Bicubic), vec![0; 12]);
        for code in 0..8 {
            let f = Filter::from_pil(code).unwrap();
            assert_eq!(resize_rgb8(&[7, 8, 9], 1, 1, 3, 1, f), [7, 8, 9].repeat(3));
            assert_eq!(resize_rgb8(&p, 4, 3, 1, 1, f).len(), 3);
        }
    }

    #[test]
    fn every_small_size_pair_runs_and_keeps_constant_images_constant() {
        for code in 0..8 {
            let f = Filter::from_pil(code).unwrap();
            for (w, h) in [(1, 1), (1, 5), (5, 1), (2, 3), (6, 6), (7, 2)] {
                let flat = [200u8, 0, 255].repeat(w * h);
                for nw in 1..=7 {
                    for nh in 1..=7 {
                        let out = resize_rgb8(&flat, w, h, nw, nh, f);
                        // the coefficients of each output pixel sum to 1 (to rounding)
                        assert_eq!(
                            out,
                            [200u8, 0, 255].repeat(nw * nh),
                            "{w}x{h} -> {nw}x{nh} {f:?}"
                        );
                    }
                }
            }
        }
    }
}
