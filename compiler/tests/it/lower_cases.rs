//! Hand-written CPU backend cases: attention lowered to the fused kernel (q/k/v from projections
//! reshaped and transposed `(0, 2, 1, 3)`, the output transposed back, all four transposes
//! absorbed as layouts) with additive biases of several broadcast shapes, i64 and bool key
//! masks, causal exclusion, grouped-query heads, Sq ≠ Sk and rotary tables, each compiled once
//! and run at two bindings against the interpreter (rtol 1e-4, atol 1e-5); and the memory plan:
//! slot reuse along a chain, in-place elementwise steps over a dying `Full` input only, and
//! `Plan::validate` refusing hand-corrupted plans with a message naming the step or value.
//!
//! `attention_rotary_tables_broadcast_from_any_shape` guards a bug this suite found (rotary
//! tables the op accepts but the attention kernel refused at run time).

use kiln_compiler::ir::{BinaryOp, DType, Dim, GeluApprox, Graph, Op, Shape, TensorType};
use kiln_compiler::ir::{UnaryOp, ValueId, Weight};
use kiln_compiler::lower::lower;
use kiln_compiler::{compile, Options, Target};
use kiln_runtime::plan::{Kernel, Layout, Plan, PlanError, Storage, ValueId as PlanValueId};
use kiln_runtime::{LoadOptions, Model, Tensor};
use std::collections::BTreeMap;

const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-5;

type Feeds = BTreeMap<String, Tensor>;

/// A deterministic LCG of values in `[lo, hi)`.
struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        lo + (self.0 >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

fn dims(spec: &[&str]) -> Vec<Dim> {
    spec.iter().map(|s| Dim::parse(s).unwrap()).collect()
}

fn f32_ty(spec: &[&str]) -> TensorType {
    TensorType::new(DType::F32, Shape(dims(spec)))
}

fn weight(g: &mut Graph, rng: &mut Lcg, shape: Vec<usize>, lo: f64, hi: f64) -> ValueId {
    let n = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.uniform(lo, hi)).collect();
    let t = Tensor::from_f64_values(DType::F32, shape, &v).unwrap();
    let name = format!("w{}", g.weights().len());
    g.add_weight(Weight::from_tensor(name, &t))
}

fn node(g: &mut Graph, op: Op, ins: &[ValueId]) -> ValueId {
    g.add_node(op.clone(), ins)
        .unwrap_or_else(|e| panic!("building {op:?}: {e}"))[0]
}

/// Uniform f32 feeds in [-2, 2) for every input not in `fixed`, under `bindings`.
fn feeds(g: &Graph, bindings: &[(&str, i64)], fixed: &Feeds, seed: u64) -> Feeds {
    let b = bindings.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let mut rng = Lcg(seed);
    let mut out = fixed.clone();
    for &v in g.inputs() {
        let val = g.value(v);
        let name = val.name.clone().unwrap();
        if out.contains_key(&name) {
            continue;
        }
        let shape = val.ty.shape.eval(&b).unwrap();
        let n: usize = shape.iter().product();
        let x: Vec<f64> = (0..n).map(|_| rng.uniform(-2.0, 2.0)).collect();
        out.insert(
            name,
            Tensor::from_f64_values(val.ty.dtype, shape, &x).unwrap(),
        );
    }
    out
}

/// Every output of `got` within the tolerance of `want`.
fn assert_close(want: &[(String, Tensor)], got: &[(String, Tensor)], what: &str) {
    assert_eq!(want.len(), got.len(), "{what}: output count");
    for ((wn, w), (gn, o)) in want.iter().zip(got) {
        assert_eq!((wn, w.shape()), (gn, o.shape()), "{what}");
        for (i, (a, b)) in w.to_f64_vec().iter().zip(o.to_f64_vec()).enumerate() {
            let ok = *a == b || (a - b).abs() <= ATOL + RTOL * a.abs();
            assert!(ok, "{what}: `{wn}`[{i}]: runtime {b}, interpreter {a}");
        }
    }
}

