//! `kiln conformance DIR`: runs an ONNX backend-test folder on the reference interpreter or the
//! CPU backend across worker threads, prints one line per case that fails or is skipped (sorted
//! by case name) and the final line `N passed, M failed, K skipped`; optionally writes the pass
//! list.
//!
//! Failing cases are a report, not an error: the exit status is 0 whenever the cases ran.

use super::{Backend, ConformanceArgs};
use anyhow::{bail, Context};
use kiln::conformance::{
    case_dirs, default_workers, parse_pass_list, pass_list_text, report_line, resolve_cases_dir,
    run_cases_with, Counts, Outcome, QuietPanics,
};
use std::io::Write;
use std::path::Path;

/// Runs `kiln conformance`.
pub fn conformance(args: &ConformanceArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let shown = args.dir.display().to_string();
    let backend = match args.backend {
        Backend::Reference => kiln::conformance::Backend::Reference,
        Backend::Cpu => kiln::conformance::Backend::Cpu,
        Backend::Cuda => bail!(
            "{shown}: backend `cuda` is not available yet (issue: CUDA backend); use --backend reference or cpu"
        ),
    };
    let filter = args.filter.as_deref().filter(|f| !f.is_empty());
    if let (Some(list), Some(f)) = (&args.write_pass_list, filter) {
        bail!(
            "{}: refusing to write a pass list of only the cases matching --filter `{f}`; \
             run without --filter (or with --filter '') to write it",
            list.display()
        );
    }
    // Clap refuses `--jobs 0` as a usage error.
    let workers = match args.jobs {
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX).max(1),
        None => default_workers(),
    };
    let dir = resolve_cases_dir(&args.dir).map_err(anyhow::Error::msg)?;
    let dirs =
        case_dirs(&dir, filter).with_context(|| format!("{shown}: cannot list the cases"))?;

    let results = {
        let _quiet = QuietPanics::install();
        run_cases_with(&dirs, workers, backend, |r| -> std::io::Result<()> {
            match report_line(r) {
                Some(line) => writeln!(out, "{line}"),
                None if args.verbose => writeln!(out, "PASS {}", r.name),
                None => Ok(()),
            }
        })
        .context("cannot write to standard output")?
    };
    let counts = Counts::of(&results);
    writeln!(out, "{counts}").context("cannot write to standard output")?;

    if let Some(list) = &args.write_pass_list {
        write_pass_list(list, &results)?;
    }
    Ok(())
}

/// Writes the pass list, noting on stderr the cases of the previous list that no longer pass
/// (they are dropped from the new list, so a regression should be fixed rather than written).
fn write_pass_list(path: &Path, results: &[kiln::conformance::CaseResult]) -> anyhow::Result<()> {
    if let Ok(old) = std::fs::read_to_string(path) {
        let dropped: Vec<String> = parse_pass_list(&old)
            .into_iter()
            .filter(|name| {
                !results
                    .iter()
                    .any(|r| &r.name == name && r.outcome == Outcome::Pass)
            })
            .collect();
        if !dropped.is_empty() {
            eprintln!(
                "note: {} case(s) of the previous {} no longer pass and are dropped: {}",
                dropped.len(),
                path.display(),
                dropped.join(", ")
            );
        }
    }
    let text = pass_list_text(results);
    kiln_runtime::artifact::write_atomically(path, text.as_bytes())
        .context("cannot write the pass list")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args(dir: &str) -> ConformanceArgs {
        ConformanceArgs {
            dir: PathBuf::from(dir),
            backend: Backend::Reference,
            filter: None,
            write_pass_list: None,
            verbose: false,
            jobs: None,
        }
    }

    fn error_of(a: &ConformanceArgs) -> String {
        let mut out = Vec::new();
        let e = conformance(a, &mut out).unwrap_err();
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
        e.to_string()
    }

    #[test]
    fn argument_errors_come_before_any_case_runs() {
        let a = ConformanceArgs {
            backend: Backend::Cuda,
            ..args("/nonexistent")
        };
        assert!(error_of(&a).contains("backend `cuda` is not available yet"));
        let a = ConformanceArgs {
            filter: Some("abs".into()),
            write_pass_list: Some("pass.txt".into()),
            ..args("/nonexistent")
        };
        assert!(error_of(&a).starts_with("pass.txt: refusing to write a pass list"));
        let msg = error_of(&args("/nonexistent"));
        assert!(msg.starts_with("/nonexistent: "), "{msg}");
    }
}
