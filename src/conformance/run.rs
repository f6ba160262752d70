//! Running cases: one case on a backend (import, feed each data set, compare every output; a
//! panic is a failure), and many cases on a rayon pool of `-j N` worker threads whose results
//! come back in case order as soon as they are known. While [`QuietPanics`] is installed, a
//! panic on a worker prints nothing and its location goes on the case's `FAIL` line.

use super::cases::{compare, data_sets, load_graph, numbered, read_inputs, InputError};
use super::report::{CaseResult, Outcome};
use kiln_compiler::ir::Graph;
use kiln_frontends::onnx::read_tensor_file;
use kiln_frontends::Error;
use kiln_runtime::Tensor;
use rayon::prelude::*;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

/// Stack size of each worker: the interpreter and importer may recurse on deep graphs.
const WORKER_STACK: usize = 64 << 20;

/// The name prefix of the worker threads, by which [`QuietPanics`] knows them.
const WORKER_PREFIX: &str = "kiln-worker-";

/// Which backend runs the cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The reference interpreter on the imported graph.
    Reference,
    /// The CPU backend: optimize, compile to an artifact in memory, load it and run it.
    Cpu,
}

/// Runs a graph on named inputs and returns its named outputs: the backend under test.
pub type Executor<'a> =
    &'a (dyn Fn(&Graph, &BTreeMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, String> + Sync);

/// Whether an error means "Kiln does not support this" rather than "this went wrong".
fn is_unsupported(e: &Error) -> bool {
    match e {
        Error::Unsupported { .. } | Error::UnsupportedInput { .. } => true,
        Error::Tensor { message, .. } => {
            message.contains("unsupported") || message.contains("not supported")
        }
        _ => false,
    }
}

/// An unsupported feature is a skip, any other error a failure.
fn classify(e: Error) -> Outcome {
    if is_unsupported(&e) {
        Outcome::Skip(e.to_string())
    } else {
        Outcome::Fail(e.to_string())
    }
}

/// Runs one case on the reference interpreter, catching panics (which count as failures).
pub fn run_case(dir: &Path) -> Outcome {
    run_case_with(dir, &|g, inputs| {
        kiln_compiler::interp::run(g, inputs).map_err(|e| e.to_string())
    })
}

/// Runs one case on the given backend, catching panics (which count as failures).
pub fn run_case_with(dir: &Path, exec: Executor) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| run_case_inner(dir, exec))) {
        Ok(o) => o,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Outcome::Fail(format!("panic: {msg}"))
        }
    }
}

fn run_case_inner(dir: &Path, exec: Executor) -> Outcome {
    let graph = match load_graph(dir) {
        Ok(g) => g,
        Err(e) => return classify(e),
    };
    let sets = data_sets(dir);
    if sets.is_empty() {
        return Outcome::Fail("no test_data_set_* folder".to_string());
    }
    for set in sets {
        if let Err(o) = run_set(&graph, &set, exec) {
            return o;
        }
    }
    Outcome::Pass
}

fn run_set(graph: &Graph, set: &Path, exec: Executor) -> Result<(), Outcome> {
    let inputs = read_inputs(graph, set).map_err(|e| match e {
        InputError::Read(e) => classify(e),
        InputError::Unmatched(m) => Outcome::Fail(m),
    })?;
    let outs = exec(graph, &inputs).map_err(Outcome::Fail)?;
    let expected = numbered(set, "output");
    if expected.len() != outs.len() {
        return Err(Outcome::Fail(format!(
            "graph has {} outputs, the case expects {}",
            outs.len(),
            expected.len()
        )));
    }
    for ((name, got), p) in outs.iter().zip(expected) {
        let (_, want) = read_tensor_file(&p).map_err(classify)?;
        compare(got, &want).map_err(|m| Outcome::Fail(format!("output `{name}`: {m}")))?;
    }
    Ok(())
}

/// Runs one case; a panic is a failure, reported with where it happened when known. Messages
/// lose the `<case>/model.onnx: ` prefix, which the case name already says.
pub fn run_one(dir: &Path, backend: Backend) -> CaseResult {
    take_panic_location();
    let mut outcome = match backend {
        Backend::Reference => run_case(dir),
        Backend::Cpu => run_case_with(dir, &crate::backend::run_graph_cpu),
    };
    let prefix = format!("{}: ", dir.join("model.onnx").display());
    if let Outcome::Fail(m) | Outcome::Skip(m) = &mut outcome {
        if let Some(rest) = m.strip_prefix(&prefix) {
            *m = rest.to_string();
        }
    }
    if let Outcome::Fail(m) = &mut outcome {
        if m.starts_with("panic:") {
            if let Some(at) = take_panic_location() {
                m.push_str(&format!(" (at {at})"));
            }
        }
    }
    CaseResult {
        name: super::case_name(dir),
        outcome,
    }
}

/// The number of worker threads to use by default: the machine's available parallelism.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A rayon pool of `workers` named threads with room for deep recursion.
fn worker_pool(workers: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .thread_name(|i| format!("{WORKER_PREFIX}{i}"))
        .stack_size(WORKER_STACK)
        .build()
        .expect("building the conformance worker pool")
}

