//! Images into `pixel_values` as transformers' image processors (the PIL backend) make them:
//! decoded (PNG, JPEG) and turned upright by their EXIF orientation, converted to RGB, resized
//! with Pillow's filters, center-cropped, rescaled and normalised per `preprocessor_config.json`,
//! channels first.

mod resize;

pub use resize::{resize_rgb8, Filter};

use crate::files::Files;
use crate::Error;
use serde_json::Value;

/// The longest side an image is resized or cropped to: no image processor asks for more, and a
/// larger one (a config's size, or a thin image's long side after `shortest_edge`) would
/// allocate gigabytes.
pub const MAX_SIDE: usize = 4096;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `height · width · 3` bytes.
    pub pixels: Vec<u8>,
}

/// Decodes a PNG or JPEG file's bytes, applies its EXIF orientation (as transformers'
/// `load_image` does with `ImageOps.exif_transpose`) and converts it to RGB; `name` names the
/// image in errors.
pub fn decode(bytes: &[u8], name: &str) -> Result<Rgb8, Error> {
    use image::ImageDecoder;
    let err = |e: &dyn std::fmt::Display| Error::Image {
        file: name.to_string(),
        message: format!("cannot decode the image: {e}"),
    };
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| err(&e))?;
    if reader.format().is_none() {
        return Err(err(&"not a PNG or JPEG image"));
    }
    let mut decoder = reader.into_decoder().map_err(|e| err(&e))?;
    let orientation = decoder.orientation().map_err(|e| err(&e))?;
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| err(&e))?;
    img.apply_orientation(orientation);
    let rgb = img.to_rgb8();
    Ok(Rgb8 {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        pixels: rgb.into_raw(),
    })
}

/// The target size of a resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Exactly this size.
    Exact {
        /// Height.
        height: usize,
        /// Width.
        width: usize,
    },
    /// The shorter side to this length, keeping the aspect ratio.
    ShortestEdge(usize),
}

/// What `preprocessor_config.json` asks for (defaults: ViT's processor).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    /// Resize first, to this size.
    pub resize: Option<(Size, Filter)>,
    /// Then crop the center to (height, width).
    pub center_crop: Option<(usize, usize)>,
    /// Then multiply by this (`1/255`).
    pub rescale: Option<f64>,
    /// Then subtract the mean and divide by the standard deviation, per channel.
    pub normalize: Option<([f32; 3], [f32; 3])>,
}

impl Default for ImageProcessor {
    fn default() -> Self {
        ImageProcessor {
            resize: Some((
                Size::Exact {
                    height: 224,
                    width: 224,
                },
                Filter::Bilinear,
            )),
            center_crop: None,
            rescale: Some(1.0 / 255.0),
            normalize: Some(([0.5; 3], [0.5; 3])),
        }
    }
}

/// `{"height": h, "width": w}`, `{"shortest_edge": s}` or a bare number (a square).
fn size(v: &Value) -> Result<Size, String> {
    let n = |v: Option<&Value>| {
        v.and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0 && n <= MAX_SIDE)
    };
    if let Some(s) = n(Some(v)) {
        return Ok(Size::Exact {
            height: s,
            width: s,
        });
    }
    if let (Some(height), Some(width)) = (n(v.get("height")), n(v.get("width"))) {
        return Ok(Size::Exact { height, width });
    }
    if v.get("longest_edge").is_some() {
        return Err("size with `longest_edge` is not supported".into());
    }
    n(v.get("shortest_edge"))
        .map(Size::ShortestEdge)
        .ok_or_else(|| format!("size {v} is not {{height, width}} or {{shortest_edge}}"))
}

impl ImageProcessor {
    /// Reads `preprocessor_config.json` (missing: ViT's defaults).
    pub fn load(files: &dyn Files) -> Result<ImageProcessor, Error> {
        let name = "preprocessor_config.json";
        let Some(v) = files.json(name)? else {
            return Ok(ImageProcessor::default());
        };
        ImageProcessor::from_json(&v).map_err(|message| Error::Settings {
            file: files.describe(name),
            message,
        })
    }

