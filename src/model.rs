//! Models by path: telling the kinds apart (`.kir`, `.onnx`, Hugging Face folder, `.gguf`,
//! `.kiln`),
//! loading the ones that are supported, and running a graph on inputs from an `.npz` file with
//! errors that name the file at fault.

use crate::Error;
use kiln_compiler::ir::Graph;
use kiln_frontends::gguf::WeightMode;
use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::Path;

/// The kinds of model path, for error messages.
pub const SUPPORTED_KINDS: &str = "a `.kir` IR text file, an `.onnx` file, a Hugging Face \
    model folder, a `.gguf` llama.cpp checkpoint (Llama) or a `.kiln` artifact";

/// What a model path holds, judged from its first bytes, else its name, and whether it is a
/// directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// IR text (`.kir`).
    Kir,
    /// An ONNX file (`.onnx`).
    Onnx,
    /// A Hugging Face model folder (`config.json` + `*.safetensors`).
    HfFolder,
    /// A llama.cpp checkpoint (`.gguf`, or any file starting with `GGUF`).
    Gguf,
    /// A compiled artifact (`.kiln`).
    Artifact,
}

/// Classifies a model path. The path must exist.
pub fn model_kind(path: &Path) -> Result<ModelKind, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return Ok(ModelKind::HfFolder);
    }
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let head = first_bytes(path);
    if head.starts_with(&kiln_runtime::artifact::MAGIC) {
        return Ok(ModelKind::Artifact);
    }
    if is_kir_text(&head) {
        return Ok(ModelKind::Kir);
    }
    if head.starts_with(kiln_frontends::gguf::reader::MAGIC) {
        return Ok(ModelKind::Gguf);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("kir") => Ok(ModelKind::Kir),
        Some("onnx") => Ok(ModelKind::Onnx),
        Some("kiln") => Ok(ModelKind::Artifact),
        Some("gguf") => Ok(ModelKind::Gguf),
        // An ONNX model is a protobuf whose first field is `ir_version` (field 1, a varint).
        _ if head.first() == Some(&0x08) => Ok(ModelKind::Onnx),
        _ => Err(Error::UnknownKind {
            path: path.to_path_buf(),
        }),
    }
}

/// Up to the first 256 bytes of a regular file (none when it cannot be read).
fn first_bytes(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(256).read_to_end(&mut head);
    }
    head
}

/// Whether `head` starts like IR text: `kir <version>` after blank lines and `#` comments.
fn is_kir_text(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with("kir "))
}

/// Loads a model into an IR graph (`.kir` and `.onnx` files, the latter with external data
/// beside it, Hugging Face folders and `.gguf` files, built as a causal LM; a `.kiln` artifact
/// holds a plan, not a graph).
pub fn load_model(path: &Path) -> Result<Graph, Error> {
    load_model_with(path, WeightMode::default())
}

/// [`load_model`] with a GGUF file's quantized weights kept or dequantized as `gguf` says.
pub fn load_model_with(path: &Path, gguf: WeightMode) -> Result<Graph, Error> {
    match model_kind(path)? {
        ModelKind::Kir => {
            let src = std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
            kiln_compiler::text::parse(&src).map_err(|source| Error::Parse {
                path: path.to_path_buf(),
                source,
            })
        }
        ModelKind::Onnx => {
            kiln_frontends::onnx::import::import_file(path).map_err(|source| Error::Import {
                path: path.to_path_buf(),
                source: Box::new(source),
            })
        }
        ModelKind::HfFolder => load_hf_folder(path),
        ModelKind::Gguf => {
            let import = |source| Error::Import {
                path: path.to_path_buf(),
                source: Box::new(source),
            };
            let m = kiln_frontends::gguf::open_with(path, gguf).map_err(import)?;
            m.build(kiln_frontends::gguf::Head::CausalLm)
                .map_err(import)
        }
        ModelKind::Artifact => Err(Error::ArtifactHasNoGraph {
            path: path.to_path_buf(),
        }),
    }
}

/// Builds the text-generation decoder of a model with its key/value cache as graph states
/// (`kiln_frontends::hf::decoder`): a Hugging Face folder of a causal LM (`llama`, `gpt2`), a
/// `.gguf` file, or an ONNX decoder exported with `past_key_values` inputs and `present`
/// outputs (optimum's `text-generation-with-past`, merged or not), whose caches
/// `kiln_compiler::passes::kv_states` turns into states (`kiln_frontends::onnx::decoder`).
pub fn load_decoder(path: &Path) -> Result<Graph, Error> {
    load_decoder_with(path, WeightMode::default())
}

