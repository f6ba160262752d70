//! Hugging Face folders of every supported architecture at sizes and settings other than the
//! shared fixtures' (`tests/models/hf/NAME/` with `NAME.npz`, written by
//! `tools/export_hf_folders.py`): each builds, matches PyTorch's output, and gives the same rows
//! at batch 3 with rows duplicated. Nothing in the frontends may be keyed to the fixtures.

use crate::common;

use common::take_rows;

use kiln::kiln_compiler::interp;
use kiln::kiln_compiler::ir::Graph;
use kiln::kiln_frontends::hf;
use kiln::kiln_runtime::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Tolerances against PyTorch.
const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-4;
/// Tolerances between Kiln's own runs at batch 2 and batch 3.
const SELF_RTOL: f64 = 1e-5;
const SELF_ATOL: f64 = 1e-6;
/// At least this many folders must be present (BERT, GPT-2, two LLaMAs, ViT).
const MIN_FOLDERS: usize = 5;

/// The folder holding the model folders and their `.npz` files.
fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/hf")
}

/// Every model folder (a directory with `config.json`) and its `.npz`, sorted by name. A
/// folder without its `.npz`, or an `.npz` without its folder, is an error.
fn cases() -> Result<Vec<(String, PathBuf, PathBuf)>, String> {
    let dir = models_dir();
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    let mut npzs = Vec::new();
    for e in entries {
        let path = e.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: not a UTF-8 name", path.display()))?
            .to_string();
        if path.is_dir() && name == "heads" {
            // The task-head folders, which `hf_heads.rs` checks output by output.
            continue;
        }
        if path.is_dir() && is_encoder_decoder(&path) {
            // Two graphs with their own `reference.json` and test (`hf_t5.rs`, `hf_bart.rs`).
            continue;
        }
        if path.is_dir() {
            if !hf::is_model_folder(&path) {
                return Err(format!("{}: no config.json", path.display()));
            }
            let npz = dir.join(format!("{name}.npz"));
            if !npz.is_file() {
                return Err(format!("{}: missing {}", path.display(), npz.display()));
            }
            out.push((name, path, npz));
        } else if let Some(stem) = name.strip_suffix(".npz") {
            npzs.push(stem.to_string());
        }
    }
    for stem in npzs {
        if !out.iter().any(|(n, _, _)| *n == stem) {
            return Err(format!("{stem}.npz has no folder {stem}/"));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `dir/config.json` says `"is_encoder_decoder": true`.
fn is_encoder_decoder(dir: &Path) -> bool {
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap_or_default();
    let cfg: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    cfg["is_encoder_decoder"].as_bool() == Some(true)
}

/// The graph's inputs from the `.npz` (everything but `out`); `token_type_ids` are zeros when
/// the graph takes them and the `.npz` lacks them. Any other missing input is an error.
fn feeds(g: &Graph, npz: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>, String> {
    let mut feeds = BTreeMap::new();
    for &v in g.inputs() {
        let name = g
            .value(v)
            .name
            .clone()
            .ok_or("a graph input without a name")?;
        let t = match npz.get(&name) {
            Some(t) => t.clone(),
            None if name == "token_type_ids" => {
                let ids = npz
                    .get("input_ids")
                    .ok_or("token_type_ids without input_ids")?;
                Tensor::zeros(DType::I64, ids.shape().to_vec()).map_err(|e| e.to_string())?
            }
            None => return Err(format!("the graph input `{name}` is not in the .npz")),
        };
        feeds.insert(name, t);
    }
    for k in npz.keys() {
        if k != "out" && !feeds.contains_key(k) {
            return Err(format!("the .npz array `{k}` is not a graph input"));
        }
    }
    Ok(feeds)
}

/// Runs `g` and returns its one output.
fn run(g: &Graph, feeds: &BTreeMap<String, Tensor>) -> Result<Tensor, String> {
    let outs = interp::run(g, feeds).map_err(|e| format!("the graph does not run: {e}"))?;
    let mut outs = outs.into_iter();
    let (name, t) = outs.next().ok_or("the graph has no output")?;
    if !matches!(name.as_str(), "logits" | "last_hidden_state") {
        return Err(format!("unexpected output name `{name}`"));
    }
    if outs.next().is_some() {
        return Err("the graph has more than one output".into());
    }
    Ok(t)
}

/// Checks one folder; returns a one-line summary or the reason it fails.
fn check(dir: &Path, npz_path: &Path) -> Result<String, String> {
    let npz = kiln::read_npz(npz_path).map_err(|e| e.to_string())?;
    let want = npz.get("out").ok_or("the .npz has no `out`")?;
    let g = hf::load_folder(dir).map_err(|e| format!("import fails: {e}"))?;
    let feeds = feeds(&g, &npz)?;
    let got = run(&g, &feeds)?;
    let max = common::allclose(&got, want, RTOL, ATOL).map_err(|e| format!("vs PyTorch: {e}"))?;
    // Batch 3, rows duplicated: each row must equal the batch-2 run's.
    let rows = [1, 0, 1];
    let feeds3 = feeds
        .iter()
        .map(|(k, t)| Ok((k.clone(), take_rows(t, &rows))))
        .collect::<Result<BTreeMap<_, _>, String>>()?;
    let got3 = run(&g, &feeds3)?;
    let max3 = common::allclose(&got3, &take_rows(&got, &rows), SELF_RTOL, SELF_ATOL)
        .map_err(|e| format!("batch 3 vs batch 2: {e}"))?;
    Ok(format!(
        "out {:?}: max |diff| vs PyTorch {max:.3e}; batch 3 vs batch 2 {max3:.3e}",
        want.shape()
    ))
}

#[test]
fn hf_folders_match_pytorch() {
    let cases = cases().expect("the model folders list");
    assert!(
        cases.len() >= MIN_FOLDERS,
        "{} holds {} model folders, expected at least {MIN_FOLDERS}",
        models_dir().display(),
        cases.len()
    );
    let mut failures = Vec::new();
    for (name, dir, npz) in &cases {
        match check(dir, npz) {
            Ok(summary) => println!("{name}: {summary}"),
            Err(e) => {
                println!("{name}: FAILED: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} folders failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