/// No step writes an output into a slot one of its inputs holds, except an in-place
/// generated step over a `Full` input.
fn assert_disjoint(plan: &Plan) {
    for (i, s) in plan.steps.iter().enumerate() {
        for &o in &s.outputs {
            for (k, &v) in s.inputs.iter().enumerate() {
                if plan.slot_of(o).is_none() || plan.slot_of(o) != plan.slot_of(v) {
                    continue;
                }
                let ok = matches!(&s.kernel, Kernel::Generated(g)
                    if g.in_place && g.access[k] == kiln_runtime::plan::Access::Full);
                assert!(ok, "step {i} ({}) writes {o} over its input {v}", s.origin);
            }
        }
    }
}

/// Compiles `g` once and runs each feed set in one session against the interpreter; returns
/// the lowered plan.
fn compile_and_compare(g: &Graph, runs: &[Feeds], what: &str) -> Plan {
    let plan = lower(g)
        .unwrap_or_else(|e| panic!("{what}: lower: {e}"))
        .plan;
    assert_disjoint(&plan);
    let bytes = compile(g, &Target::host(), &Options { optimize: false })
        .unwrap()
        .to_bytes();
    let model = Model::from_bytes(bytes, &LoadOptions::default()).unwrap();
    let mut session = model.session();
    for (i, f) in runs.iter().enumerate() {
        let want = kiln_compiler::interp::run(g, f).unwrap();
        let got = session
            .run(f)
            .unwrap_or_else(|e| panic!("{what}: run {i}: {e}"));
        assert_close(&want, &got, &format!("{what}, run {i}"));
    }
    plan
}

/// One attention configuration.
#[derive(Debug, Clone)]
struct Attn {
    heads: usize,
    kv_heads: usize,
    d: usize,
    dv: usize,
    /// k and v come from a second input `m: [batch, mem, 8]` (Sk = `mem`), else from `x`.
    cross: bool,
    causal: bool,
    /// An additive bias input of this shape.
    bias: Option<&'static [&'static str]>,
    /// A key mask input `[batch, Sk]` of this dtype.
    mask: Option<DType>,
    /// Rotary tables: `Some(false)` as inputs `[seq, d]`, `Some(true)` as weights `[4, d]`
    /// (then `seq` is the known 4).
    rotary: Option<bool>,
    /// q/k/v are reshaped to `[batch, seq, h, d]` and transposed `(0, 2, 1, 3)`, the output
    /// transposed back; else they are reshaped straight to `[batch, h, seq, d]`.
    transposed: bool,
    /// The attention result and the transposed k are graph outputs too (no absorption).
    shared: bool,
}

const BASE: Attn = Attn {
    heads: 2,
    kv_heads: 2,
    d: 4,
    dv: 4,
    cross: false,
    causal: false,
    bias: None,
    mask: None,
    rotary: None,
    transposed: true,
    shared: false,
};

/// `[cos; sin]` rotary tables for positions `0..s` and head dim `d` (halves repeated).
fn rotary_tables(s: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut c, mut sn) = (Vec::new(), Vec::new());
    for p in 0..s {
        for i in 0..d {
            let f = 1.0 / 10000f64.powf((i % (d / 2)) as f64 * 2.0 / d as f64);
            c.push((p as f64 * f).cos());
            sn.push((p as f64 * f).sin());
        }
    }
    (c, sn)
}

/// `x·W` reshaped to the attention layout (through a `(0, 2, 1, 3)` transpose when asked).
fn project(
    g: &mut Graph,
    rng: &mut Lcg,
    a: &Attn,
    x: ValueId,
    seq: &str,
    h: usize,
    d: usize,
) -> ValueId {
    let w = weight(g, rng, vec![8, h * d], -0.5, 0.5);
    let p = node(g, Op::MatMul, &[x, w]);
    let (h, d) = (h.to_string(), d.to_string());
    if a.transposed {
        let shape = dims(&["batch", seq, &h, &d]);
        let r = node(g, Op::Reshape { shape }, &[p]);
        node(
            g,
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[r],
        )
    } else {
        let shape = dims(&["batch", &h, seq, &d]);
        node(g, Op::Reshape { shape }, &[p])
    }
}

