//! Hugging Face model folders (`config.json` + `*.safetensors`): the architecture named by the
//! config (a base model or one of its task heads) is built directly into IR with Kiln's fused
//! ops; one file per family, the heads in `heads.rs`. An `architectures` entry Kiln does not
//! build is refused, never replaced by the family's base model.

mod bert;
pub mod builder;
pub mod checkpoint;
mod distilbert;
mod gpt2;
pub mod heads;
pub mod llama;
mod roberta;
pub mod rope;
mod vit;

use crate::error::Error;
use checkpoint::{read, Checkpoint};
pub use heads::Head;
use kiln_compiler::ir::Graph;
use std::path::Path;

/// A builder for one family: the parsed `config.json`, the checkpoint and the head → a graph.
pub type BuildFn = fn(&serde_json::Value, &Checkpoint, Head) -> Result<Graph, Error>;

/// Supported architectures: the `architectures` name, its `model_type`, the head and the
/// family's builder. The `Head::Base` entry of a `model_type` is what a config without
/// `architectures` builds (as transformers' `AutoModel` does).
const ARCHITECTURES: &[(&str, &str, Head, BuildFn)] = &[
    ("BertModel", "bert", Head::Base, bert::build),
    ("BertForMaskedLM", "bert", Head::MaskedLm, bert::build),
    (
        "BertForSequenceClassification",
        "bert",
        Head::SequenceClassification,
        bert::build,
    ),
    (
        "BertForTokenClassification",
        "bert",
        Head::TokenClassification,
        bert::build,
    ),
    (
        "BertForQuestionAnswering",
        "bert",
        Head::QuestionAnswering,
        bert::build,
    ),
    ("RobertaModel", "roberta", Head::Base, roberta::build),
    (
        "RobertaForMaskedLM",
        "roberta",
        Head::MaskedLm,
        roberta::build,
    ),
    (
        "RobertaForSequenceClassification",
        "roberta",
        Head::SequenceClassification,
        roberta::build,
    ),
    (
        "RobertaForTokenClassification",
        "roberta",
        Head::TokenClassification,
        roberta::build,
    ),
    (
        "RobertaForQuestionAnswering",
        "roberta",
        Head::QuestionAnswering,
        roberta::build,
    ),
    ("XLMRobertaModel", "xlm-roberta", Head::Base, roberta::build),
    (
        "XLMRobertaForMaskedLM",
        "xlm-roberta",
        Head::MaskedLm,
        roberta::build,
    ),
    (
        "XLMRobertaForSequenceClassification",
        "xlm-roberta",
        Head::SequenceClassification,
        roberta::build,
    ),
    (
        "XLMRobertaForTokenClassification",
        "xlm-roberta",
        Head::TokenClassification,
        roberta::build,
    ),
    (
        "XLMRobertaForQuestionAnswering",
        "xlm-roberta",
        Head::QuestionAnswering,
        roberta::build,
    ),
    (
        "DistilBertModel",
        "distilbert",
        Head::Base,
        distilbert::build,
    ),
    (
        "DistilBertForMaskedLM",
        "distilbert",
        Head::MaskedLm,
        distilbert::build,
    ),
    (
        "DistilBertForSequenceClassification",
        "distilbert",
        Head::SequenceClassification,
        distilbert::build,
    ),
    (
        "DistilBertForTokenClassification",
        "distilbert",
        Head::TokenClassification,
        distilbert::build,
    ),
    (
        "DistilBertForQuestionAnswering",
        "distilbert",
        Head::QuestionAnswering,
        distilbert::build,
    ),
    ("ViTModel", "vit", Head::Base, vit::build),
    (
        "ViTForImageClassification",
        "vit",
        Head::ImageClassification,
        vit::build,
    ),
    ("GPT2Model", "gpt2", Head::Base, gpt2::build),
    ("GPT2LMHeadModel", "gpt2", Head::CausalLm, gpt2::build),
    ("LlamaModel", "llama", Head::Base, llama::build),
    ("LlamaForCausalLM", "llama", Head::CausalLm, llama::build),
];

/// The names of the architectures Kiln can build.
pub fn supported() -> Vec<&'static str> {
    ARCHITECTURES.iter().map(|(a, ..)| *a).collect()
}

/// The head an `architectures` name builds, or `None` when Kiln does not build it.
pub fn head_of(architecture: &str) -> Option<Head> {
    ARCHITECTURES
        .iter()
        .find(|(a, ..)| *a == architecture)
        .map(|(_, _, h, _)| *h)
}

/// Whether `dir` looks like a Hugging Face model folder.
pub fn is_model_folder(dir: &Path) -> bool {
    // `exists`, not `is_file`: a `config.json` that is a device is then refused by name.
    dir.is_dir() && dir.join("config.json").exists()
}

/// Builds the graph of a Hugging Face folder: the first `architectures` entry Kiln builds, or,
/// when `config.json` names no architectures, the base model of its `model_type`. A folder
/// whose `architectures` names only heads Kiln does not build is [`Error::UnsupportedArchitecture`].
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
    let found = if archs.is_empty() {
        ARCHITECTURES
            .iter()
            .find(|(_, t, h, _)| *t == model_type && *h == Head::Base)
    } else {
        ARCHITECTURES
            .iter()
            .find(|(a, ..)| archs.iter().any(|x| x == a))
    };
    let Some((_, _, head, build)) = found else {
        let name = if !archs.is_empty() {
            archs.join(", ")
        } else if !model_type.is_empty() {
            model_type
        } else {
            "(none: config.json names no `architectures` or `model_type`)".to_string()
        };
        return Err(Error::UnsupportedArchitecture {
            path: cfg_path,
            found: name,
            supported: supported(),
        });
    };
    let ck = Checkpoint::open(dir)?;
    build(&cfg, &ck, *head)
}
