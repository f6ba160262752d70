//! The lowering filetests: one `.kir` per case in `tests/lower_cases/`, each lowered to a CPU
//! execution plan whose printed form (`kiln inspect --stage kernels` and the storage of every
//! value) is snapshot-tested (`it/snapshots/it__lower_cases__<case>.snap`; bless with
//! `INSTA_UPDATE=always` or `cargo insta review`), then compiled to an in-memory `.kiln`, loaded
//! and run in one session at every binding of the case against the reference interpreter
//! (rtol 1e-4, atol 1e-5). Every plan must keep a step's outputs out of its inputs' slots (except
//! an in-place generated step over a `Full` input).
//!
//! A case states what it checks in `#` lines before `kir 1`, so a wrongly blessed snapshot still
//! fails:
//!
//! - `runs: batch=1 seq=4; batch=3 seq=3` — the bindings to run at (required);
//! - `feed NAME: key-mask | rotary-cos | rotary-sin` — a structured input instead of uniform
//!   values in [-2, 2): a key mask `[batch, Sk]` keeping key 0 (and, for a bool mask, masking all
//!   of batch element 1), or rotary tables `[seq, d]`;
//! - `kernels: attention=1 reference:transpose=0` — step counts by kernel;
//! - `attention-layouts: Bshd Bshd Bshd Bshd` — the one attention step's q, k, v, output layouts;
//! - `max-slots: N` — at most N arena slots;
//! - `in-place: STEP` / `not-in-place: STEP` — whether that step writes over its first input.

use crate::common;
use kiln_compiler::ir::{DType, Graph};
use kiln_compiler::lower::lower;
use kiln_compiler::{compile, Options, Target};
use kiln_runtime::plan::{Access, Kernel, Plan};
use kiln_runtime::{LoadOptions, Model, Tensor};
use std::path::{Path, PathBuf};

const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-5;

/// The folder of the cases.
pub fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lower_cases")
}

