//! ONNX import of the quantization ops: small models built with the proto structs, imported,
//! run on the reference interpreter and checked against values computed by hand (rounding
//! ties to even, saturation, per-tensor / per-axis / blocked scales, integer matmul).

use crate::onnx_ops_model;

use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::onnx::proto::TensorProto;
use kiln_runtime::{DType, Tensor};
use onnx_ops_model::{ai, close, f32s, unsupported, Model};

/// A u8 / i8 / i32 initializer (ONNX keeps these in `int32_data`).
fn ints(dt: DataType, dims: &[i64], v: &[i32]) -> TensorProto {
    TensorProto {
        data_type: dt as i32,
        dims: dims.to_vec(),
        int32_data: v.to_vec(),
        ..Default::default()
    }
}

fn tensor(dt: DType, shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_f64_values(dt, shape.to_vec(), v).unwrap()
}

#[track_caller]
fn exact(got: &Tensor, dt: DType, want: &[f64]) {
    assert_eq!(got.dtype(), dt);
    assert_eq!(got.to_f64_vec(), want);
}

/// x / 2 = [0.5, 1.5, 2.5, -0.5, -1.5, 300, -300, 1.1]: ties go to even, then + 128, then
/// saturate to [0, 255].
#[test]
fn quantize_per_tensor_rounds_half_to_even_and_saturates() {
    let x = f32s(&[8], &[1.0, 3.0, 5.0, -1.0, -3.0, 600.0, -600.0, 2.2]);
    for opset in [10, 13, 19, 21] {
        let m = Model::new(opset)
            .input("x", DataType::Float, &["8"])
            .floats("s", &[], &[2.0])
            .init("z", ints(DataType::Uint8, &[], &[128]))
            .node("QuantizeLinear", &["x", "s", "z"], &["y"], vec![]);
        let y = m.eval(&["y"], x.clone());
        let want = [128.0, 130.0, 130.0, 128.0, 126.0, 255.0, 0.0, 129.0];
        exact(&y[0], DType::U8, &want);
    }
}

/// Without a zero point the type is u8 (negatives saturate to 0), or `output_dtype` (opset 21).
#[test]
fn quantize_without_zero_point() {
    let x = f32s(&[6], &[1.0, 3.0, 5.0, -3.0, 600.0, -600.0]);
    let m = Model::new(13)
        .input("x", DataType::Float, &["6"])
        .floats("s", &[1], &[2.0])
        .node("QuantizeLinear", &["x", "s"], &["y"], vec![]);
    exact(
        &m.eval(&["y"], x.clone())[0],
        DType::U8,
        &[0.0, 2.0, 2.0, 0.0, 255.0, 0.0],
    );
    let m = quantize_to(&["6"], 2.0, DataType::Int8);
    exact(
        &m.eval(&["y"], x)[0],
        DType::I8,
        &[0.0, 2.0, 2.0, -2.0, 127.0, -128.0],
    );
}

/// axis 1 of a [2, 3] input: scales [1, 2, 4], i8 zero points [0, -10, 10].
#[test]
fn quantize_per_axis() {
    let x = f32s(&[2, 3], &[1.5, 3.0, 5.0, -2.5, 255.0, -600.0]);
    let per_axis = |dims: &[&str], axis: i64| {
        Model::new(13)
            .input("x", DataType::Float, dims)
            .floats("s", &[3], &[1.0, 2.0, 4.0])
            .init("z", ints(DataType::Int8, &[3], &[0, -10, 10]))
            .node(
                "QuantizeLinear",
                &["x", "s", "z"],
                &["y"],
                vec![ai("axis", axis)],
            )
    };
    let m = per_axis(&["2", "3"], 1);
    // x / s = [[1.5, 1.5, 1.25], [-2.5, 127.5, -150]] → [[2, 2, 1], [-2, 128, -150]] + zp.
    let want = [2.0, -8.0, 11.0, -2.0, 118.0, -128.0];
    exact(&m.eval(&["y"], x.clone())[0], DType::I8, &want);
    // The same along axis -2 with the transposed layout.
    let xt = f32s(&[3, 2], &[1.5, -2.5, 3.0, 255.0, 5.0, -600.0]);
    let m = per_axis(&["3", "2"], -2);
    let want_t = [2.0, -2.0, -8.0, 118.0, 11.0, -128.0];
    exact(&m.eval(&["y"], xt)[0], DType::I8, &want_t);
}

