//! Kiln: an ahead-of-time neural-network model compiler. This facade re-exports the crates and
//! holds what the `kiln` command line shares with applications: model loading by path, running
//! with the reference interpreter, and `.npz` input/output files.

pub mod conformance;
pub mod model;
mod npy;
mod npy_header;
pub mod npz;
pub mod parallel;
pub mod summary;

pub use kiln_compiler;
pub use kiln_frontends;
pub use kiln_runtime;
pub use model::{load_model, model_kind, run_reference, ModelKind};
pub use npz::{read_npz, write_npz, NpzError};
pub use summary::{summarize, Summary};

use std::path::PathBuf;

/// Everything that can go wrong in the facade. Every variant names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file that could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A model that does not parse or does not type-check.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The model file.
        path: PathBuf,
        /// The parser's error (with line and column).
        source: kiln_compiler::Error,
    },
    /// An ONNX model or a Hugging Face folder that could not be loaded or imported (the
    /// frontend's message names the file, and the node, op type, domain and opset of an
    /// unsupported op, or the missing or mis-shaped weight).
    #[error("{}", import_message(path, source))]
    Import {
        /// The model file.
        path: PathBuf,
        /// The frontend's error (boxed: it carries file, node, op, domain and opset).
        source: Box<kiln_frontends::Error>,
    },
    /// A model kind that Kiln recognises but cannot handle yet.
    #[error("{}: {what} not available yet", path.display())]
    NotAvailable {
        /// The model path.
        path: PathBuf,
        /// What is missing, e.g. "ONNX import is".
        what: &'static str,
    },
    /// A path that is no kind of model Kiln knows.
    #[error("{}: unknown model kind (expected {})", path.display(), model::SUPPORTED_KINDS)]
    UnknownKind {
        /// The path.
        path: PathBuf,
    },
    /// An input file holding an array that names no graph input.
    #[error(
        "{}: array `{key}` names no input of {} (expected inputs: {})",
        path.display(),
        model.display(),
        list(expected)
    )]
    UnknownInput {
        /// The inputs file.
        path: PathBuf,
        /// The model file.
        model: PathBuf,
        /// The key that matches no input.
        key: String,
        /// The graph's input names.
        expected: Vec<String>,
    },
    /// An input array that does not fit the graph (missing, wrong dtype, wrong shape).
    #[error("{}: input `{name}` {message}", path.display())]
    Input {
        /// The inputs file.
        path: PathBuf,
        /// The input's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The model failed while running.
    #[error("{}: {source}", path.display())]
    Run {
        /// The model file.
        path: PathBuf,
        /// The interpreter's error (naming the node and op).
        source: kiln_compiler::Error,
    },
    /// An `.npz` file that could not be read or written.
    #[error(transparent)]
    Npz(#[from] NpzError),
}

/// The frontend's message, prefixed with the model path unless it already names a file.
fn import_message(path: &std::path::Path, e: &kiln_frontends::Error) -> String {
    match e.path() {
        Some(_) => e.to_string(),
        None => format!("{}: {e}", path.display()),
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
