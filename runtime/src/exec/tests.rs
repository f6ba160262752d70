//! The executor on a hand-built plan with no generated code, so that Miri can run it: an
//! in-memory artifact (`Model::from_bytes`), a row gather, a packed GEMM with bias and ReLU,
//! fused attention over an alias of the GEMM's output written into a reused arena slot, and a
//! reference reduction; sessions at changing shapes (the arena grows and is reused), and two
//! threads with a session each on one model (Miri's data-race detector watches the arena, the
//! frame and the pool).

use super::arena::{Arena, Layout, ALIGN};
use crate::artifact::{ArtifactWriter, SectionKind, Target};
use crate::kernels::gemm::{pack_b, packed_len};
use crate::ops::{Dim, Op, ReduceOp, Shape, TensorType};
use crate::plan::{
    Activation, AttentionStep, GemmB, GemmStep, Io, Kernel, Layout as AttnLayout, Plan, Slot,
    SlotId, Step, Storage, ValueId, ValueInfo, PLAN_VERSION,
};
use crate::test_util::Rng;
use crate::{CpuFeatures, DType, LoadOptions, Model, Tensor};
use std::collections::BTreeMap;

/// Embedding rows.
const ROWS: usize = 4;
/// Embedding width (the GEMM's `k`).
const K: usize = 4;
/// GEMM output width.
const N: usize = 8;
/// Attention heads, each `N / HEADS` wide.
const HEADS: usize = 2;

fn dims(texts: &[&str]) -> Vec<Dim> {
    texts
        .iter()
        .map(|t| Dim::parse(t).expect("test dims parse"))
        .collect()
}

fn value(dtype: DType, shape: &[&str], storage: Storage) -> ValueInfo {
    ValueInfo {
        ty: TensorType::new(dtype, Shape(dims(shape))),
        storage,
    }
}

/// The weights: the embedding table at 0, the bias at 64, the packed `K × N` matrix at 128.
struct Weights {
    table: Vec<f32>,
    bias: Vec<f32>,
    w: Vec<f32>,
}

impl Weights {
    fn new() -> Weights {
        let mut rng = Rng(7);
        Weights {
            table: rng.values_f32(ROWS * K, -1.0, 1.0),
            bias: rng.values_f32(N, -0.5, 0.5),
            w: rng.values_f32(K * N, -1.0, 1.0),
        }
    }

