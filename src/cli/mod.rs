//! The `kiln` command line: argument definitions (clap derive) and dispatch, following the
//! contract in DESIGN.md (`compile`, `run`, `inspect`, `bench`, `conformance`), and `pipeline`
//! (Hugging Face tasks end to end) and `transcribe` (speech to text with Whisper).

mod artifact;
mod bench;
mod conformance;
mod generate;
mod pipeline;
mod progress;
mod transcribe;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use kiln::npz::Compression;
use kiln_compiler::pipeline::{self as passes, Options};
use kiln_compiler::text::{print_with, PrintOptions};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Kiln: an ahead-of-time neural-network model compiler.
#[derive(Debug, Parser)]
#[command(name = "kiln", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a model into a `.kiln` artifact
    Compile(CompileArgs),
    /// Run a model on the arrays of an .npz file and write its outputs to an .npz file
    Run(RunArgs),
    /// Print a model's IR text or a JSON summary of it
    Inspect(InspectArgs),
    /// Time a model or artifact on given inputs; the final line is `median_ms: X`
    Bench(BenchArgs),
    /// Run an ONNX backend-test directory; the final line is `N passed, M failed, K skipped`
    Conformance(ConformanceArgs),
    /// Run a Hugging Face task (fill-mask, classification, question answering, embeddings,
    /// image classification) on a model folder or artifact
    Pipeline(pipeline::PipelineArgs),
    /// Generate text with a causal LM (Hugging Face folder, `.gguf` file or artifact compiled
    /// with `--decoder`), streaming it to stdout
    Generate(generate::GenerateArgs),
    /// Transcribe a WAV file with a Whisper model folder (greedy decoding with its
    /// generation_config.json)
    Transcribe(transcribe::TranscribeArgs),
}

/// Execution backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The reference interpreter (slow, exact; the oracle for every other backend).
    Reference,
    /// Native CPU code: the model compiled to an artifact (in memory unless it is one) and run
    /// by the runtime.
    Cpu,
    /// NVIDIA GPUs (not available yet).
    Cuda,
}

/// Compilation targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Native CPU code.
    Cpu,
    /// NVIDIA GPUs.
    Cuda,
}

/// Pipeline stages that `inspect` can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// The graph as imported.
    Imported,
    /// The graph after the optimizer.
    Optimized,
    /// The execution plan: kernels, their operands and the arena slots.
    Kernels,
}

/// Output formats of `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// IR text; weights over 16 elements are printed as `opaque`.
    Text,
    /// One JSON object: nodes, ops, inputs, outputs, weights, fusions.
    Json,
    /// Graphviz: one node per op (fused ops filled), edges labelled with value types.
    Dot,
    /// The Graphviz picture laid out and rendered as SVG in-process (no Graphviz needed).
    Svg,
}

/// Arguments of `kiln compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The model: a `.kir` IR text file, an `.onnx` file, a Hugging Face model folder or a
    /// `.gguf` llama.cpp checkpoint.
    pub model: PathBuf,
    /// The artifact to write.
    #[arg(short = 'o', long = "output", value_name = "OUT.kiln")]
    pub output: PathBuf,
    /// The code generation target.
    #[arg(long, value_enum, default_value_t = Target::Cpu)]
    pub target: Target,
    /// CPU features the generated code may use, comma-separated (`avx2,fma,avx512f`); the
    /// default is this machine's. The artifact is refused on machines that lack one.
    #[arg(long, value_name = "LIST", value_parser = cpu_feature_list)]
    pub cpu_features: Option<String>,
    /// Optimization level: `-O1` (the default) runs the optimizer, `-O0` skips it; there are
    /// no other levels.
    #[arg(short = 'O', value_name = "LEVEL", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(0..=1))]
    pub opt_level: u8,
    /// Compile the text-generation decoder (key/value cache kept in place between steps) of a
    /// causal LM, for `kiln generate ARTIFACT`.
    #[arg(long)]
    pub decoder: bool,
    /// Dequantize a `.gguf` file's Q4_0/Q4_1/Q8_0 matrices to f32 instead of keeping them as
    /// their blocks (the arithmetic is f32 either way, on the same values).
    #[arg(long)]
    pub dequantize: bool,
}

/// Arguments of `kiln run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The model: a `.kir` IR text file, an `.onnx` file, a Hugging Face folder, a `.gguf`
    /// llama.cpp checkpoint or a `.kiln` artifact.
    pub model: PathBuf,
    /// The inputs: an .npz file whose keys are the graph's input names.
    #[arg(long, value_name = "IN.npz")]
    pub inputs: PathBuf,
    /// Where to write the outputs: an .npz file keyed by output name (written atomically).
    #[arg(long, value_name = "OUT.npz")]
    pub outputs: PathBuf,
    /// The backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Optimization level: `-O1` (the default) runs the optimizer, `-O0` skips it; there are
    /// no other levels.
    #[arg(short = 'O', value_name = "LEVEL", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(0..=1))]
    pub opt_level: u8,
    /// The most memory the run may allocate (`512MB`, `2GiB`); a run that needs more is refused
    /// before allocating. Default: the memory available.
    #[arg(long, value_name = "SIZE", value_parser = memory_size)]
    pub max_memory: Option<u64>,
}

