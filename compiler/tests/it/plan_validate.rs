//! `Plan::validate` refuses hand-corrupted plans with a message naming the step or value: a
//! value id out of range, an output placed in its input's slot, weight bytes past the weights
//! section (a plain weight and a packed GEMM operand), a generated step calling a symbol the
//! code section lacks. The plan is the lowering filetest `plan_mixed_kernels.kir`'s.

use crate::lower_cases::case_dir;
use kiln_compiler::lower::lower;
use kiln_runtime::plan::{Kernel, Plan, PlanError, Storage, ValueId};

/// The plan to corrupt: a packed GEMM, a reference step, generated steps reading weights; its
/// weights section length and kernel symbols.
fn plan_to_corrupt() -> (Plan, u64, Vec<String>) {
    let path = case_dir().join("plan_mixed_kernels.kir");
    let src = std::fs::read_to_string(&path).unwrap();
    let g = kiln_compiler::text::parse(&src).unwrap();
    let l = lower(&g).unwrap();
    let names = l.kernels.iter().map(|k| k.name().to_string()).collect();
    (l.plan, l.weights.len() as u64, names)
}

fn validate(plan: &Plan, weights_len: u64, names: &[String]) -> Result<(), PlanError> {
    plan.validate(weights_len, &|s: &str| names.iter().any(|n| n == s))
}

/// The index of the first step whose kernel `pick` accepts.
fn step_where(plan: &Plan, pick: impl Fn(&Kernel) -> bool) -> usize {
    plan.steps
        .iter()
        .position(|s| pick(&s.kernel))
        .expect("such a step")
}

#[test]
fn validate_refuses_corrupted_plans() {
    let (plan, wlen, names) = plan_to_corrupt();
    validate(&plan, wlen, &names).unwrap();
    let refuse = |p: &Plan, at: &str, msg: &str| {
        let e = validate(p, wlen, &names).expect_err(at).to_string();
        assert!(
            e.contains(at) && e.contains(msg),
            "expected `{at}` … `{msg}`, got: {e}"
        );
    };

    // A value id out of range.
    let mut p = plan.clone();
    let i = step_where(&p, |k| matches!(k, Kernel::Reference(_)));
    p.steps[i].inputs[0] = ValueId::from_index(p.values.len() + 3);
    refuse(&p, &format!("step {i} ("), "out of range");
    let mut p = plan.clone();
    p.outputs[0].value = ValueId(9999);
    refuse(&p, "output 0 `y`", "out of range");

    // An output placed in its input's slot (a reference step is never in place).
    let mut p = plan.clone();
    let (o, v) = (p.steps[i].outputs[0], p.steps[i].inputs[0]);
    let s = p.slot_of(v).unwrap();
    p.values[o.index()].storage = Storage::Slot(s);
    refuse(
        &p,
        &format!("step {i} ("),
        &format!("output value {o} shares slot {s} with input value {v}"),
    );

    // Weight bytes past the section: a plain weight, then the packed GEMM operand.
    let mut p = plan.clone();
    let wv = p
        .values
        .iter()
        .position(|v| matches!(v.storage, Storage::Weight { .. }))
        .unwrap();
    let Storage::Weight { len, .. } = p.values[wv].storage else {
        unreachable!()
    };
    p.values[wv].storage = Storage::Weight {
        offset: wlen.next_multiple_of(64),
        len,
    };
    refuse(&p, &format!("value {wv}"), "past the weights section");
    let mut p = plan.clone();
    let gi = step_where(&p, |k| matches!(k, Kernel::Gemm(_)));
    if let Kernel::Gemm(gs) = &mut p.steps[gi].kernel {
        if let kiln_runtime::plan::GemmB::Packed { offset, .. } = &mut gs.b {
            *offset += wlen.next_multiple_of(64);
        }
    }
    refuse(&p, &format!("step {gi} ("), "packed weights");

    // A generated step calling a symbol the code section lacks.
    let mut p = plan.clone();
    let gi = step_where(&p, |k| matches!(k, Kernel::Generated(_)));
    if let Kernel::Generated(gs) = &mut p.steps[gi].kernel {
        gs.symbol = "kiln_missing".into();
    }
    refuse(&p, &format!("step {gi} ("), "calls `kiln_missing`");
}
