//! Hugging Face model folders (`config.json` + `*.safetensors`): the architecture named by the
//! config is built directly into IR with Kiln's fused ops; one file per architecture.

mod bert;
pub mod builder;
pub mod checkpoint;
mod gpt2;
pub mod llama;
pub mod rope;
mod vit;

use crate::error::Error;
use checkpoint::{read, Checkpoint};
use kiln_compiler::ir::Graph;
use std::path::Path;

/// A builder for one architecture: the parsed `config.json` and the checkpoint → a graph.
pub type BuildFn = fn(&serde_json::Value, &Checkpoint) -> Result<Graph, Error>;

/// Supported architectures: the `architectures` names (and `model_type`s) and their builders.
const ARCHITECTURES: &[(&str, &str, BuildFn)] = &[
    ("LlamaForCausalLM", "llama", llama::build),
    ("BertModel", "bert", bert::build),
    ("ViTModel", "vit", vit::build),
    ("GPT2LMHeadModel", "gpt2", gpt2::build),
];

/// The names of the architectures Kiln can build.
pub fn supported() -> Vec<&'static str> {
    ARCHITECTURES.iter().map(|(a, _, _)| *a).collect()
}

/// Whether `dir` looks like a Hugging Face model folder.
pub fn is_model_folder(dir: &Path) -> bool {
    // `exists`, not `is_file`: a `config.json` that is a device is then refused by name.
    dir.is_dir() && dir.join("config.json").exists()
}

/// When `config.json` names only architectures Kiln does not build but its `model_type` is a
/// family Kiln builds (`BertForSequenceClassification` of `bert`), what is built instead: the
/// family's base graph, without the task head. `None` otherwise (or when the config is unreadable:
/// loading the folder reports that).
pub fn task_head_note(dir: &Path) -> Option<String> {
    let cfg: serde_json::Value =
        serde_json::from_str(&read(&dir.join("config.json")).ok()?).ok()?;
    let archs: Vec<&str> = cfg
        .get("architectures")?
        .as_array()?
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    let model_type = cfg.get("model_type")?.as_str()?;
    if archs.is_empty()
        || archs
            .iter()
            .any(|a| ARCHITECTURES.iter().any(|(s, _, _)| s == a))
    {
        return None;
    }
    let (base, _, _) = ARCHITECTURES.iter().find(|(_, t, _)| *t == model_type)?;
    Some(format!(
        "config.json names `{}`, whose task head Kiln does not build yet; building the \
         `{base}` graph without it (its outputs are the base model's)",
        archs.join("`, `")
    ))
}

/// Builds the graph of a Hugging Face model folder.
pub fn load_folder(dir: &Path) -> Result<Graph, Error> {
    let cfg_path = dir.join("config.json");
    let text = read(&cfg_path)?;
    let cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: cfg_path.clone(),
        message: format!("not valid JSON: {e}"),
    })?;
    let archs: Vec<String> = cfg
        .get("architectures")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let model_type = cfg
        .get("model_type")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    let found = ARCHITECTURES
        .iter()
        .find(|(a, _, _)| archs.iter().any(|x| x == a))
        // A task head of a supported family (`BertForMaskedLM`, `GPT2Model`, ...) builds the
        // family's graph, found through `model_type`; weights the graph does not use are ignored.
        .or_else(|| ARCHITECTURES.iter().find(|(_, t, _)| *t == model_type));
    let Some((_, _, build)) = found else {
        let name = match archs.first() {
            Some(a) => a.clone(),
            None if !model_type.is_empty() => model_type,
            None => "(none: config.json names no `architectures` or `model_type`)".to_string(),
        };
        return Err(Error::UnsupportedArchitecture {
            path: cfg_path,
            found: name,
            supported: supported(),
        });
    };
    let ck = Checkpoint::open(dir)?;
    build(&cfg, &ck)
}
