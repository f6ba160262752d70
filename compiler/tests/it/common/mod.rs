//! Helpers shared by the compiler's integration tests: a deterministic random source, a graph
//! builder with random weights, random feeds for a graph's inputs, the comparison of two runs'
//! outputs within a tolerance, and the interpreter tests' shorthands.

mod feeds;
mod graph;
mod interp;

pub use feeds::{compare_outputs, random_inputs};
pub use graph::GraphBuilder;
pub use interp::{eval, t, ti};
pub use kiln_runtime::test_util::Rng;

/// The stems of the `.kir` files in `dir`, sorted: the cases a filetest folder holds.
pub fn kir_case_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "kir"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
