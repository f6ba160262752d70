//! Whisper for speech recognition through the facade: a Hugging Face folder whose `model_type`
//! is `whisper` becomes two models compiled in memory — the encoder with every decoder layer's
//! cross-attention keys and values as outputs, and the decoder with a key/value cache and those
//! keys and values as read-only states (`kiln_frontends::hf::whisper`). `kiln transcribe` and
//! applications wire them with `kiln_pipelines::generation::Whisper`.

use crate::backend::CompileOptions;
use crate::Error;
use kiln_compiler::ir::Graph;
use kiln_compiler::pipeline;
use kiln_frontends::hf::checkpoint::{read, Checkpoint};
use kiln_frontends::hf::whisper::{build_cached_decoder, build_encoder_with_cross_kv};
use kiln_runtime::{LoadOptions, Model};
use std::path::Path;

/// The two compiled models of a Whisper folder.
#[derive(Debug)]
pub struct WhisperModels {
    /// Input `input_features`; outputs `last_hidden_state` and `cross.N.key|value`.
    pub encoder: Model,
    /// The cached decoder (inputs `input_ids`, `position_ids`, `attention_mask`).
    pub decoder: Model,
}

/// Checks that `dir` is a Whisper folder (`config.json` with `model_type` `whisper`) and returns
/// its parsed `config.json`.
pub fn whisper_config(dir: &Path) -> Result<serde_json::Value, Error> {
    let import = |source| Error::Import {
        path: dir.to_path_buf(),
        source: Box::new(source),
    };
    let cfg_path = dir.join("config.json");
    if !kiln_frontends::hf::is_model_folder(dir) {
        return Err(import(kiln_frontends::Error::Config {
            path: cfg_path,
            message: "is missing: speech recognition needs a Whisper Hugging Face folder".into(),
        }));
    }
    let text = read(&cfg_path).map_err(import)?;
    let cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        import(kiln_frontends::Error::Config {
            path: cfg_path.clone(),
            message: format!("not valid JSON: {e}"),
        })
    })?;
    let model_type = cfg.get("model_type").and_then(|m| m.as_str()).unwrap_or("");
    if model_type != "whisper" {
        return Err(import(kiln_frontends::Error::UnsupportedArchitecture {
            path: cfg_path,
            found: format!("model_type `{model_type}` (for speech recognition)"),
            supported: vec!["whisper"],
        }));
    }
    Ok(cfg)
}

/// Builds and compiles both models of the Whisper folder `dir` in memory.
pub fn load_whisper(
    dir: &Path,
    opts: &CompileOptions,
    load: &LoadOptions,
) -> Result<WhisperModels, Error> {
    let cfg = whisper_config(dir)?;
    let import = |source| Error::Import {
        path: dir.to_path_buf(),
        source: Box::new(source),
    };
    let ck = Checkpoint::open(dir).map_err(import)?;
    let encoder = build_encoder_with_cross_kv(&cfg, &ck).map_err(import)?;
    let decoder = build_cached_decoder(&cfg, &ck).map_err(import)?;
    Ok(WhisperModels {
        encoder: compile_graph(&encoder, dir, opts, load)?,
        decoder: compile_graph(&decoder, dir, opts, load)?,
    })
}

/// Compiles `g` (built from the model at `path`, which errors name) into a runnable model.
pub fn compile_graph(
    g: &Graph,
    path: &Path,
    opts: &CompileOptions,
    load: &LoadOptions,
) -> Result<Model, Error> {
    let options = pipeline::Options {
        optimize: opts.optimize,
        progress: opts.progress.clone(),
    };
    let compiled =
        pipeline::compile(g, &opts.target, &options).map_err(|source| Error::Compile {
            path: path.to_path_buf(),
            source,
        })?;
    Model::from_bytes(compiled.to_bytes(), load).map_err(|source| Error::Runtime {
        path: path.to_path_buf(),
        source,
    })
}
