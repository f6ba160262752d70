//! Snapshots of printed IR for graphs built programmatically; each is also parsed back and
//! printed again, which must give the same text.

use kiln_compiler::ir::*;
use kiln_compiler::text::{parse, print_with, PrintOptions};
use kiln_runtime::Tensor;

fn d(s: &str) -> Dim {
    Dim::parse(s).unwrap()
}

fn ty(dtype: DType, dims: &[&str]) -> TensorType {
    TensorType::new(dtype, Shape(dims.iter().map(|s| d(s)).collect()))
}

/// An f32 weight with deterministic small values `0.25·k - 1` (k = 0, 1, ...).
fn weight(g: &mut Graph, name: &str, shape: &[usize]) -> ValueId {
    let n = shape.iter().product::<usize>();
    let values = (0..n).map(|k| 0.25 * k as f32 - 1.0).collect();
    let t = Tensor::from_f32(shape.to_vec(), values).unwrap();
    g.add_weight(Weight::from_tensor(name, &t))
}

fn scalar(g: &mut Graph, name: &str, v: f32) -> ValueId {
    g.add_weight(Weight::from_tensor(name, &Tensor::scalar_f32(v)))
}

fn node(g: &mut Graph, op: Op, inputs: &[ValueId]) -> ValueId {
    g.add_node(op, inputs).unwrap()[0]
}

/// Prints with `opts`, checks print → parse → print, and returns the text.
fn printed(g: &Graph, opts: PrintOptions) -> String {
    kiln_compiler::verify(g).unwrap();
    let text = print_with(g, &opts).unwrap();
    let back = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(print_with(&back, &opts).unwrap(), text);
    text
}

const INLINE: PrintOptions = PrintOptions {
    inline_weight_limit: None,
};
const ELIDE_16: PrintOptions = PrintOptions {
    inline_weight_limit: Some(16),
};

#[test]
fn mlp_two_layers() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["batch", "4"]));
    let w1 = weight(&mut g, "fc1.weight", &[4, 3]);
    let b1 = weight(&mut g, "fc1.bias", &[3]);
    let w2 = weight(&mut g, "fc2.weight", &[3, 2]);
    let b2 = weight(&mut g, "fc2.bias", &[2]);
    let h = node(&mut g, Op::MatMul, &[x, w1]);
    let h = node(&mut g, Op::Binary(BinaryOp::Add), &[h, b1]);
    let h = node(&mut g, Op::Unary(UnaryOp::Relu), &[h]);
    let y = node(&mut g, Op::MatMul, &[h, w2]);
    let y = node(&mut g, Op::Binary(BinaryOp::Add), &[y, b2]);
    let p = node(&mut g, Op::Softmax { axis: -1 }, &[y]);
    g.add_output("logits", y);
    g.add_output("probs", p);
    insta::assert_snapshot!(printed(&g, INLINE));
}

#[test]
fn layer_norm_decomposed() {
    let mut g = Graph::new();
    let x = g.add_input("hidden", ty(DType::F32, &["batch", "seq", "8"]));
    let mean = |axes: Vec<i64>| Op::Reduce {
        op: ReduceOp::Mean,
        axes,
        keepdims: true,
    };
    let m = node(&mut g, mean(vec![-1]), &[x]);
    let c = node(&mut g, Op::Binary(BinaryOp::Sub), &[x, m]);
    let sq = node(&mut g, Op::Binary(BinaryOp::Mul), &[c, c]);
    let var = node(&mut g, mean(vec![-1]), &[sq]);
    let eps = scalar(&mut g, "eps", 1e-5);
    let ve = node(&mut g, Op::Binary(BinaryOp::Add), &[var, eps]);
    let sd = node(&mut g, Op::Unary(UnaryOp::Sqrt), &[ve]);
    let n = node(&mut g, Op::Binary(BinaryOp::Div), &[c, sd]);
    let gamma = weight(&mut g, "ln.gamma", &[8]);
    let beta = weight(&mut g, "ln.beta", &[8]);
    let y = node(&mut g, Op::Binary(BinaryOp::Mul), &[n, gamma]);
    let y = node(&mut g, Op::Binary(BinaryOp::Add), &[y, beta]);
    g.add_output("normed", y);
    insta::assert_snapshot!(printed(&g, INLINE));
}

#[test]
fn attention_block() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["batch", "seq", "8"]));
    let heads = |g: &mut Graph, v: ValueId| {
        let r = node(
            g,
            Op::Reshape {
                shape: vec![d("batch"), d("seq"), d("2"), d("4")],
            },
            &[v],
        );
        node(
            g,
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[r],
        )
    };
    let mut proj = Vec::new();
    for name in ["q", "k", "v"] {
        let w = weight(&mut g, &format!("attn.{name}.weight"), &[8, 8]);
        let p = node(&mut g, Op::MatMul, &[x, w]);
        proj.push(heads(&mut g, p));
    }
    let kt = node(
        &mut g,
        Op::Transpose {
            perm: vec![0, 1, 3, 2],
        },
        &[proj[1]],
    );
    let s = node(&mut g, Op::MatMul, &[proj[0], kt]);
    let scale = scalar(&mut g, "attn.scale", 0.5);
    let s = node(&mut g, Op::Binary(BinaryOp::Mul), &[s, scale]);
    let p = node(&mut g, Op::Softmax { axis: -1 }, &[s]);
    let o = node(&mut g, Op::MatMul, &[p, proj[2]]);
    let o = node(
        &mut g,
        Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        &[o],
    );
    let o = node(
        &mut g,
        Op::Reshape {
            shape: vec![d("batch"), d("seq"), d("8")],
        },
        &[o],
    );
    g.add_output("context", o);
    g.add_output("probs", p);
    insta::assert_snapshot!(printed(&g, ELIDE_16));
}

