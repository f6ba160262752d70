//! ONNX Runtime's `com.microsoft` contrib ops: attribute values and input forms Kiln does not
//! support are refused as `unsupported`, naming the op and the attribute (or input), and sizes
//! from the model that do not fit are node errors, never panics. (Their numerics are checked
//! against ONNX Runtime in the `kiln` crate's `onnx_contrib` test.)

use crate::onnx_ops_model;

use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::onnx::proto::{AttributeProto, TensorProto};
use kiln_frontends::Error;
use onnx_ops_model::{af, ai, ais, as_, Model};

fn raw(dt: DataType, dims: &[i64], bytes: Vec<u8>) -> TensorProto {
    TensorProto {
        data_type: dt as i32,
        dims: dims.to_vec(),
        raw_data: bytes,
        ..Default::default()
    }
}

fn zeros_f32(dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    raw(DataType::Float, dims, vec![0; 4 * n as usize])
}

/// `A [2, 32] · MatMulNBits(K 32, N 8, block 16)`, 4-bit codes, with extra `attrs`.
fn matmul_nbits(attrs: Vec<AttributeProto>, extra_inputs: &[&str]) -> Model {
    let mut ins = vec!["a", "B", "scales"];
    ins.extend_from_slice(extra_inputs);
    let mut all = vec![ai("K", 32), ai("N", 8), ai("block_size", 16)];
    all.extend(attrs);
    Model::new(17)
        .input("a", DataType::Float, &["2", "32"])
        .init("B", raw(DataType::Uint8, &[8, 2, 8], vec![0x21; 128]))
        .init("scales", zeros_f32(&[8, 2]))
        .init("zp", raw(DataType::Uint8, &[8, 1], vec![0x88; 8]))
        .init("g_idx", raw(DataType::Int32, &[32], vec![0; 128]))
        .ms("MatMulNBits", &ins, &["y"], all)
}

/// GroupQueryAttention with 2 query heads and 1 kv head of size 16 on 4 tokens.
fn gqa(attrs: Vec<AttributeProto>, ins: &[&str]) -> Model {
    let mut all = vec![ai("num_heads", 2), ai("kv_num_heads", 1)];
    all.extend(attrs);
    Model::new(17)
        .input("q", DataType::Float, &["1", "4", "32"])
        .input("k", DataType::Float, &["1", "4", "16"])
        .input("v", DataType::Float, &["1", "4", "16"])
        .input("past", DataType::Float, &["1", "1", "3", "16"])
        .input("seqlens", DataType::Int32, &["1"])
        .input("total", DataType::Int32, &[])
        .input("pos", DataType::Int64, &["1", "4"])
        .ms("GroupQueryAttention", ins, &["y"], all)
}

const GQA_INS: [&str; 7] = ["q", "k", "v", "", "", "seqlens", "total"];

/// Attention on `x [1, 4, 8]` with packed weights `[8, 24]`, 2 heads.
fn attention(attrs: Vec<AttributeProto>, mask_dims: &[&str]) -> Model {
    let mut all = vec![ai("num_heads", 2)];
    all.extend(attrs);
    let m = Model::new(17)
        .input("x", DataType::Float, &["1", "4", "8"])
        .init("w", zeros_f32(&[8, 24]));
    if mask_dims.is_empty() {
        return m.ms("Attention", &["x", "w"], &["y"], all);
    }
    m.input("mask", DataType::Int32, mask_dims).ms(
        "Attention",
        &["x", "w", "", "mask"],
        &["y"],
        all,
    )
}

/// `x [1, 4, 16]` rotated with caches `[8, 4]` (2 heads of 8).
fn rotary(attrs: Vec<AttributeProto>) -> Model {
    Model::new(17)
        .input("x", DataType::Float, &["1", "4", "16"])
        .input("pos", DataType::Int64, &["1", "4"])
        .init("cos", zeros_f32(&[8, 4]))
        .init("sin", zeros_f32(&[8, 4]))
        .ms(
            "RotaryEmbedding",
            &["x", "pos", "cos", "sin"],
            &["y"],
            attrs,
        )
}

