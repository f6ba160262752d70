//! The compile pipeline: one place that turns a graph into a `.kiln` artifact for a [`Target`],
//! stage by stage, timing each stage.
//!
//! 1. [`optimize`]: canonicalize, e-graph fusion, clean-up (skipped at `-O0`);
//! 2. [`lower`]: kernel selection, elementwise fusion, storage and the execution plan;
//! 3. [`codegen`]: the generated kernels compiled into an object for the target's CPU features;
//! 4. [`assemble`]: plan, weights and code as the sections of an artifact for the target.
//!
//! [`compile`] runs them all; the command line, the facade's CPU backend and the tests call it
//! (or, to stop early, the stage functions) instead of chaining the stages by hand.

use crate::error::{Error, Result};
use crate::ir::Graph;
use crate::lower::Lowered;
use crate::optimize::Optimized;
use crate::target::{Backend, Target};
use kiln_runtime::artifact::{ArtifactError, ArtifactWriter, SectionKind};
use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, Instant};

/// Told when a stage starts, with its name in words (`optimizing`, `lowering`, `generating
/// code`, `assembling the artifact`); the CLI shows progress with it.
#[derive(Clone)]
pub struct Progress(std::sync::Arc<dyn Fn(&'static str) + Send + Sync>);

impl Progress {
    /// A callback.
    pub fn new(f: impl Fn(&'static str) + Send + Sync + 'static) -> Progress {
        Progress(std::sync::Arc::new(f))
    }

    /// Says that `stage` starts.
    pub fn stage(&self, stage: &'static str) {
        (self.0)(stage)
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// How to compile (what the target does not decide).
#[derive(Debug, Clone)]
pub struct Options {
    /// Run the optimizer (`-O1` and up); `false` lowers the graph as it is.
    pub optimize: bool,
    /// Called as each stage starts.
    pub progress: Option<Progress>,
}

impl Default for Options {
    /// Optimized, without progress reports.
    fn default() -> Self {
        Options {
            optimize: true,
            progress: None,
        }
    }
}

impl Options {
    /// Unoptimized (the graph lowered as it is).
    pub fn unoptimized() -> Options {
        Options {
            optimize: false,
            progress: None,
        }
    }

    fn report(&self, stage: &'static str) {
        if let Some(p) = &self.progress {
            p.stage(stage);
        }
    }
}

/// Wall time of each stage of one compile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageTimings {
    /// The optimizer (zero when it did not run).
    pub optimize: Duration,
    /// Lowering to the execution plan.
    pub lower: Duration,
    /// Code generation of the fused kernels.
    pub codegen: Duration,
    /// Assembling the artifact's sections.
    pub write: Duration,
}

impl StageTimings {
    /// The sum of the stages.
    pub fn total(&self) -> Duration {
        self.optimize + self.lower + self.codegen + self.write
    }
}

/// A compiled model: the assembled artifact, ready to be written out or turned into bytes.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The artifact.
    pub artifact: ArtifactWriter,
    /// What the optimizer did, when it ran.
    pub optimizer: Option<Optimized>,
    /// Time per stage.
    pub timings: StageTimings,
}

impl Compiled {
    /// The artifact's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.artifact.to_bytes()
    }

    /// Writes the artifact to `path` atomically: a failed write leaves no file behind.
    pub fn write_file(&self, path: &Path) -> Result<()> {
        self.artifact
            .write_file(path)
            .map_err(|e| kiln_runtime::Error::from(e).into())
    }
}

/// Runs `f`, adding its wall time to `slot`.
fn timed<T>(slot: &mut Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    *slot += start.elapsed();
    out
}

/// Stage 1: optimizes `g` in place when `opts` asks for it; the optimizer's report if it ran.
pub fn optimize(g: &mut Graph, opts: &Options) -> Result<Option<Optimized>> {
    if !opts.optimize {
        return Ok(None);
    }
    crate::optimize::optimize(g).map(Some)
}

/// Stage 2: lowers a verified (and usually optimized) graph to the execution plan for `target`.
pub fn lower(g: &Graph, target: &Target) -> Result<Lowered> {
    match target.backend {
        Backend::Cpu => crate::lower::lower(g),
    }
}

/// Stage 3: compiles the lowered graph's generated kernels into object code for `target` (empty
/// when there are none).
pub fn codegen(lowered: &Lowered, target: &Target) -> Result<Vec<u8>> {
    match target.backend {
        Backend::Cpu if lowered.kernels.is_empty() => Ok(Vec::new()),
        Backend::Cpu => crate::codegen::compile_object(&lowered.kernels, target.features),
    }
}

/// Stage 4: the sections of a `.kiln` artifact for `target` — the plan, the weights section and
/// the object `code` — under a header naming the target's architecture and CPU features.
pub fn assemble(lowered: Lowered, code: Vec<u8>, target: &Target) -> Result<ArtifactWriter> {
    let art = |e: ArtifactError| Error::from(kiln_runtime::Error::from(e));
    let mut w =
        ArtifactWriter::new(env!("CARGO_PKG_VERSION"), target.artifact_target()).map_err(art)?;
    w.add_section(SectionKind::Plan, lowered.plan.encode(), 8)
        .map_err(art)?;
    w.add_section(SectionKind::Weights, lowered.weights, 64)
        .map_err(art)?;
    w.add_section(SectionKind::Code, code, 16).map_err(art)?;
    Ok(w)
}

/// Every stage: `graph` optimized (on a copy; unless `opts` says not to), lowered, its kernels
/// generated and the artifact assembled for `target`.
pub fn compile(graph: &Graph, target: &Target, opts: &Options) -> Result<Compiled> {
    let mut timings = StageTimings::default();
    let mut g = Cow::Borrowed(graph);
    let optimizer = if opts.optimize {
        opts.report("optimizing");
        timed(&mut timings.optimize, || optimize(g.to_mut(), opts))?
    } else {
        None
    };
    opts.report("lowering");
    let lowered = timed(&mut timings.lower, || lower(&g, target))?;
    opts.report("generating code");
    let code = timed(&mut timings.codegen, || codegen(&lowered, target))?;
    opts.report("assembling the artifact");
    let artifact = timed(&mut timings.write, || assemble(lowered, code, target))?;
    Ok(Compiled {
        artifact,
        optimizer,
        timings,
    })
}

#[cfg(test)]
mod tests;
