//! Writing a lowered graph as a `.kiln` artifact: the plan, the weights section and the object
//! code of the generated kernels, under a header naming the target CPU features.

use super::lower;
use crate::codegen::compile_object;
use crate::error::{Error, Result};
use crate::ir::Graph;
use kiln_runtime::artifact::{ArtifactWriter, SectionKind, Target};
use kiln_runtime::CpuFeatures;
use std::path::Path;

/// Target options for an artifact.
#[derive(Debug, Clone)]
pub struct ArtifactOptions {
    /// CPU features the generated code may use; the loader refuses machines that lack one.
    pub features: CpuFeatures,
}

impl Default for ArtifactOptions {
    /// This machine's features.
    fn default() -> Self {
        ArtifactOptions {
            features: CpuFeatures::host(),
        }
    }
}

fn writer(g: &Graph, opts: &ArtifactOptions) -> Result<ArtifactWriter> {
    let lowered = lower(g)?;
    let code = if lowered.kernels.is_empty() {
        Vec::new()
    } else {
        compile_object(&lowered.kernels, opts.features)?
    };
    let target = Target {
        arch: std::env::consts::ARCH.to_string(),
        features: opts.features,
    };
    let art = |e: kiln_runtime::artifact::ArtifactError| Error::from(kiln_runtime::Error::from(e));
    let mut w = ArtifactWriter::new(env!("CARGO_PKG_VERSION"), target).map_err(art)?;
    w.add_section(SectionKind::Plan, lowered.plan.encode(), 8)
        .map_err(art)?;
    w.add_section(SectionKind::Weights, lowered.weights, 64)
        .map_err(art)?;
    w.add_section(SectionKind::Code, code, 16).map_err(art)?;
    Ok(w)
}

/// Compiles an optimized graph into the bytes of a `.kiln` artifact.
pub fn compile_artifact(g: &Graph, opts: &ArtifactOptions) -> Result<Vec<u8>> {
    Ok(writer(g, opts)?.to_bytes())
}

/// Compiles an optimized graph and writes the artifact to `path` atomically: a failed compile
/// or write leaves no file behind.
pub fn write_artifact(g: &Graph, opts: &ArtifactOptions, path: &Path) -> Result<()> {
    writer(g, opts)?
        .write_file(path)
        .map_err(|e| Error::from(kiln_runtime::Error::from(e)))
}