#[test]
fn conv_pool_relu() {
    let mut g = Graph::new();
    let x = g.add_input("image", ty(DType::F32, &["batch", "1", "6", "6"]));
    let w = weight(&mut g, "conv.weight", &[2, 1, 3, 3]);
    let b = weight(&mut g, "conv.bias", &[2]);
    let conv = Op::Conv {
        strides: vec![1, 1],
        pads: vec![1, 1, 1, 1],
        dilations: vec![1, 1],
        group: 1,
    };
    let c = node(&mut g, conv, &[x, w, b]);
    let pool = Op::Pool {
        kind: PoolKind::Max,
        kernel: vec![2, 2],
        strides: vec![2, 2],
        pads: vec![0, 0, 0, 0],
        dilations: vec![1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    let p = node(&mut g, pool, &[c]);
    let r = node(&mut g, Op::Unary(UnaryOp::Relu), &[p]);
    let f = node(
        &mut g,
        Op::Reshape {
            shape: vec![d("batch"), d("18")],
        },
        &[r],
    );
    g.add_output("features", f);
    insta::assert_snapshot!(printed(&g, INLINE));
}

#[test]
fn slice_concat_split_gather_with_symbolic_dims() {
    let mut g = Graph::new();
    let ids = g.add_input("input_ids", ty(DType::I64, &["batch", "seq"]));
    let mask = g.add_input("attention.mask", ty(DType::F32, &["batch", "seq"]));
    let table = weight(&mut g, "embeddings.weight", &[10, 4]);
    let e = node(&mut g, Op::Gather { axis: 0 }, &[table, ids]);
    let first = Op::Slice {
        axes: vec![1],
        starts: vec![d("0")],
        ends: vec![d("1")],
        steps: vec![1],
    };
    let cls = node(&mut g, first, &[e]);
    let cat = node(&mut g, Op::Concat { axis: 1 }, &[cls, e]);
    let parts = g
        .add_node(
            Op::Split {
                axis: 2,
                sizes: vec![d("1"), d("3")],
            },
            &[cat],
        )
        .unwrap();
    let tail = Op::Slice {
        axes: vec![1],
        starts: vec![d("1")],
        ends: vec![d("seq+1")],
        steps: vec![1],
    };
    let body = node(&mut g, tail, &[parts[1]]);
    let flat = node(
        &mut g,
        Op::Reshape {
            shape: vec![d("batch*seq"), d("3")],
        },
        &[body],
    );
    let m = node(
        &mut g,
        Op::Reshape {
            shape: vec![d("batch*seq"), d("1")],
        },
        &[mask],
    );
    let masked = node(&mut g, Op::Binary(BinaryOp::Mul), &[flat, m]);
    g.add_output("tokens", masked);
    g.add_output("head", parts[0]);
    insta::assert_snapshot!(printed(&g, ELIDE_16));
}

#[test]
fn every_fused_op() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["batch", "seq", "4"]));
    let heads = ty(DType::F32, &["batch", "2", "seq", "4"]);
    let q = g.add_input("q", heads.clone());
    let k = g.add_input("k", heads.clone());
    let v = g.add_input("v", heads);
    let mask = g.add_input("mask", ty(DType::Bool, &["batch", "seq"]));
    let cos = g.add_input("cos", ty(DType::F32, &["batch", "1", "seq", "4"]));
    let sin = g.add_input("sin", ty(DType::F32, &["batch", "1", "seq", "4"]));
    let gamma = weight(&mut g, "norm.gamma", &[4]);
    let beta = weight(&mut g, "norm.beta", &[4]);
    let ln = Op::LayerNorm {
        axis: -1,
        eps: 1e-5,
    };
    let a = node(&mut g, ln, &[x, gamma, beta]);
    let b = node(&mut g, Op::RmsNorm { eps: 1e-6 }, &[a, gamma]);
    let c = node(
        &mut g,
        Op::Gelu {
            approx: GeluApprox::None,
        },
        &[b],
    );
    let e = node(
        &mut g,
        Op::Gelu {
            approx: GeluApprox::Tanh,
        },
        &[c],
    );
    let attn = Op::Attention {
        heads: 2,
        kv_heads: 2,
        scale: 0.5,
        causal: true,
        bias: false,
        mask: true,
        rotary: true,
    };
    let o = node(&mut g, attn, &[q, k, v, mask, cos, sin]);
    g.add_output("hidden", e);
    g.add_output("attended", o);
    insta::assert_snapshot!(printed(&g, INLINE));
}
