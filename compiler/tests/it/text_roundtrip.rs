//! Property test: random valid graphs (built with `Graph::add_node` from a broad set of ops,
//! symbolic and known dims, weights of every dtype with NaN/inf) print, parse back to a
//! verified graph, and print to identical text — with and without elided weights.

use crate::common;

use kiln_compiler::ir::*;
use kiln_compiler::text::{parse, print, print_with, PrintOptions};
use kiln_runtime::Tensor;
use proptest::prelude::*;

use common::Rng;

const NAMES: &[&str] = &[
    "x",
    "input_ids",
    "attention.mask",
    "a b",
    "quote\"d",
    "back\\slash",
    "new\nline",
    "é",
    "0",
    "_9",
    "max",
    "",
];

fn unique(rng: &mut Rng, used: &mut Vec<String>) -> String {
    let mut name = rng.pick(NAMES).to_string();
    while used.contains(&name) {
        name.push_str(&used.len().to_string());
    }
    used.push(name.clone());
    name
}

fn float_value(rng: &mut Rng) -> f64 {
    let special = [
        0.0,
        -0.0,
        1.5,
        -2.25,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-7,
    ];
    match rng.below(3) {
        0 => rng.pick(&special),
        1 => f64::from(f32::from_bits(rng.next_u64() as u32)),
        _ => f64::from_bits(rng.next_u64()),
    }
}

fn weight(g: &mut Graph, rng: &mut Rng, dtype: DType, shape: Vec<usize>) -> ValueId {
    let n: usize = shape.iter().product();
    let t = if dtype.is_float() || dtype == DType::Bool {
        let v: Vec<f64> = (0..n).map(|_| float_value(rng)).collect();
        Tensor::from_f64_values(dtype, shape, &v)
    } else {
        let v: Vec<i64> = (0..n).map(|_| rng.next_u64() as i64).collect();
        Tensor::from_i64_values(dtype, shape, &v)
    };
    let name = format!("w{}.{}", g.weights().len(), rng.pick(NAMES));
    g.add_weight(Weight::from_tensor(name, &t.unwrap()))
}

/// A shape that broadcasts against `dims`: a suffix with some dims replaced by 1.
fn broadcast_shape(rng: &mut Rng, dims: &[Dim]) -> Vec<usize> {
    let keep = rng.below(dims.len() + 1);
    dims[dims.len() - keep..]
        .iter()
        .map(|d| match d.as_known() {
            Some(k) if rng.coin() => k as usize,
            _ => 1,
        })
        .collect()
}

fn axis(rng: &mut Rng, rank: usize) -> i64 {
    let r = rank.max(1) as i64;
    rng.below(2 * r as usize) as i64 - r
}

