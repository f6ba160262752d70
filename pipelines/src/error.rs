//! The one error type of the pipelines: each variant is one line that names the input, file or
//! model output it is about (inputs are numbered from 1 in messages).

use std::path::PathBuf;

/// Everything that can go wrong in a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A settings file that could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A settings file that is malformed or says something unusable.
    #[error("{file}: {message}")]
    Settings {
        /// The file (as [`crate::Files::describe`] names it).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A settings file the task needs and the model folder or artifact lacks.
    #[error("{file} is missing (needed for {why})")]
    Missing {
        /// The file (as [`crate::Files::describe`] names it).
        file: String,
        /// What it is needed for.
        why: String,
    },
    /// A task name that is not one of [`crate::Task::ALL`].
    #[error("unknown task `{name}`; the tasks are {}", crate::Task::names())]
    UnknownTask {
        /// The name given.
        name: String,
    },
    /// An option value the task cannot use.
    #[error("{message}")]
    Option {
        /// What is wrong.
        message: String,
    },
    /// An empty (or all-whitespace) text.
    #[error("input {} is empty", input + 1)]
    EmptyInput {
        /// The input (0-based).
        input: usize,
    },
    /// A fill-mask input without the mask token.
    #[error("input {} has no mask token `{mask}`{}", input + 1,
        if *truncated { " left after truncation to the model's longest input" } else { "" })]
    NoMask {
        /// The input (0-based).
        input: usize,
        /// The mask token (`[MASK]`).
        mask: String,
        /// Whether the mask was only lost to truncation.
        truncated: bool,
    },
    /// Question answering without a question.
    #[error("the question is empty")]
    EmptyQuestion,
    /// A question that leaves too little room for the context in a window.
    #[error(
        "the question is {tokens} tokens long and leaves {room} tokens for the context in \
         windows of {max_seq_len}, which must be more than the doc_stride ({doc_stride})"
    )]
    QuestionTooLong {
        /// The question's length in tokens.
        tokens: usize,
        /// The tokens a window has left for the context.
        room: usize,
        /// The window length.
        max_seq_len: usize,
        /// The overlap between windows.
        doc_stride: usize,
    },
    /// A context in which no span can be an answer.
    #[error("context {} has no answer: no span of it can be an answer", input + 1)]
    NoAnswer {
        /// The context (0-based).
        input: usize,
    },
    /// An image that could not be decoded or preprocessed.
    #[error("{file}: {message}")]
    Image {
        /// The image file (or `input N`).
        file: String,
        /// The decoder's message.
        message: String,
    },
    /// An audio file that could not be decoded, or audio the feature extractor cannot use.
    #[error("{file}: {message}")]
    Audio {
        /// The audio file (or `input N`).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer failed.
    #[error("cannot tokenize: {message}")]
    Tokenize {
        /// The tokenizer's message.
        message: String,
    },
    /// A model without an output the task reads.
    #[error("{task} needs a model output {needs}; this model's outputs are {has}")]
    ModelOutputs {
        /// The task.
        task: String,
        /// The output it needs.
        needs: String,
        /// The outputs the model has.
        has: String,
    },
    /// A model whose inputs the task cannot fill.
    #[error("{task} cannot run this model: {message} (the model's inputs are {has})")]
    ModelInputs {
        /// The task.
        task: String,
        /// What does not fit.
        message: String,
        /// The inputs the model has.
        has: String,
    },
    /// A model output whose shape does not fit the task.
    #[error("model output `{output}` has shape {shape:?}, expected {expected}")]
    OutputShape {
        /// The output.
        output: String,
        /// Its shape.
        shape: Vec<usize>,
        /// What the task expected.
        expected: String,
    },
    /// A generation setting (from `generation_config.json` or an override) that cannot be used.
    #[error("generation setting `{field}`: {message}")]
    Generation {
        /// The setting, as `generation_config.json` names it (`temperature`, `top_p`, ...).
        field: String,
        /// What is wrong with its value.
        message: String,
    },
    /// A logits row from which no next token can be chosen.
    #[error("cannot choose the next token: {message}")]
    Logits {
        /// Why not (an empty row, every logit `-inf` or NaN).
        message: String,
    },
    /// The model failed while running.
    #[error("{source}")]
    Run {
        /// The runtime's error.
        source: kiln_runtime::Error,
    },
}