    fn section(&self) -> Vec<u8> {
        let mut packed = vec![0.0; packed_len(K, N)];
        pack_b(&self.w, K, N, &mut packed).unwrap();
        let mut bytes = vec![0u8; 128];
        for (i, x) in self.table.iter().enumerate() {
            bytes[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
        }
        for (i, x) in self.bias.iter().enumerate() {
            bytes[64 + 4 * i..64 + 4 * i + 4].copy_from_slice(&x.to_le_bytes());
        }
        bytes.extend(packed.iter().flat_map(|x| x.to_le_bytes()));
        bytes
    }
}

/// `tokens i64[batch, seq]` → `emb = table[tokens]` → `h = relu(emb · W + bias)` →
/// `att = causal attention of the heads of h with itself` (scale 0.5, written into the slot of
/// `emb`, dead by then) and `sum = Σ_seq h` (a reference kernel).
fn plan() -> Plan {
    let f = DType::F32;
    let v = ValueId;
    let values = vec![
        value(
            DType::I64,
            &["batch", "seq"],
            Storage::Input { slot: SlotId(0) },
        ),
        value(f, &["4", "4"], Storage::Weight { offset: 0, len: 64 }),
        value(f, &["batch", "seq", "4"], Storage::Slot(SlotId(1))),
        value(
            f,
            &["8"],
            Storage::Weight {
                offset: 64,
                len: 32,
            },
        ),
        value(f, &["batch", "seq", "8"], Storage::Slot(SlotId(2))),
        value(f, &["batch", "seq", "2", "4"], Storage::Alias(v(4))),
        value(f, &["batch", "seq", "2", "4"], Storage::Slot(SlotId(1))),
        value(f, &["batch", "seq", "8"], Storage::Alias(v(6))),
        value(f, &["batch", "8"], Storage::Slot(SlotId(3))),
    ];
    let step = |kernel, inputs: &[u32], output: u32| Step {
        kernel,
        inputs: inputs.iter().map(|&i| v(i)).collect(),
        outputs: vec![v(output)],
        origin: format!("%{output}"),
    };
    let packed_bytes = 4 * packed_len(K, N) as u64;
    Plan {
        version: PLAN_VERSION,
        inputs: vec![Io {
            name: "tokens".into(),
            value: v(0),
            limits: Default::default(),
        }],
        outputs: vec![
            Io {
                name: "att".into(),
                value: v(7),
                limits: Default::default(),
            },
            Io {
                name: "sum".into(),
                value: v(8),
                limits: Default::default(),
            },
        ],
        values,
        steps: vec![
            step(Kernel::GatherRows, &[1, 0], 2),
            step(
                Kernel::Gemm(GemmStep {
                    b: GemmB::Packed {
                        offset: 128,
                        len: packed_bytes,
                        k: K as u64,
                        n: N as u64,
                    },
                    bias: true,
                    activation: Activation::Relu,
                    residual: false,
                }),
                &[2, 3],
                4,
            ),
            step(
                Kernel::Attention(AttentionStep {
                    heads: HEADS as u32,
                    kv_heads: HEADS as u32,
                    scale: 0.5,
                    causal: true,
                    bias: false,
                    mask: false,
                    rotary: false,
                    layouts: [AttnLayout::Bshd; 4],
                    kv_len: None,
                }),
                &[5, 5, 5],
                6,
            ),
            step(
                Kernel::Reference(Op::Reduce {
                    op: ReduceOp::Sum,
                    axes: vec![1],
                    keepdims: false,
                }),
                &[4],
                8,
            ),
        ],
        slots: vec![
            Slot {
                sizes: dims(&["batch*seq*8"]),
            },
            Slot {
                sizes: dims(&["batch*seq*16", "batch*seq*32"]),
            },
            Slot {
                sizes: dims(&["batch*seq*32"]),
            },
            Slot {
                sizes: dims(&["batch*32"]),
            },
        ],
        states: Vec::new(),
    }
}

fn model(weights: &Weights) -> Model {
    let mut w = ArtifactWriter::new(
        "kiln exec test",
        Target::new(std::env::consts::ARCH, CpuFeatures::NONE),
    )
    .unwrap();
    w.add_section(SectionKind::Plan, plan().encode(), 8)
        .unwrap();
    w.add_section(SectionKind::Weights, weights.section(), 64)
        .unwrap();
    Model::from_bytes(
        w.to_bytes(),
        &LoadOptions {
            threads: Some(2),
            ..Default::default()
        },
    )
    .unwrap()
}

fn tokens(rng: &mut Rng, b: usize, s: usize) -> (Vec<i64>, BTreeMap<String, Tensor>) {
    let ids: Vec<i64> = (0..b * s).map(|_| rng.below(ROWS) as i64).collect();
    let t = Tensor::from_i64(vec![b, s], ids.clone()).unwrap();
    (ids, BTreeMap::from([("tokens".to_string(), t)]))
}

/// `att` and `sum` computed with plain loops in f64.
fn expected(wt: &Weights, ids: &[i64], b: usize, s: usize) -> (Vec<f64>, Vec<f64>) {
    let dh = N / HEADS;
    let h: Vec<f64> = (0..b * s * N)
        .map(|i| {
            let (row, n) = (i / N, i % N);
            let t = ids[row] as usize;
            let dot: f64 = (0..K)
                .map(|c| f64::from(wt.table[t * K + c]) * f64::from(wt.w[c * N + n]))
                .sum();
            (dot + f64::from(wt.bias[n])).max(0.0)
        })
        .collect();
    let mut att = vec![0.0; b * s * N];
    for bi in 0..b {
        for hd in 0..HEADS {
            let at = |p: usize, c: usize| h[(bi * s + p) * N + hd * dh + c];
            for i in 0..s {
                let scores: Vec<f64> = (0..=i)
                    .map(|j| 0.5 * (0..dh).map(|c| at(i, c) * at(j, c)).sum::<f64>())
                    .collect();
                let max = scores.iter().copied().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..dh {
                    att[(bi * s + i) * N + hd * dh + c] =
                        (0..=i).map(|j| e[j] / z * at(j, c)).sum::<f64>();
                }
            }
        }
    }
    let sum = (0..b * N)
        .map(|i| (0..s).map(|p| h[((i / N) * s + p) * N + i % N]).sum())
        .collect();
    (att, sum)
}

fn close(got: &Tensor, want: &[f64], what: &str) {
    let got = got.to_f64_vec();
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 + 1e-5 * w.abs(),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn sessions_run_a_library_kernel_plan_at_changing_shapes() {
    let wt = Weights::new();
    let model = model(&wt);
    let mut session = model.session();
    let mut rng = Rng(11);
    // Growing, shrinking and repeated shapes: the arena grows, and the slot of `emb` holds
    // stale data of another shape when `att` is written into it.
    for (b, s) in [(2, 3), (1, 5), (3, 2), (1, 1), (2, 3)] {
        let (ids, feeds) = tokens(&mut rng, b, s);
        let out = session.run(&feeds).unwrap();
        assert_eq!(out[0].0, "att");
        assert_eq!(out[0].1.shape(), [b, s, N]);
        assert_eq!(out[1].1.shape(), [b, N]);
        let (att, sum) = expected(&wt, &ids, b, s);
        close(&out[0].1, &att, &format!("att at {b}×{s}"));
        close(&out[1].1, &sum, &format!("sum at {b}×{s}"));
        assert_eq!(session.layout().unwrap().shapes[0], [b, s]);
    }
    let (_, bad) = tokens(&mut rng, 2, 0);
    let mut bad = bad;
    bad.insert(
        "tokens".into(),
        Tensor::from_f32(vec![1, 1], vec![0.0]).unwrap(),
    );
    assert!(session.run(&bad).is_err(), "an f32 `tokens` is refused");
}

#[test]
fn two_threads_share_a_model_with_a_session_each() {
    let wt = Weights::new();
    let model = model(&wt);
    let sets: Vec<_> = [(2, 3), (1, 4)]
        .iter()
        .enumerate()
        .map(|(i, &(b, s))| tokens(&mut Rng(i as u64), b, s).1)
        .collect();
    let want: Vec<_> = sets
        .iter()
        .map(|f| model.session().run(f).unwrap())
        .collect();
    std::thread::scope(|scope| {
        for t in 0..2 {
            let (model, sets, want) = (&model, &sets, &want);
            scope.spawn(move || {
                let mut session = model.session();
                for r in 0..2 {
                    let k = (t + r) % sets.len();
                    let got = session.run(&sets[k]).unwrap();
                    for ((_, g), (_, w)) in got.iter().zip(&want[k]) {
                        assert_eq!(g.to_le_bytes(), w.to_le_bytes(), "thread {t}, run {r}");
                    }
                }
            });
        }
    });
}

#[test]
fn arena_is_aligned_zeroed_when_grown_and_never_shrinks() {
    let mut arena = Arena::default();
    arena.reserve(0).unwrap();
    assert_eq!(arena.base() as usize % ALIGN, 0);
    arena.reserve(100).unwrap();
    let base = arena.base();
    assert_eq!(base as usize % ALIGN, 0);
    // SAFETY: the arena holds at least 128 (100 rounded up to 64) initialised bytes at `base`,
    // and nothing else uses it while this slice lives.
    let bytes = unsafe { std::slice::from_raw_parts_mut(base, 128) };
    assert!(bytes.iter().all(|&b| b == 0));
    bytes.fill(0xab);
    arena.reserve(50).unwrap();
    arena.reserve(1000).unwrap();
    let base = arena.base();
    assert_eq!(base as usize % ALIGN, 0);
    // SAFETY: as above, for the 1024 bytes `reserve(1000)` made sure of.
    let bytes = unsafe { std::slice::from_raw_parts(base, 1024) };
    assert!(
        bytes[..128].iter().all(|&b| b == 0xab),
        "old bytes are kept"
    );
    assert!(bytes[128..].iter().all(|&b| b == 0), "new bytes are zero");
}

#[test]
fn layout_offsets_are_aligned_prefix_sums_of_the_largest_value_per_slot() {
    let plan = plan();
    let b = crate::ops::bind_inputs(
        &[("tokens", &plan.values[0].ty)],
        &tokens(&mut Rng(1), 3, 5).1,
    )
    .unwrap();
    let layout = Layout::compute(&plan, &b).unwrap();
    // Slots: tokens 3·5·8 = 120 → 128; emb/att max(240, 480) = 480 → 512; h 480 → 512;
    // sum 3·32 = 96 → 128.
    assert_eq!(layout.slot_offsets, [0, 128, 640, 1152]);
    assert_eq!(layout.arena_bytes, 1280);
    assert_eq!(layout.shapes[5], [3, 5, 2, 4]);
    assert_eq!(layout.bytes[8], 96);
}
