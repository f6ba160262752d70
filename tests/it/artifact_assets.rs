//! Artifact assets: compiling a Hugging Face folder embeds its pipeline files (config,
//! tokenizer, pooling settings) so the `.kiln` file is self-sufficient; `inspect` lists them,
//! and a damaged assets section is refused at load naming the section.

use crate::common;

use common::{kiln, stdout_ok};
use kiln_runtime::artifact::{payload_checksum, Artifact, SectionKind, CHECKSUM_OFFSET};
use kiln_runtime::{CpuFeatures, LoadOptions, Model};
use std::path::{Path, PathBuf};

fn bert_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/hf/bert-h48")
}

/// Copies the bert-h48 fixture folder into `dir` with a sentence-transformers pooling module,
/// then compiles it to `dir/m.kiln`.
fn compile_with_modules(dir: &Path) -> PathBuf {
    let src = bert_folder();
    let folder = dir.join("bert");
    std::fs::create_dir_all(folder.join("1_Pooling")).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), folder.join(f)).unwrap();
    }
    std::fs::write(
        folder.join("modules.json"),
        r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "../escape", "type": "x"}]"#,
    )
    .unwrap();
    std::fs::write(
        folder.join("1_Pooling/config.json"),
        r#"{"pooling_mode_mean_tokens": true}"#,
    )
    .unwrap();
    let art = dir.join("m.kiln");
    stdout_ok(&kiln(&[&"compile", &folder, &"-o", &art]));
    art
}

#[test]
fn a_compiled_folder_carries_its_pipeline_files() {
    let tmp = tempfile::tempdir().unwrap();
    let art = compile_with_modules(tmp.path());
    // The folder may go: the artifact holds what the pipelines read.
    let config = std::fs::read(tmp.path().join("bert/config.json")).unwrap();
    std::fs::remove_dir_all(tmp.path().join("bert")).unwrap();
    let model = Model::load_with(&art, &LoadOptions::default()).unwrap();
    assert_eq!(model.asset("config.json"), Some(&config[..]));
    assert_eq!(
        model.asset("1_Pooling/config.json"),
        Some(&br#"{"pooling_mode_mean_tokens": true}"#[..])
    );
    assert_eq!(model.asset("tokenizer.json"), None);
    // `modules.json` naming a path outside the folder is not followed.
    let names: Vec<&str> = model.asset_names().collect();
    assert_eq!(
        names,
        ["config.json", "modules.json", "1_Pooling/config.json"]
    );
    let text = stdout_ok(&kiln(&[&"inspect", &art]));
    assert!(
        text.contains("assets: config.json (") && text.contains("1_Pooling/config.json (34 bytes)"),
        "{text}"
    );
}

#[test]
fn a_damaged_assets_section_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let art = compile_with_modules(tmp.path());
    let mut bytes = std::fs::read(&art).unwrap();
    let a = Artifact::from_bytes(bytes.clone(), CpuFeatures::host()).unwrap();
    let entry = a.header().section(SectionKind::Assets).unwrap();
    let start = usize::try_from(entry.offset).unwrap();
    // A name of `..` where `config.json`'s first two bytes were, under a valid checksum: the
    // loader itself must refuse it, not only the checksum.
    bytes[start + 16..start + 18].copy_from_slice(b"..");
    bytes[start + 18] = b'/';
    let sum = payload_checksum(&bytes);
    bytes[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&sum.to_le_bytes());
    let bad = tmp.path().join("bad.kiln");
    std::fs::write(&bad, &bytes).unwrap();
    let err = Model::load(&bad).unwrap_err().to_string();
    assert!(
        err.contains("assets section") && err.contains("not allowed"),
        "{err}"
    );
    let out = kiln(&[&"inspect", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("assets section"), "{stderr}");
}
