//! Kiln pipelines: Hugging Face tasks over compiled models. Each task reads its settings from the
//! model folder's files (or the copies compiled into a `.kiln` artifact) through [`Files`],
//! tokenizes or preprocesses its inputs exactly as transformers' pipelines do, runs the model in
//! length-sorted padded batches and returns transformers-shaped, serde-serializable results.
//!
//! ```no_run
//! # fn main() -> Result<(), kiln_pipelines::Error> {
//! use kiln_pipelines::{Folder, Task, Pipeline, Inputs, Options};
//! let model = kiln_runtime::Model::load("minilm.kiln").map_err(|source| kiln_pipelines::Error::Run { source })?;
//! let p = Pipeline::new(Task::FeatureExtraction, model, &Folder::new("all-MiniLM-L6-v2"))?;
//! let texts = vec!["A sentence.".to_string()];
//! let run = p.run(&Inputs::Texts(&texts), &Options::default())?;
//! println!("{}", run.results.json(false));
//! # Ok(()) }
//! ```

pub mod audio;
mod batch;
mod error;
mod files;
pub mod generation;
mod image;
mod pipeline;
mod scores;
mod settings;
pub mod tasks;
mod tokenize;

pub use batch::DEFAULT_BATCH_SIZE;
pub use error::Error;
pub use files::{Files, Folder, InMemory, MAX_FILE_BYTES};
pub use image::{
    decode as decode_image, resize_rgb8, Filter, ImageProcessor, Rgb8, Size, MAX_SIDE,
};
pub use pipeline::{Inputs, Options, Outcome, Pipeline, Results, Task};
pub use scores::ScoreFunction;
pub use settings::ModelConfig;
pub use tokenize::{TextTokenizer, Truncation};

/// The results of a run, in input order, and the inputs that had to be truncated.
#[derive(Debug, Clone, PartialEq)]
pub struct Run<T> {
    /// One result per input.
    pub results: Vec<T>,
    /// The inputs cut to the model's longest input.
    pub notes: Vec<Truncation>,
}
