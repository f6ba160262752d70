//! Kiln frontends: ONNX import and Hugging Face safetensors folders (BERT, GPT-2, Llama, ViT;
//! Whisper and BART as encoder-decoder graph pairs), each into Kiln IR. Import only: running and conformance testing live elsewhere.
//!
//! Every loader here treats its input as untrusted: a bad file is an [`Error`] naming the file
//! (and the tensor, node or external-data location at fault), never a panic.

// `Error` carries the context the design asks for (file, node, op, domain, opset, reason), which
// makes it 128 bytes; errors are the cold path, so returning it unboxed is fine.
#![allow(clippy::result_large_err)]

pub mod error;
pub mod gguf;
pub mod hf;
pub mod onnx;

pub use error::Error;