fn attention_graph(a: &Attn) -> Graph {
    let mut g = Graph::new();
    let mut rng = Lcg(a.heads as u64 * 31 + a.d as u64);
    let seq = if a.rotary == Some(true) { "4" } else { "seq" };
    let x = g.add_input("x", f32_ty(&["batch", seq, "8"]));
    let (src, sk) = if a.cross {
        (g.add_input("m", f32_ty(&["batch", "mem", "8"])), "mem")
    } else {
        (x, seq)
    };
    let q = project(&mut g, &mut rng, a, x, seq, a.heads, a.d);
    let k = project(&mut g, &mut rng, a, src, sk, a.kv_heads, a.d);
    let v = project(&mut g, &mut rng, a, src, sk, a.kv_heads, a.dv);
    let mut ins = vec![q, k, v];
    if let Some(shape) = a.bias {
        ins.push(g.add_input("bias", f32_ty(shape)));
    }
    if let Some(dt) = a.mask {
        let ty = TensorType::new(dt, Shape(dims(&["batch", sk])));
        ins.push(g.add_input("mask", ty));
    }
    match a.rotary {
        Some(false) => {
            let d = a.d.to_string();
            ins.push(g.add_input("cos", f32_ty(&["seq", &d])));
            ins.push(g.add_input("sin", f32_ty(&["seq", &d])));
        }
        Some(true) => {
            let (c, s) = rotary_tables(4, a.d);
            for (name, vals) in [("cos", c), ("sin", s)] {
                let t = Tensor::from_f64_values(DType::F32, vec![4, a.d], &vals).unwrap();
                ins.push(g.add_weight(Weight::from_tensor(name, &t)));
            }
        }
        None => {}
    }
    let op = Op::Attention {
        heads: a.heads as u32,
        kv_heads: a.kv_heads as u32,
        scale: 1.0 / (a.d as f64).sqrt(),
        causal: a.causal,
        bias: a.bias.is_some(),
        mask: a.mask.is_some(),
        rotary: a.rotary.is_some(),
    };
    let att = node(&mut g, op, &ins);
    let o = if a.transposed {
        node(
            &mut g,
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[att],
        )
    } else {
        att
    };
    let flat = dims(&["batch", seq, &(a.heads * a.dv).to_string()]);
    let o2 = node(&mut g, Op::Reshape { shape: flat }, &[o]);
    let wo = weight(&mut g, &mut rng, vec![a.heads * a.dv, 8], -0.5, 0.5);
    let y = node(&mut g, Op::MatMul, &[o2, wo]);
    g.add_output("y", y);
    if a.shared {
        g.add_output("attn", att);
        g.add_output("k", k);
    }
    g
}

/// Compiles the case once, runs it at `bindings` (batch, seq, mem) against the interpreter and
/// checks the plan has one attention step with the expected layouts.
fn attention_case(name: &str, a: &Attn, bindings: &[(i64, i64, i64)]) {
    let g = attention_graph(a);
    let runs: Vec<Feeds> = bindings
        .iter()
        .enumerate()
        .map(|(i, &(b, s, m))| {
            let sk = if a.cross { m } else { s };
            let mut fixed = Feeds::new();
            if let Some(dt) = a.mask {
                // Key 0 is always attended, except every key of batch element 1 (when the
                // binding has one) for a bool mask: such a row gives zeros.
                let keep: Vec<i64> = (0..b * sk)
                    .map(|p| {
                        let (bi, j) = (p / sk, p % sk);
                        let all_off = dt == DType::Bool && bi == 1;
                        i64::from(!all_off && (j == 0 || (j + bi) % 3 != 1))
                    })
                    .collect();
                let shape = vec![b as usize, sk as usize];
                let t = match dt {
                    DType::Bool => {
                        Tensor::from_bools(shape, keep.iter().map(|&k| k != 0).collect())
                    }
                    _ => Tensor::from_i64_values(dt, shape, &keep),
                };
                fixed.insert("mask".into(), t.unwrap());
            }
            if a.rotary == Some(false) {
                let (c, sn) = rotary_tables(s as usize, a.d);
                let shape = vec![s as usize, a.d];
                fixed.insert(
                    "cos".into(),
                    Tensor::from_f64_values(DType::F32, shape.clone(), &c).unwrap(),
                );
                fixed.insert(
                    "sin".into(),
                    Tensor::from_f64_values(DType::F32, shape, &sn).unwrap(),
                );
            }
            feeds(
                &g,
                &[("batch", b), ("seq", s), ("mem", m)],
                &fixed,
                100 + i as u64,
            )
        })
        .collect();
    let plan = compile_and_compare(&g, &runs, name);
    let attn: Vec<_> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.kernel {
            Kernel::Attention(at) => Some(at.layouts),
            _ => None,
        })
        .collect();
    let (io, shared) = if a.transposed {
        (
            Layout::Bshd,
            if a.shared { Layout::Bhsd } else { Layout::Bshd },
        )
    } else {
        (Layout::Bhsd, Layout::Bhsd)
    };
    assert_eq!(
        attn,
        vec![[io, shared, io, shared]],
        "{name}: attention layouts"
    );
    let transposes = plan
        .steps
        .iter()
        .filter(|s| matches!(&s.kernel, Kernel::Reference(Op::Transpose { .. })))
        .count();
    let want = if a.shared && a.transposed { 2 } else { 0 };
    assert_eq!(
        transposes, want,
        "{name}: transposes left as reference steps"
    );
}

