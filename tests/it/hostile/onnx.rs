//! Hostile ONNX models: constants that ask for absurd sizes (`ConstantOfShape`, `Range`, `Tile`,
//! `Pad`, `Expand`) compile and their runs are refused by the memory budget; a future opset and a
//! constant out-of-range `Gather` are refused at import.

use super::{bounded, refused, run, write_inputs, write_model};
use crate::common::{self, onnx};
use kiln_runtime::Tensor;
use std::path::PathBuf;

/// `y = op(x, constant inputs…)` for `x: f32[2]`, with int64 constants as initializers.
fn unary_with_constants(op: &str, consts: &[(&str, &[i64], &[i64])]) -> Vec<u8> {
    let mut ins = vec!["x"];
    ins.extend(consts.iter().map(|c| c.0));
    onnx::model(
        vec![onnx::node("n0", "", op, &ins, &["y"])],
        consts
            .iter()
            .map(|(n, dims, v)| onnx::tensor_i64(n, dims, v))
            .collect(),
        vec![onnx::value_f32("x", &["2"])],
        vec![onnx::value_f32("y", &[])],
        &[("", 17)],
    )
}

/// Compiles `model` to an artifact (which must succeed), then runs the artifact, the model on
/// the CPU backend and the model on the reference backend with input `x`; every run must be
/// refused, naming `what`. Returns the folder and the model's path for further checks.
fn compiles_then_run_is_refused(
    model: &[u8],
    x: Tensor,
    what: &str,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let m = write_model(dir.path(), "m.onnx", model);
    let art = dir.path().join("m.kiln");
    let o = bounded(&[&"compile", &m, &"-o", &art]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let inputs = write_inputs(dir.path(), &[("x", x)]);
    let out = dir.path().join("out.npz");
    for (model, backend) in [(&art, "cpu"), (&m, "cpu"), (&m, "reference")] {
        let o = run(model, &inputs, &out, &["--backend", backend]);
        let err = refused(&o);
        assert!(err.contains(what), "{backend}: {err}");
        assert!(!out.exists());
    }
    (dir, m)
}

/// `x = [1, 2]`, the input of the one-op models.
fn pair() -> Tensor {
    Tensor::from_f32(vec![2], vec![1., 2.]).unwrap()
}

/// Case 4: `ConstantOfShape` with the constant shape [65536, 65536] (16 GiB of f32) aborted the
/// compiler while folding. Constant folding has a byte limit: the op stays in the graph, and the
/// run is refused by the memory budget.
#[test]
fn a_huge_constant_of_shape_is_not_folded_and_its_run_is_refused() {
    let model = onnx::model(
        vec![
            onnx::node("fill", "", "ConstantOfShape", &["shape"], &["c"]),
            onnx::node("add", "", "Add", &["c", "x"], &["y"]),
        ],
        vec![onnx::tensor_i64("shape", &[2], &[65536, 65536])],
        vec![onnx::value_f32("x", &["1"])],
        vec![onnx::value_f32("y", &[])],
        &[("", 17)],
    );
    let x = Tensor::from_f32(vec![1], vec![1.]).unwrap();
    compiles_then_run_is_refused(&model, x, "memory");
}

/// Case 5: `Range(0, 1e18, 1)` compiled with a wrapped (negative) arena size, and `kiln run`
/// panicked with `capacity overflow`.
#[test]
fn a_huge_range_is_refused_by_the_memory_budget() {
    let model = onnx::model(
        vec![
            onnx::node("range", "", "Range", &["start", "limit", "delta"], &["r"]),
            onnx::node("cast", "", "Cast", &["r"], &["rf"]),
            onnx::node("add", "", "Add", &["rf", "x"], &["y"]),
        ]
        .into_iter()
        .map(|mut n| {
            if n.op_type == "Cast" {
                n.attribute
                    .push(kiln_frontends::onnx::proto::AttributeProto {
                        name: "to".into(),
                        r#type: kiln_frontends::onnx::proto::attribute_proto::AttributeType::Int
                            as i32,
                        i: 1,
                        ..Default::default()
                    });
            }
            n
        })
        .collect(),
        vec![
            onnx::tensor_i64("start", &[], &[0]),
            onnx::tensor_i64("limit", &[], &[1_000_000_000_000_000_000]),
            onnx::tensor_i64("delta", &[], &[1]),
        ],
        vec![onnx::value_f32("x", &["1"])],
        vec![onnx::value_f32("y", &[])],
        &[("", 17)],
    );
    let x = Tensor::from_f32(vec![1], vec![1.]).unwrap();
    let (_dir, m) = compiles_then_run_is_refused(&model, x, "memory");
    // The arena's size stays exact: no wrapped, negative term.
    let o = bounded(&[&"inspect", &m, &"--stage", &"kernels"]);
    let text = common::stdout_ok(&o);
    let arena = text.lines().find(|l| l.starts_with("arena: ")).unwrap();
    let size = arena
        .split("slots, ")
        .nth(1)
        .and_then(|r| r.split(" bytes").next());
    let size = size.unwrap_or_else(|| panic!("no size in {arena}"));
    assert!(!size.contains('-'), "a negative size term: {arena}");
    assert!(size.starts_with("wide_add("), "{arena}");
}

/// Case 6: `Tile` by 2^40, `Pad` by 2^40 and `Expand` to [100000, 100000] aborted on both
/// backends.
#[test]
fn huge_tile_pad_and_expand_are_refused_by_the_memory_budget() {
    let big = 1i64 << 40;
    compiles_then_run_is_refused(
        &unary_with_constants("Tile", &[("repeats", &[1], &[big])]),
        pair(),
        "memory",
    );
    compiles_then_run_is_refused(
        &unary_with_constants("Pad", &[("pads", &[2], &[0, big])]),
        pair(),
        "memory",
    );
    compiles_then_run_is_refused(
        &unary_with_constants("Expand", &[("shape", &[3], &[100_000, 100_000, 2])]),
        pair(),
        "memory",
    );
}

/// Case 10: an opset newer than any Kiln knows was accepted (and imported with the semantics of
/// an older one).
#[test]
fn an_unknown_future_opset_is_refused() {
    let model = onnx::model(
        vec![onnx::node("add0", "", "Add", &["x", "b"], &["y"])],
        vec![onnx::tensor_f32("b", &[2], &[10.0, 20.0])],
        vec![onnx::value_f32("x", &["n", "2"])],
        vec![onnx::value_f32("y", &["n", "2"])],
        &[("", 999)],
    );
    let dir = tempfile::tempdir().unwrap();
    let m = write_model(dir.path(), "m.onnx", &model);
    let o = bounded(&[&"compile", &m, &"-o", &dir.path().join("m.kiln")]);
    let err = refused(&o);
    assert!(err.contains("opset 999") && err.contains("m.onnx"), "{err}");
}

/// Case 10: a `Gather` whose constant indices are out of range for a known axis compiled into an
/// artifact that could only fail. The compiler refuses it, naming the node and the index.
#[test]
fn a_constant_out_of_range_gather_is_refused_at_compile_time() {
    let model = onnx::model(
        vec![onnx::node("pick", "", "Gather", &["x", "idx"], &["y"])],
        vec![onnx::tensor_i64("idx", &[2], &[0, 5])],
        vec![onnx::value_f32("x", &["3", "n"])],
        vec![onnx::value_f32("y", &[])],
        &[("", 17)],
    );
    let dir = tempfile::tempdir().unwrap();
    let m = write_model(dir.path(), "m.onnx", &model);
    let o = bounded(&[&"compile", &m, &"-o", &dir.path().join("m.kiln")]);
    let err = refused(&o);
    assert!(
        err.contains("pick") && err.contains('5') && err.contains("out of range"),
        "{err}"
    );
}
