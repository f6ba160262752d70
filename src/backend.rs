//! The CPU backend as the command line and applications use it: thin callers of the compile
//! [`pipeline`] (a model of any kind Kiln imports into `.kiln` artifact bytes or a file, or up to
//! its execution plan), a runnable [`Model`] from an artifact or a model compiled in memory, and
//! runs on named inputs with errors that name the files.

use crate::Error;
use kiln_compiler::ir::Graph;
use kiln_compiler::lower::Lowered;
use kiln_compiler::pipeline::{self, Compiled, Options};
use kiln_compiler::Target;
use kiln_runtime::{LoadOptions, Model, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// How to compile.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Run the optimizer (`-O1` and up); `false` lowers the imported graph as it is.
    pub optimize: bool,
    /// What to generate code for (default: this machine, [`Target::host`]).
    pub target: Target,
    /// Told as each step starts (`loading the model`, then the pipeline's stages).
    pub progress: Option<kiln_compiler::pipeline::Progress>,
    /// Build the text-generation decoder with its key/value cache
    /// ([`crate::model::load_decoder`]) instead of the model's one-pass graph.
    pub decoder: bool,
    /// Dequantize a GGUF file's `Q4_0`/`Q4_1`/`Q8_0` matrices to f32 at load instead of keeping
    /// them as their blocks (see `kiln_frontends::gguf::WeightMode`).
    pub dequantize: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            optimize: true,
            target: Target::host(),
            progress: None,
            decoder: false,
            dequantize: false,
        }
    }
}

impl CompileOptions {
    /// How a GGUF file's quantized weights are loaded.
    fn gguf_weights(&self) -> kiln_frontends::gguf::WeightMode {
        if self.dequantize {
            kiln_frontends::gguf::WeightMode::Dequantize
        } else {
            kiln_frontends::gguf::WeightMode::Keep
        }
    }

    /// The graph of the model at `path`: its decoder or its one-pass graph.
    fn load(&self, path: &Path) -> Result<Graph, Error> {
        if self.decoder {
            crate::model::load_decoder_with(path, self.gguf_weights())
        } else {
            crate::model::load_model_with(path, self.gguf_weights())
        }
    }

    /// The pipeline's options.
    fn pipeline(&self) -> Options {
        Options {
            optimize: self.optimize,
            progress: self.progress.clone(),
        }
    }
}

fn compile_err(path: &Path) -> impl FnOnce(kiln_compiler::Error) -> Error + '_ {
    move |source| Error::Compile {
        path: path.to_path_buf(),
        source,
    }
}

/// Loads the model at `path` and runs the whole pipeline on it. A Hugging Face folder's
/// pipeline files (tokenizer, configs) go into the artifact's assets section.
pub fn compile_path(path: &Path, opts: &CompileOptions) -> Result<Compiled, Error> {
    if let Some(p) = &opts.progress {
        p.stage("loading the model");
    }
    let g = opts.load(path)?;
    let mut compiled =
        pipeline::compile(&g, &opts.target, &opts.pipeline()).map_err(compile_err(path))?;
    let files = match crate::model::model_kind(path)? {
        crate::model::ModelKind::HfFolder => crate::assets::folder_assets(path)?,
        crate::model::ModelKind::Gguf => crate::assets::gguf_assets(path)?,
        // An ONNX decoder's tokenizer and settings are the files beside it.
        crate::model::ModelKind::Onnx if opts.decoder => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => crate::assets::folder_assets(dir)?,
            _ => crate::assets::folder_assets(Path::new("."))?,
        },
        _ => Vec::new(),
    };
    if !files.is_empty() {
        let bytes =
            kiln_runtime::artifact::assets::encode(&files).map_err(|source| Error::Runtime {
                path: path.to_path_buf(),
                source: kiln_runtime::Error::Assets {
                    file: path.display().to_string(),
                    source,
                },
            })?;
        compiled
            .artifact
            .add_section(kiln_runtime::artifact::SectionKind::Assets, bytes, 8)
            .map_err(|e| compile_err(path)(kiln_runtime::Error::from(e).into()))?;
    }
    Ok(compiled)
}

/// Loads the model at `path` and runs the pipeline up to the execution plan (optimized unless
/// told not to, lowered; no code generated).
pub fn lower_path(path: &Path, opts: &CompileOptions) -> Result<Lowered, Error> {
    let mut g = opts.load(path)?;
    pipeline::optimize(&mut g, &opts.pipeline()).map_err(compile_err(path))?;
    pipeline::lower(&g, &opts.target).map_err(compile_err(path))
}

/// Compiles the model at `path` into artifact bytes.
pub fn compile_model(path: &Path, opts: &CompileOptions) -> Result<Vec<u8>, Error> {
    Ok(compile_path(path, opts)?.to_bytes())
}

/// Checks an output path before any work: its folder must take a new file (the output is
/// written there atomically, through a temporary file), and it must not name the same file as
/// one of the command's inputs (also through another name: a hard or symbolic link), which
/// writing it would destroy (`kiln compile m.onnx -o m.onnx`, `--outputs` equal to `--inputs`).
pub fn check_output(output: &Path, inputs: &[&Path]) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let folder = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let probe = folder.join(format!(".kiln-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(source) => {
            return Err(Error::CannotWrite {
                path: output.to_path_buf(),
                source,
            })
        }
    }
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let Some(out) = id(output) else {
        return Ok(()); // a new file
    };
    for input in inputs {
        if id(input) == Some(out) {
            return Err(Error::OutputIsInput {
                output: output.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Compiles the model at `path` and writes the artifact to `out` (atomically: on any error no
/// file is left at `out`).
pub fn compile_model_to(path: &Path, out: &Path, opts: &CompileOptions) -> Result<(), Error> {
    compile_path(path, opts)?
        .write_file(out)
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
    let dtypes: Vec<(String, kiln_runtime::DType)> = model
        .plan()
        .inputs
        .iter()
        .map(|io| (io.name.clone(), model.plan().value(io.value).ty.dtype))
        .collect();
    let inputs = crate::npz::bits_as_bf16(inputs.clone(), &dtypes);
    model.session().run(&inputs).map_err(|e| match e {
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

/// Runs a graph on the CPU backend (the whole pipeline for this machine, in memory; loaded and
/// run on one thread), as the conformance runner's executor; errors are messages.
pub fn run_graph_cpu(
    g: &Graph,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<Vec<(String, Tensor)>, String> {
    let compiled =
        pipeline::compile(g, &Target::host(), &Options::default()).map_err(|e| e.to_string())?;
    let model = Model::from_bytes(
        compiled.to_bytes(),
        &LoadOptions {
            threads: Some(1),
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    model.session().run(inputs).map_err(|e| e.to_string())
}
