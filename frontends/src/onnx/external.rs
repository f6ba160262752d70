//! External-data entries of a `TensorProto`: parsing `location`/`offset`/`length`, and the
//! path checks that keep a model from reading files outside its own folder.
//!
//! The checks follow the known attacks on ONNX loaders: absolute locations, `..` components
//! (CVE-2022-25882), `a/../../b` (CVE-2024-27318) and symlinks that leave the folder
//! (CVE-2026-27489): a location must be relative, have only normal components, and its
//! canonical path (symlinks resolved) must lie under the canonical model folder.

use super::proto::StringStringEntryProto;
use std::path::{Component, Path, PathBuf};

/// The parsed `external_data` entries of a tensor (`checksum` and unknown keys are ignored).
#[derive(Debug, Clone)]
pub(crate) struct ExternalInfo {
    /// The file, relative to the model folder, as written.
    pub location: String,
    /// The byte offset (0 when absent), or why it is invalid.
    pub offset: Result<u64, String>,
    /// The byte length, if given, or why it is invalid.
    pub length: Result<Option<u64>, String>,
}

impl ExternalInfo {
    /// Parses the entries; only a missing `location` is an error here (bad numbers are
    /// reported later, with the location).
    pub fn parse(entries: &[StringStringEntryProto]) -> Result<ExternalInfo, String> {
        let get = |key: &str| {
            entries
                .iter()
                .rev()
                .find(|e| e.key == key)
                .map(|e| &e.value)
        };
        let location = get("location")
            .ok_or("data_location is EXTERNAL but external_data has no `location` entry")?
            .clone();
        let number = |key: &str| -> Result<Option<u64>, String> {
            get(key)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{key} `{v}` is not a non-negative integer"))
                })
                .transpose()
        };
        Ok(ExternalInfo {
            location,
            offset: number("offset").map(|o| o.unwrap_or(0)),
            length: number("length"),
        })
    }
}

/// Refuses locations that are empty, absolute, or have a `..` (or drive/prefix) component.
pub(crate) fn check_location(location: &str) -> Result<(), String> {
    if location.is_empty() {
        return Err("the location is empty".to_string());
    }
    if location.contains('\0') {
        return Err("the location contains a NUL byte".to_string());
    }
    const ABSOLUTE: &str =
        "the location is an absolute path; external data must be relative to the model folder";
    const PARENT: &str =
        "the location has a `..` component; external data must stay inside the model folder";
    let path = Path::new(location);
    if path.is_absolute() || path.has_root() {
        return Err(ABSOLUTE.to_string());
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(PARENT.to_string()),
            Component::RootDir | Component::Prefix(_) => return Err(ABSOLUTE.to_string()),
        }
    }
    Ok(())
}

/// The canonical path of `location` under the canonical folder `root`; refused when it does not
/// exist or when resolving symlinks takes it outside `root`.
pub(crate) fn resolve_inside(root: &Path, location: &str) -> Result<PathBuf, String> {
    let joined = root.join(location);
    let real = std::fs::canonicalize(&joined).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("file `{}` not found", joined.display())
        } else {
            format!("cannot resolve `{}`: {e}", joined.display())
        }
    })?;
    if !real.starts_with(root) {
        return Err(format!(
            "resolves to `{}`, outside the model folder `{}` (through a symlink)",
            real.display(),
            root.display()
        ));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> StringStringEntryProto {
        StringStringEntryProto {
            key: key.to_string(),
            value: value.to_string(),
        }
    }

    #[test]
    fn locations_must_be_relative_and_stay_inside() {
        assert!(check_location("w.bin").is_ok());
        assert!(check_location("./sub/w.bin").is_ok());
        assert!(check_location("").unwrap_err().contains("empty"));
        assert!(check_location("/etc/passwd")
            .unwrap_err()
            .contains("absolute"));
        assert!(check_location("../x.bin").unwrap_err().contains("`..`"));
        assert!(check_location("a/../../x.bin")
            .unwrap_err()
            .contains("`..`"));
        assert!(check_location("a/..").unwrap_err().contains("`..`"));
        assert!(check_location("a\0b").unwrap_err().contains("NUL"));
    }

    #[test]
    fn entries_parse_with_defaults_and_errors() {
        let info = ExternalInfo::parse(&[entry("location", "w.bin")]).unwrap();
        assert_eq!(info.location, "w.bin");
        assert_eq!(info.offset, Ok(0));
        assert_eq!(info.length, Ok(None));
        let info = ExternalInfo::parse(&[
            entry("location", "w.bin"),
            entry("offset", "64"),
            entry("length", "-1"),
            entry("checksum", "abc"),
        ])
        .unwrap();
        assert_eq!(info.offset, Ok(64));
        assert!(info.length.unwrap_err().contains("`-1`"));
        assert!(ExternalInfo::parse(&[entry("offset", "0")])
            .unwrap_err()
            .contains("no `location`"));
    }

    #[test]
    fn missing_files_are_reported() {
        let root = std::env::temp_dir();
        let e = resolve_inside(&root, "kiln-definitely-missing-file.bin").unwrap_err();
        assert!(e.contains("not found"), "{e}");
    }
}