    /// Reads a parsed `preprocessor_config.json`.
    pub fn from_json(v: &Value) -> Result<ImageProcessor, String> {
        let d = ImageProcessor::default();
        let flag =
            |key: &str, default: bool| v.get(key).and_then(Value::as_bool).unwrap_or(default);
        let resize = if flag("do_resize", true) {
            let size = v.get("size").map(size).transpose()?;
            let code = v.get("resample").and_then(Value::as_u64).unwrap_or(2);
            let filter = u32::try_from(code)
                .ok()
                .and_then(Filter::from_pil)
                .ok_or_else(|| format!("resample {code} is not a supported filter"))?;
            Some((size.or(d.resize.map(|r| r.0)).ok_or("no size")?, filter))
        } else {
            None
        };
        let center_crop = if flag("do_center_crop", false) {
            match v.get("crop_size").map(size).transpose()? {
                Some(Size::Exact { height, width }) => Some((height, width)),
                Some(Size::ShortestEdge(_)) | None => {
                    return Err("do_center_crop needs crop_size {height, width}".into())
                }
            }
        } else {
            None
        };
        let rescale = flag("do_rescale", true).then(|| {
            v.get("rescale_factor")
                .and_then(Value::as_f64)
                .unwrap_or(1.0 / 255.0)
        });
        let triple = |key: &str, default: [f32; 3]| -> Result<[f32; 3], String> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Number(n)) => Ok([n.as_f64().unwrap_or(0.0) as f32; 3]),
                Some(Value::Array(a)) if a.len() == 3 => {
                    let mut out = [0f32; 3];
                    for (o, x) in out.iter_mut().zip(a) {
                        *o = x.as_f64().ok_or(format!("{key} holds a non-number"))? as f32;
                    }
                    Ok(out)
                }
                Some(other) => Err(format!("{key} {other} is not 3 numbers")),
            }
        };
        let normalize = if flag("do_normalize", true) {
            Some((
                triple("image_mean", [0.5; 3])?,
                triple("image_std", [0.5; 3])?,
            ))
        } else {
            None
        };
        Ok(ImageProcessor {
            resize,
            center_crop,
            rescale,
            normalize,
        })
    }

    /// The `[3, height, width]` pixel values of an image (`name` names it in errors).
    pub fn pixel_values(&self, img: &Rgb8, name: &str) -> Result<(Vec<f32>, usize, usize), Error> {
        let mut img = img.clone();
        if let Some((size, filter)) = self.resize {
            let (h, w) = match size {
                Size::Exact { height, width } => (height, width),
                Size::ShortestEdge(s) => {
                    let (short, long) = (img.width.min(img.height), img.width.max(img.height));
                    let long = (s as f64 * long as f64 / short.max(1) as f64).min(1e9) as usize;
                    if img.width <= img.height {
                        (long, s)
                    } else {
                        (s, long)
                    }
                }
            };
            if h > MAX_SIDE || w > MAX_SIDE {
                return Err(Error::Image {
                    file: name.to_string(),
                    message: format!(
                        "resizing its {}×{} pixels to {w}×{h} goes past the {MAX_SIDE}-pixel \
                         sides a pipeline handles",
                        img.width, img.height
                    ),
                });
            }
            if (h, w) != (img.height, img.width) {
                let pixels = resize_rgb8(&img.pixels, img.width, img.height, w, h, filter);
                img = Rgb8 {
                    width: w,
                    height: h,
                    pixels,
                };
            }
        }
        if let Some((ch, cw)) = self.center_crop {
            img = center_crop(&img, ch, cw);
        }
        let (h, w) = (img.height, img.width);
        let mut out = vec![0f32; 3 * h * w];
        for c in 0..3 {
            for p in 0..h * w {
                let raw = img.pixels[p * 3 + c];
                let mut x = match self.rescale {
                    Some(f) => (f64::from(raw) * f) as f32,
                    None => f32::from(raw),
                };
                if let Some((mean, std)) = self.normalize {
                    x = (x - mean[c]) / std[c];
                }
                out[c * h * w + p] = x;
            }
        }
        Ok((out, h, w))
    }
}

