//! Running a compiled model on many inputs: the model's inputs and outputs checked against what
//! a task needs, token sequences sorted by length and run in batches padded to each batch's
//! longest (so a short input never pays for a long one), results handed back in input order;
//! and [`TextModel`], what every text task starts from (model, `config.json`, tokenizer, with
//! the longest input from the tokenizer config, `max_position_embeddings` and the compiled
//! model's own input limits).

use crate::files::Files;
use crate::scores::floats;
use crate::settings::ModelConfig;
use crate::tokenize::TextTokenizer;
use crate::Error;
use kiln_runtime::{Model, Tensor};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The default number of sequences per run.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// The token inputs transformers' text models take; a model input outside this list (and
/// `pixel_values` for images) is one a pipeline cannot fill.
const TEXT_INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];

/// One tokenized sequence: ids and token types (its attention mask is all ones).
#[derive(Debug, Clone, Copy)]
pub struct Sequence<'a> {
    /// Token ids.
    pub ids: &'a [u32],
    /// Token type ids (segment ids), as long as `ids`.
    pub type_ids: &'a [u32],
}

impl<'a> From<&'a tokenizers::Encoding> for Sequence<'a> {
    fn from(e: &'a tokenizers::Encoding) -> Sequence<'a> {
        Sequence {
            ids: e.get_ids(),
            type_ids: e.get_type_ids(),
        }
    }
}

