//! `Plan::validate` refuses hand-corrupted plans with a message naming the step or value: a
//! value id out of range, an output placed in its input's slot, weight bytes past the weights
//! section (a plain weight and a packed GEMM operand), a generated step calling a symbol the
//! code section lacks (the plan is the lowering filetest `plan_mixed_kernels.kir`'s), or a
//! kernel compiled for other operands (also when a whole artifact loads).

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
    let i = step_where(&p, |k| {
        matches!(k, Kernel::Reference(_) | Kernel::Native(_))
    });
    p.steps[i].inputs[0] = ValueId::from_index(p.values.len() + 3);
    refuse(&p, &format!("step {i} ("), "out of range");
    let mut p = plan.clone();
    p.outputs[0].value = ValueId(9999);
    refuse(&p, "output 0 `y`", "out of range");

    // An output placed in its input's slot (a reference or native step is never in place).
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

/// Softmax and LayerNorm row kernels around an elementwise product: three generated kernels
/// compiled for different operands (`[Full]`, `[Full, Full]`, `[Full, Row]`).
const THREE_KERNELS: &str = r#"kir 1
graph {
  input %x: f32[batch, 8]
  input %y: f32[batch, 8]
  weight @0 "gamma": f32[8] = [1.0, 0.5, 1.5, 1.0, 0.75, 1.25, 1.0, 0.9]
  %0 = softmax(%x) {axis = -1} : f32[batch, 8]
  %1 = mul(%0, %y) : f32[batch, 8]
  %2 = layer_norm(%1, @0) {axis = -1, eps = 1e-5} : f32[batch, 8]
  output "out" = %2
}
"#;

/// The generated steps of `plan`: (step index, symbol).
fn generated_steps(plan: &Plan) -> Vec<(usize, String)> {
    plan.steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.kernel {
            Kernel::Generated(g) => Some((i, g.symbol.clone())),
            _ => None,
        })
        .collect()
}

/// Found by the `artifact` fuzz target: a step naming another generated kernel of the code
/// section (or reading its operands another way) made that kernel read argument pointers and
/// elements it was not given (a segmentation fault in generated code). Each kernel's symbol
/// states the operands it was compiled for, and validation refuses a step that differs.
#[test]
fn validate_refuses_a_generated_step_calling_a_kernel_compiled_for_other_operands() {
    let g = kiln_compiler::text::parse(THREE_KERNELS).unwrap();
    let l = lower(&g).unwrap();
    let names: Vec<String> = l.kernels.iter().map(|k| k.name().to_string()).collect();
    let wlen = l.weights.len() as u64;
    validate(&l.plan, wlen, &names).unwrap();
    let gen = generated_steps(&l.plan);
    assert_eq!(gen.len(), 3, "{gen:?}");
    for (i, sym) in &gen {
        assert!(
            names.contains(sym),
            "step {i} calls `{sym}`, not one of {names:?}"
        );
    }
    for (i, _) in &gen {
        for (_, other) in &gen {
            let mut p = l.plan.clone();
            let Kernel::Generated(gs) = &mut p.steps[*i].kernel else {
                unreachable!()
            };
            if &gs.symbol == other {
                continue;
            }
            gs.symbol = other.clone();
            let e = validate(&p, wlen, &names).expect_err(other).to_string();
            assert!(
                e.contains(&format!("step {i} (")) && e.contains("not compiled for"),
                "{e}"
            );
        }
    }
    // The layer norm's gamma read as a scalar (one element) by a kernel that reads a row.
    let (i, _) = gen.last().unwrap().clone();
    let mut p = l.plan.clone();
    let Kernel::Generated(gs) = &mut p.steps[i].kernel else {
        unreachable!()
    };
    gs.access[1] = kiln_runtime::plan::Access::Scalar;
    let e = validate(&p, wlen, &names).unwrap_err().to_string();
    assert!(e.contains("not compiled for"), "{e}");
}

/// The same through a whole artifact: a plan swapped into an artifact beside the code compiled
/// for the original plan is refused when the model loads, before anything runs.
#[test]
fn loading_refuses_a_plan_that_calls_a_kernel_compiled_for_other_operands() {
    use kiln_compiler::pipeline::{assemble, codegen};
    use kiln_compiler::Target;
    use kiln_runtime::{LoadOptions, Model};

    let g = kiln_compiler::text::parse(THREE_KERNELS).unwrap();
    let target = Target::host();
    let mut l = lower(&g).unwrap();
    let code = codegen(&l, &target).unwrap();
    let gen = generated_steps(&l.plan);
    let (first, _) = gen[0].clone();
    let (_, last_symbol) = gen.last().unwrap().clone();
    let Kernel::Generated(gs) = &mut l.plan.steps[first].kernel else {
        unreachable!()
    };
    gs.symbol = last_symbol;
    let bytes = assemble(l, code, &target).unwrap().to_bytes();
    let e = Model::from_bytes(
        bytes,
        &LoadOptions {
            threads: Some(1),
            ..Default::default()
        },
    )
    .expect_err("a plan inconsistent with its code")
    .to_string();
    assert!(e.contains("not compiled for"), "{e}");
}
