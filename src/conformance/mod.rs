//! The ONNX backend node-test conformance tool (`kiln conformance` and the pass-list test): one
//! module, split by concept.
//!
//! - [`cases`]: finding the case folders (`test_*/model.onnx` + `test_data_set_*`), loading a
//!   case's model and data sets, and comparing an output with the expected tensor.
//! - [`run`]: running one case on a backend (a panic is a failure) and many cases on a rayon
//!   pool of worker threads, with panics kept quiet and located on the case's `FAIL` line.
//! - [`report`]: outcomes, counts, the `FAIL`/`SKIP` report lines and the committed pass list.

pub mod cases;
pub mod report;
pub mod run;

pub use cases::{case_dirs, case_name, compare, resolve_cases_dir, rtol_for, ATOL, RTOL};
pub use report::{
    parse_pass_list, pass_list_text, report_line, CaseResult, Counts, Outcome, PASS_LIST_HEADER,
};
pub use run::{
    default_workers, run_case, run_case_with, run_cases, run_cases_with, run_one, Backend,
    Executor, QuietPanics,
};
