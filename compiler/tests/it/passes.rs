//! The canonicalization passes on hand-built graphs: each pass where it fires and where it must
//! not, the printed IR before and after a small case, and results unchanged by the interpreter.

use kiln_compiler::interp::run;
use kiln_compiler::ir::*;
use kiln_compiler::passes::{canonicalize, cse, dce, fold, simplify};
use kiln_compiler::verify;
use kiln_runtime::Tensor;
use std::collections::BTreeMap;

fn ty(dtype: DType, dims: &[&str]) -> TensorType {
    TensorType::new(
        dtype,
        Shape(dims.iter().map(|d| Dim::parse(d).unwrap()).collect()),
    )
}

fn op1(g: &mut Graph, op: Op, x: ValueId) -> ValueId {
    g.add_node(op, &[x]).unwrap()[0]
}

fn ops(g: &Graph) -> Vec<&'static str> {
    g.topo_order()
        .unwrap()
        .into_iter()
        .map(|n| g.node(n).op.name())
        .collect()
}

fn feeds(x: Tensor) -> BTreeMap<String, Tensor> {
    BTreeMap::from([("x".to_string(), x)])
}

fn cast(to: DType) -> Op {
    Op::Cast { to }
}

#[test]
fn dce_removes_only_what_no_output_needs() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["n"]));
    let used = op1(&mut g, Op::Unary(UnaryOp::Exp), x);
    let dead = op1(&mut g, Op::Unary(UnaryOp::Neg), x);
    op1(&mut g, Op::Unary(UnaryOp::Abs), dead);
    g.add_output("y", used);
    assert_eq!(dce::run(&mut g), 2);
    assert_eq!(ops(&g), ["exp"]);
    assert_eq!(dce::run(&mut g), 0);
    verify(&g).unwrap();
}

#[test]
fn cse_merges_identical_nodes_but_not_different_attributes() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["2", "3"]));
    let a = op1(&mut g, Op::Softmax { axis: 1 }, x);
    let b = op1(&mut g, Op::Softmax { axis: 1 }, x);
    let c = op1(&mut g, Op::Softmax { axis: 0 }, x);
    let ab = g.add_node(Op::Binary(BinaryOp::Add), &[a, b]).unwrap()[0];
    let y = g.add_node(Op::Binary(BinaryOp::Add), &[ab, c]).unwrap()[0];
    g.add_output("y", y);
    assert_eq!(cse::run(&mut g).unwrap(), 1);
    assert_eq!(ops(&g), ["softmax", "softmax", "add", "add"]);
    let first = g.node(g.topo_order().unwrap()[2]).inputs.clone();
    assert_eq!(first, vec![a, a], "the first node is kept");
    verify(&g).unwrap();
}

#[test]
fn cse_merges_chains_in_one_pass() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["4"]));
    let a1 = op1(&mut g, Op::Unary(UnaryOp::Exp), x);
    let a2 = op1(&mut g, Op::Unary(UnaryOp::Exp), x);
    let b1 = op1(&mut g, Op::Unary(UnaryOp::Tanh), a1);
    let b2 = op1(&mut g, Op::Unary(UnaryOp::Tanh), a2);
    let y = g.add_node(Op::Binary(BinaryOp::Mul), &[b1, b2]).unwrap()[0];
    g.add_output("y", y);
    assert_eq!(cse::run(&mut g).unwrap(), 2);
    assert_eq!(ops(&g), ["exp", "tanh", "mul"]);
}

#[test]
fn fold_evaluates_weight_only_nodes() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["2"]));
    let w = g.add_weight(Weight::from_tensor(
        "w",
        &Tensor::from_f32(vec![2], vec![1.0, 4.0]).unwrap(),
    ));
    let s = op1(&mut g, Op::Unary(UnaryOp::Sqrt), w);
    let y = g.add_node(Op::Binary(BinaryOp::Mul), &[x, s]).unwrap()[0];
    g.add_output("y", y);
    assert_eq!(fold::run(&mut g).unwrap(), 1);
    assert_eq!(ops(&g), ["mul"]);
    let out = run(
        &g,
        &feeds(Tensor::from_f32(vec![2], vec![3.0, 5.0]).unwrap()),
    )
    .unwrap();
    assert_eq!(out[0].1.to_f64_vec(), vec![3.0, 10.0]);
}