/// The names of a model's outputs, for messages.
fn output_list(model: &Model) -> String {
    let names: Vec<String> = model
        .plan()
        .outputs
        .iter()
        .map(|io| format!("`{}`", io.name))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Checks that `model` has the named outputs the task reads.
pub fn require_outputs(model: &Model, task: &str, names: &[&str]) -> Result<(), Error> {
    let outputs = &model.plan().outputs;
    for &name in names {
        if !outputs.iter().any(|io| io.name == name) {
            return Err(Error::ModelOutputs {
                task: task.to_string(),
                needs: format!("`{name}`"),
                has: output_list(model),
            });
        }
    }
    Ok(())
}

/// The name of the model's first output (feature extraction reads it, as transformers reads
/// `model_outputs[0]`), preferring `last_hidden_state`.
pub fn first_output(model: &Model, task: &str) -> Result<String, Error> {
    let outputs = &model.plan().outputs;
    if let Some(io) = outputs.iter().find(|io| io.name == "last_hidden_state") {
        return Ok(io.name.clone());
    }
    outputs
        .first()
        .map(|io| io.name.clone())
        .ok_or_else(|| Error::ModelOutputs {
            task: task.to_string(),
            needs: "an output".into(),
            has: "none".into(),
        })
}

/// Checks that every input of `model` is one the task fills (`allowed`) and that it has
/// `required`.
pub fn check_inputs(
    model: &Model,
    task: &str,
    allowed: &[&str],
    required: &str,
) -> Result<(), Error> {
    let inputs = &model.plan().inputs;
    let names = || {
        inputs
            .iter()
            .map(|io| format!("`{}`", io.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(io) = inputs
        .iter()
        .find(|io| !allowed.contains(&io.name.as_str()))
    {
        return Err(Error::ModelInputs {
            task: task.to_string(),
            message: format!("input `{}` is not one it can fill", io.name),
            has: names(),
        });
    }
    if !inputs.iter().any(|io| io.name == required) {
        return Err(Error::ModelInputs {
            task: task.to_string(),
            message: format!("it needs an input `{required}`"),
            has: names(),
        });
    }
    Ok(())
}

/// Checks a text model's inputs (`input_ids`, optionally `attention_mask` and `token_type_ids`).
pub fn check_text_inputs(model: &Model, task: &str) -> Result<(), Error> {
    check_inputs(model, task, &TEXT_INPUTS, "input_ids")
}

/// The outputs of one batch: each output's tensor, with per-row views.
#[derive(Debug)]
pub struct BatchOutputs {
    outputs: Vec<(String, Tensor)>,
}

impl BatchOutputs {
    /// Wraps the outputs of one run.
    pub fn new(outputs: Vec<(String, Tensor)>) -> BatchOutputs {
        BatchOutputs { outputs }
    }

    /// Row `row` of output `name` (the elements after the batch axis) and its shape without the
    /// batch axis.
    pub fn row(&self, name: &str, row: usize) -> Result<(Cow<'_, [f32]>, Vec<usize>), Error> {
        let Some((_, t)) = self.outputs.iter().find(|(n, _)| n == name) else {
            return Err(Error::ModelOutputs {
                task: "this pipeline".into(),
                needs: format!("`{name}`"),
                has: self
                    .outputs
                    .iter()
                    .map(|(n, _)| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let shape = t.shape();
        let bad = || Error::OutputShape {
            output: name.to_string(),
            shape: shape.to_vec(),
            expected: format!("a batch axis with a row {row}"),
        };
        let (&batch, rest) = shape.split_first().ok_or_else(bad)?;
        if row >= batch {
            return Err(bad());
        }
        let n: usize = rest.iter().product();
        let data = floats(t);
        let part = match data {
            Cow::Borrowed(v) => Cow::Borrowed(v.get(row * n..(row + 1) * n).ok_or_else(bad)?),
            Cow::Owned(v) => Cow::Owned(v.get(row * n..(row + 1) * n).ok_or_else(bad)?.to_vec()),
        };
        Ok((part, rest.to_vec()))
    }
}

/// Runs `model` on named inputs.
pub fn run(model: &Model, inputs: &BTreeMap<String, Tensor>) -> Result<BatchOutputs, Error> {
    let outputs = model
        .session()
        .run(inputs)
        .map_err(|source| Error::Run { source })?;
    Ok(BatchOutputs::new(outputs))
}

/// Runs a text model over `seqs` in batches of at most `batch_size`, longest first, each padded
/// with `pad_id` to its longest sequence; `each(i, outputs, row)` sees sequence `i` as row `row`
/// of its batch's outputs. Returns the results in input order.
pub fn run_text<T>(
    model: &Model,
    seqs: &[Sequence<'_>],
    pad_id: u32,
    batch_size: usize,
    mut each: impl FnMut(usize, &BatchOutputs, usize) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let wanted: Vec<&str> = model
        .plan()
        .inputs
        .iter()
        .map(|io| io.name.as_str())
        .collect();
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].ids.len()));
    let mut results: Vec<Option<T>> = (0..seqs.len()).map(|_| None).collect();
    let mut session = model.session();
    for chunk in order.chunks(batch_size.max(1)) {
        let width = chunk.iter().map(|&i| seqs[i].ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(chunk.len() * width);
        let mut types = Vec::with_capacity(chunk.len() * width);
        let mut mask = Vec::with_capacity(chunk.len() * width);
        for &i in chunk {
            let s = seqs[i];
            let pad = width - s.ids.len();
            ids.extend(s.ids.iter().map(|&x| i64::from(x)));
            ids.extend(std::iter::repeat_n(i64::from(pad_id), pad));
            let type_ids = s.type_ids.iter().map(|&x| i64::from(x));
            types.extend(type_ids.chain(std::iter::repeat(0)).take(width));
            mask.extend(std::iter::repeat_n(1i64, s.ids.len()));
            mask.extend(std::iter::repeat_n(0i64, pad));
        }
        let shape = vec![chunk.len(), width];
        let mut inputs = BTreeMap::new();
        for (name, v) in [
            ("input_ids", ids),
            ("attention_mask", mask),
            ("token_type_ids", types),
        ] {
            if wanted.contains(&name) {
                let t =
                    Tensor::from_i64(shape.clone(), v).map_err(|source| Error::Run { source })?;
                inputs.insert(name.to_string(), t);
            }
        }
        let outputs = session
            .run(&inputs)
            .map_err(|source| Error::Run { source })?;
        let outputs = BatchOutputs::new(outputs);
        for (row, &i) in chunk.iter().enumerate() {
            results[i] = Some(each(i, &outputs, row)?);
        }
    }
    Ok(results.into_iter().flatten().collect())
}

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
