//! Running work on a fixed set of worker threads: a shared work queue (so one slow item does
//! not hold up the rest) whose results come back in input order as soon as they are known, and
//! a panic hook that keeps panics on those workers quiet while remembering where they happened.
//! Used by `kiln conformance` and the conformance tests.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// Stack size of each worker: the interpreter and importer may recurse on deep graphs.
const WORKER_STACK: usize = 64 << 20;

/// The name prefix of the worker threads.
const WORKER_PREFIX: &str = "kiln-worker-";

/// The number of worker threads to use: the machine's available parallelism.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f` on every item on up to `workers` threads, taking items from a shared queue so a
/// slow item does not hold up the rest, and hands each result to `emit` on the calling thread
/// in the order of `items` as soon as it and all before it are done. When `emit` fails, the
/// workers stop taking items and the error is returned.
pub fn parallel_ordered<T: Sync, R: Send, E>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
    mut emit: impl FnMut(usize, R) -> Result<(), E>,
) -> Result<(), E> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let workers = workers.clamp(1, items.len().max(1));
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    std::thread::scope(|s| {
        for w in 0..workers {
            let (next, stop, f, tx) = (&next, &stop, &f, tx.clone());
            std::thread::Builder::new()
                .name(format!("{WORKER_PREFIX}{w}"))
                .stack_size(WORKER_STACK)
                .spawn_scoped(s, move || {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        if tx.send((i, f(item))).is_err() {
                            break;
                        }
                    }
                })
                .expect("spawning a worker thread");
        }
        drop(tx);
        let mut pending: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
        let mut done = 0;
        let mut failed = None;
        for (i, r) in rx {
            if failed.is_some() {
                continue;
            }
            pending[i] = Some(r);
            while let Some(r) = pending.get_mut(done).and_then(Option::take) {
                if let Err(e) = emit(done, r) {
                    stop.store(true, Ordering::Relaxed);
                    failed = Some(e);
                    break;
                }
                done += 1;
            }
        }
        failed.map_or(Ok(()), Err)
    })
}

/// [`parallel_ordered`] collecting the results in the order of `items`.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    let emitted: Result<(), std::convert::Infallible> =
        parallel_ordered(items, workers, f, |_, r| {
            out.push(r);
            Ok(())
        });
    match emitted {
        Ok(()) => out,
        Err(never) => match never {},
    }
}

thread_local! {
    /// Where the last panic on this thread happened, recorded by [`QuietPanics`]' hook.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// While alive, panics on the worker threads of [`parallel_ordered`] print nothing and their
/// location is remembered, so that a case that panics is reported on its one `FAIL` line (with
/// the location) instead of as a panic note among the report lines. Panics on other threads go
/// to the previous hook. Dropping it restores the previous hook.
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
pub fn take_panic_location() -> Option<String> {
    PANIC_AT.with(|p| p.borrow_mut().take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_the_order_of_items() {
        let items: Vec<u64> = (0..100).collect();
        for workers in [1, 3, 8, 200] {
            let out = parallel_map(&items, workers, |&x| x * x);
            assert_eq!(out, items.iter().map(|x| x * x).collect::<Vec<_>>());
        }
        assert!(parallel_map(&[] as &[u8], 4, |&x| x).is_empty());
    }

    #[test]
    fn quiet_panics_remember_where_a_worker_panicked() {
        let quiet = QuietPanics::install();
        let at = parallel_map(&[1], 1, |_| {
            let caught = std::panic::catch_unwind(|| panic!("boom"));
            assert!(caught.is_err());
            take_panic_location()
        });
        drop(quiet);
        let at = at[0].clone().expect("the location was recorded");
        assert!(at.starts_with("src/parallel.rs:"), "{at}");
    }

    #[test]
    fn a_failing_emit_stops_the_workers() {
        let items: Vec<u32> = (0..1000).collect();
        let mut seen = vec![];
        let r = parallel_ordered(
            &items,
            4,
            |&x| x,
            |i, x| {
                seen.push(x);
                if i == 10 {
                    Err("closed")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r, Err("closed"));
        assert_eq!(seen, (0..=10).collect::<Vec<_>>());
    }
}