#[test]
fn fold_leaves_symbolic_and_input_dependent_nodes() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["n"]));
    let dims = g
        .add_node(
            Op::Dims {
                values: vec![Dim::parse("n").unwrap()],
            },
            &[],
        )
        .unwrap()[0];
    let fixed = g
        .add_node(
            Op::Dims {
                values: vec![Dim::known(3)],
            },
            &[],
        )
        .unwrap()[0];
    let e = op1(&mut g, Op::Unary(UnaryOp::Exp), x);
    g.add_output("dims", dims);
    g.add_output("fixed", fixed);
    g.add_output("e", e);
    assert_eq!(fold::run(&mut g).unwrap(), 1);
    assert_eq!(ops(&g), ["dims", "exp"]);
    verify(&g).unwrap();
}

#[test]
fn simplify_removes_no_ops() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["n", "3"]));
    let shape = vec![Dim::parse("n").unwrap(), Dim::known(3)];
    let a = op1(&mut g, Op::Reshape { shape }, x);
    let b = op1(&mut g, Op::Transpose { perm: vec![0, -1] }, a);
    let c = op1(&mut g, cast(DType::F32), b);
    let d = op1(
        &mut g,
        Op::Expand {
            shape: vec![Dim::known(3)],
        },
        c,
    );
    let e = op1(
        &mut g,
        Op::Slice {
            axes: vec![1],
            starts: vec![Dim::known(0)],
            ends: vec![Dim::known(i64::MAX)],
            steps: vec![1],
        },
        d,
    );
    let y = op1(&mut g, Op::Unary(UnaryOp::Exp), e);
    g.add_output("y", y);
    assert_eq!(simplify::run(&mut g).unwrap(), 5);
    assert_eq!(ops(&g), ["exp"]);
    assert_eq!(g.node(g.topo_order().unwrap()[0]).inputs, vec![x]);
    verify(&g).unwrap();
}

#[test]
fn simplify_keeps_real_slices_and_transposes() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["2", "3"]));
    let rev = Op::Slice {
        axes: vec![1],
        starts: vec![Dim::known(-1)],
        ends: vec![Dim::known(i64::MIN)],
        steps: vec![-1],
    };
    let a = op1(&mut g, rev, x);
    let b = op1(&mut g, Op::Transpose { perm: vec![1, 0] }, a);
    g.add_output("y", b);
    assert_eq!(simplify::run(&mut g).unwrap(), 0);
    assert_eq!(ops(&g), ["slice", "transpose"]);
}

#[test]
fn cast_chains_collapse_only_through_exact_widenings() {
    let cases = [
        (DType::F32, DType::F64, DType::F32, Vec::<&str>::new()),
        (DType::I32, DType::I64, DType::I32, vec![]),
        (DType::F16, DType::F32, DType::F64, vec!["cast"]),
        (DType::F32, DType::F16, DType::F32, vec!["cast", "cast"]),
        (DType::F32, DType::I64, DType::F32, vec!["cast", "cast"]),
        (DType::U8, DType::F32, DType::I8, vec!["cast", "cast"]),
        (DType::I64, DType::I32, DType::I64, vec!["cast", "cast"]),
    ];
    for (from, mid, to, want) in cases {
        let mut g = Graph::new();
        let x = g.add_input("x", ty(from, &["4"]));
        let a = op1(&mut g, cast(mid), x);
        let b = op1(&mut g, cast(to), a);
        g.add_output("y", b);
        let input = Tensor::from_f64_values(from, vec![4], &[0.0, 1.0, 100.0, 3.0]).unwrap();
        let before = run(&g, &feeds(input.clone())).unwrap();
        canonicalize(&mut g).unwrap();
        assert_eq!(ops(&g), want, "{from} -> {mid} -> {to}");
        let after = run(&g, &feeds(input)).unwrap();
        assert_eq!(before[0].1.to_f64_vec(), after[0].1.to_f64_vec());
        assert_eq!(after[0].1.dtype(), to);
    }
}

