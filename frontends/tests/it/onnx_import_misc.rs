//! Importers decomposed into IR ops: GridSample (bilinear with zero and border padding, nearest),
//! the window generators as constants, CausalConvWithState, and their refusals.

// `Error` is large by design (see the crate root).
#![allow(clippy::result_large_err)]

use crate::onnx_ops_model;

use kiln_frontends::onnx::proto::tensor_proto::DataType;
use onnx_ops_model::{ai, as_, close, f32s, unsupported, Model};
use std::collections::BTreeMap;

/// X = [[1, 2], [3, 4]] sampled at (x, y) = (0, 0), (-1, -1), (1, -1), (2, 0).
fn grid_model(mode: &str, padding: &str) -> Model {
    let grid = [0.0, 0.0, -1.0, -1.0, 1.0, -1.0, 2.0, 0.0];
    Model::new(20)
        .input("x", DataType::Float, &["1", "1", "2", "2"])
        .floats("g", &[1, 1, 4, 2], &grid)
        .node(
            "GridSample",
            &["x", "g"],
            &["y"],
            vec![
                as_("mode", mode),
                as_("padding_mode", padding),
                ai("align_corners", 1),
            ],
        )
}

#[test]
fn grid_sample_bilinear_zeros_and_border() {
    let x = f32s(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    // (2, 0) lies half a pixel beyond the right edge: zeros halve the right column's weight,
    // border clamps onto it.
    close(
        &grid_model("linear", "zeros").eval(&["y"], x.clone())[0],
        &[2.5, 1.0, 2.0, 1.5],
    );
    close(
        &grid_model("linear", "border").eval(&["y"], x.clone())[0],
        &[2.5, 1.0, 2.0, 3.0],
    );
    // Nearest rounds half to even: (0.5, 0.5) → (0, 0); (1.5, 0.5) → (2, 0) is outside.
    close(
        &grid_model("nearest", "zeros").eval(&["y"], x)[0],
        &[1.0, 1.0, 2.0, 0.0],
    );
}

#[test]
fn grid_sample_refuses_unknown_spatial_dims_and_modes() {
    let m = Model::new(20)
        .input("x", DataType::Float, &["1", "1", "h", "2"])
        .floats("g", &[1, 1, 1, 2], &[0.0, 0.0])
        .node("GridSample", &["x", "g"], &["y"], vec![]);
    unsupported(m.import(&["y"]), "spatial dims unknown");
    unsupported(grid_model("area", "zeros").import(&["y"]), "mode `area`");
}

fn window(op: &str, size: i64, periodic: i64) -> Model {
    Model::new(17)
        .ints("s", &[], &[size])
        .node(op, &["s"], &["y"], vec![ai("periodic", periodic)])
}

#[test]
fn windows_are_constants() {
    let run = |m: &Model| {
        let g = m.import(&["y"]).unwrap();
        let out = kiln_compiler::interp::run(&g, &BTreeMap::new()).unwrap();
        out.into_iter().next().unwrap().1
    };
    close(&run(&window("HannWindow", 4, 1)), &[0.0, 0.5, 1.0, 0.5]);
    close(&run(&window("HannWindow", 4, 0)), &[0.0, 0.75, 0.75, 0.0]);
    let h = 25.0 / 46.0;
    close(
        &run(&window("HammingWindow", 2, 1)),
        &[h - (1.0 - h), h + (1.0 - h)],
    );
    close(&run(&window("BlackmanWindow", 3, 0)), &[0.0, 1.0, 0.0]);
    let rt =
        Model::new(17)
            .input("s", DataType::Int64, &[])
            .node("HannWindow", &["s"], &["y"], vec![]);
    unsupported(rt.import(&["y"]), "size unknown at import");
}

#[test]
fn causal_conv_with_state_keeps_the_tail() {
    // One channel, kernel [1, 10]: y[t] = x[t-1] + 10·x[t], with zeros before the start.
    let m = Model::new(27)
        .input("x", DataType::Float, &["1", "1", "3"])
        .floats("w", &[1, 1, 2], &[1.0, 10.0])
        .node("CausalConvWithState", &["x", "w"], &["y", "s"], vec![]);
    let out = m.eval(&["y", "s"], f32s(&[1, 1, 3], &[1.0, 2.0, 3.0]));
    close(&out[0], &[10.0, 21.0, 32.0]);
    close(&out[1], &[3.0]);
}

#[test]
fn center_crop_pad_crops_and_pads_around_the_centre() {
    // Axis 0: 3 → 1 keeps the middle row; axis 1: 2 → 5 puts 1 zero before and 2 after.
    let m = Model::new(18)
        .input("x", DataType::Float, &["3", "2"])
        .ints("s", &[2], &[1, 5])
        .node("CenterCropPad", &["x", "s"], &["y"], vec![]);
    let x = f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    close(&m.eval(&["y"], x)[0], &[0.0, 3.0, 4.0, 0.0, 0.0]);
}
