//! Hugging Face model folders (`config.json` + `*.safetensors`): the architecture named by the
//! config (a base model or one of its task heads) is built directly into IR with Kiln's fused
//! ops; one file per family, the heads in `heads.rs`. An `architectures` entry Kiln does not
//! build is refused, never replaced by the family's base model.

pub mod bart;
mod bert;
pub mod builder;
pub mod checkpoint;
pub mod decoder;
mod distilbert;
mod gpt2;
pub mod heads;
pub mod llama;
mod roberta;
pub mod rope;
pub mod sizes;
pub mod t5;
mod vit;
pub mod whisper;

use crate::error::Error;
use checkpoint::{read, Checkpoint};
pub use heads::Head;
use kiln_compiler::ir::Graph;
use std::path::Path;

/// A builder for one family: the parsed `config.json`, the checkpoint and the head → a graph.
pub type BuildFn = fn(&serde_json::Value, &Checkpoint, Head) -> Result<Graph, Error>;

/// A family of architectures sharing one `model_type` and one builder.
struct Family {
    model_type: &'static str,
    build: BuildFn,
    /// The `architectures` names Kiln builds and their heads; the `Head::Base` one is what a
    /// config without `architectures` builds (as transformers' `AutoModel` does).
    architectures: &'static [(&'static str, Head)],
}

/// The supported families and architectures.
const FAMILIES: &[Family] = &[
    Family {
        model_type: "bert",
        build: bert::build,
        architectures: &[
            ("BertModel", Head::Base),
            ("BertForMaskedLM", Head::MaskedLm),
            (
                "BertForSequenceClassification",
                Head::SequenceClassification,
            ),
            ("BertForTokenClassification", Head::TokenClassification),
            ("BertForQuestionAnswering", Head::QuestionAnswering),
        ],
    },
    Family {
        model_type: "roberta",
        build: roberta::build,
        architectures: &[
            ("RobertaModel", Head::Base),
            ("RobertaForMaskedLM", Head::MaskedLm),
            (
                "RobertaForSequenceClassification",
                Head::SequenceClassification,
            ),
            ("RobertaForTokenClassification", Head::TokenClassification),
            ("RobertaForQuestionAnswering", Head::QuestionAnswering),
        ],
    },
    Family {
        model_type: "xlm-roberta",
        build: roberta::build,
        architectures: &[
            ("XLMRobertaModel", Head::Base),
            ("XLMRobertaForMaskedLM", Head::MaskedLm),
            (
                "XLMRobertaForSequenceClassification",
                Head::SequenceClassification,
            ),
            (
                "XLMRobertaForTokenClassification",
                Head::TokenClassification,
            ),
            ("XLMRobertaForQuestionAnswering", Head::QuestionAnswering),
        ],
    },
    Family {
        model_type: "distilbert",
        build: distilbert::build,
        architectures: &[
            ("DistilBertModel", Head::Base),
            ("DistilBertForMaskedLM", Head::MaskedLm),
            (
                "DistilBertForSequenceClassification",
                Head::SequenceClassification,
            ),
            (
                "DistilBertForTokenClassification",
                Head::TokenClassification,
            ),
            ("DistilBertForQuestionAnswering", Head::QuestionAnswering),
        ],
    },
    Family {
        model_type: "vit",
        build: vit::build,
        architectures: &[
            ("ViTModel", Head::Base),
            ("ViTForImageClassification", Head::ImageClassification),
        ],
    },
    Family {
        model_type: "gpt2",
        build: gpt2::build,
        architectures: &[
            ("GPT2Model", Head::Base),
            ("GPT2LMHeadModel", Head::CausalLm),
        ],
    },
    Family {
        model_type: "llama",
        build: llama::build,
        architectures: &[
            ("LlamaModel", Head::Base),
            ("LlamaForCausalLM", Head::CausalLm),
        ],
    },
];

/// Every supported architecture: `(name, family, head)`.
fn architectures() -> impl Iterator<Item = (&'static str, &'static Family, Head)> {
    FAMILIES
        .iter()
        .flat_map(|f| f.architectures.iter().map(move |&(a, h)| (a, f, h)))
}

/// The names of the architectures Kiln can build.
pub fn supported() -> Vec<&'static str> {
    architectures().map(|(a, ..)| a).collect()
}