const SELF_RUNS: &[(i64, i64, i64)] = &[(1, 4, 0), (3, 3, 0)];
const CROSS_RUNS: &[(i64, i64, i64)] = &[(1, 4, 6), (3, 3, 5)];

#[test]
fn attention_self_heads_transposed_in_and_out() {
    attention_case("self", &BASE, SELF_RUNS);
}

#[test]
fn attention_cross_with_sq_ne_sk_and_head_dims() {
    let a = Attn {
        cross: true,
        dv: 6,
        ..BASE
    };
    attention_case("cross", &a, CROSS_RUNS);
}

#[test]
fn attention_bias_broadcast_shapes() {
    for shape in [
        &["batch", "2", "seq", "mem"][..],
        &["1", "2", "seq", "mem"],
        &["batch", "1", "1", "mem"],
        &["seq", "mem"],
        &["mem"],
    ] {
        let a = Attn {
            cross: true,
            bias: Some(shape),
            ..BASE
        };
        attention_case(&format!("bias {shape:?}"), &a, CROSS_RUNS);
    }
}

#[test]
fn attention_key_masks_i64_and_bool() {
    let a = Attn {
        cross: true,
        mask: Some(DType::I64),
        ..BASE
    };
    attention_case("mask i64", &a, CROSS_RUNS);
    let a = Attn {
        mask: Some(DType::Bool),
        ..BASE
    };
    attention_case("mask bool", &a, SELF_RUNS);
}

#[test]
fn attention_causal_self_and_shifted() {
    let a = Attn {
        causal: true,
        ..BASE
    };
    attention_case("causal", &a, SELF_RUNS);
    // Sk > Sq: key j is seen by query i when j ≤ i + Sk - Sq; Sk < Sq: the first queries see
    // no key at all and give zeros.
    let a = Attn {
        causal: true,
        cross: true,
        ..BASE
    };
    attention_case("causal cross", &a, &[(1, 3, 5), (3, 4, 2)]);
}

#[test]
fn attention_grouped_query_heads() {
    let a = Attn {
        heads: 4,
        kv_heads: 2,
        ..BASE
    };
    attention_case("gqa", &a, SELF_RUNS);
    let a = Attn {
        heads: 4,
        kv_heads: 2,
        causal: true,
        mask: Some(DType::Bool),
        cross: true,
        bias: Some(&["1", "4", "seq", "mem"]),
        ..BASE
    };
    attention_case("gqa causal mask bias", &a, CROSS_RUNS);
}

#[test]
fn attention_rotary_tables() {
    let a = Attn {
        rotary: Some(false),
        ..BASE
    };
    attention_case("rotary inputs", &a, SELF_RUNS);
    let a = Attn {
        rotary: Some(true),
        heads: 4,
        kv_heads: 2,
        causal: true,
        ..BASE
    };
    attention_case("rotary weights gqa causal", &a, &[(1, 4, 0), (3, 4, 0)]);
}

