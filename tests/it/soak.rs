//! Memory soak: running one session many times, and creating and dropping sessions and models
//! (from bytes and from a memory-mapped file), must not grow the process's resident memory.
//!
//! The test re-runs itself alone in a child process (the other tests of this binary allocate in
//! parallel threads and would move the RSS), warms up, reads `VmRSS` from `/proc/self/status`,
//! runs the same rounds again and fails when the RSS grew by more than [`MARGIN_KIB`]. In CI it
//! takes a few seconds; `KILN_SOAK_SECS=600 cargo test --test it soak -- --nocapture` soaks for
//! ten minutes instead and prints the RSS every tenth of the time (`tools/soak.sh` soaks the
//! release CLI). Under AddressSanitizer the RSS is not a measure (its allocator keeps freed
//! memory in quarantine); LeakSanitizer checks leaks there instead.

use crate::common;

use kiln::backend::compile_model;
use kiln_runtime::test_util::Rng;
use kiln_runtime::{LoadOptions, Model, Session, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Set in the child process that does the work.
const CHILD: &str = "KILN_SOAK_CHILD";
/// Growth of the RSS after warm-up that fails the test, in KiB.
const MARGIN_KIB: u64 = 2048;
/// Warm-up rounds (every allocation pattern of a round has been seen by the allocator after it).
const WARMUP_ROUNDS: usize = 20;
/// Measured rounds when `KILN_SOAK_SECS` is not set.
const ROUNDS: usize = 100;

/// A number of `/proc/self/status` (`VmRSS` in KiB, `Threads`), or `None` where there is none.
fn status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The process's resident set size in KiB.
fn rss_kib() -> Option<u64> {
    status("VmRSS")
}

/// `tokens` of shape `[b, s]` with ids of the example's 16-row table.
fn tokens(rng: &mut Rng, b: usize, s: usize) -> BTreeMap<String, Tensor> {
    let v = (0..b * s).map(|_| rng.below(16) as i64).collect();
    let t = Tensor::from_i64(vec![b, s], v).expect("a valid i64 tensor");
    BTreeMap::from([("tokens".to_string(), t)])
}

/// The inputs of the example, a long-lived session of it, its artifact bytes and file.
struct Setup<'m> {
    model: &'m Model,
    session: Session<'m>,
    bytes: Vec<u8>,
    art: PathBuf,
}

/// One round: 50 runs of the long-lived session at mixed shapes (one in ten large), a new
/// session for 3 runs, and a model loaded from the bytes and one from the file, each run once
/// and dropped.
fn round(s: &mut Setup, rng: &mut Rng) {
    let one = LoadOptions {
        threads: Some(1),
        ..Default::default()
    };
    for _ in 0..50 {
        let (b, len) = if rng.one_in(10) {
            (8, 256)
        } else {
            (1 + rng.below(6), 1 + rng.below(24))
        };
        s.session
            .run(&tokens(rng, b, len))
            .expect("the session runs");
    }
    let mut fresh = s.model.session();
    for _ in 0..3 {
        fresh.run(&tokens(rng, 2, 9)).expect("a new session runs");
    }
    drop(fresh);
    let m = Model::from_bytes(s.bytes.clone(), &one).expect("the model loads from bytes");
    m.session().run(&tokens(rng, 3, 4)).expect("it runs");
    drop(m);
    let m = Model::load_with(&s.art, &one).expect("the model loads from its file");
    m.session().run(&tokens(rng, 3, 4)).expect("it runs");
}

/// The child's work: warm up, then the measured rounds (or `KILN_SOAK_SECS` seconds of them).
fn soak() {
    let Some(_) = rss_kib() else {
        println!("skipped: no /proc/self/status on this system");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let example = common::example("tiny_classifier.kir");
    let bytes = compile_model(&example, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let art = tmp.path().join("tiny.kiln");
    std::fs::write(&art, &bytes).unwrap();
    let model = Model::from_bytes(bytes.clone(), &LoadOptions::default()).unwrap();
    let mut setup = Setup {
        model: &model,
        session: model.session(),
        bytes,
        art,
    };
    let mut rng = Rng(0x50a4);
    for _ in 0..WARMUP_ROUNDS {
        round(&mut setup, &mut rng);
    }
    let secs: Option<u64> = std::env::var("KILN_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    let start = rss_kib().unwrap();
    let threads_start = status("Threads").unwrap_or(0);
    let t0 = Instant::now();
    let (mut rounds, mut max, mut next_report) = (0usize, start, 0.1);
    loop {
        round(&mut setup, &mut rng);
        rounds += 1;
        let rss = rss_kib().unwrap();
        max = max.max(rss);
        let done = match secs {
            Some(s) => {
                let frac = t0.elapsed().as_secs_f64() / s as f64;
                if frac >= next_report {
                    println!(
                        "soak: {rounds} rounds, {:.0}s, RSS {rss} KiB, threads {:?}",
                        t0.elapsed().as_secs_f64(),
                        status("Threads")
                    );
                    next_report += 0.1;
                }
                t0.elapsed() >= Duration::from_secs(s)
            }
            None => rounds >= ROUNDS,
        };
        if done {
            break;
        }
    }
    let end = rss_kib().unwrap();
    let threads_end = status("Threads").unwrap_or(0);
    println!(
        "soak: {rounds} rounds (each 50 runs of one session, a new session, two models loaded \
         and dropped) in {:.1}s after {WARMUP_ROUNDS} warm-up rounds; RSS after warm-up \
         {start} KiB, at the end {end} KiB, max {max} KiB; threads {threads_start} then \
         {threads_end}",
        t0.elapsed().as_secs_f64()
    );
    // A dropped model's pool thread exits on its own, shortly after the drop.
    assert!(
        threads_end <= threads_start + 1,
        "threads grew from {threads_start} to {threads_end}: dropped models leave threads behind"
    );
    assert!(
        end <= start + MARGIN_KIB,
        "the RSS grew from {start} KiB after warm-up to {end} KiB after {rounds} rounds \
         (more than {MARGIN_KIB} KiB): something leaks"
    );
}

#[test]
fn runs_sessions_and_models_keep_rss_flat() {
    if std::env::var_os(CHILD).is_some() {
        soak();
        return;
    }
    // This test alone, in a fresh process whose memory no other test touches.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "soak::runs_sessions_and_models_keep_rss_flat",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        // glibc gives threads their own heaps ("arenas"), up to 8 per core: each model's new
        // pool thread may start one more, which grows the RSS until the cap, a figure that
        // depends on the machine's core count. Two arenas make the figure the same everywhere.
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .expect("the test binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "the soak child failed: {text}");
    assert!(
        text.contains("soak: ") || text.contains("skipped"),
        "the child ran no soak: {text}"
    );
}
