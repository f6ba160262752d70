//! `kiln inspect --format json` as a value: the objects the command line prints for a graph
//! stage, an artifact and the kernels stage, built here so that applications (the Python
//! package's `kiln.inspect`) get exactly the JSON the command prints.

use crate::backend::{lower_path, CompileOptions};
use crate::{load_model, model_kind, summarize, Error, ModelKind};
use kiln_compiler::ir::Graph;
use kiln_compiler::optimize::Optimized;
use kiln_compiler::pipeline::{self, Options};
use kiln_runtime::artifact::{Artifact, SectionKind};
use kiln_runtime::plan::{Io, Kernel, Plan, Storage};
use kiln_runtime::{CpuFeature, CpuFeatures};
use serde_json::{json, Value};
use std::path::Path;

/// The pipeline stages `inspect` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The graph as imported.
    Imported,
    /// The graph after the optimizer (the JSON adds `passes` and `optimizer`).
    Optimized,
    /// The execution plan the model lowers to.
    Kernels,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 3] = [Stage::Imported, Stage::Optimized, Stage::Kernels];

    /// The name the command line and the JSON use.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Imported => "imported",
            Stage::Optimized => "optimized",
            Stage::Kernels => "kernels",
        }
    }

    /// The stage of a name produced by [`Stage::name`].
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What `kiln inspect PATH [--stage STAGE] --format json` prints: an artifact's header, sections
/// and plan when `path` is a `.kiln` file and no stage is given, otherwise the model at that
/// stage (default `imported`).
pub fn inspect_json(path: &Path, stage: Option<Stage>) -> Result<Value, Error> {
    if stage.is_none() && model_kind(path)? == ModelKind::Artifact {
        let (art, plan) = open_artifact(path)?;
        return Ok(artifact_json(path, &art, &plan));
    }
    match stage.unwrap_or(Stage::Imported) {
        Stage::Kernels => Ok(kernels_json(
            &lower_path(path, &CompileOptions::default())?.plan,
        )),
        stage => {
            let mut g = load_model(path)?;
            let imported = summarize(&g, "", "").fusions;
            let opts = Options {
                optimize: stage == Stage::Optimized,
                ..Default::default()
            };
            let report = pipeline::optimize(&mut g, &opts).map_err(|source| Error::Optimize {
                path: path.to_path_buf(),
                source,
            })?;
            graph_json(&g, path, stage, report.as_ref().map(|r| (r, &imported)))
        }
    }
}

