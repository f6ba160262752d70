//! The e-graph optimizer: recognises fused ops (LayerNorm, GELU) in the spellings exporters
//! emit, by equality saturation with egg, then extracts a graph with a DAG cost.
//!
//! Pipeline: [`convert::to_egraph`] → egg `Runner` with the named [`rules`] under [`Limits`]
//! → [`extract::choose`] (one e-node per e-class) → [`convert::to_graph`]. The [`Report`] says
//! how many of each fused op the result gained, how big the e-graph grew, and why the run
//! stopped. No rule is associative or commutative (operand orders are handled inside the
//! matchers), so the e-graph grows only by the fused nodes and runs saturate quickly.

pub mod analysis;
pub mod convert;
pub mod extract;
pub mod lang;
pub mod rules;

use crate::error::Result;
use crate::ir::Graph;
pub use egg::StopReason;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Budgets for equality saturation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Stop when the e-graph has more e-nodes than this.
    pub nodes: usize,
    /// Stop after this many iterations.
    pub iterations: usize,
    /// Stop after this much time.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            nodes: 100_000,
            iterations: 30,
            time: Duration::from_secs(10),
        }
    }
}

/// What an optimization run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Fused ops gained, by pattern name (`LayerNorm`, `Gelu`, `RmsNorm`, `Attention`):
    /// the count in the result minus the count in the input.
    pub fused: BTreeMap<&'static str, usize>,
    /// E-nodes in the final e-graph.
    pub egraph_nodes: usize,
    /// E-classes in the final e-graph.
    pub egraph_classes: usize,
    /// Saturation iterations run.
    pub iterations: usize,
    /// Why saturation stopped.
    pub stop_reason: StopReason,
    /// DAG cost (kernels) of the input and of the extracted result.
    pub cost_before: f64,
    /// DAG cost of the extracted result.
    pub cost_after: f64,
    /// Wall time of the whole run.
    pub time: Duration,
    /// Candidate sites a rule matched structurally but a guard rejected, in the result.
    pub misses: Vec<MissSite>,
}

/// A candidate site that did not fuse.
#[derive(Debug, Clone, PartialEq)]
pub struct MissSite {
    /// The rule (`ln-fuse`, ...).
    pub rule: &'static str,
    /// The fused op it would have made (`LayerNorm`, ...).
    pub pattern: &'static str,
    /// The value in the result graph that would have been fused.
    pub value: crate::ir::ValueId,
    /// The failed guard.
    pub reason: String,
}

impl Report {
    /// How many of the named fused op were introduced (0 when none).
    pub fn count(&self, name: &str) -> usize {
        self.fused.get(name).copied().unwrap_or(0)
    }
}

/// The pattern name of a fused op.
fn fused_name(op: &crate::ir::Op) -> Option<&'static str> {
    use crate::ir::Op;
    match op {
        Op::LayerNorm { .. } | Op::SkipLayerNorm { .. } => Some("LayerNorm"),
        Op::RmsNorm { .. } => Some("RmsNorm"),
        Op::Gelu { .. } => Some("Gelu"),
        Op::Attention { .. } => Some("Attention"),
        _ => None,
    }
}

fn count_fused(g: &Graph) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for n in g.node_ids() {
        if let Some(name) = fused_name(&g.node(n).op) {
            *m.entry(name).or_insert(0) += 1;
        }
    }
    m
}

/// Optimizes `g`: fuses what the rules recognise and returns the new graph with a report.
/// The input graph is left unchanged; errors (a cyclic graph, a failed rebuild) are values.
pub fn optimize(g: &Graph, limits: &Limits) -> Result<(Graph, Report)> {
    let start = Instant::now();
    let (eg, root) = convert::to_egraph(g)?;
    let cost_before = extract::dag_cost(&eg, &extract::choose(&eg), root)?;
    let runner = egg::Runner::<lang::KNode, analysis::KAnalysis, ()>::new(Default::default())
        .with_egraph(eg)
        .with_node_limit(limits.nodes)
        .with_iter_limit(limits.iterations)
        .with_time_limit(limits.time)
        .run(&rules::all());
    let eg = &runner.egraph;
    let choice = extract::choose(eg);
    let cost_after = extract::dag_cost(eg, &choice, root)?;
    let (out, built) = convert::to_graph(g, eg, &choice, root)?;
    let misses = collect_misses(eg, &choice, &built);
    let before = count_fused(g);
    let fused = count_fused(&out)
        .into_iter()
        .map(|(k, n)| (k, n.saturating_sub(before.get(k).copied().unwrap_or(0))))
        .filter(|&(_, n)| n > 0)
        .collect();
    let report = Report {
        fused,
        egraph_nodes: eg.total_number_of_nodes(),
        egraph_classes: eg.number_of_classes(),
        iterations: runner.iterations.len(),
        stop_reason: runner
            .stop_reason
            .clone()
            .unwrap_or(StopReason::Other("not run".into())),
        cost_before,
        cost_after,
        time: start.elapsed(),
        misses,
    };
    Ok((out, report))
}

/// Runs every rule's matcher, recording rejections, over the classes built into the result
/// whose chosen node is not a fused op.
fn collect_misses(
    eg: &lang::KEGraph,
    choice: &std::collections::HashMap<egg::Id, lang::KNode>,
    built: &std::collections::HashMap<egg::Id, Vec<crate::ir::ValueId>>,
) -> Vec<MissSite> {
    let mut ids: Vec<egg::Id> = built.keys().copied().collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        let fused = choice
            .get(&id)
            .and_then(|n| n.as_op())
            .is_some_and(|op| fused_name(op).is_some());
        let [value] = built[&id].as_slice() else {
            continue;
        };
        if fused {
            continue;
        }
        for (rule, pattern, matcher) in rules::RULES {
            let mut diag = rules::Diag::recording();
            if !matcher(eg, id, &mut diag).is_empty() {
                continue;
            }
            for m in diag.misses {
                let site = MissSite {
                    rule,
                    pattern,
                    value: *value,
                    reason: m.reason,
                };
                if !out.contains(&site) {
                    out.push(site);
                }
            }
        }
    }
    out
}
