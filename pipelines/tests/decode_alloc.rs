//! A decode step allocates nothing: with a counting global allocator, greedy decoding through
//! [`CausalLm::step_in_place`] of a compiled Llama-architecture decoder (key/value cache as
//! states, batch 1 and a left-padded batch of 3) makes no heap allocation on any thread in
//! every step after the first, while giving the logits of the copying [`CausalLm::step`]:
//! `CausalLm::new` sizes the session's arena and every pool thread's attention buffers for the
//! cache's capacity (`Session::reserve`), the inputs are refilled in place and the logits
//! read from the arena. Each case decodes three times (the last two counted). The loop runs on the
//! model's pool (`Model::pool().install`): a run submitted from outside the pool goes through
//! rayon's job injector, which allocates one block per 63 submissions (about 1.5 KB per 63
//! tokens) — rayon's, not Kiln's; the first pass below runs outside the pool and counts them.
//!
//! This file is its own test binary so that the global allocator counts only this test.

use kiln::kiln_compiler::pipeline::{self, Options};
use kiln::kiln_compiler::Target;
use kiln::kiln_frontends::hf;
use kiln_pipelines::generation::{argmax, CausalLm};
use kiln_runtime::{LoadOptions, Model};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The system allocator, counting allocations (and reallocations) while `COUNTING` is set.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator with the caller's arguments; the
// counters are atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f`.
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

fn decoder() -> Model {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/models/hf/llama-h48-llama3");
    let g = hf::load_decoder(&dir).expect("the cached decoder builds");
    let compiled = pipeline::compile(&g, &Target::host(), &Options::default()).expect("compiles");
    Model::from_bytes(compiled.to_bytes(), &LoadOptions::default()).expect("loads")
}

/// Greedy decoding of `prompts` for `steps` steps, twice; returns the allocations of every
/// step of the second pass after its first, and checks each step's logits against a copying
/// decoder's.
fn check(model: &Model, prompts: &[Vec<u32>], steps: usize) {
    decode(model, prompts, steps);
    let outside = decode(model, prompts, steps);
    // Outside the pool only rayon's injector allocates: a block per 63 submitted runs (each
    // step submits two, one per decoder; a block counts when the in-place decoder's run
    // happens to open it).
    assert!(
        outside[1..].iter().sum::<usize>() <= 1 + 2 * steps / 63,
        "allocations per decode step outside the pool (batch {}): {outside:?}",
        prompts.len()
    );
    let counts = model.pool().install(|| decode(model, prompts, steps));
    // The first step after the prompt changes the run's shapes (seq = 1); every later step
    // must allocate nothing.
    assert!(
        counts[1..].iter().all(|&n| n == 0),
        "allocations per decode step (batch {}): {counts:?}",
        prompts.len()
    );
}

fn decode(model: &Model, prompts: &[Vec<u32>], steps: usize) -> Vec<usize> {
    let capacity = prompts.iter().map(Vec::len).max().unwrap() + steps + 1;
    let mut lm = CausalLm::new(model, prompts.len(), capacity).unwrap();
    let mut copying = CausalLm::new(model, prompts.len(), capacity).unwrap();
    lm.prefill(prompts).unwrap();
    let mut want = copying.prefill(prompts).unwrap();
    let mut tokens = vec![0u32; prompts.len()];
    let mut counts = Vec::new();
    for step in 0..steps {
        for (r, t) in tokens.iter_mut().enumerate() {
            let row = lm.logits(r).unwrap();
            assert_eq!(row, want[r].as_slice(), "row {r} step {step}");
            *t = argmax(row).expect("a non-empty row") as u32;
        }
        counts.push(allocations(|| lm.step_in_place(&tokens).unwrap()));
        want = copying.step(&tokens).unwrap();
    }
    counts
}

#[test]
fn decode_steps_allocate_nothing() {
    let model = decoder();
    // 80 steps: past the length (about 57 keys here) from which attention runs on both threads.
    check(&model, &[vec![3, 17, 42, 7, 99]], 80);
    check(
        &model,
        &[vec![5], vec![17, 42, 7, 99, 3, 8, 1], vec![9, 9]],
        80,
    );
}
