//! Kiln: an ahead-of-time neural-network model compiler. This facade re-exports the crates and
//! holds what the `kiln` command line shares with applications: model loading by path, the CPU
//! backend as callers of the compile pipeline, running with the reference interpreter, `.npz`
//! input/output files, graph summaries (JSON, Graphviz), `inspect --format json`, the optimizer
//! report, the one-line error report, the ONNX conformance runner and Whisper's two models
//! compiled in memory ([`whisper`]).

pub mod assets;
pub mod backend;
pub mod conformance;
pub mod dot;
pub mod inspect;
pub mod model;
mod npy;
mod npy_header;
pub mod npz;
pub mod report;
pub mod summary;
pub mod svg;
pub mod whisper;

pub use kiln_compiler;
pub use kiln_frontends;
pub use kiln_runtime;
pub use model::{load_decoder, load_model, model_kind, run_reference, ModelKind};
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
    /// A model kind that has no text-generation decoder (only Hugging Face causal-LM folders,
    /// `.gguf` files and ONNX decoders with `past_key_values` have a key/value cache).
    #[error(
        "{}: text generation needs a Hugging Face folder of a causal LM (llama, gpt2), a \
         `.gguf` file, an ONNX decoder exported with `past_key_values`, or an artifact compiled \
         from one with `kiln compile --decoder`",
        path.display()
    )]
    NotADecoder {
        /// The model path.
        path: PathBuf,
    },
    /// A `.kiln` artifact where an IR graph is needed (the reference backend, IR stages).
    #[error(
        "{}: a `.kiln` artifact holds a compiled plan, not an IR graph; run it with \
         `--backend cpu`, or inspect it without `--stage`",
        path.display()
    )]
    ArtifactHasNoGraph {
        /// The artifact.
        path: PathBuf,
    },
    /// A model path that is neither a regular file nor a folder (a device such as `/dev/zero`, a
    /// FIFO, a socket, or a symbolic link to one): never read.
    #[error(
        "{}: not a regular file or a folder (a device, FIFO or socket is never read as a model)",
        path.display()
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
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
    /// The optimizer failed on a model (its error follows in the source chain).
    #[error("{}: the optimizer failed", path.display())]
    Optimize {
        /// The model file.
        path: PathBuf,
        /// The compiler's error.
        source: kiln_compiler::Error,
    },
    /// A summary that could not be encoded as JSON.
    #[error("{}: cannot encode the summary", path.display())]
    Encode {
        /// The model file.
        path: PathBuf,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// An output path that names the same file as one of the inputs (also through a link):
    /// writing it would destroy that input, so it is refused before any work.
    #[error(
        "{}: is also an input of this command ({}); write the output to another path",
        output.display(),
        input.display()
    )]
    OutputIsInput {
        /// The output path.
        output: PathBuf,
        /// The input it names.
        input: PathBuf,
    },
    /// An output path whose folder does not take a new file (checked before any work).
    #[error("cannot write outputs to {}: {source}", path.display())]
    CannotWrite {
        /// The output path.
        path: PathBuf,
        /// Why a file cannot be created there.
        source: std::io::Error,
    },
    /// A model that could not be compiled.
    #[error("{}: {source}", path.display())]
    Compile {
        /// The model file.
        path: PathBuf,
        /// The compiler's error.
        source: kiln_compiler::Error,
    },
    /// An artifact that could not be loaded, or a compiled model that failed while running.
    #[error("{}", runtime_message(path, source))]
    Runtime {
        /// The model or artifact file.
        path: PathBuf,
        /// The runtime's error.
        source: kiln_runtime::Error,
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

/// The runtime's message, prefixed with the path unless it names the file itself (artifact,
/// plan and code errors do).
fn runtime_message(path: &std::path::Path, e: &kiln_runtime::Error) -> String {
    match e {
        kiln_runtime::Error::Artifact(_) => e.to_string(),
        kiln_runtime::Error::Plan { .. } | kiln_runtime::Error::Code { .. } => {
            let text = e.to_string();
            if text.starts_with("<memory>") {
                format!(
                    "{}: {}",
                    path.display(),
                    text.trim_start_matches("<memory>: ")
                )
            } else {
                text
            }
        }
        _ => format!("{}: {e}", path.display()),
    }
}

/// An error and its causes as one line, as the command line reports them (`error: <line>`):
/// each cause is appended after `: ` unless the message so far already ends with it (errors
/// that print their source, as the compiler's do, would otherwise repeat it); line breaks inside
/// messages become spaces.
pub fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = String::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        let text = text.trim();
        if !text.is_empty() && !msg.ends_with(text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(text);
        }
        cause = c.source();
    }
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
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
