//! `kiln compile`, `kiln inspect ARTIFACT` (header, target, sections, kernels, arena) and
//! `kiln inspect MODEL --stage kernels` (the execution plan the model lowers to); their JSON is
//! built by the library's [`kiln::inspect`].

use super::{CompileArgs, Format, Target};
use anyhow::{bail, Context};
use kiln::backend::{compile_model_to, lower_path, CompileOptions};
use kiln_runtime::CpuFeatures;
use std::io::Write;
use std::path::Path;

/// Runs `kiln compile`.
pub fn compile(args: &CompileArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    kiln::backend::check_output(&args.output, &[&args.model])?;
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
        decoder: args.decoder,
        dequantize: args.dequantize,
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

/// Runs `kiln inspect ARTIFACT`.
pub fn inspect_artifact(path: &Path, format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    let (art, plan) = kiln::inspect::open_artifact(path)?;
    let h = art.header();
    let missing = h.target.features.missing_from(CpuFeatures::host());
    let text = match format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&kiln::inspect::artifact_json(path, &art, &plan))?
        ),
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
            let assets = kiln::inspect::artifact_assets(path, &art)?;
            if !assets.is_empty() {
                let list: Vec<String> = assets
                    .iter()
                    .map(|(n, l)| format!("{n} ({l} bytes)"))
                    .collect();
                s.push_str(&format!("assets: {}\n", list.join(", ")));
            }
            s.push_str(&plan.summary_text(false));
            s
        }
    };
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    Ok(())
}

/// Runs `kiln inspect MODEL --stage kernels`: the plan the model lowers to.
pub fn inspect_kernels(path: &Path, format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    let lowered = lower_path(path, &CompileOptions::default())?;
    let text = match format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&kiln::inspect::kernels_json(&lowered.plan))?
        ),
        _ => lowered.plan.summary_text(true),
    };
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    Ok(())
}