/// Imports `m` (must fail as `unsupported`) and checks that the one-line message names the
/// com.microsoft op and holds `fragment`.
#[track_caller]
fn refused(m: &Model, outs: &[&str], op: &str, fragment: &str) {
    let e = m.import(outs).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Unsupported { .. }), "{msg}");
    assert!(
        msg.contains(&format!("com.microsoft::{op}")),
        "`{msg}` lacks the op"
    );
    assert!(msg.contains("unsupported: "), "{msg}");
    assert!(msg.contains(fragment), "`{msg}` lacks `{fragment}`");
}

#[test]
fn matmul_nbits_refuses_unsupported_forms() {
    let op = "MatMulNBits";
    refused(
        &matmul_nbits(vec![ai("bits", 3)], &[]),
        &["y"],
        op,
        "bits = 3",
    );
    let m = matmul_nbits(vec![ai("weight_prepacked", 1)], &[]);
    refused(&m, &["y"], op, "weight_prepacked = 1");
    refused(&matmul_nbits(vec![], &["zp", "g_idx"]), &["y"], op, "g_idx");
    let m = Model::new(17)
        .input("a", DataType::Float, &["2", "32"])
        .input("B", DataType::Uint8, &["8", "2", "8"])
        .init("scales", zeros_f32(&[8, 2]))
        .ms(
            op,
            &["a", "B", "scales"],
            &["y"],
            vec![ai("K", 32), ai("N", 8), ai("block_size", 16)],
        );
    refused(&m, &["y"], op, "initializer");
    // The supported form imports.
    matmul_nbits(vec![ai("accuracy_level", 4)], &["zp"])
        .import(&["y"])
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn matmul_nbits_sizes_are_checked() {
    let node_error = |m: Model, fragment: &str| {
        let e = m.import(&["y"]).unwrap_err();
        assert!(matches!(e, Error::Node { .. }), "{e}");
        assert!(e.to_string().contains(fragment), "`{e}` lacks `{fragment}`");
    };
    let sized = |k: i64, n: i64, block: i64| {
        Model::new(17)
            .input("a", DataType::Float, &["2", "32"])
            .init("B", raw(DataType::Uint8, &[8, 2, 8], vec![0; 128]))
            .init("scales", zeros_f32(&[8, 2]))
            .ms(
                "MatMulNBits",
                &["a", "B", "scales"],
                &["y"],
                vec![ai("K", k), ai("N", n), ai("block_size", block)],
            )
    };
    let huge = |k: i64, n: i64| sized(k, n, 16);
    node_error(huge(i64::MAX, i64::MAX), "A has 32 features");
    let mut m = huge(i64::MAX, i64::MAX);
    m.graph.input.clear();
    let m = m.input("a", DataType::Float, &["2", "k"]);
    node_error(m, "overflows");
    node_error(huge(32, -8), "N must be positive");
    node_error(huge(32, 9), "B has shape [8, 2, 8]");
    node_error(sized(32, 8, 12), "block_size must be a power of two");
    node_error(sized(32, 8, 1 << 62), "overflows");
}

#[test]
fn group_query_attention_refuses_unsupported_forms() {
    let op = "GroupQueryAttention";
    let cases: Vec<(Vec<AttributeProto>, &str)> = vec![
        (vec![ai("local_window_size", 2)], "local_window_size = 2"),
        (vec![af("softcap", 30.0)], "softcap = 30"),
        (vec![ai("smooth_softmax", 1)], "smooth_softmax = 1"),
        (vec![ai("qk_output", 1)], "qk_output = 1"),
        (
            vec![as_("k_quant_type", "PER_TENSOR")],
            "k_quant_type = PER_TENSOR",
        ),
    ];
    for (attrs, fragment) in cases {
        refused(&gqa(attrs, &GQA_INS), &["y"], op, fragment);
    }
    let past = ["q", "k", "v", "past", "past", "seqlens", "total"];
    refused(&gqa(vec![], &past), &["y"], op, "past");
    let mut with_pos: Vec<&str> = GQA_INS.to_vec();
    with_pos.extend(["", "", "pos"]);
    refused(&gqa(vec![], &with_pos), &["y"], op, "position_ids");
    gqa(vec![], &GQA_INS)
        .import(&["y"])
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn attention_refuses_unsupported_forms() {
    let op = "Attention";
    refused(
        &attention(vec![ai("do_rotary", 1)], &[]),
        &["y"],
        op,
        "do_rotary = 1",
    );
    let m = attention(vec![ai("past_present_share_buffer", 1)], &[]);
    refused(&m, &["y"], op, "past_present_share_buffer = 1");
    let m = attention(vec![], &["1", "1", "4", "4"]);
    refused(&m, &["y"], op, "Megatron");
    refused(&attention(vec![], &["5"]), &["y"], op, "[3·B + 2]");
    // A symbolic key length makes a [B, 1] mask ambiguous (dummy or a one-key mask).
    let m = Model::new(17)
        .input("x", DataType::Float, &["1", "s", "8"])
        .input("mask", DataType::Int32, &["1", "1"])
        .init("w", zeros_f32(&[8, 24]))
        .ms(
            op,
            &["x", "w", "", "mask"],
            &["y"],
            vec![ai("num_heads", 2)],
        );
    refused(&m, &["y"], op, "mask_index of shape");
    for dims in [
        &["1"][..],
        &["2"],
        &["1", "4"],
        &["1", "1"],
        &["1", "4", "4"],
    ] {
        attention(vec![ai("unidirectional", 1)], dims)
            .import(&["y"])
            .unwrap_or_else(|e| panic!("{dims:?}: {e}"));
    }
}

#[test]
fn multi_head_attention_refuses_unsupported_forms() {
    let op = "MultiHeadAttention";
    let packed = Model::new(17)
        .input("qkv", DataType::Float, &["1", "4", "2", "3", "4"])
        .ms(op, &["qkv"], &["y"], vec![ai("num_heads", 2)]);
    refused(&packed, &["y"], op, "packed");
    let qk = Model::new(17)
        .input("q", DataType::Float, &["1", "4", "8"])
        .input("k", DataType::Float, &["1", "4", "8"])
        .input("v", DataType::Float, &["1", "4", "8"])
        .ms(
            op,
            &["q", "k", "v"],
            &["y", "", "", "qk"],
            vec![ai("num_heads", 2)],
        );
    refused(&qk, &["y", "qk"], op, "`qk`");
}

#[test]
fn norms_and_rotary_refuse_unsupported_forms() {
    refused(
        &rotary(vec![af("scale", 2.0)]),
        &["y"],
        "RotaryEmbedding",
        "scale = 2",
    );
    refused(
        &rotary(vec![ai("is_packed_batching", 1)]),
        &["y"],
        "RotaryEmbedding",
        "is_packed_batching = 1",
    );
    rotary(vec![])
        .import(&["y"])
        .unwrap_or_else(|e| panic!("{e}"));
    let op = "SkipSimplifiedLayerNormalization";
    let m = Model::new(17)
        .input("x", DataType::Float, &["2", "8"])
        .input("s", DataType::Float, &["2", "8"])
        .init("g", zeros_f32(&[8]))
        .ms(op, &["x", "s", "g"], &["y", "mean"], vec![]);
    refused(&m, &["y", "mean"], op, "`mean` output");
    let op = "SimplifiedLayerNormalization";
    let m = Model::new(17)
        .input("x", DataType::Float, &["2", "8"])
        .init("g", zeros_f32(&[8]))
        .ms(op, &["x", "g"], &["y"], vec![ai("stash_type", 0)]);
    refused(&m, &["y"], op, "stash_type = 0");
}

#[test]
fn fused_matmuls_refuse_unsupported_forms() {
    let m = |op: &str, attrs| {
        Model::new(17)
            .input("a", DataType::Float, &["2", "3"])
            .input("b", DataType::Float, &["3", "4"])
            .ms(op, &["a", "b"], &["y"], attrs)
    };
    refused(
        &m("FusedMatMul", vec![ai("transBatchA", 1)]),
        &["y"],
        "FusedMatMul",
        "transBatchA = 1",
    );
    refused(
        &m("FusedGemm", vec![as_("activation", "Elu")]),
        &["y"],
        "FusedGemm",
        "activation = Elu",
    );
    m("FusedGemm", vec![as_("activation", "LeakyRelu")])
        .import(&["y"])
        .unwrap_or_else(|e| panic!("{e}"));
}
