//! Verifier tests: every violated rule is reported with the node and the rule's name.

use kiln_compiler::ir::*;
use kiln_compiler::{verify, Error};
use kiln_runtime::Tensor;

fn ty(dtype: DType, dims: &str) -> TensorType {
    let shape = if dims.is_empty() {
        Shape::scalar()
    } else {
        Shape(dims.split(',').map(|d| Dim::parse(d).unwrap()).collect())
    };
    TensorType::new(dtype, shape)
}

fn base() -> (Graph, ValueId, ValueId) {
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, "batch, 4"));
    let w = g.add_weight(Weight::from_tensor(
        "w",
        &Tensor::from_f32(vec![4, 3], vec![0.5; 12]).unwrap(),
    ));
    let y = g.add_node(Op::MatMul, &[x, w]).unwrap()[0];
    let z = g.add_node(Op::Unary(UnaryOp::Relu), &[y]).unwrap()[0];
    g.add_output("z", z);
    (g, x, y)
}

fn verify_err(g: &Graph) -> (String, &'static str, String) {
    match verify(g) {
        Err(Error::Verify {
            node,
            rule,
            message,
            ..
        }) => (node, rule, message),
        Err(Error::Graph { rule, message }) => (String::new(), rule, message),
        other => panic!("expected a verification error, got {other:?}"),
    }
}

#[test]
fn a_well_formed_graph_verifies() {
    let (g, _, y) = base();
    verify(&g).unwrap();
    assert_eq!(g.value(y).ty.to_string(), "f32[batch, 3]");
}

#[test]
fn add_node_rejects_ill_typed_inputs() {
    let (mut g, x, _) = base();
    let err = g.add_node(Op::MatMul, &[x, x]).unwrap_err();
    assert!(matches!(err, Error::Type { op: "matmul", .. }), "{err}");
}

#[test]
fn a_cycle_is_reported_with_rule_acyclic() {
    let (mut g, x, _) = base();
    let a = g.add_node(Op::Unary(UnaryOp::Neg), &[x]).unwrap()[0];
    let b = g.add_node(Op::Unary(UnaryOp::Neg), &[a]).unwrap()[0];
    let ValueDef::Node { node: na, .. } = g.value(a).def else {
        panic!()
    };
    g.set_input(na, 0, b);
    g.add_output("b", b);
    let (_, rule, _) = verify_err(&g);
    assert_eq!(rule, "acyclic");
    assert!(g.topo_order().is_err());
}

#[test]
fn a_declared_type_that_disagrees_with_inference_names_both() {
    let (mut g, x, _) = base();
    let bad = g.add_node_typed(
        Op::Unary(UnaryOp::Exp),
        &[x],
        vec![ty(DType::F32, "batch, 5")],
        Some("exp_1".into()),
    );
    g.add_output("bad", bad[0]);
    let (node, rule, message) = verify_err(&g);
    assert_eq!((node.as_str(), rule), ("`exp_1`", "types"));
    assert!(
        message.contains("f32[batch, 5]") && message.contains("f32[batch, 4]"),
        "{message}"
    );
}

#[test]
fn wrong_arity_is_reported() {
    let (mut g, x, _) = base();
    let bad = g.add_node_typed(Op::MatMul, &[x], vec![ty(DType::F32, "batch, 4")], None);
    g.add_output("bad", bad[0]);
    let (node, rule, message) = verify_err(&g);
    assert_eq!(rule, "arity");
    assert!(node.starts_with('#'));
    assert!(message.contains("takes 2 inputs, has 1"), "{message}");
}

#[test]
fn using_the_output_of_a_removed_node_breaks_def_before_use() {
    let (mut g, _, y) = base();
    let ValueDef::Node { node, .. } = g.value(y).def else {
        panic!()
    };
    g.remove_node(node);
    let (_, rule, _) = verify_err(&g);
    assert_eq!(rule, "def-before-use");
}

#[test]
fn symbols_must_come_from_graph_inputs() {
    let (mut g, _, _) = base();
    let op = Op::Range {
        start: Dim::known(0),
        limit: Dim::sym("foo"),
        delta: Dim::known(1),
        dtype: DType::I64,
    };
    let r = g.add_node(op, &[]).unwrap()[0];
    g.add_output("r", r);
    let (_, rule, message) = verify_err(&g);
    assert_eq!(rule, "bound-symbols");
    assert!(message.contains("`foo`"), "{message}");
}

#[test]
fn graph_interface_rules() {
    let (mut g, x, _) = base();
    g.add_output("z", x);
    assert_eq!(verify_err(&g).1, "unique-names");

    let mut g = Graph::new();
    g.add_input("x", ty(DType::F32, "2"));
    assert_eq!(verify_err(&g).1, "has-outputs");

    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, "2"));
    g.add_input("x", ty(DType::F32, "2"));
    g.add_output("y", x);
    assert_eq!(verify_err(&g).1, "unique-names");
}

#[test]
fn replace_all_uses_keeps_edges_in_sync() {
    let (mut g, x, y) = base();
    let n = g.add_node(Op::Unary(UnaryOp::Neg), &[x]).unwrap()[0];
    let w2 = g.add_weight(Weight::from_tensor(
        "w2",
        &Tensor::from_f32(vec![4, 3], vec![1.0; 12]).unwrap(),
    ));
    let y2 = g.add_node(Op::MatMul, &[n, w2]).unwrap()[0];
    g.replace_all_uses(y, y2);
    verify(&g).unwrap();
    // The old matmul is now unused, so removing it keeps the graph valid.
    let ValueDef::Node { node, .. } = g.value(y).def else {
        panic!()
    };
    g.remove_node(node);
    verify(&g).unwrap();
    assert_eq!(g.topo_order().unwrap().len(), 3);
}

#[test]
fn attribute_dims_must_use_bound_symbols() {
    let (mut g, _, _) = base();
    let d = g
        .add_node(
            Op::Dims {
                values: vec![Dim::sym("batch"), Dim::sym("nope")],
            },
            &[],
        )
        .unwrap()[0];
    g.add_output("d", d);
    let (_, rule, message) = verify_err(&g);
    assert_eq!(rule, "bound-symbols");
    assert!(message.contains("`nope`"), "{message}");
}
