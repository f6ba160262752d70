//! The files of a Hugging Face folder that a compiled model carries as artifact assets: what
//! the pipelines read besides the weights (tokenizer, labels, processor and pooling settings).

use crate::Error;
use kiln_frontends::hf::checkpoint::read;
use std::path::Path;

/// The files at a folder's top level that are embedded when present.
pub const FOLDER_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
];

/// The most bytes of assets one artifact takes from a folder.
pub const MAX_ASSET_BYTES: u64 = 256 << 20;

/// The sentence-transformers module folders (`1_Pooling`, `2_Normalize`) that `modules.json`
/// lists, when it is readable: their `config.json` is embedded too.
fn module_dirs(dir: &Path) -> Vec<String> {
    let Ok(text) = read(&dir.join("modules.json")) else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Array(modules)) = serde_json::from_str(&text) else {
        return Vec::new();
    };
    modules
        .iter()
        .filter_map(|m| m.get("path")?.as_str())
        .filter(|p| !p.is_empty() && kiln_runtime::artifact::assets::check_name(p).is_ok())
        .map(str::to_string)
        .collect()
}

/// The pipeline files of the Hugging Face folder `dir`, by their names relative to it. Each is
/// read as a regular text file (a link or device is refused naming it); absent ones are
/// skipped; more than [`MAX_ASSET_BYTES`] in all is refused.
pub fn folder_assets(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let import = |source| Error::Import {
        path: dir.to_path_buf(),
        source: Box::new(source),
    };
    let mut names: Vec<String> = FOLDER_FILES.iter().map(|s| s.to_string()).collect();
    names.extend(
        module_dirs(dir)
            .into_iter()
            .map(|m| format!("{m}/config.json")),
    );
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut total = 0u64;
    for name in names {
        let path = dir.join(&name);
        if out.iter().any(|(n, _)| *n == name) || std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let text = read(&path).map_err(import)?;
        total = total.saturating_add(text.len() as u64);
        if total > MAX_ASSET_BYTES {
            return Err(Error::Io {
                path,
                source: std::io::Error::other(format!(
                    "the folder's pipeline files exceed {} MiB in all",
                    MAX_ASSET_BYTES >> 20
                )),
            });
        }
        out.push((name, text.into_bytes()));
    }
    Ok(out)
}

/// The pipeline files of a `.gguf` file, written from its metadata: `config.json` (the Hugging
/// Face equivalent), `tokenizer.json` when the file's tokenizer can be written as one, and
/// `tokenizer_config.json` holding the chat template when there is one.
pub fn gguf_assets(path: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    use kiln_frontends::gguf::{reader::GgufFile, tokenizer};
    let import = |source| Error::Import {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let f = GgufFile::open(path).map_err(import)?;
    let (config, _) = kiln_frontends::gguf::llama::config(&f).map_err(import)?;
    let mut files = vec![("config.json".to_string(), config.to_string().into_bytes())];
    if let Ok(json) = tokenizer::tokenizer_json(&f) {
        files.push(("tokenizer.json".to_string(), json.into_bytes()));
    }
    if let Some(t) = tokenizer::chat_template(&f) {
        let cfg = serde_json::json!({ "chat_template": t });
        files.push((
            "tokenizer_config.json".to_string(),
            cfg.to_string().into_bytes(),
        ));
    }
    Ok(files)
}