/// One random op applied to `v` (and sometimes other values or new weights).
fn step(g: &mut Graph, rng: &mut Rng, pool: &[ValueId], b: [u8; 4]) -> Option<(Op, Vec<ValueId>)> {
    let v = pool[b[1] as usize % pool.len()];
    let other = pool[b[2] as usize % pool.len()];
    let t = g.value(v).ty.clone();
    let dims = t.shape.0.clone();
    let r = dims.len();
    let d = |s: &str| Dim::parse(s).unwrap();
    Some(match b[0] % 16 {
        0 => (Op::Unary(rng.pick(UnaryOp::ALL)), vec![v]),
        1 => (Op::Binary(rng.pick(BinaryOp::ALL)), vec![v, other]),
        2 => {
            let shape = broadcast_shape(rng, &dims);
            let w = weight(g, rng, t.dtype, shape);
            let ops = [
                BinaryOp::Add,
                BinaryOp::Mul,
                BinaryOp::Max,
                BinaryOp::Lt,
                BinaryOp::And,
            ];
            let ins = if rng.coin() { vec![v, w] } else { vec![w, v] };
            (Op::Binary(rng.pick(&ops)), ins)
        }
        3 => {
            let mut axes = Vec::new();
            for a in 0..r as i64 {
                if rng.coin() {
                    axes.push(if rng.coin() { a } else { a - r as i64 });
                }
            }
            let op = rng.pick(ReduceOp::ALL);
            let keepdims = rng.coin();
            (Op::Reduce { op, axes, keepdims }, vec![v])
        }
        4 => {
            let mut perm: Vec<i64> = (0..r as i64).collect();
            for i in (1..r).rev() {
                perm.swap(i, rng.below(i + 1));
            }
            (Op::Transpose { perm }, vec![v])
        }
        5 => {
            let shape = match rng.below(3) {
                0 => vec![t.shape.numel()],
                1 if r >= 2 => [vec![dims[0].mul(&dims[1])], dims[2..].to_vec()].concat(),
                _ => [vec![Dim::known(1)], dims.clone()].concat(),
            };
            (Op::Reshape { shape }, vec![v])
        }
        6 if r > 0 => {
            let a = rng.below(r);
            let end = rng.pick(&[dims[a].clone(), dims[a].sub(&Dim::known(1)), d("1")]);
            let op = Op::Slice {
                axes: vec![a as i64],
                starts: vec![rng.pick(&[d("0"), d("1"), d("-1")])],
                ends: vec![end],
                steps: vec![rng.pick(&[1, 1, 2, -1])],
            };
            (op, vec![v])
        }
        7 => (
            Op::Concat { axis: axis(rng, r) },
            vec![v, rng.pick(&[v, other])],
        ),
        8 if r > 0 => {
            let a = rng.below(r);
            let rest = dims[a].sub(&Dim::known(1));
            let sizes = if rng.coin() {
                vec![rest, d("1")]
            } else {
                vec![d("1"), rest]
            };
            (
                Op::Split {
                    axis: a as i64,
                    sizes,
                },
                vec![v],
            )
        }
        9 => (
            Op::Cast {
                to: rng.pick(&DType::ALL),
            },
            vec![v],
        ),
        10 => {
            let k = dims.last().and_then(Dim::as_known).unwrap_or(1) as usize;
            let shape = if rng.coin() {
                vec![k, 1 + rng.below(3)]
            } else {
                vec![k]
            };
            let w = weight(g, rng, t.dtype, shape);
            (Op::MatMul, vec![v, w])
        }
        11 if rng.coin() => (Op::Softmax { axis: axis(rng, r) }, vec![v]),
        11 => (Op::LogSoftmax { axis: axis(rng, r) }, vec![v]),
        12 => {
            let shape = broadcast_shape(rng, &dims);
            let c = weight(g, rng, DType::Bool, shape);
            (Op::Where, vec![c, v, rng.pick(&[v, other])])
        }
        13 => (
            Op::Gelu {
                approx: rng.pick(GeluApprox::ALL),
            },
            vec![v],
        ),
        14 => {
            let shape = broadcast_shape(rng, &dims[dims.len().min(1)..]);
            let gamma = weight(g, rng, t.dtype, shape.clone());
            let beta = weight(g, rng, t.dtype, shape);
            let ins = if rng.coin() {
                vec![v, gamma, beta]
            } else {
                vec![v, gamma]
            };
            (
                Op::LayerNorm {
                    axis: -1,
                    eps: float_value(rng),
                },
                ins,
            )
        }
        _ => match rng.below(9) {
            0 => (
                Op::Pad {
                    pads: vec![1; 2 * r],
                    mode: rng.pick(PadMode::ALL),
                    value: float_value(rng),
                },
                vec![v],
            ),
            1 => (
                Op::CumSum {
                    axis: axis(rng, r),
                    exclusive: rng.coin(),
                    reverse: rng.coin(),
                },
                vec![v],
            ),
            2 => (
                Op::ShapeOf {
                    start: 0,
                    end: rng.pick(&[None, Some(-1)]),
                },
                vec![v],
            ),
            3 => (
                Op::Expand {
                    shape: [vec![d("2")], dims.clone()].concat(),
                },
                vec![v],
            ),
            4 => (
                Op::CumProd {
                    axis: axis(rng, r),
                    exclusive: rng.coin(),
                    reverse: rng.coin(),
                },
                vec![v],
            ),
            5 => (
                Op::TopK {
                    k: 1,
                    axis: axis(rng, r),
                    largest: rng.coin(),
                    sorted: rng.coin(),
                },
                vec![v],
            ),
            6 => {
                let idx = weight(g, rng, DType::I64, vec![1; r]);
                let upd = weight(g, rng, t.dtype, vec![1; r]);
                let op = Op::ScatterElements {
                    axis: axis(rng, r),
                    reduction: rng.pick(ScatterReduction::ALL),
                };
                (op, vec![v, idx, upd])
            }
            7 => {
                let idx = weight(g, rng, DType::I64, vec![1, r]);
                let upd = weight(g, rng, t.dtype, vec![1]);
                let reduction = rng.pick(ScatterReduction::ALL);
                (Op::ScatterND { reduction }, vec![v, idx, upd])
            }
            _ => {
                let start = rng.pick(&[d("0"), dims.first().cloned().unwrap_or(d("1"))]);
                let dtype = rng.pick(&[DType::I64, DType::F32, DType::I32]);
                (
                    Op::Range {
                        start,
                        limit: d("5"),
                        delta: d("2"),
                        dtype,
                    },
                    vec![],
                )
            }
        },
    })
}