/// The head an `architectures` name builds, or `None` when Kiln does not build it.
pub fn head_of(architecture: &str) -> Option<Head> {
    architectures()
        .find(|(a, ..)| *a == architecture)
        .map(|(_, _, h)| h)
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
        FAMILIES
            .iter()
            .find(|f| f.model_type == model_type)
            .map(|f| (f, Head::Base))
    } else {
        archs.iter().find_map(|x| {
            architectures()
                .find(|(a, ..)| a == x)
                .map(|(_, f, h)| (f, h))
        })
    };
    let Some((family, head)) = found else {
        if SEQ2SEQ.contains(&model_type.as_str()) {
            return Err(Error::Config {
                path: cfg_path,
                message: format!(
                    "model_type `{model_type}` is an encoder-decoder: Kiln builds it as two \
                     graphs for generation (`hf::load_seq2seq`: the encoder with the \
                     cross-attention keys and values, and the cached decoder), not as one"
                ),
            });
        }
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
    (family.build)(&cfg, &ck, head)
}

/// The model types [`load_decoder`] builds with a key/value cache.
pub const DECODERS: &[&str] = &["llama", "gpt2"];

/// Builds the key/value-cached decoder graph (see [`decoder`]) of a Hugging Face folder whose
/// `model_type` is one of [`DECODERS`].
pub fn load_decoder(dir: &Path) -> Result<Graph, Error> {
    let cfg_path = dir.join("config.json");
    let text = read(&cfg_path)?;
    let cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: cfg_path.clone(),
        message: format!("not valid JSON: {e}"),
    })?;
    let ck = Checkpoint::open(dir)?;
    build_decoder(&cfg, &ck)
}

/// [`load_decoder`] for a parsed `config.json` and an opened checkpoint (a GGUF file gives
/// both).
pub fn build_decoder(cfg: &serde_json::Value, ck: &Checkpoint) -> Result<Graph, Error> {
    let model_type = cfg.get("model_type").and_then(|m| m.as_str()).unwrap_or("");
    match model_type {
        "llama" => llama::build_cached(cfg, ck),
        "gpt2" => gpt2::build_cached(cfg, ck),
        other => Err(Error::UnsupportedArchitecture {
            path: ck.dir().join("config.json"),
            found: format!("model_type `{other}` (for text generation with a key/value cache)"),
            supported: DECODERS.to_vec(),
        }),
    }
}

/// The model types [`load_seq2seq`] builds.
pub const SEQ2SEQ: &[&str] = &["bart", "t5"];

/// The two graphs of a text encoder-decoder folder whose `model_type` is one of [`SEQ2SEQ`]:
/// the encoder (`input_ids`, `attention_mask` → `last_hidden_state`, `cross.N.key|value`)
/// and the cached decoder (the inputs of [`decoder::declare_inputs`] plus
/// `encoder_attention_mask`, states `past.N.*` and read-only `cross.N.*`, `logits`).
pub fn load_seq2seq(dir: &Path) -> Result<(Graph, Graph), Error> {
    let cfg_path = dir.join("config.json");
    let text = read(&cfg_path)?;
    let cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: cfg_path.clone(),
        message: format!("not valid JSON: {e}"),
    })?;
    let model_type = cfg.get("model_type").and_then(|m| m.as_str()).unwrap_or("");
    let (encoder, decoder): (SeqBuildFn, SeqBuildFn) = match model_type {
        "bart" => (
            bart::build_encoder_with_cross_kv,
            bart::build_cached_decoder,
        ),
        "t5" => (t5::build_encoder_with_cross_kv, t5::build_cached_decoder),
        other => {
            return Err(Error::UnsupportedArchitecture {
                path: cfg_path,
                found: format!("model_type `{other}` (for encoder-decoder generation)"),
                supported: SEQ2SEQ.to_vec(),
            })
        }
    };
    let ck = Checkpoint::open(dir)?;
    Ok((encoder(&cfg, &ck)?, decoder(&cfg, &ck)?))
}

/// A builder of one of an encoder-decoder's two graphs.
type SeqBuildFn = fn(&serde_json::Value, &Checkpoint) -> Result<Graph, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_one_base_and_names_are_unique() {
        for f in FAMILIES {
            let bases = f.architectures.iter().filter(|(_, h)| *h == Head::Base);
            assert_eq!(bases.count(), 1, "{}", f.model_type);
        }
        let mut names = supported();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert_eq!(head_of("BertForMaskedLM"), Some(Head::MaskedLm));
        assert_eq!(head_of("XLMRobertaModel"), Some(Head::Base));
        assert_eq!(head_of("BertForNextSentencePrediction"), None);
    }
}