/// Parses `--max-memory` (`512MB`, `2GiB`); a bad size is a usage error.
fn memory_size(text: &str) -> Result<u64, String> {
    kiln_runtime::budget::parse_size(text)
}

/// Checks `--cpu-features` (names in any case); an unknown name is a usage error.
fn cpu_feature_list(text: &str) -> Result<String, String> {
    let list = text.to_ascii_lowercase();
    kiln_runtime::CpuFeatures::parse(&list)?;
    Ok(list)
}

/// Arguments of `kiln inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The model: a `.kir` IR text file, an `.onnx` file, a Hugging Face folder, a `.gguf`
    /// llama.cpp checkpoint, or a `.kiln` artifact (which shows its header, target, kernels and
    /// arena; no `--stage`).
    pub model: PathBuf,
    /// The pipeline stage to show. `optimized` is the graph after the optimizer (the JSON
    /// summary then adds `passes` and `optimizer` objects); `kernels` is the execution plan.
    #[arg(long, value_enum)]
    pub stage: Option<Stage>,
    /// The output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `kiln bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model or artifact.
    pub model: PathBuf,
    /// The inputs (.npz keyed by input name).
    #[arg(long, value_name = "IN.npz")]
    pub inputs: PathBuf,
    /// Number of timed iterations (after 3 untimed warm-up runs).
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub iters: u32,
    /// The backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Worker threads of the CPU backend (default: `KILN_THREADS`, else every core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Also print the median time per kernel kind and the slowest steps (CPU backend).
    #[arg(long)]
    pub profile: bool,
    /// The most memory a run may allocate (`512MB`, `2GiB`). Default: the memory available.
    #[arg(long, value_name = "SIZE", value_parser = memory_size)]
    pub max_memory: Option<u64>,
}

/// Arguments of `kiln conformance`.
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// A directory in the ONNX backend-test layout (`test_*/model.onnx` + `test_data_set_*`),
    /// or its parent (`onnx-node-tests/` for `onnx-node-tests/node/`).
    pub dir: PathBuf,
    /// The backend (`cpu` compiles each case to an artifact in memory and runs it).
    #[arg(long, value_enum, default_value_t = Backend::Reference)]
    pub backend: Backend,
    /// Run only the cases whose name contains this text (an empty text runs every case).
    #[arg(long, value_name = "SUBSTR")]
    pub filter: Option<String>,
    /// Write the names of the passing cases to FILE in the pass-list format of
    /// `tests/onnx-node-pass.txt` (refused together with a non-empty --filter).
    #[arg(long, value_name = "FILE")]
    pub write_pass_list: Option<PathBuf>,
    /// Also print a `PASS test_x` line for each passing case.
    #[arg(short, long)]
    pub verbose: bool,
    /// Number of worker threads (default: the available parallelism).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
}

/// Runs a parsed command line, writing results to `out`.
pub fn dispatch(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(a) => run(&a, out),
        Command::Inspect(a) => inspect(&a, out),
        Command::Compile(a) => artifact::compile(&a, out),
        Command::Bench(a) => bench::bench(&a, out),
        Command::Conformance(a) => conformance::conformance(&a, out),
        Command::Pipeline(a) => pipeline::pipeline(&a, out),
        Command::Generate(a) => generate::generate(&a, out),
        Command::Transcribe(a) => transcribe::transcribe(&a, out),
    }
}

/// Runs `kiln inspect`.
pub fn inspect(args: &InspectArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let Some(path) = &args.output else {
        return inspect_to(args, out);
    };
    kiln::backend::check_output(path, &[&args.model])?;
    let mut buf = Vec::new();
    inspect_to(args, &mut buf)?;
    kiln_runtime::artifact::write_atomically(path, &buf)?;
    Ok(())
}