/// The summary of a graph at an IR stage ([`crate::summarize`]), plus `passes` and `optimizer`
/// when the optimizer's report is given (with the fused ops the graph had before optimizing).
pub fn graph_json(
    g: &Graph,
    path: &Path,
    stage: Stage,
    report: Option<(&Optimized, &crate::summary::Fusions)>,
) -> Result<Value, Error> {
    let summary = summarize(g, &path.display().to_string(), stage.name());
    let mut v = serde_json::to_value(&summary).map_err(|source| Error::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    if let (Some((r, imported)), Some(obj)) = (report, v.as_object_mut()) {
        let passes: serde_json::Map<String, Value> = r
            .canonicalize
            .per_pass()
            .into_iter()
            .map(|(name, n)| (name.to_string(), n.into()))
            .collect();
        obj.insert("passes".to_string(), passes.into());
        let optimizer = crate::report::json(g, r, imported).map_err(|source| Error::Optimize {
            path: path.to_path_buf(),
            source,
        })?;
        obj.insert("optimizer".to_string(), optimizer);
    }
    Ok(v)
}

/// Opens an artifact for inspection: the format is validated (checksum included) but not the
/// CPU features, so an artifact built for another CPU still shows its header.
pub fn open_artifact(path: &Path) -> Result<(Artifact, Plan), Error> {
    let runtime_err = |source| Error::Runtime {
        path: path.to_path_buf(),
        source,
    };
    let all: CpuFeatures = CpuFeature::ALL.into_iter().collect();
    let art = Artifact::open_for(path, all).map_err(|e| runtime_err(e.into()))?;
    let plan = Plan::decode(art.section(SectionKind::Plan).unwrap_or(&[])).map_err(|source| {
        runtime_err(kiln_runtime::Error::Plan {
            file: path.display().to_string(),
            source,
        })
    })?;
    Ok((art, plan))
}

/// The names and sizes of an artifact's assets (empty without an assets section); a corrupt
/// section names the artifact.
pub fn artifact_assets(path: &Path, art: &Artifact) -> Result<Vec<(String, usize)>, Error> {
    let Some(bytes) = art.section(SectionKind::Assets) else {
        return Ok(Vec::new());
    };
    let assets =
        kiln_runtime::artifact::Assets::decode(bytes).map_err(|source| Error::Runtime {
            path: path.to_path_buf(),
            source: kiln_runtime::Error::Assets {
                file: path.display().to_string(),
                source,
            },
        })?;
    Ok(assets.sizes().map(|(n, l)| (n.to_string(), l)).collect())
}

/// An artifact's header, target, sections and plan summary.
pub fn artifact_json(path: &Path, art: &Artifact, plan: &Plan) -> Value {
    let h = art.header();
    let sections: Vec<Value> = h
        .sections
        .iter()
        .map(|e| json!({"name": e.kind.name(), "offset": e.offset, "len": e.len, "align": e.align}))
        .collect();
    let missing = h.target.features.missing_from(CpuFeatures::host());
    let mut v = json!({
        "artifact": path.display().to_string(),
        "bytes": art.file_len(),
        "format_version": h.format_version,
        "compiler_version": h.compiler_version,
        "target": {"arch": h.target.arch, "features": h.target.features.to_string(), "runs_here": missing.is_empty()},
        "checksum": format!("{:016x}", h.checksum),
        "sections": sections,
    });
    if let (Some(o), Ok(assets)) = (v.as_object_mut(), artifact_assets(path, art)) {
        let list: Vec<Value> = assets
            .iter()
            .map(|(n, l)| json!({"name": n, "bytes": l}))
            .collect();
        o.insert("assets".into(), list.into());
    }
    if let (Some(o), Value::Object(p)) = (v.as_object_mut(), plan_json(plan)) {
        o.extend(p);
    }
    v
}

/// The kernels stage: the plan summary plus one line per step.
pub fn kernels_json(plan: &Plan) -> Value {
    let mut v = plan_json(plan);
    if let Some(o) = v.as_object_mut() {
        o.insert("step_list".into(), plan.step_lines().into());
    }
    v
}

fn io_json(plan: &Plan, list: &[Io]) -> Value {
    list.iter()
        .map(|io| {
            let ty = &plan.value(io.value).ty;
            let shape: Vec<String> = ty.shape.dims().iter().map(|d| d.to_string()).collect();
            json!({"name": io.name, "dtype": ty.dtype.name(), "shape": shape})
        })
        .collect()
}

fn plan_json(plan: &Plan) -> Value {
    let weights: u64 = plan
        .values
        .iter()
        .map(|v| {
            if let Storage::Weight { len, .. } = v.storage {
                len
            } else {
                0
            }
        })
        .sum();
    json!({
        "inputs": io_json(plan, &plan.inputs),
        "outputs": io_json(plan, &plan.outputs),
        "steps": plan.steps.len(),
        "kernels": plan.kernel_counts(),
        "block_weights": plan.block_weights().into_iter().map(|(f, n, bytes)| json!({
            "format": f, "matrices": n, "bytes": bytes,
        })).collect::<Vec<_>>(),
        "generated": plan.steps.iter().filter_map(|s| match &s.kernel { Kernel::Generated(g) => Some(g.symbol.clone()), _ => None }).collect::<Vec<_>>(),
        "arena_slots": plan.slots.len(),
        "arena_bytes": plan.arena_size().to_string(),
        "value_weight_bytes": weights,
        "states": plan.states.iter().map(|st| json!({
            "name": st.name,
            "type": plan.value(st.value).ty.to_string(),
        })).collect::<Vec<_>>(),
        "kv_cache_bytes": plan.state_size().to_string(),
    })
}
