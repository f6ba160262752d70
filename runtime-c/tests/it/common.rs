//! Helpers of the C API tests: compiling models to artifacts with the `kiln` facade.

use kiln::backend::{compile_model_to, CompileOptions};
use kiln::kiln_compiler::Target;
use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime-c is inside the workspace")
        .to_path_buf()
}

/// Compiles `model` (any kind Kiln imports) into `dir/name.kiln` for `target`.
pub fn compile(model: &Path, dir: &Path, name: &str, target: Target) -> PathBuf {
    let out = dir.join(format!("{name}.kiln"));
    let opts = CompileOptions {
        target,
        ..CompileOptions::default()
    };
    compile_model_to(model, &out, &opts)
        .unwrap_or_else(|e| panic!("compiling {}: {e}", model.display()));
    out
}

/// The shipped example model compiled for this machine into `dir`.
pub fn tiny_artifact(dir: &Path) -> PathBuf {
    compile(
        &workspace().join("examples/tiny_classifier.kir"),
        dir,
        "tiny",
        Target::host(),
    )
}
