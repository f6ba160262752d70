//! Generates the shipped example model `examples/tiny_classifier.kir` and its inputs
//! `examples/tiny_classifier_inputs.npz` with Kiln's own IR builder, printer and `.npz` writer.
//!
//! The model is a one-block token classifier: embedding gather → layer norm → 2-layer MLP with
//! GELU and a residual connection → mean over the sequence → linear logits, with symbolic
//! `batch` and `seq` dims and 460 deterministic weight values (a fixed LCG, no `rand`).
//!
//! Run with `cargo run --example make_tiny_classifier [OUT_DIR]` (default: `examples/`).

use kiln_compiler::ir::{
    BinaryOp, Dim, GeluApprox, Graph, Op, ReduceOp, Shape, TensorType, ValueId, Weight,
};
use kiln_runtime::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Vocabulary size (rows of the embedding table).
const VOCAB: usize = 16;
/// Model width.
const DIM: usize = 8;
/// MLP hidden width.
const HIDDEN: usize = 16;
/// Number of classes.
const CLASSES: usize = 4;

/// A 64-bit linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    /// A value in [-1, 1) on a grid of 1/1024; with power-of-two scales every weight is an exact
    /// binary fraction, so the printed text is exact.
    fn next_unit(&mut self) -> f32 {
        (self.next_u32() % 2048) as f32 / 1024.0 - 1.0
    }
}

/// Adds an f32 weight of `shape` with values `offset + scale · u`, `u` uniform in [-1, 1).
fn weight(
    g: &mut Graph,
    rng: &mut Lcg,
    name: &str,
    shape: &[usize],
    offset: f32,
    scale: f32,
) -> anyhow::Result<ValueId> {
    let n: usize = shape.iter().product();
    let values = (0..n).map(|_| offset + scale * rng.next_unit()).collect();
    let t = Tensor::from_f32(shape.to_vec(), values)?;
    Ok(g.add_weight(Weight::from_tensor(name, &t)))
}

/// Adds a single-output node.
fn node(g: &mut Graph, op: Op, inputs: &[ValueId]) -> anyhow::Result<ValueId> {
    Ok(g.add_node(op, inputs)?[0])
}

/// Builds the classifier graph.
fn build() -> anyhow::Result<Graph> {
    let mut rng = Lcg(0x5eed_1234);
    let mut g = Graph::new();
    let tokens = g.add_input(
        "tokens",
        TensorType::new(DType::I64, Shape(vec![Dim::sym("batch"), Dim::sym("seq")])),
    );
    let embed = weight(&mut g, &mut rng, "embed", &[VOCAB, DIM], 0.0, 0.5)?;
    let gamma = weight(&mut g, &mut rng, "ln.gamma", &[DIM], 1.0, 0.125)?;
    let beta = weight(&mut g, &mut rng, "ln.beta", &[DIM], 0.0, 0.125)?;
    let w1 = weight(&mut g, &mut rng, "mlp.w1", &[DIM, HIDDEN], 0.0, 0.5)?;
    let b1 = weight(&mut g, &mut rng, "mlp.b1", &[HIDDEN], 0.0, 0.125)?;
    let w2 = weight(&mut g, &mut rng, "mlp.w2", &[HIDDEN, DIM], 0.0, 0.25)?;
    let b2 = weight(&mut g, &mut rng, "mlp.b2", &[DIM], 0.0, 0.125)?;
    let wout = weight(&mut g, &mut rng, "head.w", &[DIM, CLASSES], 0.0, 0.5)?;
    let bout = weight(&mut g, &mut rng, "head.b", &[CLASSES], 0.0, 0.125)?;

    let add = Op::Binary(BinaryOp::Add);
    // [batch, seq] tokens → [batch, seq, DIM] embeddings.
    let x = node(&mut g, Op::Gather { axis: 0 }, &[embed, tokens])?;
    let ln = Op::LayerNorm {
        axis: -1,
        eps: 1e-5,
    };
    let h = node(&mut g, ln, &[x, gamma, beta])?;
    let h = node(&mut g, Op::MatMul, &[h, w1])?;
    let h = node(&mut g, add.clone(), &[h, b1])?;
    let gelu = Op::Gelu {
        approx: GeluApprox::None,
    };
    let h = node(&mut g, gelu, &[h])?;
    let h = node(&mut g, Op::MatMul, &[h, w2])?;
    let h = node(&mut g, add.clone(), &[h, b2])?;
    let r = node(&mut g, add.clone(), &[x, h])?;
    // Mean over the sequence: [batch, seq, DIM] → [batch, DIM].
    let mean = Op::Reduce {
        op: ReduceOp::Mean,
        axes: vec![1],
        keepdims: false,
    };
    let pooled = node(&mut g, mean, &[r])?;
    let logits = node(&mut g, Op::MatMul, &[pooled, wout])?;
    let logits = node(&mut g, add, &[logits, bout])?;
    g.add_output("logits", logits);
    kiln_compiler::verify(&g)?;
    Ok(g)
}

/// Two sequences of five token ids.
fn inputs() -> anyhow::Result<BTreeMap<String, Tensor>> {
    let mut rng = Lcg(0x1_0000_0001);
    let ids = (0..10)
        .map(|_| i64::from(rng.next_u32() % VOCAB as u32))
        .collect();
    let mut m = BTreeMap::new();
    m.insert("tokens".to_string(), Tensor::from_i64(vec![2, 5], ids)?);
    Ok(m)
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples"));
    let g = build()?;
    let text = kiln_compiler::text::print(&g)?;
    let model = dir.join("tiny_classifier.kir");
    std::fs::write(&model, &text)?;
    let npz = dir.join("tiny_classifier_inputs.npz");
    kiln::write_npz(&npz, &inputs()?, kiln::npz::Compression::Stored)?;

    // Check the printed model parses back and runs on the inputs.
    let parsed = kiln_compiler::text::parse(&text)?;
    let outputs = kiln_compiler::interp::run(&parsed, &inputs()?)?;
    println!("wrote {} and {}", model.display(), npz.display());
    for (name, t) in outputs {
        println!(
            "{name}: {}{:?} = {:?}",
            t.dtype(),
            t.shape(),
            t.to_f64_vec()
        );
    }
    Ok(())
}
