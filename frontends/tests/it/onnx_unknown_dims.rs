//! Unknown dims of real exports: dims named `?` (or unnamed) are distinct symbols, so an input
//! of 48×192 is not refused as inconsistent, and a `Slice` whose end is far past the axis
//! (10^9) is clamped to the axis at run time, on the reference interpreter and the CPU backend.

use crate::onnx_ops_model::{ramp, Model};
use kiln_compiler::ir::Dim;
use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_runtime::{LoadOptions, Model as Runnable, Tensor};
use std::collections::BTreeMap;

/// `y = Slice(x, starts=[1], ends=[10^9], axes=[1])` on `x: f32[?, ?]`.
fn far_slice() -> Model {
    Model::new(17)
        .input("x", DataType::Float, &["?", "?"])
        .ints("s", &[1], &[1])
        .ints("e", &[1], &[1_000_000_000])
        .ints("a", &[1], &[1])
        .node("Slice", &["x", "s", "e", "a"], &["y"], vec![])
}

#[test]
fn dims_named_question_mark_are_distinct_symbols() {
    let g = far_slice().import(&["y"]).unwrap();
    let ty = &g.value(g.inputs()[0]).ty;
    let dims = ty.shape.dims();
    assert!(
        dims.iter().all(|d| d.as_known().is_none()) && dims[0] != dims[1],
        "{ty}"
    );
}

#[test]
fn a_slice_end_far_past_the_axis_is_clamped_on_both_backends() {
    let g = far_slice().import(&["y"]).unwrap();
    let y = &g.value(g.outputs()[0].1).ty;
    assert!(
        !y.shape.dims().contains(&Dim::known(999_999_999)),
        "the end was taken as a length: {y}"
    );
    let x = ramp(&[48, 192]);
    let inputs: BTreeMap<String, Tensor> = [("x".to_string(), x.clone())].into();
    let want: Vec<f64> = (0..48)
        .flat_map(|r| (1..192).map(move |c| (r * 192 + c) as f64 * 0.25 - 1.0))
        .collect();
    let reference = kiln_compiler::interp::run(&g, &inputs).unwrap();
    assert_eq!(reference[0].1.shape(), &[48, 191]);
    assert_eq!(reference[0].1.to_f64_vec(), want);
    let target = kiln_compiler::Target::host();
    let compiled = kiln_compiler::pipeline::compile(&g, &target, &Default::default()).unwrap();
    let model = Runnable::from_bytes(compiled.to_bytes(), &LoadOptions::default()).unwrap();
    let cpu = model.session().run(&inputs).unwrap();
    assert_eq!(cpu[0].1.shape(), &[48, 191]);
    assert_eq!(cpu[0].1.to_f64_vec(), want);
}
