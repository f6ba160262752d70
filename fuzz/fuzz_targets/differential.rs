//! Fuzz target `differential`: random small graphs (`kiln_fuzz::graphs`) run by the CPU backend
//! — optimized, lowered, code-generated, assembled, loaded and run, as `kiln run --backend cpu`
//! does (`kiln::backend::run_graph_cpu`) — must match the reference interpreter
//! (`kiln_compiler::interp::run`) within `RTOL`/`ATOL`. A mismatch, an error on either side
//! or a crash is a failure.

#![no_main]

use libfuzzer_sys::fuzz_target;

const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-4;

fuzz_target!(|data: &[u8]| {
    let Some(case) = kiln_fuzz::graphs::build(data) else {
        return;
    };
    let g = &case.graph;
    let text = || kiln_compiler::text::print(g).unwrap_or_else(|e| format!("(unprintable: {e})"));
    if let Err(e) = kiln_compiler::verify(g) {
        panic!("the generated graph does not verify: {e}\n{}", text());
    }
    let want = kiln_compiler::interp::run(g, &case.feeds)
        .unwrap_or_else(|e| panic!("interpreter: {e}\n{}", text()));
    let got = kiln::backend::run_graph_cpu(g, &case.feeds)
        .unwrap_or_else(|e| panic!("cpu backend: {e}\n{}", text()));
    if let Err(e) = kiln_fuzz::compare_outputs(&want, &got, RTOL, ATOL) {
        panic!("cpu backend ≠ interpreter: {e}\n{}", text());
    }
});