#[test]
fn reshape_and_transpose_chains_collapse() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["2", "3", "4"]));
    let r1 = op1(
        &mut g,
        Op::Reshape {
            shape: vec![Dim::known(6), Dim::known(4)],
        },
        x,
    );
    let r2 = op1(
        &mut g,
        Op::Reshape {
            shape: vec![Dim::known(24)],
        },
        r1,
    );
    let t1 = op1(
        &mut g,
        Op::Transpose {
            perm: vec![1, 2, 0],
        },
        x,
    );
    let t2 = op1(
        &mut g,
        Op::Transpose {
            perm: vec![1, 2, 0],
        },
        t1,
    );
    let t3 = op1(
        &mut g,
        Op::Transpose {
            perm: vec![2, 0, 1],
        },
        t1,
    );
    g.add_output("r", r2);
    g.add_output("t", t2);
    g.add_output("back", t3);
    let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let input = Tensor::from_f32(vec![2, 3, 4], data).unwrap();
    let before = run(&g, &feeds(input.clone())).unwrap();
    let stats = canonicalize(&mut g).unwrap();
    let mut left = ops(&g);
    left.sort_unstable();
    assert_eq!(left, ["reshape", "transpose"]);
    assert_eq!(stats.nodes_before, 5);
    assert_eq!(stats.nodes_after, 2);
    assert_eq!(g.outputs()[2].1, x, "a transpose and its inverse cancel");
    let after = run(&g, &feeds(input)).unwrap();
    for ((_, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a.shape(), b.shape());
        assert_eq!(a.to_f64_vec(), b.to_f64_vec());
    }
}

#[test]
fn printed_ir_before_and_after() {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["n", "4"]));
    let w = g.add_weight(Weight::from_tensor(
        "w",
        &Tensor::from_f32(vec![4], vec![1.0, 4.0, 9.0, 16.0]).unwrap(),
    ));
    let s = op1(&mut g, Op::Unary(UnaryOp::Sqrt), w);
    let m1 = g.add_node(Op::Binary(BinaryOp::Mul), &[x, s]).unwrap()[0];
    let m2 = g.add_node(Op::Binary(BinaryOp::Mul), &[x, s]).unwrap()[0];
    let c = op1(&mut g, cast(DType::F32), m1);
    let y = g.add_node(Op::Binary(BinaryOp::Add), &[c, m2]).unwrap()[0];
    op1(&mut g, Op::Unary(UnaryOp::Exp), x);
    g.add_output("y", y);
    let before = kiln_compiler::text::print(&g).unwrap();
    assert_eq!(
        before,
        "kir 1\ngraph {\n  input %x: f32[n, 4]\n  weight @0 \"w\": f32[4] = [1.0, 4.0, 9.0, 16.0]\n  \
         %0 = sqrt(@0) : f32[4]\n  %1 = mul(%x, %0) : f32[n, 4]\n  %2 = mul(%x, %0) : f32[n, 4]\n  \
         %3 = cast(%1) {to = f32} : f32[n, 4]\n  %4 = add(%3, %2) : f32[n, 4]\n  \
         %5 = exp(%x) : f32[n, 4]\n  output \"y\" = %4\n}\n"
    );
    let stats = canonicalize(&mut g).unwrap();
    let after = kiln_compiler::text::print(&g).unwrap();
    assert_eq!(
        after,
        "kir 1\ngraph {\n  input %x: f32[n, 4]\n  \
         weight @0 \"sqrt(w)\": f32[4] = [1.0, 2.0, 3.0, 4.0]\n  \
         %0 = mul(%x, @0) : f32[n, 4]\n  %1 = add(%0, %0) : f32[n, 4]\n  output \"y\" = %1\n}\n"
    );
    assert_eq!((stats.simplify, stats.fold, stats.cse), (1, 1, 1));
    assert_eq!((stats.nodes_before, stats.nodes_after), (6, 2));
    let reparsed = kiln_compiler::text::parse(&after).unwrap();
    assert_eq!(kiln_compiler::text::print(&reparsed).unwrap(), after);
}
