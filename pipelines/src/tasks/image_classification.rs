//! `image-classification`: the best labels for each image, as transformers'
//! `ImageClassificationPipeline` returns them (top 5 by default, scored by the config's
//! function), from `pixel_values` made per `preprocessor_config.json`.

use super::text_classification::{rank_labels, Label};
use crate::batch::{check_inputs, require_outputs, run};
use crate::files::Files;
use crate::image::{decode, ImageProcessor};
use crate::scores::ScoreFunction;
use crate::settings::ModelConfig;
use crate::{Error, Run};
use kiln_runtime::{Model, Tensor};
use std::collections::BTreeMap;

/// transformers' default number of labels per image.
pub const DEFAULT_TOP_K: usize = 5;

/// An image to classify: its encoded bytes and the name errors give it.
#[derive(Debug, Clone, Copy)]
pub struct ImageInput<'a> {
    /// What errors call it (the file name).
    pub name: &'a str,
    /// The PNG or JPEG bytes.
    pub bytes: &'a [u8],
}

/// The image-classification pipeline.
#[derive(Debug)]
pub struct ImageClassification {
    model: Model,
    config: ModelConfig,
    processor: ImageProcessor,
}

impl ImageClassification {
    /// The pipeline over `model` (input `pixel_values`, output `logits`) with the settings in
    /// `files`.
    pub fn new(model: Model, files: &dyn Files) -> Result<ImageClassification, Error> {
        let task = "image-classification";
        check_inputs(&model, task, &["pixel_values"], "pixel_values")?;
        require_outputs(&model, task, &["logits"])?;
        Ok(ImageClassification {
            config: ModelConfig::load(files)?,
            processor: ImageProcessor::load(files)?,
            model,
        })
    }

    /// The image processor in use.
    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// The `[n, 3, H, W]` pixel values of images (all decoded before any is run, so a bad
    /// image is reported before work is spent).
    pub fn pixel_values(&self, images: &[ImageInput<'_>]) -> Result<Tensor, Error> {
        let mut data = Vec::new();
        let mut dims = None;
        for img in images {
            let rgb = decode(img.bytes, img.name)?;
            let (v, h, w) = self.processor.pixel_values(&rgb, img.name)?;
            if dims.is_some_and(|d| d != (h, w)) {
                return Err(Error::Image {
                    file: img.name.to_string(),
                    message: format!(
                        "processes to {h}×{w} pixels, unlike the images before it; the \
                         preprocessor config must give one size"
                    ),
                });
            }
            dims = Some((h, w));
            data.extend(v);
        }
        let (h, w) = dims.unwrap_or((0, 0));
        Tensor::from_f32(vec![images.len(), 3, h, w], data).map_err(|source| Error::Run { source })
    }

    /// The `top_k` best labels of each image (clamped to the number of labels); `function`
    /// overrides the config's score function.
    pub fn run(
        &self,
        images: &[ImageInput<'_>],
        top_k: usize,
        function: Option<ScoreFunction>,
        batch_size: usize,
    ) -> Result<Run<Vec<Label>>, Error> {
        let mut results = Vec::with_capacity(images.len());
        for chunk in images.chunks(batch_size.max(1)) {
            let pixels = self.pixel_values(chunk)?;
            let out = run(
                &self.model,
                &BTreeMap::from([("pixel_values".to_string(), pixels)]),
            )?;
            for row in 0..chunk.len() {
                let (logits, shape) = out.row("logits", row)?;
                let &[width] = shape.as_slice() else {
                    return Err(Error::OutputShape {
                        output: "logits".into(),
                        shape,
                        expected: "[batch, labels]".into(),
                    });
                };
                let f = function.unwrap_or_else(|| self.config.default_score_function(width));
                let k = top_k.min(self.config.num_labels(width));
                results.push(rank_labels(&logits, f, &self.config, Some(k)));
            }
        }
        Ok(Run {
            results,
            notes: Vec::new(),
        })
    }
}
