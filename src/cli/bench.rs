//! `kiln bench MODEL|ARTIFACT --inputs IN.npz [--iters N]`: untimed warm-up runs, then N timed
//! runs of one session; prints min, mean, and on the CPU backend the run's arena bytes, its
//! operation count and the GFLOP/s the median run achieved, then, as the final line,
//! `median_ms: X`.

use super::{Backend, BenchArgs};
use anyhow::bail;
use kiln::backend::{load_runnable, run_model, CompileOptions};
use kiln_runtime::LoadOptions;
use std::io::Write;
use std::time::Instant;

const WARMUP: usize = 3;

/// The most timed iterations one bench records (each keeps its time, and with `--profile` the
/// time of every step).
const MAX_ITERS: u32 = 100_000;

/// Runs `kiln bench`.
pub fn bench(args: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let file = args.model.display().to_string();
    if args.iters > MAX_ITERS {
        bail!(
            "--iters {} is more than the {MAX_ITERS} timed runs one bench records",
            args.iters
        );
    }
    let max_memory = args.max_memory;
    let inputs = kiln::read_npz(&args.inputs)?;
    let mut times = Vec::with_capacity(args.iters as usize);
    // Operations and arena bytes of one run (CPU backend), for `gflops` and `arena_bytes`.
    let mut work: Option<(u64, usize)> = None;
    match args.backend {
        Backend::Cpu => {
            let load = LoadOptions {
                threads: args.threads,
                max_memory,
            };
            let t = Instant::now();
            let model = load_runnable(&args.model, &CompileOptions::default(), &load)?;
            writeln!(out, "load_ms: {:.3}", t.elapsed().as_secs_f64() * 1e3)?;
            writeln!(out, "threads: {}", model.pool().current_num_threads())?;
            let inputs =
                super::model_inputs_only(inputs, &kiln::backend::input_names(&model), &args.inputs);
            // The first run checks the inputs and reports problems with the file names.
            run_model(&model, &args.model, &inputs, &args.inputs)?;
            let mut session = model.session();
            session.set_profiling(args.profile);
            let mut per_step: Vec<Vec<f64>> = vec![Vec::new(); model.plan().steps.len()];
            for i in 0..WARMUP + args.iters as usize {
                let t = Instant::now();
                session
                    .run(&inputs)
                    .map_err(|source| kiln::Error::Runtime {
                        path: args.model.clone(),
                        source,
                    })?;
                if i >= WARMUP {
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                    for (acc, d) in per_step.iter_mut().zip(session.step_times().unwrap_or(&[])) {
                        acc.push(d.as_secs_f64() * 1e3);
                    }
                }
            }
            if let Some(layout) = session.layout() {
                work = Some((layout.flops(model.plan()), layout.arena_bytes));
            }
            if args.profile {
                profile_report(&model, &mut per_step, out)?;
            }
        }
        Backend::Reference => {
            let mut g = kiln::load_model(&args.model)?;
            let optimize = kiln_compiler::Options::default();
            kiln_compiler::pipeline::optimize(&mut g, &optimize).map_err(|source| {
                kiln::Error::Compile {
                    path: args.model.clone(),
                    source,
                }
            })?;
            let budget = kiln_runtime::MemoryBudget::from_option(max_memory);
            let inputs =
                super::model_inputs_only(inputs, &kiln::model::input_names(&g), &args.inputs);
            for _ in 0..args.iters {
                let t = Instant::now();
                kiln::run_reference(&g, &args.model, &inputs, &args.inputs, &budget)?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        Backend::Cuda => bail!(
            "{file}: backend `cuda` is not available yet (issue: CUDA backend); use --backend cpu"
        ),
    }
    times.sort_by(f64::total_cmp);
    let median = if times.len() % 2 == 1 {
        times[times.len() / 2]
    } else {
        (times[times.len() / 2 - 1] + times[times.len() / 2]) / 2.0
    };
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    writeln!(out, "iters: {}", times.len())?;
    writeln!(out, "min_ms: {:.3}", times[0])?;
    writeln!(out, "mean_ms: {mean:.3}")?;
    if let Some((flops, arena)) = work {
        writeln!(out, "arena_bytes: {arena}")?;
        writeln!(out, "flop_per_run: {flops}")?;
        writeln!(out, "gflops: {:.2}", flops as f64 / 1e9 / (median / 1e3))?;
    }
    writeln!(out, "median_ms: {median:.3}")?;
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Median milliseconds per kernel kind (summed over its steps) and the ten slowest steps.
fn profile_report(
    model: &kiln_runtime::Model,
    per_step: &mut [Vec<f64>],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let plan = model.plan();
    let mut by_kind: std::collections::BTreeMap<String, f64> = Default::default();
    let mut steps: Vec<(f64, usize)> = Vec::new();
    for (i, times) in per_step.iter_mut().enumerate() {
        let m = median(times);
        // Generated kernels grouped by family (`generated:kiln_row`, `generated:kiln_ew`: the
        // name up to the kernel's number, `generated:kiln_ew3_FR_1`).
        let name = plan.steps[i].kernel.name();
        let kind = name
            .split(char::is_numeric)
            .next()
            .unwrap_or(&name)
            .to_string();
        *by_kind.entry(kind).or_insert(0.0) += m;
        steps.push((m, i));
    }
    for (kind, ms) in &by_kind {
        writeln!(out, "profile {kind}: {ms:.3} ms")?;
    }
    steps.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ms, i) in steps.into_iter().take(10) {
        writeln!(out, "slow step {i} ({}): {ms:.3} ms", plan.steps[i].origin)?;
    }
    Ok(())
}
