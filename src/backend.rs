//! The CPU backend as the command line and applications use it: compile a model (any kind Kiln
//! imports) into `.kiln` artifact bytes or a file, load an artifact or compile a model in memory
//! into a runnable [`Model`], and run it on named inputs with errors that name the files.

use crate::{load_model, Error};
use kiln_compiler::ir::Graph;
use kiln_compiler::lower::{compile_artifact, write_artifact, ArtifactOptions};
use kiln_runtime::{CpuFeatures, LoadOptions, Model, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// How to compile.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Run the optimizer (`-O1` and up); `false` lowers the imported graph as it is.
    pub optimize: bool,
    /// CPU features the generated code may use (default: this machine's).
    pub features: CpuFeatures,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            optimize: true,
            features: CpuFeatures::host(),
        }
    }
}

fn compile_err(path: &Path) -> impl FnOnce(kiln_compiler::Error) -> Error + '_ {
    move |source| Error::Compile {
        path: path.to_path_buf(),
        source,
    }
}

/// Loads and (unless told not to) optimizes a model for compilation.
pub fn prepared_graph(path: &Path, opts: &CompileOptions) -> Result<Graph, Error> {
    let mut g = load_model(path)?;
    if opts.optimize {
        kiln_compiler::optimize::optimize(&mut g).map_err(compile_err(path))?;
    }
    Ok(g)
}

/// Compiles the model at `path` into artifact bytes.
pub fn compile_model(path: &Path, opts: &CompileOptions) -> Result<Vec<u8>, Error> {
    let g = prepared_graph(path, opts)?;
    compile_artifact(
        &g,
        &ArtifactOptions {
            features: opts.features,
        },
    )
    .map_err(compile_err(path))
}

/// Compiles the model at `path` and writes the artifact to `out` (atomically: on any error no
/// file is left at `out`).
pub fn compile_model_to(path: &Path, out: &Path, opts: &CompileOptions) -> Result<(), Error> {
    let g = prepared_graph(path, opts)?;
    write_artifact(
        &g,
        &ArtifactOptions {
            features: opts.features,
        },
        out,
    )
    .map_err(compile_err(path))
}

/// A runnable model: a `.kiln` artifact is loaded as it is; any other model is compiled in
/// memory first.
pub fn load_runnable(
    path: &Path,
    opts: &CompileOptions,
    load: &LoadOptions,
) -> Result<Model, Error> {
    let runtime_err = |source| Error::Runtime {
        path: path.to_path_buf(),
        source,
    };
    if crate::model_kind(path)? == crate::ModelKind::Artifact {
        return Model::load_with(path, load).map_err(runtime_err);
    }
    let bytes = compile_model(path, opts)?;
    Model::from_bytes(bytes, load).map_err(runtime_err)
}

/// The names of a loaded model's inputs, in declaration order.
pub fn input_names(model: &Model) -> Vec<String> {
    model
        .plan()
        .inputs
        .iter()
        .map(|io| io.name.clone())
        .collect()
}

/// Runs a loaded model (from `model_path`) on `inputs` (read from `inputs_path`). Input problems
/// name the inputs file; failures while running name the model.
pub fn run_model(
    model: &Model,
    model_path: &Path,
    inputs: &BTreeMap<String, Tensor>,
    inputs_path: &Path,
) -> Result<Vec<(String, Tensor)>, Error> {
    let expected = input_names(model);
    if let Some(key) = inputs.keys().find(|k| !expected.contains(k)) {
        return Err(Error::UnknownInput {
            path: inputs_path.to_path_buf(),
            model: model_path.to_path_buf(),
            key: key.clone(),
            expected,
        });
    }
    model.session().run(inputs).map_err(|e| match e {
        kiln_runtime::Error::Input(e) => Error::Input {
            path: inputs_path.to_path_buf(),
            name: e.name,
            message: e.message,
        },
        source => Error::Runtime {
            path: model_path.to_path_buf(),
            source,
        },
    })
}

/// Runs a graph on the CPU backend (optimize, compile in memory, load, run on one thread), as
/// the conformance runner's executor; errors are messages.
pub fn run_graph_cpu(
    g: &Graph,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<Vec<(String, Tensor)>, String> {
    let mut g = g.clone();
    kiln_compiler::optimize::optimize(&mut g).map_err(|e| e.to_string())?;
    let bytes = compile_artifact(&g, &ArtifactOptions::default()).map_err(|e| e.to_string())?;
    let model =
        Model::from_bytes(bytes, &LoadOptions { threads: Some(1) }).map_err(|e| e.to_string())?;
    model.session().run(inputs).map_err(|e| e.to_string())
}