/// `kiln inspect` into `out`.
fn inspect_to(args: &InspectArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let file = args.model.display().to_string();
    let is_artifact =
        args.stage.is_none() && kiln::model_kind(&args.model)? == kiln::ModelKind::Artifact;
    let picture = matches!(args.format, Format::Dot | Format::Svg);
    if picture && (is_artifact || args.stage == Some(Stage::Kernels)) {
        bail!(
            "{file}: `--format dot` and `svg` draw IR graphs (stages `imported` and `optimized`), not {}; \
             use --format text or --format json",
            if is_artifact {
                "an artifact"
            } else {
                "the kernels stage"
            }
        );
    }
    if is_artifact {
        return artifact::inspect_artifact(&args.model, args.format, out);
    }
    let stage = match args.stage.unwrap_or(Stage::Imported) {
        Stage::Imported => kiln::inspect::Stage::Imported,
        Stage::Optimized => kiln::inspect::Stage::Optimized,
        Stage::Kernels => return artifact::inspect_kernels(&args.model, args.format, out),
    };
    let mut g = kiln::load_model(&args.model)?;
    let imported = kiln::summarize(&g, &file, "imported").fusions;
    let optimize = Options {
        optimize: args.stage == Some(Stage::Optimized),
        ..Default::default()
    };
    let report = passes::optimize(&mut g, &optimize)
        .with_context(|| format!("{file}: the optimizer failed"))?;
    let text = match args.format {
        Format::Text => {
            let opts = PrintOptions {
                inline_weight_limit: Some(16),
            };
            let ir =
                print_with(&g, &opts).with_context(|| format!("{file}: cannot print the IR"))?;
            let summary = kiln::summarize(&g, &file, stage.name()).comment_lines();
            match &report {
                Some(r) => {
                    let report = kiln::report::text(&g, r, &imported)
                        .context("cannot number the optimized graph")?;
                    format!("{summary}{report}{ir}")
                }
                None => format!("{summary}{ir}"),
            }
        }
        Format::Dot => kiln::dot::to_dot(&g, &file),
        Format::Svg => kiln::svg::dot_to_svg(&kiln::dot::to_dot(&g, &file))
            .map_err(|e| anyhow::anyhow!("{file}: cannot draw the graph: {e}"))?,
        Format::Json => {
            let v = kiln::inspect::graph_json(
                &g,
                &args.model,
                stage,
                report.as_ref().map(|r| (r, &imported)),
            )?;
            let mut s = serde_json::to_string_pretty(&v)
                .with_context(|| format!("{file}: cannot encode the summary"))?;
            s.push('\n');
            s
        }
    };
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    Ok(())
}

/// The arrays of an `.npz` that are inputs of the model; other keys (a reference file's `out`,
/// say) are dropped with a one-line note on stderr naming them and the expected inputs.
pub fn model_inputs_only(
    mut inputs: BTreeMap<String, kiln_runtime::Tensor>,
    expected: &[String],
    path: &Path,
) -> BTreeMap<String, kiln_runtime::Tensor> {
    let extra: Vec<String> = inputs
        .keys()
        .filter(|k| !expected.contains(k))
        .cloned()
        .collect();
    if !extra.is_empty() {
        let list = |names: &[String]| {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        eprintln!(
            "note: {}: ignoring {} (not inputs of the model, whose inputs are {})",
            path.display(),
            list(&extra),
            list(expected)
        );
        for k in &extra {
            inputs.remove(k);
        }
    }
    inputs
}

/// Runs `kiln run`.
pub fn run(args: &RunArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    kiln::backend::check_output(&args.outputs, &[&args.model, &args.inputs])?;
    let max_memory = args.max_memory;
    let file = args.model.display().to_string();
    let outputs = match args.backend {
        Backend::Reference => {
            let mut g = kiln::load_model(&args.model)?;
            let optimize = Options {
                optimize: args.opt_level > 0,
                ..Default::default()
            };
            passes::optimize(&mut g, &optimize)
                .with_context(|| format!("{file}: the optimizer failed"))?;
            let inputs = model_inputs_only(
                kiln::read_npz(&args.inputs)?,
                &kiln::model::input_names(&g),
                &args.inputs,
            );
            let budget = kiln_runtime::MemoryBudget::from_option(max_memory);
            kiln::run_reference(&g, &args.model, &inputs, &args.inputs, &budget)?
        }
        Backend::Cpu => {
            let reporter = progress::Reporter::for_stderr();
            let opts = kiln::backend::CompileOptions {
                optimize: args.opt_level > 0,
                progress: reporter.as_ref().map(|r| r.pipeline()),
                ..Default::default()
            };
            let load = kiln_runtime::LoadOptions {
                max_memory,
                ..Default::default()
            };
            let model = kiln::backend::load_runnable(&args.model, &opts, &load)?;
            let inputs = model_inputs_only(
                kiln::read_npz(&args.inputs)?,
                &kiln::backend::input_names(&model),
                &args.inputs,
            );
            if let Some(r) = &reporter {
                r.step("running");
            }
            kiln::backend::run_model(&model, &args.model, &inputs, &args.inputs)?
        }
        Backend::Cuda => bail!(
            "{file}: backend `cuda` is not available yet (issue: CUDA backend); use --backend cpu"
        ),
    };
    let mut named = BTreeMap::new();
    for (name, t) in &outputs {
        if named.insert(name.clone(), t.clone()).is_some() {
            bail!("{file}: the graph declares output `{name}` twice");
        }
    }
    kiln::write_npz(&args.outputs, &named, Compression::Stored)?;
    let listed: Vec<String> = outputs
        .iter()
        .map(|(name, t)| format!("{name}: {}{:?}", t.dtype(), t.shape()))
        .collect();
    writeln!(
        out,
        "wrote {} ({})",
        args.outputs.display(),
        listed.join(", ")
    )?;
    Ok(())
}
