//! Whole-graph interpretation: input binding, symbol consistency, and end-to-end results.

use kiln_compiler::interp::run;
use kiln_compiler::ir::*;
use kiln_compiler::Error;
use kiln_runtime::Tensor;
use std::collections::BTreeMap;

fn graph() -> Graph {
    let mut g = Graph::new();
    let s = |d: &str| Dim::parse(d).unwrap();
    let x = g.add_input(
        "x",
        TensorType::new(DType::F32, Shape(vec![s("batch"), s("4")])),
    );
    let m = g.add_input(
        "m",
        TensorType::new(DType::F32, Shape(vec![s("batch"), s("4")])),
    );
    let w = g.add_weight(Weight::from_tensor(
        "w",
        &Tensor::from_f32(vec![4, 2], vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]).unwrap(),
    ));
    let a = g.add_node(Op::Binary(BinaryOp::Mul), &[x, m]).unwrap()[0];
    let y = g.add_node(Op::MatMul, &[a, w]).unwrap()[0];
    g.add_output("y", y);
    g
}

fn inputs(pairs: Vec<(&str, Tensor)>) -> BTreeMap<String, Tensor> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[test]
fn runs_a_graph_at_two_batch_sizes() {
    let g = graph();
    for batch in [1usize, 3] {
        let x: Vec<f32> = (0..batch * 4).map(|i| i as f32).collect();
        let out = run(
            &g,
            &inputs(vec![
                ("x", Tensor::from_f32(vec![batch, 4], x.clone()).unwrap()),
                (
                    "m",
                    Tensor::from_f32(vec![batch, 4], vec![2.0; batch * 4]).unwrap(),
                ),
            ]),
        )
        .unwrap();
        assert_eq!(out[0].0, "y");
        let y = out[0].1.to_f64_vec();
        assert_eq!(out[0].1.shape(), &[batch, 2]);
        for b in 0..batch {
            let r = &x[b * 4..b * 4 + 4];
            assert_eq!(y[b * 2], 2.0 * (r[0] + r[2]) as f64);
            assert_eq!(y[b * 2 + 1], 2.0 * (r[1] + r[3]) as f64);
        }
    }
}

#[test]
fn input_errors_name_the_input_and_the_expectation() {
    let g = graph();
    let ok = || Tensor::from_f32(vec![2, 4], vec![0.0; 8]).unwrap();
    let cases: Vec<(BTreeMap<String, Tensor>, &str, &str)> = vec![
        (
            inputs(vec![("x", ok())]),
            "m",
            "is missing (expected `x`, `m`)",
        ),
        (
            inputs(vec![("x", ok()), ("m", ok()), ("q", ok())]),
            "q",
            "is not a graph input (expected `x`, `m`)",
        ),
        (
            inputs(vec![
                ("x", ok()),
                ("m", Tensor::from_i64(vec![2, 4], vec![0; 8]).unwrap()),
            ]),
            "m",
            "dtype i64, expected f32",
        ),
        (
            inputs(vec![
                ("x", ok()),
                ("m", Tensor::from_f32(vec![8], vec![0.0; 8]).unwrap()),
            ]),
            "m",
            "rank 1",
        ),
        (
            inputs(vec![
                ("x", ok()),
                ("m", Tensor::from_f32(vec![3, 4], vec![0.0; 12]).unwrap()),
            ]),
            "m",
            "`batch` is already 2",
        ),
        (
            inputs(vec![
                ("x", Tensor::from_f32(vec![2, 5], vec![0.0; 10]).unwrap()),
                ("m", ok()),
            ]),
            "x",
            "dim 1 is 5, expected 4",
        ),
    ];
    for (inp, name, fragment) in cases {
        match run(&g, &inp) {
            Err(Error::Input { name: n, message }) => {
                assert_eq!(n, name);
                assert!(message.contains(fragment), "{message} lacks {fragment}");
            }
            other => panic!("expected an input error, got {other:?}"),
        }
    }
}

#[test]
fn dims_evaluate_against_the_bindings_of_the_run() {
    let mut g = graph();
    let values = vec![
        Dim::parse("batch*2").unwrap(),
        Dim::parse("batch+3").unwrap(),
        Dim::known(7),
    ];
    let d = g.add_node(Op::Dims { values }, &[]).unwrap()[0];
    assert_eq!(g.value(d).ty.to_string(), "i64[3]");
    g.add_output("d", d);
    kiln_compiler::verify(&g).unwrap();
    let text = kiln_compiler::text::print(&g).unwrap();
    assert!(
        text.contains("dims() {values = [2*batch, batch+3, 7]}"),
        "{text}"
    );
    assert_eq!(
        kiln_compiler::text::print(&kiln_compiler::text::parse(&text).unwrap()).unwrap(),
        text
    );
    let t = Tensor::from_f32(vec![5, 4], vec![1.0; 20]).unwrap();
    let out = run(&g, &inputs(vec![("x", t.clone()), ("m", t)])).unwrap();
    assert_eq!(out[1].1.to_i64_vec(), vec![10, 8, 7]);
}
