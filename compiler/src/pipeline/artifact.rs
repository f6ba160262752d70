//! The last stage: a lowered graph and its object code as a `.kiln` artifact — the plan, the
//! weights section and the code section under a header naming the target's architecture and CPU
//! features.

use crate::error::{Error, Result};
use crate::lower::Lowered;
use crate::target::Target;
use kiln_runtime::artifact::{ArtifactError, ArtifactWriter, SectionKind};

/// Assembles the sections of an artifact for `target` from `lowered` and the object `code`.
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
