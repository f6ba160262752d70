//! The integration tests of `kiln`, linked as one binary: each module was a separate test
//! binary before, and one link instead of dozens is most of the build time of `cargo test`.

mod artifact_assets;
mod cli_artifact;
mod cli_conformance;
mod cli_errors;
mod cli_friction;
mod cli_inspect;
mod cli_onnx;
mod cli_pipeline;
mod cli_pipeline_tasks;
mod cli_run;
mod common;
mod cpu_backend;
mod gguf_smollm2;
mod hf_bert;
mod hf_families;
mod hf_gpt2;
mod hf_heads;
mod hf_llama;
mod hf_sentence_embeddings;
mod hf_vit;
mod hf_whisper;
mod hostile;
mod kv_cache;
mod npz_malformed;
mod npz_roundtrip;
mod onnx_conformance;
mod onnx_contrib;
mod onnx_families;
mod onnx_fixtures;
mod onnx_pinned;
mod optimizer_fixtures;
mod passes_fixtures;
mod rnn_models;
mod soak;
mod stress;
