//! `kiln compile`, `kiln inspect ARTIFACT` (header, target, sections, kernels, arena) and
//! `kiln inspect MODEL --stage kernels` (the execution plan the model lowers to).

use super::{CompileArgs, Format, Target};
use anyhow::{bail, Context};
use kiln::backend::{compile_model_to, lower_path, CompileOptions};
use kiln_runtime::artifact::Artifact;
use kiln_runtime::plan::{Kernel, Plan, Storage};
use kiln_runtime::CpuFeatures;
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// Runs `kiln compile`.
pub fn compile(args: &CompileArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    super::check_output(&args.output, &[&args.model])?;
    let file = args.model.display().to_string();
    if args.target == Target::Cuda {
        bail!("{file}: target `cuda` is not available yet (issue: CUDA backend); use --target cpu");
    }
    let target = match &args.cpu_features {
        Some(list) => kiln_compiler::Target::cpu(
            CpuFeatures::parse(list).map_err(|e| anyhow::anyhow!("--cpu-features: {e}"))?,
        ),
        None => kiln_compiler::Target::host(),
    };
    let reporter = super::progress::Reporter::for_stderr();
    let opts = CompileOptions {
        optimize: args.opt_level > 0,
        target,
        progress: reporter.as_ref().map(|r| r.pipeline()),
    };
    compile_model_to(&args.model, &args.output, &opts)?;
    drop(reporter);
    let size = std::fs::metadata(&args.output)
        .with_context(|| {
            format!(
                "{}: cannot read the written artifact",
                args.output.display()
            )
        })?
        .len();
    writeln!(
        out,
        "wrote {} ({size} bytes; target {})",
        args.output.display(),
        opts.target
    )?;
    Ok(())
}

fn io_json(plan: &Plan, list: &[kiln_runtime::plan::Io]) -> serde_json::Value {
    list.iter()
        .map(|io| {
            let ty = &plan.value(io.value).ty;
            let shape: Vec<String> = ty.shape.dims().iter().map(|d| d.to_string()).collect();
            json!({"name": io.name, "dtype": ty.dtype.name(), "shape": shape})
        })
        .collect()
}

fn plan_json(plan: &Plan) -> serde_json::Value {
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
        "generated": plan.steps.iter().filter_map(|s| match &s.kernel { Kernel::Generated(g) => Some(g.symbol.clone()), _ => None }).collect::<Vec<_>>(),
        "arena_slots": plan.slots.len(),
        "arena_bytes": plan.arena_size().to_string(),
        "value_weight_bytes": weights,
    })
}

/// Runs `kiln inspect ARTIFACT`.
pub fn inspect_artifact(path: &Path, format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    // Validated against an empty feature set's complement: inspecting an artifact built for
    // another CPU still shows its header, so only the format is checked here.
    let art = Artifact::open_for(path, all_features()).map_err(kiln_runtime::Error::from)?;
    let plan = kiln_runtime::plan::Plan::decode(
        art.section(kiln_runtime::artifact::SectionKind::Plan)
            .unwrap_or(&[]),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let h = art.header();
    let sections: Vec<serde_json::Value> = h
        .sections
        .iter()
        .map(|e| json!({"name": e.kind.name(), "offset": e.offset, "len": e.len, "align": e.align}))
        .collect();
    let missing = h.target.features.missing_from(CpuFeatures::host());
    let text = match format {
        Format::Json => {
            let mut v = json!({
                "artifact": path.display().to_string(),
                "bytes": art.file_len(),
                "format_version": h.format_version,
                "compiler_version": h.compiler_version,
                "target": {"arch": h.target.arch, "features": h.target.features.to_string(), "runs_here": missing.is_empty()},
                "checksum": format!("{:016x}", h.checksum),
                "sections": sections,
            });
            if let (Some(o), serde_json::Value::Object(p)) = (v.as_object_mut(), plan_json(&plan)) {
                o.extend(p);
            }
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        _ => {
            let mut s = format!(
                "artifact: {} ({} bytes)\nformat version: {}, compiler: kiln {}\ntarget: {} {}{}\nchecksum: {:016x}\n",
                path.display(),
                art.file_len(),
                h.format_version,
                h.compiler_version,
                h.target.arch,
                h.target.features,
                if missing.is_empty() { String::new() } else { format!(" (this CPU lacks {})", missing.iter().map(|f| f.name()).collect::<Vec<_>>().join(",")) },
                h.checksum
            );
            for e in &h.sections {
                s.push_str(&format!(
                    "section {}: {} bytes at {} (align {})\n",
                    e.kind.name(),
                    e.len,
                    e.offset,
                    e.align
                ));
            }
            s.push_str(&plan.summary_text(false));
            s
        }
    };
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    Ok(())
}

fn all_features() -> CpuFeatures {
    kiln_runtime::CpuFeature::ALL.into_iter().collect()
}

/// Runs `kiln inspect MODEL --stage kernels`: the plan the model lowers to.
pub fn inspect_kernels(path: &Path, format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    let lowered = lower_path(path, &CompileOptions::default())?;
    let text = match format {
        Format::Json => {
            let mut v = plan_json(&lowered.plan);
            if let Some(o) = v.as_object_mut() {
                o.insert("step_list".into(), lowered.plan.step_lines().into());
            }
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        _ => lowered.plan.summary_text(true),
    };
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    Ok(())
}
