//! The compiler's error type: one enum, named fields, every variant says where and why.

use std::path::PathBuf;

/// Everything that can go wrong in `kiln-compiler`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// IR text that does not parse (or does not type-check while parsing).
    #[error("{line}:{col}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// An op's inputs have types the op does not accept.
    #[error("{op}: {message}")]
    Type {
        /// The op's name.
        op: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A graph that violates an IR invariant.
    #[error("node {node} ({op}) violates `{rule}`: {message}")]
    Verify {
        /// The node (its name, or `#id`).
        node: String,
        /// The node's op name.
        op: &'static str,
        /// The short name of the violated rule (`def-before-use`, `acyclic`, `types`, ...).
        rule: &'static str,
        /// Details.
        message: String,
    },
    /// A graph-level problem not tied to a node (outputs, inputs, symbols).
    #[error("graph violates `{rule}`: {message}")]
    Graph {
        /// The violated rule.
        rule: &'static str,
        /// Details.
        message: String,
    },
    /// Inputs given to a run that do not match the graph.
    #[error("input `{name}`: {message}")]
    Input {
        /// The input's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A run of the reference interpreter that would need more memory than its budget.
    #[error(transparent)]
    Budget(#[from] kiln_runtime::BudgetError),
    /// A node failed while being evaluated by the reference interpreter.
    #[error("node {node} ({op}) failed: {message}")]
    Eval {
        /// The node (its name, or `#id`).
        node: String,
        /// The node's op name.
        op: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A weight whose data is missing or inconsistent.
    #[error("weight `{name}`: {message}")]
    Weight {
        /// The weight's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A file that could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A generated kernel that is malformed or that Cranelift could not compile.
    #[error("generated kernel `{kernel}`: {message}")]
    Codegen {
        /// The kernel's name.
        kernel: String,
        /// What is wrong.
        message: String,
    },
    /// A graph the lowering cannot turn into a plan (an internal inconsistency).
    #[error("lowering: {message}")]
    Lower {
        /// What is wrong.
        message: String,
    },
    /// An error from the runtime's tensor layer.
    #[error(transparent)]
    Tensor(Box<kiln_runtime::Error>),
}

impl From<kiln_runtime::Error> for Error {
    fn from(e: kiln_runtime::Error) -> Error {
        Error::Tensor(Box::new(e))
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
