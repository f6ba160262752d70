//! What every text pipeline starts from: the compiled model with its inputs checked, its
//! `config.json` settings and its tokenizer, with the longest input taken from the tokenizer
//! config, `max_position_embeddings` and the compiled model's own input limits.

use crate::batch::{check_text_inputs, run_text, BatchOutputs, Sequence};
use crate::files::Files;
use crate::settings::ModelConfig;
use crate::tokenize::TextTokenizer;
use crate::Error;
use kiln_runtime::Model;

/// A text model ready for a task.
#[derive(Debug)]
pub struct TextModel {
    /// The compiled model.
    pub model: Model,
    /// Its `config.json` settings.
    pub config: ModelConfig,
    /// Its tokenizer.
    pub tokenizer: TextTokenizer,
}

impl TextModel {
    /// Checks `model`'s inputs for `task` and loads its settings from `files`.
    pub fn new(model: Model, files: &dyn Files, task: &str) -> Result<TextModel, Error> {
        check_text_inputs(&model, task)?;
        let config = ModelConfig::load(files)?;
        let limit = min_some(config.max_positions, sequence_limit(&model));
        let tokenizer = TextTokenizer::load(files, limit)?;
        Ok(TextModel {
            model,
            config,
            tokenizer,
        })
    }

    /// Runs the model over sequences in length-sorted padded batches (see [`run_text`]).
    pub fn run<T>(
        &self,
        seqs: &[Sequence<'_>],
        batch_size: usize,
        each: impl FnMut(usize, &BatchOutputs, usize) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        run_text(&self.model, seqs, self.tokenizer.pad_id, batch_size, each)
    }
}

/// The smaller of two optional limits.
pub fn min_some(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The longest sequence the compiled model accepts: the limit its frontend declared on axis 1
/// of `input_ids` (`max_position_embeddings`), if any.
pub fn sequence_limit(model: &Model) -> Option<usize> {
    let io = model
        .plan()
        .inputs
        .iter()
        .find(|io| io.name == "input_ids")?;
    io.limits
        .max_dims
        .iter()
        .filter(|d| d.axis == 1)
        .filter_map(|d| usize::try_from(d.max).ok())
        .min()
}