/// Runs the given case folders on a pool of `workers` threads, handing each result to `emit`
/// in the order of `dirs` as soon as it and all before it are known; returns every result,
/// sorted by case name. When `emit` fails, no further case starts and the error is returned.
pub fn run_cases_with<E>(
    dirs: &[PathBuf],
    workers: usize,
    backend: Backend,
    mut emit: impl FnMut(&CaseResult) -> Result<(), E>,
) -> Result<Vec<CaseResult>, E> {
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, CaseResult)>();
    let mut results = Vec::with_capacity(dirs.len());
    let mut failed = None;
    worker_pool(workers).in_place_scope(|s| {
        let stop = &stop;
        s.spawn(move |_| {
            // One case per job, so that a slow case does not hold up a batch of others.
            dirs.par_iter()
                .enumerate()
                .with_max_len(1)
                .for_each_with(tx, |tx, (i, d)| {
                    if !stop.load(Ordering::Relaxed) {
                        tx.send((i, run_one(d, backend))).ok();
                    }
                });
        });
        let mut pending: Vec<Option<CaseResult>> = (0..dirs.len()).map(|_| None).collect();
        let mut done = 0;
        for (i, r) in rx {
            if failed.is_some() {
                continue;
            }
            pending[i] = Some(r);
            while let Some(r) = pending.get_mut(done).and_then(Option::take) {
                if let Err(e) = emit(&r) {
                    stop.store(true, Ordering::Relaxed);
                    failed = Some(e);
                    break;
                }
                results.push(r);
                done += 1;
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    results.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(results)
}

/// Runs the given case folders on `workers` threads; the results are sorted by case name.
pub fn run_cases(dirs: &[PathBuf], workers: usize, backend: Backend) -> Vec<CaseResult> {
    match run_cases_with(dirs, workers, backend, |_| {
        Ok::<(), std::convert::Infallible>(())
    }) {
        Ok(results) => results,
        Err(never) => match never {},
    }
}

thread_local! {
    /// Where the last panic on this thread happened, recorded by [`QuietPanics`]' hook.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// While alive, panics on the conformance worker threads print nothing and their location is
/// remembered, so that a case that panics is reported on its one `FAIL` line (with the
/// location) instead of as a panic note among the report lines. Panics on other threads go to
/// the previous hook. Dropping it restores the previous hook.
pub struct QuietPanics {
    previous: Arc<PanicHook>,
}

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

impl std::fmt::Debug for QuietPanics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuietPanics")
    }
}

impl QuietPanics {
    /// Installs the quiet hook.
    pub fn install() -> QuietPanics {
        let previous: Arc<PanicHook> = Arc::new(std::panic::take_hook());
        let prev = Arc::clone(&previous);
        std::panic::set_hook(Box::new(move |info| {
            let worker = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(WORKER_PREFIX));
            if worker {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                prev(info);
            }
        }));
        QuietPanics { previous }
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        drop(std::panic::take_hook());
        let prev = Arc::clone(&self.previous);
        std::panic::set_hook(Box::new(move |info| prev(info)));
    }
}

/// Where the last panic on this worker thread happened (`file:line`), taking it; `None` when
/// none happened since the last call or no [`QuietPanics`] was installed.
fn take_panic_location() -> Option<String> {
    PANIC_AT.with(|p| p.borrow_mut().take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_on_a_worker_is_quiet_and_located() {
        let quiet = QuietPanics::install();
        let at = worker_pool(1).install(|| {
            let caught = catch_unwind(|| panic!("boom"));
            assert!(caught.is_err());
            take_panic_location()
        });
        drop(quiet);
        let at = at.expect("the location was recorded");
        assert!(at.starts_with("src/conformance/run.rs:"), "{at}");
    }

    /// Folders that do not exist: each case fails at once (no model), named by its folder.
    fn missing_cases(n: usize) -> Vec<PathBuf> {
        let root = std::env::temp_dir().join(format!("kiln-missing-{}", std::process::id()));
        (0..n).map(|i| root.join(format!("test_{i:04}"))).collect()
    }

    #[test]
    fn results_come_in_case_order_on_any_number_of_workers() {
        let dirs = missing_cases(40);
        for workers in [1, 3, 64] {
            let mut seen = vec![];
            let results = run_cases_with(&dirs, workers, Backend::Reference, |r| {
                seen.push(r.name.clone());
                Ok::<(), ()>(())
            })
            .unwrap();
            let names: Vec<String> = dirs.iter().map(|d| super::super::case_name(d)).collect();
            assert_eq!(seen, names);
            assert!(results
                .iter()
                .all(|r| matches!(r.outcome, Outcome::Fail(_))));
        }
        assert!(run_cases(&[], 4, Backend::Reference).is_empty());
    }

    #[test]
    fn a_failing_emit_stops_the_run() {
        let dirs = missing_cases(200);
        let mut seen = 0;
        let r = run_cases_with(&dirs, 2, Backend::Reference, |_| {
            seen += 1;
            if seen == 11 {
                Err("closed")
            } else {
                Ok(())
            }
        });
        assert_eq!(r.unwrap_err(), "closed");
        assert_eq!(seen, 11);
    }
}
