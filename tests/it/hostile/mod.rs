//! Regressions of issue 12: inputs a hostile or careless user sends are refused in one `error:`
//! line with exit 1 — never an abort, a panic or a memory blow-up. Each command runs under an
//! address-space limit (`prlimit --as`), so an allocation the budget should have refused fails the
//! test instead of the machine. `onnx.rs`: models whose constants ask for absurd sizes or mean
//! nothing; `limits.rs`: the memory budget and model folders' input limits; `files.rs`: hostile
//! files and flags.

mod files;
mod limits;
mod onnx;

use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Address space a refused command may use: well under 1 GiB of it is ever touched.
const AS_LIMIT: &str = "1073741824";

/// Runs `kiln` with `args` under the address-space limit, with two worker threads (so the
/// per-thread stacks and malloc arenas fit on any machine).
fn bounded(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={AS_LIMIT}"))
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_THREADS", "2")
        .env("MALLOC_ARENA_MAX", "2");
    for a in args {
        c.arg(a);
    }
    c.output().expect("prlimit runs kiln")
}

/// The one-line error of a command that must have been refused with exit 1.
fn refused(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "expected exit 1, stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

fn write_model(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn write_inputs(dir: &Path, tensors: &[(&str, Tensor)]) -> PathBuf {
    let p = dir.join("in.npz");
    let map: BTreeMap<String, Tensor> = tensors
        .iter()
        .map(|(k, t)| (k.to_string(), t.clone()))
        .collect();
    kiln::write_npz(&p, &map, kiln::npz::Compression::Stored).unwrap();
    p
}

/// `kiln run MODEL --inputs IN --outputs OUT [extra…]` under the address-space limit.
fn run(model: &Path, inputs: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"run", &model, &"--inputs", &inputs, &"--outputs", &out];
    args.extend(extra.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
    bounded(&args)
}

/// `[1, ids.len()]` tensors of a model folder's token inputs (`input_ids`, `attention_mask` of
/// ones, and with `token_types` the `token_type_ids` of zeros).
fn token_inputs(ids: Vec<i64>, token_types: bool) -> Vec<(&'static str, Tensor)> {
    let n = ids.len();
    let mut t = vec![
        ("input_ids", Tensor::from_i64(vec![1, n], ids).unwrap()),
        (
            "attention_mask",
            Tensor::from_i64(vec![1, n], vec![1; n]).unwrap(),
        ),
    ];
    if token_types {
        t.push((
            "token_type_ids",
            Tensor::from_i64(vec![1, n], vec![0; n]).unwrap(),
        ));
    }
    t
}
