//! The optimizer's report for `kiln inspect --stage optimized`: fused sites, candidate sites
//! that did not fuse with the guard that stopped them, e-graph size, stop reason and times —
//! as `#` comment lines above the IR text (the text stays parseable) or as a JSON object (the
//! `optimizer` member of `kiln inspect --stage optimized --format json`, see [`crate::inspect`]).
//! Both fail only when the optimized graph cannot be numbered (a cycle).

use crate::summary::Fusions;
use kiln_compiler::ir::{Graph, ValueId};
use kiln_compiler::optimize::Optimized;
use kiln_compiler::text::result_numbers;
use std::collections::HashMap;
use std::fmt::Write as _;

/// A fused op in the result: `(pattern, printed value, op name)`.
fn fused_sites(g: &Graph, names: &HashMap<ValueId, usize>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for n in g.node_ids() {
        let node = g.node(n);
        let pattern = match node.op {
            kiln_compiler::ir::Op::Attention { .. } => "Attention",
            kiln_compiler::ir::Op::LayerNorm { .. }
            | kiln_compiler::ir::Op::SkipLayerNorm { .. } => "LayerNorm",
            kiln_compiler::ir::Op::RmsNorm { .. } => "RmsNorm",
            kiln_compiler::ir::Op::Gelu { .. } => "Gelu",
            _ => continue,
        };
        let at = node
            .outputs
            .first()
            .and_then(|v| names.get(v))
            .map_or_else(|| "?".to_string(), |i| format!("%{i}"));
        out.push((pattern, at));
    }
    out.sort_by_key(|(_, at)| {
        at.trim_start_matches('%')
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    out
}

/// The misses whose value is still in the result: `(rule, pattern, printed value, reason)`.
fn misses(
    g: &Graph,
    r: &Optimized,
    names: &HashMap<ValueId, usize>,
) -> Vec<(&'static str, &'static str, String, String)> {
    r.egraph
        .misses
        .iter()
        .filter(|m| g.is_defined(m.value))
        .filter_map(|m| {
            let i = names.get(&m.value)?;
            Some((m.rule, m.pattern, format!("%{i}"), m.reason.clone()))
        })
        .collect()
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Fused ops in the optimized graph `g` that the importer had already produced (`imported`
/// fused ops before optimizing, capped per pattern by what is left) and those the optimizer made.
fn made_and_imported(g: &Graph, imported: &Fusions) -> (usize, usize) {
    let after = crate::summarize(g, "", "").fusions;
    let pairs = [
        (after.attention, imported.attention),
        (after.layer_norm, imported.layer_norm),
        (after.rms_norm, imported.rms_norm),
        (after.gelu, imported.gelu),
    ];
    let kept: usize = pairs.iter().map(|&(a, i)| a.min(i)).sum();
    let total: usize = pairs.iter().map(|&(a, _)| a).sum();
    (total - kept, kept)
}

/// The report as `#` lines; `imported` counts the fused ops the graph had before optimizing.
pub fn text(g: &Graph, r: &Optimized, imported: &Fusions) -> kiln_compiler::Result<String> {
    let names = result_numbers(g)?;
    let e = &r.egraph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# optimizer: {:.3} ms (canonicalize {:.3}, e-graph {:.3}, clean-up {:.3})",
        ms(r.total_time()),
        ms(r.canonicalize_time),
        ms(r.egraph_time),
        ms(r.cleanup_time)
    );
    let _ = writeln!(
        s,
        "# e-graph: {} nodes, {} classes, {} iterations, stopped: {:?}; DAG cost {:.1} -> {:.1}",
        e.egraph_nodes, e.egraph_classes, e.iterations, e.stop_reason, e.cost_before, e.cost_after
    );
    let sites = fused_sites(g, &names);
    let (made, kept) = made_and_imported(g, imported);
    let _ = writeln!(
        s,
        "# fused: {made} by the optimizer ({} fused ops in all, {kept} already imported fused)",
        sites.len()
    );
    for (pattern, at) in &sites {
        let _ = writeln!(s, "#   {pattern} at {at}");
    }
    let missed = misses(g, r, &names);
    let _ = writeln!(s, "# not fused: {}", missed.len());
    for (rule, pattern, at, why) in &missed {
        let _ = writeln!(s, "#   {pattern} candidate at {at} ({rule}): {why}");
    }
    Ok(s)
}

/// The report as a JSON object; `imported` counts the fused ops before optimizing.
pub fn json(
    g: &Graph,
    r: &Optimized,
    imported: &Fusions,
) -> kiln_compiler::Result<serde_json::Value> {
    let (made, kept) = made_and_imported(g, imported);
    let names = result_numbers(g)?;
    let e = &r.egraph;
    let sites: Vec<serde_json::Value> = fused_sites(g, &names)
        .into_iter()
        .map(|(p, at)| serde_json::json!({"pattern": p, "value": at}))
        .collect();
    let missed: Vec<serde_json::Value> = misses(g, r, &names)
        .into_iter()
        .map(|(rule, p, at, why)| {
            serde_json::json!({"rule": rule, "pattern": p, "value": at, "reason": why})
        })
        .collect();
    Ok(serde_json::json!({
        "time_ms": ms(r.total_time()),
        "canonicalize_ms": ms(r.canonicalize_time),
        "egraph_ms": ms(r.egraph_time),
        "cleanup_ms": ms(r.cleanup_time),
        "egraph_nodes": e.egraph_nodes,
        "egraph_classes": e.egraph_classes,
        "iterations": e.iterations,
        "stop_reason": format!("{:?}", e.stop_reason),
        "cost_before": e.cost_before,
        "cost_after": e.cost_after,
        "fused_by_optimizer": made,
        "fused_on_import": kept,
        "fused_sites": sites,
        "not_fused": missed,
    }))
}
