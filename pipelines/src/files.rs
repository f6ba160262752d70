//! Where a pipeline's settings come from: the small files of a Hugging Face model folder
//! (`tokenizer.json`, `config.json`, `preprocessor_config.json`, ...) read through [`Files`],
//! from a folder on disk or, for a `.kiln` artifact, from the copies compiled into it.

use crate::Error;
use std::path::{Path, PathBuf};

/// The largest settings file read (a `tokenizer.json` is a few MB; anything far larger is not a
/// settings file and is refused rather than read into memory).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// A source of the model's settings files, by their name relative to the model folder
/// (`config.json`, `1_Pooling/config.json`).
pub trait Files {
    /// The file's bytes, `None` when there is no such file.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, Error>;

    /// How to name the file in messages (`/models/minilm/config.json`, `m.kiln: config.json`).
    fn describe(&self, name: &str) -> String;

    /// The file as UTF-8 JSON, `None` when there is no such file.
    fn json(&self, name: &str) -> Result<Option<serde_json::Value>, Error> {
        let Some(bytes) = self.read(name)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Settings {
                file: self.describe(name),
                message: format!("is not valid JSON: {e}"),
            })
    }
}

/// The files of a model folder on disk.
#[derive(Debug, Clone)]
pub struct Folder {
    dir: PathBuf,
}

impl Folder {
    /// The folder at `dir` (nothing is read until a file is asked for).
    pub fn new(dir: impl Into<PathBuf>) -> Folder {
        Folder { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether `name` is a plain relative path inside the folder (no `..`, no root, no empty part).
fn is_inside(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

impl Files for Folder {
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        if !is_inside(name) {
            return Ok(None);
        }
        let path = self.dir.join(name);
        let io = |source| Error::Read {
            path: path.clone(),
            source,
        };
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        if !meta.is_file() {
            return Err(Error::Settings {
                file: path.display().to_string(),
                message: "is not a regular file".into(),
            });
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(Error::Settings {
                file: path.display().to_string(),
                message: format!(
                    "is {} bytes, more than the {MAX_FILE_BYTES} a settings file may have",
                    meta.len()
                ),
            });
        }
        std::fs::read(&path).map(Some).map_err(io)
    }

    fn describe(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// Files held in memory (tests, and callers that ship the settings some other way).
#[derive(Debug, Clone, Default)]
pub struct InMemory {
    /// What the files are called in messages (`<memory>`).
    pub label: String,
    /// The files by name.
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
}

impl InMemory {
    /// The settings files compiled into an artifact (its assets), named `label: NAME` in
    /// messages (the artifact's path as `label`). Copied: they are a few MB at most.
    pub fn from_assets(model: &kiln_runtime::Model, label: impl Into<String>) -> InMemory {
        let files = model
            .asset_names()
            .filter_map(|name| Some((name.to_string(), model.asset(name)?.to_vec())))
            .collect();
        InMemory {
            label: label.into(),
            files,
        }
    }
}

impl Files for InMemory {
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.files.get(name).cloned())
    }

    fn describe(&self, name: &str) -> String {
        format!("{}: {name}", self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_folder_are_read() {
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "a//b", "./x"] {
            assert!(!is_inside(bad), "{bad}");
        }
        for good in ["config.json", "1_Pooling/config.json"] {
            assert!(is_inside(good), "{good}");
        }
    }

    #[test]
    fn a_missing_file_is_none_and_bad_json_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let f = Folder::new(tmp.path());
        assert!(f.read("config.json").unwrap().is_none());
        std::fs::write(tmp.path().join("config.json"), "{").unwrap();
        let e = f.json("config.json").unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("not valid JSON"),
            "{e}"
        );
    }
}