#[test]
fn attention_longer_than_a_tile() {
    let a = Attn {
        heads: 4,
        kv_heads: 2,
        d: 16,
        dv: 16,
        cross: true,
        causal: true,
        mask: Some(DType::Bool),
        ..BASE
    };
    attention_case("long cross", &a, &[(1, 19, 70), (3, 70, 19)]);
    let a = Attn {
        heads: 2,
        kv_heads: 1,
        d: 64,
        dv: 32,
        rotary: Some(false),
        bias: Some(&["batch", "1", "seq", "seq"]),
        ..BASE
    };
    attention_case("long rotary", &a, &[(1, 33, 0), (2, 65, 0)]);
}

#[test]
fn attention_bhsd_layout_and_shared_transposes() {
    let a = Attn {
        transposed: false,
        mask: Some(DType::I64),
        ..BASE
    };
    attention_case("bhsd", &a, SELF_RUNS);
    let a = Attn {
        shared: true,
        causal: true,
        ..BASE
    };
    attention_case("shared", &a, SELF_RUNS);
}

fn input(g: &mut Graph, name: &str, spec: &[&str]) -> ValueId {
    g.add_input(name, f32_ty(spec))
}

/// A step the reference kernel runs (not an elementwise op the generator fuses).
fn reference_op(g: &mut Graph, x: ValueId) -> ValueId {
    node(g, Op::Softmax { axis: 1 }, &[x])
}

fn run_at(g: &Graph, batches: &[i64]) -> Vec<Feeds> {
    batches
        .iter()
        .map(|&b| feeds(g, &[("batch", b)], &Feeds::new(), b as u64))
        .collect()
}

fn arena_values(plan: &Plan) -> usize {
    plan.values
        .iter()
        .filter(|v| matches!(v.storage, Storage::Slot(_) | Storage::Input { .. }))
        .count()
}

#[test]
fn a_long_chain_reuses_slots() {
    let mut g = Graph::new();
    let mut v = input(&mut g, "x", &["batch", "5", "8"]);
    for i in 0..12 {
        v = if i % 3 == 2 {
            node(&mut g, Op::Unary(UnaryOp::Softplus), &[v])
        } else {
            reference_op(&mut g, v)
        };
    }
    g.add_output("y", v);
    let plan = compile_and_compare(&g, &run_at(&g, &[1, 3]), "chain");
    assert_eq!(arena_values(&plan), 13);
    assert!(
        plan.slots.len() <= 2,
        "{} slots for a chain: {:?}",
        plan.slots.len(),
        plan.slots
    );
}

#[test]
fn an_elementwise_step_overwrites_its_dying_full_input() {
    let mut g = Graph::new();
    let x = input(&mut g, "x", &["batch", "5", "8"]);
    let t = reference_op(&mut g, x);
    let mut rng = Lcg(3);
    let w = weight(&mut g, &mut rng, vec![8], -1.0, 1.0);
    let e = node(&mut g, Op::Unary(UnaryOp::Exp), &[t]);
    let y = node(&mut g, Op::Binary(BinaryOp::Mul), &[e, w]);
    let z = node(
        &mut g,
        Op::Gelu {
            approx: GeluApprox::Tanh,
        },
        &[y],
    );
    g.add_output("z", z);
    let plan = compile_and_compare(&g, &run_at(&g, &[1, 3]), "in place");
    let ids: Vec<PlanValueId> = plan.steps.iter().flat_map(|s| s.outputs.clone()).collect();
    let [t_id, z_id] = ids[..] else {
        panic!(
            "expected a reference step and one fused step: {:?}",
            plan.steps
        );
    };
    assert!(matches!(&plan.steps[1].kernel, Kernel::Generated(gk) if gk.in_place));
    assert_eq!(
        plan.slot_of(z_id),
        plan.slot_of(t_id),
        "the fused step's output"
    );
}