/// A case's `#` directives: `key: value` pairs in file order.
fn directives(src: &str) -> Vec<(String, String)> {
    src.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.trim_start_matches('#').trim().split_once(": ")?;
            let known = [
                "runs",
                "kernels",
                "attention-layouts",
                "max-slots",
                "in-place",
                "not-in-place",
            ];
            (known.contains(&k) || k.starts_with("feed ")).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// `batch=1 seq=4; batch=3 seq=3` as binding lists.
fn parse_runs(v: &str) -> Vec<Vec<(String, i64)>> {
    v.split(';')
        .map(|run| {
            run.split_whitespace()
                .map(|kv| {
                    let (k, n) = kv.split_once('=').expect("`name=value` in runs");
                    (k.to_string(), n.parse().expect("an integer binding"))
                })
                .collect()
        })
        .collect()
}

/// `[cos; sin]` rotary tables for positions `0..s` and head dim `d` (halves repeated).
fn rotary_table(s: usize, d: usize, sin: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(s * d);
    for p in 0..s {
        for i in 0..d {
            let f = 1.0 / 10000f64.powf((i % (d / 2)) as f64 * 2.0 / d as f64);
            out.push(if sin {
                (p as f64 * f).sin()
            } else {
                (p as f64 * f).cos()
            });
        }
    }
    out
}

/// The structured feed `kind` for input `name` of `g` at `shape`.
fn structured(g: &Graph, name: &str, kind: &str, shape: Vec<usize>) -> Tensor {
    let v = g.inputs().iter().copied();
    let dtype = v
        .map(|v| g.value(v))
        .find(|val| val.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("feed {name}: no such input"))
        .ty
        .dtype;
    match kind {
        "key-mask" => {
            let (b, sk) = (shape[0], shape[1]);
            let keep: Vec<i64> = (0..b * sk)
                .map(|p| {
                    let (bi, j) = (p / sk, p % sk);
                    let all_off = dtype == DType::Bool && bi == 1;
                    i64::from(!all_off && (j == 0 || (j + bi) % 3 != 1))
                })
                .collect();
            match dtype {
                DType::Bool => Tensor::from_bools(shape, keep.iter().map(|&k| k != 0).collect()),
                _ => Tensor::from_i64_values(dtype, shape, &keep),
            }
            .unwrap()
        }
        "rotary-cos" | "rotary-sin" => {
            let vals = rotary_table(shape[0], shape[1], kind == "rotary-sin");
            Tensor::from_f64_values(dtype, shape, &vals).unwrap()
        }
        _ => panic!("feed {name}: unknown kind `{kind}`"),
    }
}

/// No step writes an output into a slot one of its inputs holds, except an in-place generated
/// step over a `Full` input.
fn assert_disjoint(plan: &Plan, case: &str) {
    for (i, s) in plan.steps.iter().enumerate() {
        for &o in &s.outputs {
            for (k, &v) in s.inputs.iter().enumerate() {
                if plan.slot_of(o).is_none() || plan.slot_of(o) != plan.slot_of(v) {
                    continue;
                }
                let ok = matches!(&s.kernel, Kernel::Generated(g)
                    if g.in_place && g.access[k] == Access::Full);
                assert!(
                    ok,
                    "{case}: step {i} ({}) writes {o} over its input {v}",
                    s.origin
                );
            }
        }
    }
}

/// Checks one directive against the plan.
fn check_directive(plan: &Plan, case: &str, key: &str, value: &str) {
    let writes_over_input = |step: &str| {
        let i: usize = step.parse().expect("a step index");
        let s = &plan.steps[i];
        plan.slot_of(s.outputs[0]).is_some()
            && plan.slot_of(s.outputs[0]) == plan.slot_of(s.inputs[0])
    };
    match key {
        "kernels" => {
            let counts = plan.kernel_counts();
            for kv in value.split_whitespace() {
                let (k, n) = kv.split_once('=').expect("`kernel=count`");
                let got = counts.get(k).copied().unwrap_or(0);
                assert_eq!(
                    got.to_string(),
                    n,
                    "{case}: steps of kernel `{k}` in {counts:?}"
                );
            }
        }
        "attention-layouts" => {
            let got: Vec<String> = plan
                .steps
                .iter()
                .filter_map(|s| match &s.kernel {
                    Kernel::Attention(a) => Some(format!("{:?}", a.layouts)),
                    _ => None,
                })
                .collect();
            let want = format!(
                "[{}]",
                value.split_whitespace().collect::<Vec<_>>().join(", ")
            );
            assert_eq!(got, vec![want], "{case}: attention layouts");
        }
        "max-slots" => {
            let max: usize = value.parse().expect("a slot count");
            assert!(
                plan.slots.len() <= max,
                "{case}: {} slots",
                plan.slots.len()
            );
        }
        "in-place" => assert!(
            writes_over_input(value),
            "{case}: step {value} not in place"
        ),
        "not-in-place" => assert!(!writes_over_input(value), "{case}: step {value} in place"),
        _ => {}
    }
}

/// Runs one case file.
fn check(case: &str) {
    let path = case_dir().join(format!("{case}.kir"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let g = kiln_compiler::text::parse(&src).unwrap_or_else(|e| panic!("{case}: {e}"));
    let dirs = directives(&src);
    let runs = dirs
        .iter()
        .find(|(k, _)| k == "runs")
        .map(|(_, v)| parse_runs(v))
        .unwrap_or_else(|| panic!("{case}: no `# runs:` line"));

    let plan = lower(&g)
        .unwrap_or_else(|e| panic!("{case}: lower: {e}"))
        .plan;
    assert_disjoint(&plan, case);
    for (k, v) in &dirs {
        check_directive(&plan, case, k, v);
    }

    let bytes = compile(&g, &Target::host(), &Options::unoptimized())
        .unwrap()
        .to_bytes();
    let model = Model::from_bytes(bytes, &LoadOptions::default()).unwrap();
    let mut session = model.session();
    for (i, run) in runs.iter().enumerate() {
        let bindings: Vec<(&str, i64)> = run.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let mut feeds = common::random_inputs(&g, &bindings, 100 + i as u64);
        for (k, kind) in &dirs {
            if let Some(name) = k.strip_prefix("feed ") {
                let shape = feeds[name].shape().to_vec();
                feeds.insert(name.to_string(), structured(&g, name, kind, shape));
            }
        }
        let want = kiln_compiler::interp::run(&g, &feeds).unwrap();
        let got = session
            .run(&feeds)
            .unwrap_or_else(|e| panic!("{case}: run {i}: {e}"));
        common::compare_outputs(&want, &got, RTOL, ATOL)
            .unwrap_or_else(|e| panic!("{case}: run {i} ({run:?}): {e}"));
    }

    let mut text = plan.summary_text(true);
    text.push_str("values:\n");
    for line in plan.storage_lines() {
        text.push_str(&line);
        text.push('\n');
    }
    insta::assert_snapshot!(case, text);
}

macro_rules! cases {
    ($($name:ident)*) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*

        /// Every `.kir` in the folder has a test, and every test its `.kir`.
        #[test]
        fn every_case_file_has_a_test() {
            let files = common::kir_case_names(&case_dir());
            let mut tested: Vec<String> = [$(stringify!($name)),*].map(String::from).to_vec();
            tested.sort();
            assert_eq!(files, tested);
        }
    };
}

cases! {
    attn_self attn_cross attn_bias_1_2_seq_mem attn_bias_batch_1_1_mem attn_bias_batch_2_seq_mem
    attn_bias_mem attn_bias_seq_mem attn_mask_i64 attn_mask_bool attn_causal attn_causal_cross
    attn_gqa attn_gqa_causal_mask_bias attn_rotary_inputs attn_rotary_weights_gqa_causal
    attn_long_cross attn_long_rotary attn_bhsd attn_shared
    mem_chain_reuses_slots mem_in_place_over_dying_full_input mem_in_place_over_full_not_col
    mem_keeps_live_input mem_keeps_row_alias_input
    plan_mixed_kernels
    rnn_lstm_packed rnn_gru_values
    rotary_tables_4 rotary_tables_1_4 rotary_tables_seq_1 rotary_tables_1_1_1_4
    rotary_tables_batch_1_1_4 rotary_tables_1_seq_4 rotary_tables_1_1_seq_1
}
