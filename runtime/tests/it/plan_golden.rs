//! Golden-file test of the plan encoding: a plan using every variant of every enum in it must
//! encode to the committed bytes (until `PLAN_VERSION` is bumped) and decode back unchanged.

use std::path::PathBuf;

use crate::plan_fixture_rnn::{recurrent_kernels, recurrent_ops};
use kiln_runtime::kernels::blocks::BlockFormat;
use kiln_runtime::ops::{
    ArgOp, BinaryOp, Dim, DimLimit, GeluApprox, InputLimits, Op, PadMode, PoolKind, ReduceOp,
    ScatterReduction, Shape, TensorType, UnaryOp, ValueRange,
};
use kiln_runtime::plan::{
    Access, Activation, AttentionStep, ConvStep, GemmB, GemmStep, GeneratedStep, Io, Kernel,
    Layout, Plan, Slot, SlotId, StateIo, Step, Storage, ValueId, ValueInfo, PLAN_VERSION,
};
use kiln_runtime::DType;

/// The plan version the committed golden file was written with.
const GOLDEN_VERSION: u32 = 5;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden/plan_v5.bin")
}

fn d(text: &str) -> Dim {
    Dim::parse(text).expect("fixture dims parse")
}

fn dims(texts: &[&str]) -> Vec<Dim> {
    texts.iter().map(|t| d(t)).collect()
}

/// Every op variant (and every sub-kind of the unary/binary/reduce/... enums), each with
/// distinct non-default attribute values.
fn all_ops() -> Vec<Op> {
    let mut ops: Vec<Op> = Vec::new();
    ops.extend(UnaryOp::ALL.iter().map(|&u| Op::Unary(u)));
    ops.extend(BinaryOp::ALL.iter().map(|&b| Op::Binary(b)));
    ops.push(Op::Where);
    ops.extend(DType::ALL.iter().map(|&to| Op::Cast { to }));
    for (i, &op) in ReduceOp::ALL.iter().enumerate() {
        ops.push(Op::Reduce {
            op,
            axes: vec![i as i64, -1 - i as i64],
            keepdims: i % 2 == 1,
        });
    }
    for (i, op) in [ArgOp::ArgMax, ArgOp::ArgMin].into_iter().enumerate() {
        ops.push(Op::ArgReduce {
            op,
            axis: -2 + i as i64,
            keepdims: i == 0,
            select_last: i == 1,
        });
    }
    ops.push(Op::MatMul);
    ops.push(Op::Softmax { axis: -3 });
    ops.push(Op::LogSoftmax { axis: 2 });
    ops.push(Op::Conv {
        strides: vec![2, 3],
        pads: vec![1, 0, 4, 5],
        dilations: vec![6, 7],
        group: 8,
    });
    ops.push(Op::ConvTranspose {
        strides: vec![3],
        pads: vec![2, 1],
        dilations: vec![4],
        group: 5,
        output_padding: vec![1],
    });
    for (i, kind) in [PoolKind::Max, PoolKind::Avg].into_iter().enumerate() {
        ops.push(Op::Pool {
            kind,
            kernel: vec![3, 2 + i as i64],
            strides: vec![2, 1],
            pads: vec![0, 1, 1, 0],
            dilations: vec![1, 2],
            ceil_mode: i == 0,
            count_include_pad: i == 1,
        });
    }
    ops.push(Op::Reshape {
        shape: dims(&["batch", "seq*12", "-1"]),
    });
    ops.push(Op::Transpose {
        perm: vec![0, 2, 1, 3],
    });
    ops.push(Op::Expand {
        shape: dims(&["batch", "1", "seq+1"]),
    });
    ops.push(Op::Slice {
        axes: vec![1, -1],
        starts: dims(&["0", "seq/2"]),
        ends: dims(&["-1", "max(seq,4)"]),
        steps: vec![1, -2],
    });
    ops.push(Op::Concat { axis: -4 });
    ops.push(Op::Split {
        axis: 3,
        sizes: dims(&["2", "seq-2", "min(batch,seq)"]),
    });
    ops.push(Op::Gather { axis: -5 });
    ops.push(Op::GatherElements { axis: 5 });
    for (i, &mode) in PadMode::ALL.iter().enumerate() {
        ops.push(Op::Pad {
            pads: vec![1, -1, i as i64, 2],
            mode,
            value: 0.25 + i as f64,
        });
    }
    ops.push(Op::Range {
        start: d("3"),
        limit: d("seq%7"),
        delta: d("-2"),
        dtype: DType::I32,
    });
    ops.push(Op::Dims {
        values: dims(&["batch", "seq*12", "2*batch*seq+3", "batch*batch"]),
    });
    ops.push(Op::Tile {
        repeats: vec![2, 1, 3],
    });
    ops.push(Op::Trilu { upper: true, k: -1 });
    ops.push(Op::CumSum {
        axis: 1,
        exclusive: true,
        reverse: false,
    });
    ops.push(Op::CumProd {
        axis: -2,
        exclusive: false,
        reverse: true,
    });
    ops.push(Op::TopK {
        k: 7,
        axis: -1,
        largest: false,
        sorted: true,
    });
    for (i, &reduction) in ScatterReduction::ALL.iter().enumerate() {
        ops.push(Op::ScatterElements {
            axis: i as i64 - 2,
            reduction,
        });
        ops.push(Op::ScatterND { reduction });
    }
    ops.push(Op::ShapeOf {
        start: 1,
        end: Some(-1),
    });
    ops.push(Op::ShapeOf {
        start: -2,
        end: None,
    });
    ops.push(Op::LayerNorm {
        axis: -1,
        eps: 1e-5,
    });
    ops.push(Op::RmsNorm { eps: 1e-6 });
    ops.push(Op::MatMulBias);
    ops.push(Op::SkipLayerNorm {
        axis: 2,
        eps: 1e-12,
    });
    for &approx in GeluApprox::ALL {
        ops.push(Op::Gelu { approx });
    }
    ops.push(Op::Attention {
        heads: 12,
        kv_heads: 4,
        scale: 0.125,
        causal: true,
        bias: false,
        mask: true,
        rotary: false,
    });
    ops.push(Op::Attention {
        heads: 8,
        kv_heads: 8,
        scale: -0.5,
        causal: false,
        bias: true,
        mask: false,
        rotary: true,
    });
    ops.extend(recurrent_ops());
    ops.push(Op::Rotary);
    ops.push(Op::CacheWrite {
        axis: -2,
        at: d("past"),
    });
    ops
}

