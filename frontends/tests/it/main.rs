//! The integration tests of `kiln-frontends`, linked as one binary: each module was a separate test
//! binary before, and one link instead of dozens is most of the build time of `cargo test`.

mod gguf_common;
mod gguf_dequant;
mod gguf_llama;
mod gguf_malformed;
mod gguf_tokenizer;
mod hf_checkpoint;
mod onnx_common;
mod onnx_decode;
mod onnx_import_contrib;
mod onnx_import_loss;
mod onnx_import_misc;
mod onnx_import_nn;
mod onnx_import_ops;
mod onnx_import_ops_linalg;
mod onnx_import_quant;
mod onnx_import_rnn;
mod onnx_import_shape;
mod onnx_import_topk;
mod onnx_malformed;
mod onnx_malformed_external;
mod onnx_ops_model;
mod onnx_unknown_dims;
