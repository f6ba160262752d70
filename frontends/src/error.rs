//! The crate's single error type: every failure names the file, and the tensor, node or
//! external-data location at fault.
//!
//! Messages are one line: names taken from a model (tensor, node and value names, locations)
//! are shown with control characters escaped, so a hostile name cannot forge extra lines.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error from a frontend (loading, decoding or importing a model).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file (or an external-data file) could not be read.
    #[error("{}: cannot read: {source}", shown_path(path))]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Bytes that are not a valid protobuf message of the expected kind (truncated, garbage).
    #[error("{}: {}", shown_path(path), Shown(message))]
    Decode {
        /// The file.
        path: PathBuf,
        /// What is wrong (`not an ONNX model: ...`).
        message: String,
    },
    /// A model that decodes but is structurally invalid (no graph, duplicate or dangling names,
    /// a cycle, missing opset imports).
    #[error("{}: malformed model: {}", shown_path(path), Shown(message))]
    Malformed {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor whose data does not match its shape or whose data type is not supported.
    #[error("{}: tensor `{}`: {}", shown_path(path), Shown(tensor), Shown(message))]
    Tensor {
        /// The model (or tensor) file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        message: String,
    },
    /// A tensor stored outside the model file whose location or byte range is refused.
    #[error(
        "{}: tensor `{}`: external data `{}`: {}",
        shown_path(path),
        Shown(tensor),
        Shown(location),
        Shown(message)
    )]
    ExternalData {
        /// The model file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The `location` entry as written in the model.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A node that uses an op, attribute value or input form Kiln does not support.
    #[error(
        "{}: node `{}` ({}::{}, opset {opset}): unsupported: {}",
        shown_path(path),
        Shown(node),
        Shown(domain_name(domain)),
        Shown(op_type),
        Shown(reason)
    )]
    Unsupported {
        /// The model file.
        path: PathBuf,
        /// The node's name (or `#index` when it has none).
        node: String,
        /// The node's op type.
        op_type: String,
        /// The node's domain (`""` is the default ONNX domain).
        domain: String,
        /// The opset version of that domain imported by the model.
        opset: i64,
        /// What is not supported.
        reason: String,
    },
    /// A graph input whose type Kiln does not support (a dtype it lacks, a sequence, a map).
    #[error(
        "{}: graph input `{}`: unsupported: {}",
        shown_path(path),
        Shown(input),
        Shown(reason)
    )]
    UnsupportedInput {
        /// The model file.
        path: PathBuf,
        /// The input's name.
        input: String,
        /// What is not supported.
        reason: String,
    },
    /// A Hugging Face `config.json` (or index file) that is missing, not JSON, or lacks a field.
    #[error("{}: {}", shown_path(path), Shown(message))]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A folder whose architecture Kiln cannot build.
    #[error(
        "{}: unsupported architecture `{}`; supported: {}",
        shown_path(path),
        Shown(found),
        supported.join(", ")
    )]
    UnsupportedArchitecture {
        /// The `config.json`.
        path: PathBuf,
        /// The `architectures` entry or `model_type` found.
        found: String,
        /// What Kiln can build.
        supported: Vec<&'static str>,
    },
    /// A safetensors file that is malformed or holds a dtype Kiln lacks.
    #[error("{}: {}", shown_path(path), Shown(message))]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A weight the architecture needs that the checkpoint lacks.
    #[error(
        "{}: missing weight `{}` (expected shape {:?})",
        shown_path(path),
        Shown(tensor),
        expected
    )]
    MissingWeight {
        /// The model folder.
        path: PathBuf,
        /// The weight's name (without architecture prefix).
        tensor: String,
        /// The shape the architecture expects.
        expected: Vec<usize>,
    },
    /// A weight whose shape differs from what the config implies.
    #[error(
        "{}: weight `{}` has shape {:?}, expected {:?}",
        shown_path(path),
        Shown(tensor),
        found,
        expected
    )]
    WeightShape {
        /// The safetensors file.
        path: PathBuf,
        /// The stored name.
        tensor: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The stored shape.
        found: Vec<usize>,
    },
    /// A node the importer refuses for a reason other than "unsupported" (bad attributes,
    /// wrong number of inputs, inconsistent shapes).
    #[error(
        "{}: node `{}` ({}): {}",
        shown_path(path),
        Shown(node),
        Shown(op_type),
        Shown(message)
    )]
    Node {
        /// The model file.
        path: PathBuf,
        /// The node's name (or `#index` when it has none).
        node: String,
        /// The node's op type.
        op_type: String,
        /// What is wrong.
        message: String,
    },
    /// A GGUF file (llama.cpp's checkpoint format) that is malformed, or holds something Kiln
    /// does not load (a tensor type, an architecture setting).
    #[error("{}: GGUF {}: {}", shown_path(path), Shown(at), Shown(message))]
    Gguf {
        /// The `.gguf` file.
        path: PathBuf,
        /// Where in the file: `header`, ``key `llama.block_count` ``, ``tensor `blk.0.attn_q.weight` ``.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// An error from the compiler (IR construction or verification).
    #[error(transparent)]
    Compiler(#[from] kiln_compiler::Error),
}

impl Error {
    /// The file the error is about (`None` for [`Error::Compiler`]).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::Decode { path, .. }
            | Error::Malformed { path, .. }
            | Error::Tensor { path, .. }
            | Error::ExternalData { path, .. }
            | Error::Unsupported { path, .. }
            | Error::UnsupportedInput { path, .. }
            | Error::Config { path, .. }
            | Error::UnsupportedArchitecture { path, .. }
            | Error::Safetensors { path, .. }
            | Error::MissingWeight { path, .. }
            | Error::WeightShape { path, .. }
            | Error::Node { path, .. }
            | Error::Gguf { path, .. } => Some(path),
            Error::Compiler(_) => None,
        }
    }
}

