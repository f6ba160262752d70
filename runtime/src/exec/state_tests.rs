//! States on a hand-built plan (no generated code, so Miri can run it): a cache written in
//! place by `Kernel::CacheWrite` at the position the attention mask's length binds (`past`),
//! read back through a slice; runs that fill the cache and one that overflows it; the plan
//! validator refusing a state written by another kernel or read after its update; and the
//! `State` API's checks (symbols, budget, `write`, another model's state).

use crate::artifact::{ArtifactWriter, SectionKind, Target};
use crate::ops::{Dim, Op, Shape, TensorType};
use crate::plan::{
    Io, Kernel, Plan, Slot, SlotId, StateIo, Step, Storage, ValueId, ValueInfo, PLAN_VERSION,
};
use crate::{CpuFeatures, DType, LoadOptions, Model, Tensor};
use std::collections::BTreeMap;

fn d(t: &str) -> Dim {
    Dim::parse(t).unwrap()
}

fn value(dtype: DType, shape: &[&str], storage: Storage) -> ValueInfo {
    ValueInfo {
        ty: TensorType::new(dtype, Shape(shape.iter().map(|t| d(t)).collect())),
        storage,
    }
}

/// `new: f32[batch, seq, 2]`, `mask: i64[batch, past+seq]`; state `cache: f32[batch, capacity,
/// 2]` updated by writing `new` at `past`; output `seen` = the first `past + seq` positions.
fn plan() -> Plan {
    let v = ValueId;
    Plan {
        version: PLAN_VERSION,
        inputs: vec![
            Io {
                name: "new".into(),
                value: v(0),
                limits: Default::default(),
            },
            Io {
                name: "mask".into(),
                value: v(1),
                limits: Default::default(),
            },
        ],
        outputs: vec![Io {
            name: "seen".into(),
            value: v(4),
            limits: Default::default(),
        }],
        values: vec![
            value(
                DType::F32,
                &["batch", "seq", "2"],
                Storage::Input { slot: SlotId(0) },
            ),
            value(
                DType::I64,
                &["batch", "past+seq"],
                Storage::Input { slot: SlotId(1) },
            ),
            value(DType::F32, &["batch", "capacity", "2"], Storage::State(0)),
            value(DType::F32, &["batch", "capacity", "2"], Storage::State(0)),
            value(
                DType::F32,
                &["batch", "past+seq", "2"],
                Storage::Slot(SlotId(2)),
            ),
        ],
        steps: vec![
            Step {
                kernel: Kernel::CacheWrite {
                    axis: 1,
                    at: d("past"),
                },
                inputs: vec![v(0)],
                outputs: vec![v(3)],
                origin: "cache_write".into(),
            },
            Step {
                kernel: Kernel::Reference(Op::Slice {
                    axes: vec![1],
                    starts: vec![d("0")],
                    ends: vec![d("past+seq")],
                    steps: vec![1],
                }),
                inputs: vec![v(3)],
                outputs: vec![v(4)],
                origin: "slice".into(),
            },
        ],
        slots: vec![
            Slot {
                sizes: vec![d("batch*seq*8")],
            },
            Slot {
                sizes: vec![d("batch*(past+seq)*8")],
            },
            Slot {
                sizes: vec![d("batch*(past+seq)*8")],
            },
        ],
        states: vec![StateIo {
            name: "cache".into(),
            value: v(2),
            update: v(3),
        }],
    }
}

fn load(plan: &Plan) -> Result<Model, crate::Error> {
    let target = Target::new(std::env::consts::ARCH, CpuFeatures::NONE);
    let mut w = ArtifactWriter::new("kiln state test", target).unwrap();
    w.add_section(SectionKind::Plan, plan.encode(), 8).unwrap();
    Model::from_bytes(
        w.to_bytes(),
        &LoadOptions {
            threads: Some(1),
            ..Default::default()
        },
    )
}

fn feeds(new: &[f32], seq: usize, total: usize) -> BTreeMap<String, Tensor> {
    BTreeMap::from([
        (
            "new".to_string(),
            Tensor::from_f32(vec![1, seq, 2], new.to_vec()).unwrap(),
        ),
        (
            "mask".to_string(),
            Tensor::from_i64(vec![1, total], vec![1; total]).unwrap(),
        ),
    ])
}

