//! ONNX node conformance cases that feed as graph inputs what real exports hold as constants
//! (reduce axes, dropout ratios, shapes and bounds, TopK's k): each case is rewritten with those
//! inputs pinned as initializers and run by the conformance runner on the reference
//! interpreter.

use crate::common;

use kiln::conformance::{case_dirs, case_name, run_case, Outcome};
use kiln_frontends::onnx::proto::{ModelProto, TensorProto};
use prost::Message;
use std::path::{Path, PathBuf};

/// Runs a conformance case (its first data set) with the inputs listed in `pin` turned into
/// initializers.
fn pinned_case(case: &Path, pin: &[usize]) -> Outcome {
    let mut m = ModelProto::decode(&*std::fs::read(case.join("model.onnx")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (
        case.join("test_data_set_0"),
        dir.path().join("test_data_set_0"),
    );
    std::fs::create_dir(&dst).unwrap();
    let g = m.graph.as_mut().unwrap();
    let mut kept = Vec::new();
    for (i, vi) in g.input.iter().enumerate() {
        let bytes = std::fs::read(src.join(format!("input_{i}.pb"))).unwrap();
        if pin.contains(&i) {
            let t = TensorProto::decode(&*bytes).unwrap();
            g.initializer.push(TensorProto {
                name: vi.name.clone(),
                ..t
            });
        } else {
            std::fs::write(dst.join(format!("input_{}.pb", kept.len())), bytes).unwrap();
            kept.push(vi.clone());
        }
    }
    g.input = kept;
    for i in 0.. {
        let Ok(bytes) = std::fs::read(src.join(format!("output_{i}.pb"))) else {
            break;
        };
        std::fs::write(dst.join(format!("output_{i}.pb")), bytes).unwrap();
    }
    std::fs::write(dir.path().join("model.onnx"), m.encode_to_vec()).unwrap();
    run_case(dir.path())
}

/// Every case folder whose name contains `filter`, or `None` without the shared data.
fn cases(filter: Option<&str>) -> Option<Vec<PathBuf>> {
    Some(case_dirs(&common::node_tests_dir()?, filter).unwrap())
}

/// Runs the cases the plan pins (`plan` gives the inputs to pin for a case name, `None` to
/// leave it out); returns the number that passed and the failures. A skip whose reason
/// contains `allowed_skip` counts as neither.
fn run_plan(
    cases: &[PathBuf],
    plan: impl Fn(&str) -> Option<Vec<usize>>,
    allowed_skip: Option<&str>,
) -> (usize, Vec<String>) {
    let (mut passed, mut failures) = (0, Vec::new());
    for case in cases {
        let name = case_name(case);
        let Some(pin) = plan(&name) else { continue };
        match pinned_case(case, &pin) {
            Outcome::Pass => passed += 1,
            Outcome::Skip(m) if allowed_skip.is_some_and(|s| m.contains(s)) => {}
            other => failures.push(format!("{name}: {other:?}")),
        }
    }
    (passed, failures)
}

#[test]
fn reduce_conformance_cases_with_pinned_axes_pass() {
    let Some(cases) = cases(None) else { return };
    let plan = |n: &str| match n {
        n if n.starts_with("test_reduce_") => Some(vec![1]),
        n if n.starts_with("test_training_dropout_zero_ratio") => Some(vec![1, 2]),
        _ => None,
    };
    let (passed, failures) = run_plan(&cases, plan, Some("unsupported data type"));
    let failed = failures.join("\n");
    assert!(failures.is_empty(), "{passed} passed; failures:\n{failed}");
    assert!(passed >= 100, "only {passed} pinned cases ran");
}

/// Case-name prefixes and the inputs to pin (`1234`: every input after the data; none for
/// Trilu's k, which may come from tensor data).
const SHAPE_PLAN: &str = "test_reshape_:1234 test_squeeze:1234 test_unsqueeze_:1234
    test_expand_:1234 test_split_variable_parts:1234 test_split_zero_size:1234 test_tile:1234
    test_tril:1234 test_triu: test_slice:1234 test_constant_pad:1234 test_edge_pad:1234
    test_reflect_pad:1234 test_wrap_pad:1234 test_onehot_:1 test_compress_:1
    test_constantofshape_:0 test_nonzero_:0 test_range_:012";

#[test]
fn conformance_cases_with_pinned_shape_inputs_pass() {
    let Some(cases) = cases(None) else { return };
    let plan: Vec<(&str, Vec<usize>)> = SHAPE_PLAN
        .split_whitespace()
        .map(|w| w.split_once(':').unwrap())
        .map(|(p, pins)| (p, pins.chars().map(|c| c as usize - '0' as usize).collect()))
        .collect();
    let pins = |name: &str| {
        plan.iter()
            .find(|(p, _)| name.starts_with(p) && !name.ends_with("_expanded"))
            .map(|(_, pin)| pin.clone())
    };
    let (passed, failures) = run_plan(&cases, pins, None);
    let failed = failures.join("\n");
    assert!(failures.is_empty(), "{passed} passed; failures:\n{failed}");
    assert!(passed >= 80, "only {passed} pinned cases ran");
}

/// The suite feeds TopK's k as a graph input; pinned, every case but the u64 ones passes (Kiln
/// has no u64 dtype, which the importer says).
#[test]
fn topk_conformance_cases_pass_with_k_pinned() {
    let Some(cases) = cases(Some("test_top_k")) else {
        return;
    };
    let (passed, failures) = run_plan(&cases, |_| Some(vec![1]), Some("UINT64"));
    let failed = failures.join("\n");
    assert!(failures.is_empty(), "{passed} passed; failures:\n{failed}");
    assert!(passed >= 6, "only {passed} TopK cases ran");
}