fn kernels() -> Vec<Kernel> {
    let mut k: Vec<Kernel> = all_ops().into_iter().map(Kernel::Reference).collect();
    k.push(Kernel::Gemm(GemmStep {
        b: GemmB::Packed {
            offset: 4096,
            len: 1 << 20,
            k: 768,
            n: 3072,
        },
        bias: true,
        activation: Activation::GeluErf,
        residual: false,
    }));
    k.push(Kernel::Gemm(GemmStep {
        b: GemmB::Value { trans: true },
        bias: false,
        activation: Activation::Relu,
        residual: true,
    }));
    k.push(Kernel::Gemm(GemmStep {
        b: GemmB::Value { trans: false },
        bias: true,
        activation: Activation::GeluTanh,
        residual: true,
    }));
    k.push(Kernel::Gemm(GemmStep {
        b: GemmB::Packed {
            offset: 64,
            len: 128,
            k: 3,
            n: 5,
        },
        bias: false,
        activation: Activation::None,
        residual: false,
    }));
    for (i, format) in [BlockFormat::Q4_0, BlockFormat::Q4_1, BlockFormat::Q8_0]
        .into_iter()
        .enumerate()
    {
        k.push(Kernel::Gemm(GemmStep {
            b: GemmB::Blocks {
                offset: 64 * (i as u64 + 1),
                len: 576 * 18 * 20,
                k: 576,
                n: 576,
                format,
            },
            bias: i == 1,
            activation: Activation::None,
            residual: i == 2,
        }));
    }
    k.push(Kernel::Attention(AttentionStep {
        heads: 16,
        kv_heads: 2,
        scale: 0.0625,
        causal: true,
        bias: true,
        mask: false,
        rotary: true,
        layouts: [Layout::Bshd, Layout::Bhsd, Layout::Bshd, Layout::Bhsd],
        kv_len: None,
    }));
    k.push(Kernel::Attention(AttentionStep {
        heads: 9,
        kv_heads: 3,
        scale: 0.125,
        causal: true,
        bias: false,
        mask: true,
        rotary: false,
        layouts: [Layout::Bhsd; 4],
        kv_len: Some(d("past+seq")),
    }));
    k.push(Kernel::CacheWrite {
        axis: 2,
        at: d("past"),
    });
    k.push(Kernel::GatherRows);
    k.push(Kernel::Conv(ConvStep {
        offset: 192,
        len: 960,
        w_shape: vec![8, 3, 5, 2],
        strides: vec![2, 1],
        pads: vec![1, 2, 3, 4],
        dilations: vec![1, 3],
        group: 1,
        bias: true,
        activation: Activation::Relu,
    }));
    k.extend(recurrent_kernels());
    k.push(Kernel::Generated(GeneratedStep {
        symbol: "k_fused_7".into(),
        access: vec![Access::Full, Access::Row, Access::Col, Access::Scalar],
        in_place: true,
        split: 2,
    }));
    k.push(Kernel::Native(Op::Where));
    k
}