#[test]
fn an_elementwise_step_keeps_a_live_or_broadcast_input() {
    // `t` is read again after the fused step: the step must not overwrite it.
    let mut g = Graph::new();
    let x = input(&mut g, "x", &["batch", "5", "8"]);
    let t = reference_op(&mut g, x);
    let e = node(&mut g, Op::Unary(UnaryOp::Exp), &[t]);
    let u = reference_op(&mut g, t);
    g.add_output("e", e);
    g.add_output("u", u);
    let plan = compile_and_compare(&g, &run_at(&g, &[1, 3]), "live input");
    let (t_id, e_id) = (plan.steps[0].outputs[0], plan.steps[1].outputs[0]);
    assert_ne!(plan.slot_of(e_id), plan.slot_of(t_id));

    // `v` dies at the fused step but is also read through a Row alias: no overwrite.
    let mut g = Graph::new();
    let v = input(&mut g, "v", &["1", "8"]);
    let r = node(
        &mut g,
        Op::Reshape {
            shape: dims(&["8"]),
        },
        &[v],
    );
    let s = node(&mut g, Op::Binary(BinaryOp::Sub), &[v, r]);
    let s = node(&mut g, Op::Unary(UnaryOp::Tanh), &[s]);
    g.add_output("s", s);
    let plan = compile_and_compare(&g, &run_at(&g, &[1]), "row alias");
    let step = &plan.steps[0];
    assert!(
        matches!(&step.kernel, Kernel::Generated(_)),
        "{:?}",
        plan.steps
    );
    assert_ne!(plan.slot_of(step.outputs[0]), plan.slot_of(step.inputs[0]));

    // A dying Col input is not overwritten either (it is smaller than the output).
    let mut g = Graph::new();
    let x = input(&mut g, "x", &["batch", "5", "8"]);
    let c = node(
        &mut g,
        Op::Reduce {
            op: kiln_compiler::ir::ReduceOp::Max,
            axes: vec![-1],
            keepdims: true,
        },
        &[x],
    );
    let d = node(&mut g, Op::Binary(BinaryOp::Sub), &[x, c]);
    let d = node(&mut g, Op::Unary(UnaryOp::Exp), &[d]);
    g.add_output("d", d);
    let plan = compile_and_compare(&g, &run_at(&g, &[1, 3]), "col");
    let step = &plan.steps[1];
    assert_eq!(
        plan.slot_of(step.outputs[0]),
        plan.slot_of(step.inputs[0]),
        "over x"
    );
    assert_ne!(
        plan.slot_of(step.outputs[0]),
        plan.slot_of(step.inputs[1]),
        "over the Col"
    );
}

/// A plan with a packed GEMM, a reference step reading a weight, a generated step; its
/// weights section length and kernel symbols.
fn plan_to_corrupt() -> (Plan, u64, Vec<String>) {
    let mut g = Graph::new();
    let mut rng = Lcg(9);
    let x = input(&mut g, "x", &["batch", "5", "8"]);
    let w = weight(&mut g, &mut rng, vec![8, 8], -0.5, 0.5);
    let h = node(&mut g, Op::MatMul, &[x, w]);
    let h = node(
        &mut g,
        Op::Gelu {
            approx: GeluApprox::None,
        },
        &[h],
    );
    let s = reference_op(&mut g, h);
    let w2 = weight(&mut g, &mut rng, vec![5, 8], -0.5, 0.5);
    let s = node(&mut g, Op::Binary(BinaryOp::Sub), &[s, w2]);
    let row = weight(&mut g, &mut rng, vec![8], -0.5, 0.5);
    let y = node(&mut g, Op::Binary(BinaryOp::Add), &[s, row]);
    let y = node(&mut g, Op::Unary(UnaryOp::Exp), &[y]);
    g.add_output("y", y);
    compile_and_compare(&g, &run_at(&g, &[2]), "to corrupt");
    let l = lower(&g).unwrap();
    let names = l.kernels.iter().map(|k| k.name().to_string()).collect();
    (l.plan, l.weights.len() as u64, names)
}

fn validate(plan: &Plan, weights_len: u64, names: &[String]) -> Result<(), PlanError> {
    plan.validate(weights_len, &|s: &str| names.iter().any(|n| n == s))
}

/// The index of the first step whose kernel `pick` accepts.
fn step_where(plan: &Plan, pick: impl Fn(&Kernel) -> bool) -> usize {
    plan.steps
        .iter()
        .position(|s| pick(&s.kernel))
        .expect("such a step")
}

