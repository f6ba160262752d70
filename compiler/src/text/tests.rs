//! Unit tests of the text module's internals: quoting, the op attribute table, and parsing
//! of documents without nodes (which needs no shape inference).
use super::attrs::{parse_block, Fields};
use super::lexer::{Lexer, Source};
use super::*;
use crate::ir::*;
use kiln_runtime::Tensor;

#[test]
fn bare_names_and_quoting() {
    assert!(is_bare_name("input_ids"));
    assert!(is_bare_name("attention.mask"));
    assert!(is_bare_name("_x9"));
    assert!(!is_bare_name("0"));
    assert!(!is_bare_name(""));
    assert!(!is_bare_name("a b"));
    assert!(!is_bare_name(".a"));
    assert_eq!(input_ref("x.y"), "%x.y");
    assert_eq!(input_ref("a b"), "%\"a b\"");
    assert_eq!(quote("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u{1}é\"");
}

#[test]
fn print_options_default_inlines_everything() {
    assert_eq!(PrintOptions::default().inline_weight_limit, None);
}

#[test]
fn parse_of_empty_text_is_an_error_at_1_1() {
    match parse("") {
        Err(crate::Error::Parse { line, col, .. }) => assert_eq!((line, col), (1, 1)),
        other => panic!("unexpected {other:?}"),
    }
}

/// One op of every variant, with non-default attribute values.
fn every_variant() -> Vec<Op> {
    let d = |s: &str| Dim::parse(s).unwrap();
    vec![
        Op::Unary(UnaryOp::Tanh),
        Op::Binary(BinaryOp::Max),
        Op::Where,
        Op::Cast { to: DType::BF16 },
        Op::Reduce {
            op: ReduceOp::LogSumExp,
            axes: vec![-1, 0],
            keepdims: true,
        },
        Op::ArgReduce {
            op: ArgOp::ArgMin,
            axis: 2,
            keepdims: false,
            select_last: true,
        },
        Op::MatMul,
        Op::Softmax { axis: -1 },
        Op::LogSoftmax { axis: 1 },
        Op::Conv {
            strides: vec![2, 2],
            pads: vec![1, 1, 1, 1],
            dilations: vec![1, 1],
            group: 2,
        },
        Op::ConvTranspose {
            strides: vec![2],
            pads: vec![0, 1],
            dilations: vec![1],
            group: 1,
            output_padding: vec![1],
        },
        Op::Pool {
            kind: PoolKind::Avg,
            kernel: vec![3, 3],
            strides: vec![1, 1],
            pads: vec![0, 0, 0, 0],
            dilations: vec![1, 1],
            ceil_mode: true,
            count_include_pad: false,
        },
        Op::Reshape {
            shape: vec![d("batch*seq"), d("-1")],
        },
        Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        Op::Expand {
            shape: vec![d("max(a, b)"), d("(seq+1)/2")],
        },
        Op::Slice {
            axes: vec![1],
            starts: vec![d("1")],
            ends: vec![d("seq-1")],
            steps: vec![-1],
        },
        Op::Concat { axis: 0 },
        Op::Split {
            axis: 1,
            sizes: vec![d("seq"), d("1")],
        },
        Op::Gather { axis: 0 },
        Op::GatherElements { axis: 1 },
        Op::Pad {
            pads: vec![1, 0, 0, 1],
            mode: PadMode::Reflect,
            value: -0.5,
        },
        Op::Range {
            start: d("0"),
            limit: d("seq"),
            delta: d("2"),
            dtype: DType::I32,
        },
        Op::Tile {
            repeats: vec![1, 3],
        },
        Op::Trilu {
            upper: false,
            k: -1,
        },
        Op::CumSum {
            axis: 0,
            exclusive: true,
            reverse: false,
        },
        Op::CumProd {
            axis: -1,
            exclusive: false,
            reverse: true,
        },
        Op::TopK {
            k: 3,
            axis: -1,
            largest: false,
            sorted: true,
        },
        Op::ScatterElements {
            axis: 1,
            reduction: ScatterReduction::Max,
        },
        Op::ScatterND {
            reduction: ScatterReduction::None,
        },
        Op::ShapeOf {
            start: 1,
            end: None,
        },
        Op::ShapeOf {
            start: 0,
            end: Some(-1),
        },
        Op::LayerNorm {
            axis: -1,
            eps: 1e-5,
        },
        Op::RmsNorm { eps: f64::NAN },
        Op::Gelu {
            approx: GeluApprox::Tanh,
        },
        Op::Attention {
            heads: 8,
            kv_heads: 2,
            scale: 0.125,
            causal: true,
            bias: false,
            mask: true,
            rotary: true,
        },
        Op::Recurrent {
            cell: RnnCell::Gru,
            direction: RnnDirection::Bidirectional,
            hidden_size: 32,
            activations: vec![
                RnnActivation::HardSigmoid,
                RnnActivation::Tanh,
                RnnActivation::Sigmoid,
                RnnActivation::ScaledTanh,
            ],
            activation_alpha: vec![0.2, 0.0, 0.0, 1.5],
            activation_beta: vec![0.5, 0.0, 0.0, -0.25],
            clip: f64::INFINITY,
            input_forget: false,
            linear_before_reset: true,
            batch_first: true,
            bias: true,
            seq_lens: true,
            initial_h: false,
            initial_c: false,
            peepholes: false,
        },
    ]
}

#[test]
fn every_op_round_trips_through_its_attribute_block() {
    for op in every_variant() {
        let attrs = op.attrs();
        let list: Vec<String> = attrs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let text = format!("{{{}}}", list.join(", "));
        let src = Source::new(&text);
        let mut lx = Lexer::new(&src);
        let raw = parse_block(&mut lx, op.name()).unwrap();
        let mut f = Fields::new(&src, op.name(), 0, raw);
        let back = Op::from_text(op.name(), &mut f).unwrap();
        f.finish().unwrap_or_else(|e| panic!("{text}: {e}"));
        // NaN attributes compare unequal; compare the printed forms instead.
        assert_eq!(format!("{back:?}"), format!("{op:?}"), "{text}");
    }
    let src = Source::new("");
    assert!(Op::from_text("frobnicate", &mut Fields::new(&src, "x", 0, vec![])).is_none());
}

fn parse_err(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(crate::Error::Parse { line, col, message }) => (line, col, message),
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

#[test]
fn graphs_without_nodes_round_trip() {
    let mut g = Graph::new();
    let x = g.add_input(
        "x",
        TensorType::new(DType::F32, Shape(vec![Dim::sym("batch")])),
    );
    let q = g.add_input("a \"b\"", TensorType::new(DType::I64, Shape::scalar()));
    let t = Tensor::from_f32(vec![2, 2], vec![0.5, f32::NAN, f32::INFINITY, -0.0]).unwrap();
    let w = g.add_weight(Weight::from_tensor("w.0", &t));
    let b = Tensor::from_bools(vec![3], vec![true, false, true]).unwrap();
    let wb = g.add_weight(Weight::from_tensor("flags", &b));
    g.add_output("y", x);
    g.add_output("q", q);
    g.add_output("flags", wb);
    g.add_output("w", w);
    let text = print(&g).unwrap();
    let expected = "kir 1\ngraph {\n  input %x: f32[batch]\n  input %\"a \\\"b\\\"\": i64[]\n  \
        weight @0 \"flags\": bool[3] = [true, false, true]\n  \
        weight @1 \"w.0\": f32[2, 2] = [0.5, nan, inf, -0.0]\n  output \"y\" = %x\n  \
        output \"q\" = %\"a \\\"b\\\"\"\n  output \"flags\" = @0\n  output \"w\" = @1\n}\n";
    assert_eq!(text, expected);
    let back = parse(&text).unwrap();
    assert_eq!(print(&back).unwrap(), text);
    let opts = PrintOptions {
        inline_weight_limit: Some(3),
    };
    let elided = print_with(&back, &opts).unwrap();
    assert!(elided.contains("f32[2, 2] = opaque"), "{elided}");
    assert!(elided.contains("= [true, false, true]"), "{elided}");
    assert_eq!(print_with(&parse(&elided).unwrap(), &opts).unwrap(), elided);
}

#[test]
fn every_dtype_literal_round_trips() {
    let mut g = Graph::new();
    for (i, d) in DType::ALL.into_iter().enumerate() {
        let t = Tensor::from_f64_values(d, vec![4], &[0.0, 1.0, -2.0, 3.5]).unwrap();
        let v = g.add_weight(Weight::from_tensor(format!("w{i}"), &t));
        g.add_output(format!("o{i}"), v);
    }
    let text = print(&g).unwrap();
    assert!(text.contains("bf16[4] = [0.0, 1.0, -2.0, 3.5]"), "{text}");
    assert!(text.contains("u8[4] = [0, 1, 254, 3]"), "{text}");
    assert_eq!(print(&parse(&text).unwrap()).unwrap(), text);
}

#[test]
fn positions_count_characters_and_skip_comments() {
    let text = "kir 1 # version\ngraph {\n  # é comment\n  input %é: f32[2]\n}";
    assert_eq!(parse_err(text).0, 4);
    let text = "kir 1\ngraph {\n  input %\"é\": f32[b, $]\n}";
    let (line, col, msg) = parse_err(text);
    assert_eq!((line, col), (3, 22), "{msg}");
    let text = "kir 1\ngraph {\n  input %x: f32[2]\n}\n";
    let (line, col, msg) = parse_err(text);
    assert_eq!((line, col), (4, 1));
    assert!(msg.contains("has-outputs"), "{msg}");
    let (line, col, msg) = parse_err("kir 2\ngraph {}");
    assert_eq!((line, col), (1, 5));
    assert!(msg.contains("version"), "{msg}");
}

#[test]
fn weights_are_checked_against_their_type() {
    let head = "kir 1\ngraph {\n  weight @0 \"w\": ";
    // (text after the head, where the error points in it, message fragment)
    let cases = [
        ("f32[batch] = opaque", "batch", "known non-negative"),
        ("f32[2] = [1.0]", "[1", "1 values but f32[2] has 2"),
        ("f32[2] = [1.0, 2.0, 3.0]", "[1", "3 values"),
        ("u8[1] = [256]", "256", "out of range"),
        ("f32[1] = [1.2.3]", "1.2", "bad f32 value"),
        ("i8[1] = [true]", "true", "bad i8 value"),
        ("f32[4611686018427387904, 4] = opaque", "f32", "too large"),
        ("f32[1] = [\"x\"]", "\"", "expected a f32 value"),
        ("f32[1] = [-x]", "-", "bad f32 value `-x`"),
        ("f32[1] = [1 2]", "2]", "expected `,` or `]`"),
    ];
    for (rest, marker, fragment) in cases {
        let (line, c, msg) = parse_err(&format!("{head}{rest}\n  output \"o\" = @0\n}}"));
        let col = 18 + rest.find(marker).unwrap();
        assert_eq!((line, c), (3, col), "{rest}: {msg}");
        assert!(msg.contains(fragment), "{rest}: {msg}");
    }
    let huge = format!("{head}f32[9223372036854775807] = opaque\n  output \"o\" = @0\n}}");
    assert!(parse(&huge).is_err());
}

#[test]
fn blanks_and_comments_inside_nodes() {
    let text = "kir 1\ngraph {\n  input %x: f32[ batch , 4 ]\n  %0 = reshape( %x ) # c\n    \
        { shape = [ batch * 4 , max( batch , 2 ) - max(2, batch) + 1 ] }\n    : f32[4 * batch, 1]\n  \
        output \"y\" = %0 }";
    let g = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let printed = print(&g).unwrap();
    assert!(
        printed.contains("{shape = [4*batch, 1]} : f32[4*batch, 1]"),
        "{printed}"
    );
    let (line, col, msg) = parse_err("kir 1\ngraph {\n  input %x: f32[batch seq]\n}");
    assert_eq!((line, col), (3, 23), "{msg}");
}