/// A plan (not a runnable one) using every variant of every enum the plan holds.
fn golden_plan() -> Plan {
    let storages = [
        Storage::Input { slot: SlotId(3) },
        Storage::Weight {
            offset: 128,
            len: 4096,
        },
        Storage::Slot(SlotId(2)),
        Storage::Alias(ValueId(1)),
        Storage::State(0),
    ];
    let values: Vec<ValueInfo> = DType::ALL
        .iter()
        .enumerate()
        .map(|(i, &dtype)| ValueInfo {
            ty: TensorType::new(
                dtype,
                Shape(dims(&[
                    ["batch", "seq", "4", "batch*seq"][i % 4],
                    "(seq+1)/2",
                ])),
            ),
            storage: storages[i % storages.len()],
        })
        .collect();
    let steps = kernels()
        .into_iter()
        .enumerate()
        .map(|(i, kernel)| Step {
            kernel,
            inputs: vec![ValueId(i as u32 % 9), ValueId((i as u32 + 4) % 9)],
            outputs: vec![ValueId((i as u32 + 1) % 9)],
            origin: format!("%{i} = step"),
        })
        .collect();
    Plan {
        version: PLAN_VERSION,
        inputs: vec![
            Io {
                name: "input_ids".into(),
                value: ValueId(0),
                limits: InputLimits {
                    max_dims: vec![DimLimit {
                        axis: 1,
                        max: 512,
                        why: "max_position_embeddings in config.json".into(),
                    }],
                    values: Some(ValueRange {
                        min: 0,
                        max: 30521,
                        why: "vocab_size in config.json".into(),
                    }),
                },
            },
            Io {
                name: "attention mask".into(),
                value: ValueId(4),
                limits: InputLimits::default(),
            },
        ],
        outputs: vec![Io {
            name: "logits".into(),
            value: ValueId(8),
            limits: InputLimits::default(),
        }],
        values,
        steps,
        slots: vec![
            Slot {
                sizes: dims(&["4*batch*seq", "max(batch,seq)", "min(batch,2)"]),
            },
            Slot { sizes: vec![] },
        ],
        states: vec![StateIo {
            name: "past.0.key".into(),
            value: ValueId(4),
            update: ValueId(9),
        }],
    }
}

#[test]
fn plan_encoding_matches_the_golden_file() {
    let plan = golden_plan();
    let bytes = plan.encode();
    let path = golden_path();
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, &bytes).expect("write golden file");
    }
    let golden = std::fs::read(&path).expect("the golden file is committed");
    if PLAN_VERSION == GOLDEN_VERSION {
        assert!(
            bytes == golden,
            "the plan encoding changed ({} bytes now, {} in {}): artifacts written by older \
             builds would be misread. If the change is intended, bump PLAN_VERSION, rename the \
             golden file and GOLDEN_VERSION, and regenerate it with KILN_BLESS=1.",
            bytes.len(),
            golden.len(),
            path.display()
        );
    }
    let decoded = Plan::decode(&golden).expect("the golden file decodes");
    assert_eq!(
        decoded, plan,
        "decoding the golden file gives a different plan"
    );
}

#[test]
fn fixture_covers_every_op_variant() {
    let ops = all_ops();
    let missing: Vec<&str> = Op::VARIANTS
        .iter()
        .copied()
        .filter(|v| !ops.iter().any(|op| op.variant() == *v))
        .collect();
    assert!(
        missing.is_empty(),
        "op variants missing from the golden plan: {missing:?}"
    );
}
