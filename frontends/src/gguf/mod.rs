//! GGUF files (llama.cpp's checkpoints): the container (`reader.rs`), ggml's block formats
//! (`dequant.rs`), the `llama` architecture as a Hugging Face Llama (`llama.rs`: config and
//! tensor names; the graph is built by [`crate::hf::llama::build`]) and the tokenizer as a
//! `tokenizer.json` (`tokenizer.rs`).
//!
//! Weights stored as `Q4_0`, `Q4_1` or `Q8_0` are kept as their blocks by default
//! ([`WeightMode::Keep`]): the graph sees them as f32 matrices with exactly the values their
//! dequantization gives, and a GEMM reading one keeps the blocks in the artifact and computes in
//! f32 over them (`kiln_runtime::kernels::blocks`), reading 4.5–8.5 bits per weight instead of
//! 32. Every other type, and every weight with [`WeightMode::Dequantize`], is dequantized to
//! f32 when the file is opened. Either way the arithmetic is f32 on the file's stored values.

pub mod dequant;
pub mod llama;
pub mod reader;
pub mod tokenizer;
pub mod value;

use crate::error::Error;
use crate::hf::checkpoint::Checkpoint;
pub use crate::hf::Head;
use kiln_compiler::ir::Graph;
pub use reader::GgufFile;
use std::path::Path;
pub use value::{Array, Value};

/// How the quantized weights of a GGUF file reach the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightMode {
    /// Matrices stored as `Q4_0`, `Q4_1` or `Q8_0` stay as their blocks (the default).
    #[default]
    Keep,
    /// Every weight is dequantized to f32 at load.
    Dequantize,
}

/// The architectures Kiln builds from GGUF files (`general.architecture`).
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// A GGUF model ready to build: its config, its dequantized tensors and its tokenizer.
#[derive(Debug)]
pub struct GgufModel {
    /// The Hugging Face `config.json` equivalent of the metadata.
    pub config: serde_json::Value,
    /// The tensors under their Hugging Face names, in memory: f32, or block-quantized matrices
    /// (see [`WeightMode`]).
    pub checkpoint: Checkpoint,
    /// The tokenizer as a `tokenizer.json` string, or why the file's tokenizer cannot be
    /// written as one (none stored, or a kind not supported yet).
    pub tokenizer_json: Result<String, Error>,
    /// The chat template (`tokenizer.chat_template`), if any.
    pub chat_template: Option<String>,
    /// `general.architecture`.
    pub architecture: String,
    /// `general.name`, if any.
    pub name: Option<String>,
    /// The GGUF version (2 or 3).
    pub version: u32,
    /// How many tensors of each ggml type the file stores (`Q4_1` → 210).
    pub tensor_types: Vec<(&'static str, usize)>,
}

/// Whether `path` starts with the GGUF magic.
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == reader::MAGIC)
}

/// The value of `general.architecture`.
fn architecture(f: &GgufFile) -> Result<String, Error> {
    let key = "general.architecture";
    f.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Gguf {
            path: f.path().to_path_buf(),
            at: format!("key `{key}`"),
            message: "is missing or not a string".to_string(),
        })
}

/// Opens a GGUF file: parses and checks it, maps the architecture's metadata and tensors onto
/// their Hugging Face equivalents and dequantizes the tensors. An architecture other than those
/// in [`SUPPORTED_ARCHITECTURES`] is refused naming it.
pub fn open(path: &Path) -> Result<GgufModel, Error> {
    open_with(path, WeightMode::default())
}

/// [`open`] with the quantized weights kept or dequantized as `mode` says.
pub fn open_with(path: &Path, mode: WeightMode) -> Result<GgufModel, Error> {
    let f = GgufFile::open(path)?;
    let arch = architecture(&f)?;
    if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
        return Err(Error::UnsupportedArchitecture {
            path: path.to_path_buf(),
            found: arch,
            supported: SUPPORTED_ARCHITECTURES.to_vec(),
        });
    }
    let (config, heads) = llama::config(&f)?;
    let checkpoint = Checkpoint::from_tensors(path, llama::tensors(&f, heads, mode)?)?;
    let mut tensor_types: Vec<(&'static str, usize)> = Vec::new();
    for t in &f.header.tensors {
        match tensor_types.iter_mut().find(|e| e.0 == t.ggml_type.name()) {
            Some(e) => e.1 += 1,
            None => tensor_types.push((t.ggml_type.name(), 1)),
        }
    }
    Ok(GgufModel {
        config,
        checkpoint,
        tokenizer_json: tokenizer::tokenizer_json(&f),
        chat_template: tokenizer::chat_template(&f),
        architecture: arch,
        name: f
            .get("general.name")
            .and_then(Value::as_str)
            .map(str::to_string),
        version: f.header.version,
        tensor_types,
    })
}

impl GgufModel {
    /// Builds the graph with `head` (`Head::CausalLm` for `logits`, `Head::Base` for
    /// `last_hidden_state`); inputs `input_ids` and `attention_mask`, `i64[batch, seq]`.
    pub fn build(&self, head: Head) -> Result<Graph, Error> {
        crate::hf::llama::build(&self.config, &self.checkpoint, head)
    }
}

/// Opens `path` ([`open`]) and builds its graph with `head`.
pub fn load(path: &Path, head: Head) -> Result<Graph, Error> {
    open(path)?.build(head)
}
