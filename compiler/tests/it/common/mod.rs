//! Helpers shared by the compiler's integration tests: a deterministic random source, a graph
//! builder with random weights, random feeds for a graph's inputs and the comparison of two runs'
//! outputs within a tolerance.

mod feeds;
mod graph;
mod rng;

pub use feeds::{compare_outputs, random_inputs};
pub use graph::GraphBuilder;
pub use rng::Rng;