/// transformers' `center_crop`: the middle `height × width`, padded with zeros where the image
/// is smaller.
fn center_crop(img: &Rgb8, height: usize, width: usize) -> Rgb8 {
    let (oh, ow) = (img.height as isize, img.width as isize);
    let (h, w) = (height as isize, width as isize);
    let top = if h <= oh {
        (oh - h) / 2
    } else {
        -((h - oh + 1) / 2)
    };
    let left = if w <= ow {
        (ow - w) / 2
    } else {
        -((w - ow + 1) / 2)
    };
    let mut pixels = vec![0u8; height * width * 3];
    for y in 0..h {
        for x in 0..w {
            let (sy, sx) = (y + top, x + left);
            if sy >= 0 && sy < oh && sx >= 0 && sx < ow {
                let s = ((sy * ow + sx) * 3) as usize;
                let d = ((y * w + x) * 3) as usize;
                pixels[d..d + 3].copy_from_slice(&img.pixels[s..s + 3]);
            }
        }
    }
    Rgb8 {
        width,
        height,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image(width: usize, height: usize) -> Rgb8 {
        let pixels = (0..width * height * 3).map(|i| (i % 251) as u8).collect();
        Rgb8 {
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn configs_read_like_transformers() {
        let p = ImageProcessor::from_json(&json!({})).unwrap();
        assert_eq!(p, ImageProcessor::default());
        let p = ImageProcessor::from_json(&json!({
            "size": {"shortest_edge": 8}, "resample": 3, "do_center_crop": true,
            "crop_size": 6, "image_mean": [0.1, 0.2, 0.3], "image_std": 0.5, "do_rescale": false
        }))
        .unwrap();
        assert_eq!(p.resize, Some((Size::ShortestEdge(8), Filter::Bicubic)));
        assert_eq!(p.center_crop, Some((6, 6)));
        assert_eq!(p.rescale, None);
        assert_eq!(p.normalize, Some(([0.1, 0.2, 0.3], [0.5; 3])));
        for bad in [
            json!({"resample": 99}),
            json!({"size": {"longest_edge": 3}}),
            json!({"do_center_crop": true}),
            json!({"image_mean": [1, 2]}),
        ] {
            assert!(ImageProcessor::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shortest_edge_keeps_the_aspect_and_the_crop_pads_with_zeros() {
        let p = ImageProcessor::from_json(&json!({
            "size": {"shortest_edge": 4}, "do_normalize": false, "do_rescale": false
        }))
        .unwrap();
        let (v, h, w) = p.pixel_values(&image(10, 20), "x").unwrap();
        assert_eq!((h, w, v.len()), (8, 4, 3 * 8 * 4));
        let c = center_crop(&image(2, 2), 4, 2);
        assert_eq!((c.width, c.height), (2, 4));
        assert!(c.pixels[..6].iter().all(|&b| b == 0), "a padded first row");
        assert_eq!(&c.pixels[6..12], &image(2, 2).pixels[..6]);
    }

    #[test]
    fn sizes_past_the_limit_and_undecodable_bytes_are_errors() {
        let p = ImageProcessor::from_json(&json!({"size": {"shortest_edge": 224}})).unwrap();
        let e = p.pixel_values(&image(1, 100), "thin.png").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("thin.png: resizing its 1×100 pixels to 224×22400"),
            "{e}"
        );
        let e = decode(b"\x89PNG\r\n\x1a\ngarbage", "bad.png").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad.png: cannot decode the image: "),
            "{e}"
        );
        let e = decode(b"plain text", "notes.txt").unwrap_err();
        assert_eq!(
            e.to_string(),
            "notes.txt: cannot decode the image: not a PNG or JPEG image"
        );
    }
}