fn build(steps: &[[u8; 4]], seed: u64) -> Graph {
    let mut rng = Rng(seed);
    let mut g = Graph::new();
    let mut names = Vec::new();
    let mut pool = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let rank = 1 + rng.below(4);
        let dims: Vec<Dim> = (0..rank)
            .map(|_| Dim::parse(rng.pick(&["batch", "seq", "1", "2", "3", "4"])).unwrap())
            .collect();
        let dtype = rng.pick(&[
            DType::F32,
            DType::F32,
            DType::F32,
            DType::F16,
            DType::I64,
            DType::Bool,
        ]);
        let name = unique(&mut rng, &mut names);
        pool.push(g.add_input(name, TensorType::new(dtype, Shape(dims))));
    }
    for &b in steps {
        if let Some((op, ins)) = step(&mut g, &mut rng, &pool, b) {
            if let Ok(outs) = g.add_node(op, &ins) {
                pool.extend(outs);
            }
        }
    }
    for dtype in DType::ALL {
        if rng.below(4) == 0 {
            let shape = (0..rng.below(3)).map(|_| rng.below(4)).collect();
            let w = weight(&mut g, &mut rng, dtype, shape);
            pool.push(w);
        }
    }
    let mut outs = vec![*pool.last().unwrap_or(&pool[0])];
    outs.extend((0..rng.below(3)).map(|_| rng.pick(&pool)));
    let mut out_names = Vec::new();
    for v in outs {
        let name = unique(&mut rng, &mut out_names);
        g.add_output(name, v);
    }
    g
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn print_parse_print_is_identity(steps in prop::collection::vec(any::<[u8; 4]>(), 0..24), seed in any::<u64>()) {
        let g = build(&steps, seed);
        kiln_compiler::verify(&g).unwrap();
        let text = print(&g).unwrap();
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        kiln_compiler::verify(&back).unwrap();
        prop_assert_eq!(print(&back).unwrap(), text.clone());
        prop_assert_eq!(back.num_nodes(), g.num_nodes());

        let opts = PrintOptions { inline_weight_limit: Some(2) };
        let elided = print_with(&g, &opts).unwrap();
        let back = parse(&elided).map_err(|e| TestCaseError::fail(format!("{e}\n{elided}")))?;
        prop_assert_eq!(print_with(&back, &opts).unwrap(), elided);
    }
}

#[test]
fn generated_graphs_cover_many_ops() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200u64 {
        let steps: Vec<[u8; 4]> = (0..24u64)
            .map(|i| (seed * 31 + i * 7).to_le_bytes()[..4].try_into().unwrap())
            .collect();
        let g = build(&steps, seed);
        for n in g.node_ids() {
            seen.insert(g.node(n).op.name());
        }
    }
    for op in [
        "add",
        "reduce_sum",
        "transpose",
        "reshape",
        "slice",
        "concat",
        "split",
        "cast",
        "matmul",
        "softmax",
        "where",
        "gelu",
        "layer_norm",
        "cumprod",
        "topk",
        "scatter_elements",
        "scatter_nd",
    ] {
        assert!(seen.contains(op), "`{op}` never generated; saw {seen:?}");
    }
}
