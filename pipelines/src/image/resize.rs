//! TEMPORARY stand-in for the byte-exact port of Pillow's resize that the `refs` branch
//! provides (same API; its version replaces this file at merge). This one follows Pillow's
//! separable convolution with 22-bit fixed-point coefficients, without having been checked
//! against Pillow byte for byte.

/// Pillow's resampling filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `Image.NEAREST` (0).
    Nearest,
    /// `Image.BILINEAR` (2).
    Bilinear,
    /// `Image.BICUBIC` (3).
    Bicubic,
    /// `Image.LANCZOS` (1).
    Lanczos,
}

impl Filter {
    /// The filter of a Pillow resample code (`0` nearest, `1` lanczos, `2` bilinear,
    /// `3` bicubic).
    pub fn from_pil(code: u32) -> Option<Filter> {
        match code {
            0 => Some(Filter::Nearest),
            1 => Some(Filter::Lanczos),
            2 => Some(Filter::Bilinear),
            3 => Some(Filter::Bicubic),
            _ => None,
        }
    }

    fn support(self) -> f64 {
        match self {
            Filter::Nearest => 0.5,
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Nearest => f64::from(u8::from(x < 0.5)),
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Bicubic => {
                let a = -0.5;
                if x < 1.0 {
                    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * a
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                let sinc = |x: f64| {
                    if x == 0.0 {
                        1.0
                    } else {
                        let p = x * std::f64::consts::PI;
                        p.sin() / p
                    }
                };
                if x < 3.0 {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output pixel: the first source pixel and the fixed-point weights.
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Vec<(usize, Vec<i64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut w: Vec<f64> = (xmin..xmax.max(xmin))
                .map(|x| filter.weight((x as f64 - center + 0.5) / filterscale))
                .collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            let one = f64::from(1u32 << PRECISION_BITS);
            let fixed = w
                .into_iter()
                .map(|k| {
                    if k < 0.0 {
                        (-0.5 + k * one) as i64
                    } else {
                        (0.5 + k * one) as i64
                    }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes interleaved RGB pixels from `width × height` to `new_width × new_height`.
pub fn resize_rgb8(
    src: &[u8],
    width: usize,
    height: usize,
    new_width: usize,
    new_height: usize,
    filter: Filter,
) -> Vec<u8> {
    if new_width == 0 || new_height == 0 || width == 0 || height == 0 {
        return vec![0; new_width * new_height * 3];
    }
    let half = 1i64 << (PRECISION_BITS - 1);
    // Horizontal pass.
    let cx = coefficients(width, new_width, filter);
    let mut tmp = vec![0u8; new_width * height * 3];
    for y in 0..height {
        for (x, (xmin, k)) in cx.iter().enumerate() {
            for c in 0..3 {
                let mut ss = half;
                for (i, w) in k.iter().enumerate() {
                    ss += i64::from(src[(y * width + xmin + i) * 3 + c]) * w;
                }
                tmp[(y * new_width + x) * 3 + c] = clip8(ss);
            }
        }
    }
    // Vertical pass.
    let cy = coefficients(height, new_height, filter);
    let mut out = vec![0u8; new_width * new_height * 3];
    for (y, (ymin, k)) in cy.iter().enumerate() {
        for x in 0..new_width {
            for c in 0..3 {
                let mut ss = half;
                for (i, w) in k.iter().enumerate() {
                    ss += i64::from(tmp[((ymin + i) * new_width + x) * 3 + c]) * w;
                }
                out[(y * new_width + x) * 3 + c] = clip8(ss);
            }
        }
    }
    out
}