#[test]
fn cache_is_written_in_place_until_full() {
    let model = load(&plan()).unwrap();
    let mut state = model.new_state(&[("batch", 1), ("capacity", 4)]).unwrap();
    assert_eq!(state.bytes(), 4 * 2 * 4);
    let mut s = model.session();
    // Prefill two positions, then one per run.
    let out = s
        .run_with_state(&feeds(&[1., 2., 3., 4.], 2, 2), &mut state)
        .unwrap();
    assert_eq!(out[0].1.to_f64_vec(), [1., 2., 3., 4.]);
    let out = s
        .run_with_state(&feeds(&[5., 6.], 1, 3), &mut state)
        .unwrap();
    assert_eq!(out[0].1.to_f64_vec(), [1., 2., 3., 4., 5., 6.]);
    let out = s
        .run_with_state(&feeds(&[7., 8.], 1, 4), &mut state)
        .unwrap();
    assert_eq!(out[0].1.to_f64_vec(), [1., 2., 3., 4., 5., 6., 7., 8.]);
    let full = state.tensor(model.plan(), 0).unwrap();
    assert_eq!(full.shape(), [1, 4, 2]);
    // A fifth position does not fit: an error saying so, the cache unchanged.
    let err = s
        .run_with_state(&feeds(&[9., 9.], 1, 5), &mut state)
        .unwrap_err();
    assert!(err.to_string().contains("the cache is full"), "{err}");
    assert_eq!(state.tensor(model.plan(), 0).unwrap(), full);
    // A batch other than the state's, a missing state, another model's state.
    let mut two = feeds(&[1., 2.], 1, 1);
    two.insert(
        "new".into(),
        Tensor::from_f32(vec![2, 1, 2], vec![0.; 4]).unwrap(),
    );
    two.insert(
        "mask".into(),
        Tensor::from_i64(vec![2, 1], vec![1; 2]).unwrap(),
    );
    let err = s.run_with_state(&two, &mut state).unwrap_err().to_string();
    assert!(
        err.contains("`batch` = 2") && err.contains("`batch` = 1"),
        "{err}"
    );
    let err = s.run(&feeds(&[1., 2.], 1, 1)).unwrap_err().to_string();
    assert!(err.contains("run_with_state"), "{err}");
    let mut other_plan = plan();
    other_plan.states[0].name = "other".into();
    let other = load(&other_plan).unwrap();
    let err = other
        .session()
        .run_with_state(&feeds(&[1., 2.], 1, 1), &mut state);
    assert!(err.unwrap_err().to_string().contains("another model"));
}

#[test]
fn state_api_checks_symbols_budget_and_writes() {
    let model = load(&plan()).unwrap();
    let err = model.new_state(&[("batch", 1)]).unwrap_err().to_string();
    assert!(err.contains("capacity"), "{err}");
    assert!(model.new_state(&[("batch", 1), ("capacity", -1)]).is_err());
    let huge = model.new_state(&[("batch", 1 << 30), ("capacity", 1 << 30)]);
    assert!(huge.unwrap_err().to_string().contains("budget"));
    let mut state = model.new_state(&[("batch", 1), ("capacity", 3)]).unwrap();
    let t = Tensor::from_f32(vec![1, 3, 2], vec![1., 2., 3., 4., 5., 6.]).unwrap();
    state.write(model.plan(), "cache", &t).unwrap();
    assert_eq!(state.tensor(model.plan(), 0).unwrap(), t);
    assert!(state.write(model.plan(), "nope", &t).is_err());
    let wrong = Tensor::from_f32(vec![1, 2, 2], vec![0.; 4]).unwrap();
    assert!(state.write(model.plan(), "cache", &wrong).is_err());
}

#[test]
fn validator_refuses_bad_state_use() {
    // A state written by a kernel other than a cache write.
    let mut p = plan();
    p.steps[0].kernel = Kernel::Reference(Op::Unary(crate::ops::UnaryOp::Neg));
    let err = load(&p).unwrap_err().to_string();
    assert!(err.contains("only a cache write"), "{err}");
    // A step reading the old value, which the update overwrites in place.
    let mut p = plan();
    p.steps[1].inputs = vec![ValueId(2)];
    let err = load(&p).unwrap_err().to_string();
    assert!(err.contains("old value"), "{err}");
    // A value claiming a state that does not list it, and a state index out of range.
    let mut p = plan();
    p.values[4].storage = Storage::State(0);
    assert!(load(&p).is_err());
    let mut p = plan();
    p.values[3].storage = Storage::State(5);
    assert!(load(&p).is_err());
    // A cache write reading the state it writes.
    let mut p = plan();
    p.states[0].update = ValueId(2);
    p.steps[0].outputs = vec![ValueId(3)];
    assert!(load(&p).is_err());
}
