//! Progress on stderr for the slow steps of a command (loading a model, optimizing, generating
//! code, writing the artifact): a step still running after a second is announced on its own
//! line. Only when stderr is a terminal (or `KILN_PROGRESS=1`), so scripts and pipes stay quiet;
//! `KILN_PROGRESS=all` announces every step as it starts.

use kiln_compiler::pipeline::Progress;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a step runs before it is announced.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// The step running now: its name, when it started, whether it was announced.
type Current = Option<(&'static str, Instant, bool)>;

/// A progress reporter; dropping it ends its watcher thread.
pub struct Reporter {
    current: Arc<Mutex<Current>>,
    every_step: bool,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Reporter {
    /// A reporter when stderr is a terminal or `KILN_PROGRESS=1`; `None` otherwise.
    pub fn for_stderr() -> Option<Reporter> {
        let setting = std::env::var("KILN_PROGRESS").unwrap_or_default();
        let every_step = setting == "all";
        if !(every_step || setting == "1" || std::io::stderr().is_terminal()) {
            return None;
        }
        let current: Arc<Mutex<Current>> = Arc::new(Mutex::new(None));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, s) = (current.clone(), stop.clone());
        std::thread::Builder::new()
            .name("kiln-progress".into())
            .spawn(move || {
                while !s.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let mut cur = c.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some((name, started, announced)) = cur.as_mut() {
                        if !*announced && started.elapsed() >= QUIET_FOR {
                            *announced = true;
                            let _ = writeln!(std::io::stderr(), "kiln: {name}…");
                        }
                    }
                }
            })
            .ok()?;
        Some(Reporter {
            current,
            every_step,
            stop,
        })
    }

    /// Marks the start of step `name` (ending the previous one).
    pub fn step(&self, name: &'static str) {
        start(&self.current, self.every_step, name);
    }

    /// The pipeline's stage callback, reporting through this reporter.
    pub fn pipeline(&self) -> Progress {
        let (current, every_step) = (self.current.clone(), self.every_step);
        Progress::new(move |name| start(&current, every_step, name))
    }
}

/// Step `name` starts now; announced at once when every step is.
fn start(current: &Mutex<Current>, every_step: bool, name: &'static str) {
    if every_step {
        let _ = writeln!(std::io::stderr(), "kiln: {name}…");
    }
    *current.lock().unwrap_or_else(|p| p.into_inner()) = Some((name, Instant::now(), every_step));
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