/// The name shown for an ONNX domain: the default domain `""` is shown as `ai.onnx`.
pub fn domain_name(domain: &str) -> &str {
    if domain.is_empty() {
        "ai.onnx"
    } else {
        domain
    }
}

/// A string displayed with control characters (newlines, escapes) escaped.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.chars().any(char::is_control) {
            return f.write_str(self.0);
        }
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

fn shown_path(path: &Path) -> String {
    Shown(&path.to_string_lossy()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_name_the_file() {
        let e = Error::Unsupported {
            path: "m.onnx".into(),
            node: "Foo_3".into(),
            op_type: "Bar".into(),
            domain: "com.microsoft".into(),
            opset: 17,
            reason: "no kernel".into(),
        };
        assert_eq!(
            e.to_string(),
            "m.onnx: node `Foo_3` (com.microsoft::Bar, opset 17): unsupported: no kernel"
        );
        let e = Error::Tensor {
            path: "dir/m.onnx".into(),
            tensor: "evil\nname".into(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "dir/m.onnx: tensor `evil\\nname`: bad");
        assert_eq!(e.path(), Some(Path::new("dir/m.onnx")));
    }

    #[test]
    fn the_default_domain_is_shown_as_ai_onnx() {
        let e = Error::Unsupported {
            path: "m.onnx".into(),
            node: "#4".into(),
            op_type: "Foo".into(),
            domain: String::new(),
            opset: 18,
            reason: "x".into(),
        };
        assert!(e.to_string().contains("(ai.onnx::Foo, opset 18)"));
        let e = Error::ExternalData {
            path: "m.onnx".into(),
            tensor: "w".into(),
            location: "../x.bin".into(),
            message: "leaves the model folder".into(),
        };
        assert_eq!(
            e.to_string(),
            "m.onnx: tensor `w`: external data `../x.bin`: leaves the model folder"
        );
    }
}