#[test]
fn validate_refuses_corrupted_plans() {
    let (plan, wlen, names) = plan_to_corrupt();
    validate(&plan, wlen, &names).unwrap();
    let refuse = |p: &Plan, at: &str, msg: &str| {
        let e = validate(p, wlen, &names).expect_err(at).to_string();
        assert!(
            e.contains(at) && e.contains(msg),
            "expected `{at}` … `{msg}`, got: {e}"
        );
    };

    // A value id out of range.
    let mut p = plan.clone();
    let i = step_where(&p, |k| matches!(k, Kernel::Reference(_)));
    p.steps[i].inputs[0] = PlanValueId::from_index(p.values.len() + 3);
    refuse(&p, &format!("step {i} ("), "out of range");
    let mut p = plan.clone();
    p.outputs[0].value = PlanValueId(9999);
    refuse(&p, "output 0 `y`", "out of range");

    // An output placed in its input's slot (a reference step is never in place).
    let mut p = plan.clone();
    let (o, v) = (p.steps[i].outputs[0], p.steps[i].inputs[0]);
    let s = p.slot_of(v).unwrap();
    p.values[o.index()].storage = Storage::Slot(s);
    refuse(
        &p,
        &format!("step {i} ("),
        &format!("output value {o} shares slot {s} with input value {v}"),
    );

    // Weight bytes past the section: a plain weight, then the packed GEMM operand.
    let mut p = plan.clone();
    let wv = p
        .values
        .iter()
        .position(|v| matches!(v.storage, Storage::Weight { .. }))
        .unwrap();
    let Storage::Weight { len, .. } = p.values[wv].storage else {
        unreachable!()
    };
    p.values[wv].storage = Storage::Weight {
        offset: wlen.next_multiple_of(64),
        len,
    };
    refuse(&p, &format!("value {wv}"), "past the weights section");
    let mut p = plan.clone();
    let gi = step_where(&p, |k| matches!(k, Kernel::Gemm(_)));
    if let Kernel::Gemm(gs) = &mut p.steps[gi].kernel {
        if let kiln_runtime::plan::GemmB::Packed { offset, .. } = &mut gs.b {
            *offset += wlen.next_multiple_of(64);
        }
    }
    refuse(&p, &format!("step {gi} ("), "packed weights");

    // A generated step calling a symbol the code section lacks.
    let mut p = plan.clone();
    let gi = step_where(&p, |k| matches!(k, Kernel::Generated(_)));
    if let Kernel::Generated(gs) = &mut p.steps[gi].kernel {
        gs.symbol = "kiln_missing".into();
    }
    refuse(&p, &format!("step {gi} ("), "calls `kiln_missing`");
}

/// Regression (found by this suite): lowering picks the attention kernel for rotary `cos`/`sin`
/// of any shape broadcasting to `[B, 1, S, D]` (the op's contract, which the interpreter
/// follows); the kernel once took only `[S, D]`, `[B', S, D]` and `[B', 1, S, D]`, so tables of
/// shape `[D]`, `[1, D]`, `[S, 1]`, `[1, 1, 1, D]` or `[B, 1, 1, D]` failed at run time ("rotary
/// cos/sin are [2]/[2], which do not broadcast to [1, 1, 2, 2]").
#[test]
fn attention_rotary_tables_broadcast_from_any_shape() {
    let shapes = [
        "4",
        "1, 4",
        "seq, 1",
        "1, 1, 1, 4",
        "batch, 1, 1, 4",
        "1, seq, 4",
        "1, 1, seq, 1",
    ];
    for cs in shapes {
        let src = format!(
            "kir 1
graph {{
  input %q: f32[batch, 2, seq, 4]
  input %k: f32[batch, 2, seq, 4]
  input %v: f32[batch, 2, seq, 4]
  input %cos: f32[{cs}]
  input %sin: f32[{cs}]
  %0 = attention(%q, %k, %v, %cos, %sin) {{heads = 2, kv_heads = 2, scale = 0.5, causal = true, bias = false, mask = false, rotary = true}} : f32[batch, 2, seq, 4]
  output \"y\" = %0
}}
"
        );
        let g = kiln_compiler::text::parse(&src).unwrap();
        let runs =
            [(1, 3), (3, 5)].map(|(b, s)| feeds(&g, &[("batch", b), ("seq", s)], &Feeds::new(), 7));
        let plan = compile_and_compare(&g, &runs, &format!("rotary [{cs}]"));
        assert!(
            matches!(plan.steps[0].kernel, Kernel::Attention(_)),
            "[{cs}]"
        );
    }
}
