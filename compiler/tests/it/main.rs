//! The integration tests of `kiln-compiler`, linked as one binary: each module was a separate test
//! binary before, and one link instead of dozens is most of the build time of `cargo test`.

mod codegen;
mod common;
mod egraph_fusion;
mod egraph_random;
mod fusion_cases;
mod graph_verify;
mod interp_conv;
mod interp_elementwise;
mod interp_fused;
mod interp_movement;
mod interp_reduce;
mod interp_run;
mod interp_scatter_topk;
mod lower_cases;
mod lower_random;
mod passes;
mod plan_validate;
mod text_errors;
mod text_roundtrip;
mod text_snapshots;