/// [`load_decoder`] with a GGUF file's quantized weights kept or dequantized as `gguf` says.
pub fn load_decoder_with(path: &Path, gguf: WeightMode) -> Result<Graph, Error> {
    let import = |source| Error::Import {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    match model_kind(path)? {
        ModelKind::HfFolder => kiln_frontends::hf::load_decoder(path).map_err(import),
        ModelKind::Gguf => {
            let m = kiln_frontends::gguf::open_with(path, gguf).map_err(import)?;
            kiln_frontends::hf::build_decoder(&m.config, &m.checkpoint).map_err(import)
        }
        ModelKind::Onnx => kiln_frontends::onnx::decoder::load_decoder(path).map_err(import),
        _ => Err(Error::NotADecoder {
            path: path.to_path_buf(),
        }),
    }
}

/// Builds the graph of a Hugging Face folder (`config.json` + safetensors). A directory without
/// `config.json` is refused naming the directory itself.
fn load_hf_folder(dir: &Path) -> Result<Graph, Error> {
    let import = |source| Error::Import {
        path: dir.to_path_buf(),
        source: Box::new(source),
    };
    if !kiln_frontends::hf::is_model_folder(dir) {
        return Err(import(kiln_frontends::Error::Config {
            path: dir.to_path_buf(),
            message: "not a Hugging Face model folder (no `config.json`)".to_string(),
        }));
    }
    kiln_frontends::hf::load_folder(dir).map_err(import)
}

/// The graph's input names, in order.
pub fn input_names(g: &Graph) -> Vec<String> {
    g.inputs()
        .iter()
        .map(|&v| g.value(v).name.clone().unwrap_or_default())
        .collect()
}

/// Runs `g` (loaded from `model`) with the reference interpreter on `inputs` (read from
/// `inputs_path`), returning the named outputs in declaration order. Input problems name the
/// inputs file; failures while running name the model.
pub fn run_reference(
    g: &Graph,
    model: &Path,
    inputs: &BTreeMap<String, Tensor>,
    inputs_path: &Path,
    budget: &kiln_runtime::MemoryBudget,
) -> Result<Vec<(String, Tensor)>, Error> {
    let expected = input_names(g);
    if let Some(key) = inputs.keys().find(|k| !expected.contains(k)) {
        return Err(Error::UnknownInput {
            path: inputs_path.to_path_buf(),
            model: model.to_path_buf(),
            key: key.clone(),
            expected,
        });
    }
    let dtypes: Vec<(String, kiln_runtime::DType)> = g
        .inputs()
        .iter()
        .map(|&v| {
            let value = g.value(v);
            (value.name.clone().unwrap_or_default(), value.ty.dtype)
        })
        .collect();
    let inputs = crate::npz::bits_as_bf16(inputs.clone(), &dtypes);
    kiln_compiler::interp::run_within(g, &inputs, budget).map_err(|e| match e {
        kiln_compiler::Error::Input { name, message } => Error::Input {
            path: inputs_path.to_path_buf(),
            name,
            message,
        },
        source => Error::Run {
            path: model.to_path_buf(),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kiln-model-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn kinds_follow_extensions_and_directories() {
        let dir = scratch("kinds");
        for (file, kind) in [
            ("a.kir", Some(ModelKind::Kir)),
            ("b.ONNX", Some(ModelKind::Onnx)),
            ("c.kiln", Some(ModelKind::Artifact)),
            ("d.txt", None),
            ("noext", None),
        ] {
            let p = dir.join(file);
            std::fs::write(&p, b"").unwrap();
            match kind {
                Some(k) => assert_eq!(model_kind(&p).unwrap(), k),
                None => assert!(matches!(model_kind(&p), Err(Error::UnknownKind { .. }))),
            }
        }
        assert_eq!(model_kind(&dir).unwrap(), ModelKind::HfFolder);
        assert!(matches!(
            model_kind(&dir.join("missing.kir")),
            Err(Error::Io { .. })
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn unsupported_kinds_say_what_is_missing() {
        let dir = scratch("missing");
        let onnx = dir.join("m.onnx");
        std::fs::write(&onnx, b"garbage").unwrap();
        let msg = load_model(&onnx).unwrap_err().to_string();
        assert!(
            msg.contains("m.onnx: ") && !msg.contains("not available"),
            "{msg}"
        );
        assert_eq!(msg.matches("m.onnx").count(), 1, "{msg}");
        let msg = load_model(&dir).unwrap_err().to_string();
        assert!(
            msg.contains("not a Hugging Face model folder (no `config.json`)"),
            "{msg}"
        );
        std::fs::write(
            dir.join("config.json"),
            br#"{"architectures": ["NoSuchModel"]}"#,
        )
        .unwrap();
        let msg = load_model(&dir).unwrap_err().to_string();
        assert!(
            msg.contains("unsupported architecture `NoSuchModel`") && msg.contains("BertModel"),
            "{msg}"
        );
        let txt = dir.join("m.txt");
        std::fs::write(&txt, b"").unwrap();
        let msg = load_model(&txt).unwrap_err().to_string();
        assert!(
            msg.contains("unknown model kind") && msg.contains(".kir"),
            "{msg}"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn unknown_input_keys_list_the_expected_inputs() {
        let mut g = Graph::new();
        let ty = kiln_compiler::ir::TensorType::new(
            kiln_runtime::DType::F32,
            kiln_compiler::ir::Shape::known(&[2]),
        );
        let x = g.add_input("x", ty);
        g.add_output("y", x);
        let mut inputs = BTreeMap::new();
        inputs.insert("z".to_string(), Tensor::scalar_f32(1.0));
        let err = run_reference(
            &g,
            Path::new("m.kir"),
            &inputs,
            Path::new("in.npz"),
            &kiln_runtime::MemoryBudget::available(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.npz: array `z` names no input of m.kir (expected inputs: `x`)"
        );
    }
}