/// `(x - zp) * scale`, per tensor (u8) and per axis (i8).
#[test]
fn dequantize_per_tensor_and_per_axis() {
    let m = Model::new(13)
        .input("x", DataType::Uint8, &["4"])
        .floats("s", &[], &[0.5])
        .init("z", ints(DataType::Uint8, &[], &[128]))
        .node("DequantizeLinear", &["x", "s", "z"], &["y"], vec![]);
    let y = m.eval(&["y"], tensor(DType::U8, &[4], &[0.0, 128.0, 255.0, 129.0]));
    assert_eq!(y[0].dtype(), DType::F32);
    close(&y[0], &[-64.0, 0.0, 63.5, 0.5]);

    let m = Model::new(19)
        .input("x", DataType::Int8, &["2", "2"])
        .floats("s", &[2], &[0.5, 4.0])
        .init("z", ints(DataType::Int8, &[2], &[-1, 3]))
        .node(
            "DequantizeLinear",
            &["x", "s", "z"],
            &["y"],
            vec![ai("axis", 0)],
        );
    let y = m.eval(
        &["y"],
        tensor(DType::I8, &[2, 2], &[-128.0, 127.0, 3.0, -5.0]),
    );
    close(&y[0], &[-63.5, 64.0, 0.0, -32.0]);
}

/// Blocks of 2 along axis 1 of a [2, 5] input: 3 blocks, the last one cropped to 1 element.
#[test]
fn dequantize_blocked() {
    let m = Model::new(21)
        .input("x", DataType::Int8, &["2", "5"])
        .floats("s", &[2, 3], &[1.0, 2.0, 3.0, 0.5, 0.25, 10.0])
        .node(
            "DequantizeLinear",
            &["x", "s"],
            &["y"],
            vec![ai("axis", 1), ai("block_size", 2)],
        );
    let x = tensor(
        DType::I8,
        &[2, 5],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 8.0, 4.0, 8.0, -2.0],
    );
    let y = m.eval(&["y"], x);
    close(
        &y[0],
        &[1.0, 2.0, 6.0, 8.0, 15.0, 2.0, 4.0, 1.0, 2.0, -20.0],
    );
}

/// Range [-1, 2] → scale 3/255, zero point 85.
#[test]
fn dynamic_quantize() {
    let m = Model::new(11).input("x", DataType::Float, &["4"]).node(
        "DynamicQuantizeLinear",
        &["x"],
        &["y", "s", "z"],
        vec![],
    );
    let out = m.eval(&["y", "s", "z"], f32s(&[4], &[0.0, 2.0, -1.0, 0.6]));
    exact(&out[0], DType::U8, &[85.0, 255.0, 0.0, 136.0]);
    close(&out[1], &[3.0 / 255.0]);
    exact(&out[2], DType::U8, &[85.0]);
}

/// `(A - 1) · (B - [0, 2])` in i32, with a per-tensor and a per-column zero point.
#[test]
fn matmul_integer() {
    let m = Model::new(10)
        .input("x", DataType::Uint8, &["2", "2"])
        .init("b", ints(DataType::Int8, &[2, 2], &[1, 2, 3, -4]))
        .init("az", ints(DataType::Uint8, &[], &[1]))
        .init("bz", ints(DataType::Int8, &[2], &[0, 2]))
        .node("MatMulInteger", &["x", "b", "az", "bz"], &["y"], vec![]);
    let y = m.eval(&["y"], tensor(DType::U8, &[2, 2], &[1.0, 2.0, 255.0, 3.0]));
    // A - 1 = [[0, 1], [254, 2]], B - bz = [[1, 0], [3, -6]].
    exact(&y[0], DType::I32, &[3.0, -6.0, 260.0, -12.0]);
}

/// A quantized type Kiln lacks is refused.
#[test]
fn quantize_to_a_float_type_is_unsupported() {
    let m = quantize_to(&["2"], 1.0, DataType::Double);
    unsupported(m.import(&["y"]), "quantized data of dtype f64");
}

/// `y = QuantizeLinear(x: f32[dims], scale)` at opset 21 with `output_dtype = to`.
fn quantize_to(dims: &[&str], scale: f32, to: DataType) -> Model {
    Model::new(21)
        .input("x", DataType::Float, dims)
        .floats("s", &[], &[scale])
        .node(
            "QuantizeLinear",
            &["x", "s"],
            &["y"],
            vec![ai("output_dtype", to as i64)],
        )
}
