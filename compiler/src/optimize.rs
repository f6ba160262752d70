//! The optimizer pipeline `kiln run` and `kiln inspect --stage optimized` use: canonicalize,
//! fuse with the e-graph, canonicalize again (glue nodes the fusions added, dead code), verify;
//! with the time of each phase.

use crate::egraph::{self, Limits, Report};
use crate::error::Result;
use crate::ir::Graph;
use crate::passes::{canonicalize, PassStats};
use std::time::{Duration, Instant};

/// What the pipeline did.
#[derive(Debug, Clone)]
pub struct Optimized {
    /// The canonicalization before the e-graph.
    pub canonicalize: PassStats,
    /// The e-graph run.
    pub egraph: Report,
    /// The clean-up canonicalization after extraction.
    pub cleanup: PassStats,
    /// Time of the first canonicalization.
    pub canonicalize_time: Duration,
    /// Time of saturation and extraction.
    pub egraph_time: Duration,
    /// Time of the clean-up.
    pub cleanup_time: Duration,
}

impl Optimized {
    /// The optimizer's whole time (file loading excluded).
    pub fn total_time(&self) -> Duration {
        self.canonicalize_time + self.egraph_time + self.cleanup_time
    }
}

/// Optimizes `g` in place with the default limits.
pub fn optimize(g: &mut Graph) -> Result<Optimized> {
    optimize_with(g, &Limits::default())
}

/// Optimizes `g` in place under `limits`.
pub fn optimize_with(g: &mut Graph, limits: &Limits) -> Result<Optimized> {
    let t0 = Instant::now();
    let canon = canonicalize(g)?;
    let t1 = Instant::now();
    let (mut out, report) = egraph::optimize(g, limits)?;
    let t2 = Instant::now();
    let cleanup = canonicalize(&mut out)?;
    let t3 = Instant::now();
    *g = out;
    Ok(Optimized {
        canonicalize: canon,
        egraph: report,
        cleanup,
        canonicalize_time: t1 - t0,
        egraph_time: t2 - t1,
        cleanup_time: t3 - t2,
    })
}
