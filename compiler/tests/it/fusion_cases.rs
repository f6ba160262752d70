//! Hand-written fusion cases, one `.kir` per spelling in `tests/fusion_cases/`: each graph is
//! run through the optimizer pipeline (`kiln_compiler::optimize::optimize`) and
//!
//! - the optimized IR is snapshot-tested (`it/snapshots/it__fusion_cases__<case>.snap`);
//! - the fused ops in the result are counted and compared with the case's expectation in code,
//!   so a wrongly blessed snapshot still fails;
//! - for attention, the fused op's flags (`causal`, `bias`, `mask`, `rotary`, `kv_heads`, the
//!   scale) are checked;
//! - for must-not-fuse cases, the report's misses name the failed guard where the rule reports
//!   one (LayerNorm axis / ε, RmsNorm γ shape, softmax axis, an unreadable `Where` mask);
//! - the optimized graph computes what the original computes under the reference interpreter on
//!   deterministic pseudo-random inputs (rtol 1e-4, atol 1e-5; a few f16 ulps for the f16 case; bool masks keep key 0 of every
//!   row so no attention row is fully masked).

use crate::common;
use kiln_compiler::ir::{Graph, Op};
use kiln_compiler::optimize::{optimize, Optimized};
use kiln_compiler::text::{parse, print};
use kiln_runtime::DType;
use std::path::Path;

const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-5;
/// For f16 outputs: the unfused mixed-precision graph rounds to f16 after the normalisation,
/// after γ and after β, the fused op once, so they may differ by a few f16 units in the last
/// place (2⁻¹⁰ relative).
const RTOL_F16: f64 = 4e-3;
const ATOL_F16: f64 = 1e-3;

/// The fused ops a case must end with (every other count is 0).
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    layer_norm: usize,
    rms_norm: usize,
    gelu: usize,
    attention: usize,
}

const NONE: Counts = Counts {
    layer_norm: 0,
    rms_norm: 0,
    gelu: 0,
    attention: 0,
};
const LN: Counts = Counts {
    layer_norm: 1,
    ..NONE
};
const RMS: Counts = Counts {
    rms_norm: 1,
    ..NONE
};
const GELU: Counts = Counts { gelu: 1, ..NONE };
const ATTN: Counts = Counts {
    attention: 1,
    ..NONE
};

/// The flags the one fused `attention` op must carry.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Flags {
    heads: u32,
    kv_heads: u32,
    scale: f64,
    causal: bool,
    bias: bool,
    mask: bool,
    rotary: bool,
}

/// Two heads, no mask, bias, causality or rotary, scale 0.5: the base the cases modify.
const PLAIN: Flags = Flags {
    heads: 2,
    kv_heads: 2,
    scale: 0.5,
    causal: false,
    bias: false,
    mask: false,
    rotary: false,
};

/// What one case expects.
#[derive(Debug, Clone, Copy)]
struct Expect {
    counts: Counts,
    /// For a fused attention: its flags.
    attention: Option<Flags>,
    /// For a must-not-fuse case: `(rule, text the miss reason contains)`.
    miss: Option<(&'static str, &'static str)>,
    /// The approximation of a fused GELU (`none` or `tanh`).
    gelu: Option<&'static str>,
}

fn expect(counts: Counts) -> Expect {
    Expect {
        counts,
        attention: None,
        miss: None,
        gelu: None,
    }
}

fn attn(flags: Flags) -> Expect {
    Expect {
        attention: Some(flags),
        ..expect(ATTN)
    }
}

fn gelu(approx: &'static str) -> Expect {
    Expect {
        gelu: Some(approx),
        ..expect(GELU)
    }
}

fn nofuse(miss: Option<(&'static str, &'static str)>) -> Expect {
    Expect {
        miss,
        ..expect(NONE)
    }
}

/// The fused ops of `g` by kind.
fn count(g: &Graph) -> Counts {
    let mut c = NONE;
    for n in g.node_ids() {
        match g.node(n).op.name() {
            "layer_norm" | "skip_layer_norm" => c.layer_norm += 1,
            "rms_norm" => c.rms_norm += 1,
            "gelu" => c.gelu += 1,
            "attention" => c.attention += 1,
            _ => {}
        }
    }
    c
}

fn counts_eq(a: Counts, b: Counts) -> bool {
    (a.layer_norm, a.rms_norm, a.gelu, a.attention)
        == (b.layer_norm, b.rms_norm, b.gelu, b.attention)
}

/// Runs `case`: parse, optimize, check counts, flags and misses, compare under the
/// interpreter, snapshot.
fn check(case: &str, want: Expect) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fusion_cases")
        .join(format!("{case}.kir"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let g = parse(&src).unwrap_or_else(|e| panic!("{case}: {e}"));
    assert!(
        counts_eq(count(&g), NONE),
        "{case}: the input already has fused ops"
    );
    let mut opt = g.clone();
    let report: Optimized = optimize(&mut opt).unwrap_or_else(|e| panic!("{case}: {e}"));
    kiln_compiler::verify(&opt).unwrap_or_else(|e| panic!("{case}: {e}"));
    let text = print(&opt).unwrap();
    let eg = &report.egraph;

    // Counts, in the graph and in the report.
    let got = count(&opt);
    assert!(
        counts_eq(got, want.counts),
        "{case}: fused {got:?}, expected {:?}\nmisses {:?}\n{text}",
        want.counts,
        eg.misses
    );
    for (name, n) in [
        ("LayerNorm", want.counts.layer_norm),
        ("RmsNorm", want.counts.rms_norm),
        ("Gelu", want.counts.gelu),
        ("Attention", want.counts.attention),
    ] {
        assert_eq!(eg.count(name), n, "{case}: report {:?}", eg.fused);
    }

    // Attention flags.
    let attention: Vec<&Op> = opt
        .node_ids()
        .map(|n| &opt.node(n).op)
        .filter(|op| matches!(op, Op::Attention { .. }))
        .collect();
    if let Some(f) = want.attention {
        let [Op::Attention {
            heads,
            kv_heads,
            scale,
            causal,
            bias,
            mask,
            rotary,
        }] = attention.as_slice()
        else {
            panic!("{case}: expected one attention op\n{text}");
        };
        let got = Flags {
            heads: *heads,
            kv_heads: *kv_heads,
            scale: f.scale,
            causal: *causal,
            bias: *bias,
            mask: *mask,
            rotary: *rotary,
        };
        assert_eq!(got, f, "{case}: attention flags\n{text}");
        assert!(
            (scale - f.scale).abs() <= 1e-6 * f.scale.abs(),
            "{case}: scale {scale}, expected {}",
            f.scale
        );
    }

    // GELU approximation.
    if let Some(approx) = want.gelu {
        assert!(
            text.contains(&format!("gelu(%x) {{approx = {approx}}}")),
            "{case}: expected gelu(%x) with approx = {approx}\n{text}"
        );
    }

    // Misses naming the failed guard.
    if let Some((rule, reason)) = want.miss {
        assert!(
            eg.misses
                .iter()
                .any(|m| m.rule == rule && m.reason.contains(reason)),
            "{case}: expected a `{rule}` miss saying `{reason}`, got {:?}",
            eg.misses
        );
    }

    // Same outputs under the reference interpreter.
    for seed in 0..3 {
        let ins = common::random_inputs(&g, &[("batch", 2), ("seq", 5)], seed);
        let before = kiln_compiler::interp::run(&g, &ins).unwrap_or_else(|e| panic!("{case}: {e}"));
        let after =
            kiln_compiler::interp::run(&opt, &ins).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(before.len(), after.len(), "{case}");
        for ((wn, w), (gn, o)) in before.iter().zip(&after) {
            assert_eq!(wn, gn, "{case}");
            assert_eq!(w.dtype(), o.dtype(), "{case}: output `{wn}`");
            assert_eq!(w.shape(), o.shape(), "{case}: output `{wn}`");
            let (rtol, atol) = match w.dtype() {
                DType::F16 | DType::BF16 => (RTOL_F16, ATOL_F16),
                _ => (RTOL, ATOL),
            };
            for (i, (a, b)) in w.to_f64_vec().iter().zip(o.to_f64_vec()).enumerate() {
                assert!(
                    a.is_finite() && (a - b).abs() <= atol + rtol * a.abs(),
                    "{case}, seed {seed}: output `{wn}` element {i} is {b} optimized, {a} before"
                );
            }
        }
    }

    insta::assert_snapshot!(case, text);
}

macro_rules! cases {
    ($($name:ident => $want:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), $want);
            }
        )*

        /// Every `.kir` in the folder has a test, and every test its `.kir`.
        #[test]
        fn every_case_file_has_a_test() {
            let names = [$(stringify!($name)),*];
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fusion_cases");
            let files = common::kir_case_names(&dir);
            let mut tested: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            tested.sort();
            assert_eq!(files, tested);
        }
    };
}

cases! {
    // LayerNorm.
    ln_legacy_pow => expect(LN);
    ln_mul_square => expect(LN);
    ln_reciprocal => expect(LN);
    ln_mixed_precision => expect(LN);
    ln_no_beta => expect(LN);
    nofuse_ln_axis => nofuse(Some(("ln-fuse", "not the last axis")));
    nofuse_ln_eps => nofuse(Some(("ln-fuse", "ε = 0.01")));

    // RmsNorm.
    rms_div_sqrt => expect(RMS);
    rms_reciprocal => expect(RMS);
    rms_rsqrt => expect(RMS);
    nofuse_rms_gamma_shape => nofuse(Some(("rms-fuse", "γ has shape [3, 4]")));

    // GELU.
    gelu_erf_div => gelu("none");
    gelu_erf_div_swapped => gelu("none");
    gelu_erf_mul => gelu("none");
    gelu_erf_mul_swapped => gelu("none");
    gelu_tanh_pow => gelu("tanh");
    gelu_tanh_cube => gelu("tanh");
    gelu_tanh_bloom => gelu("tanh");
    nofuse_gelu_half => nofuse(None);

    // Attention.
    attn_bert => attn(Flags { mask: true, ..PLAIN });
    attn_div_scale => attn(Flags { mask: true, ..PLAIN });
    attn_split_scale => attn(Flags { mask: true, ..PLAIN });
    attn_one_minus_cast => attn(Flags { mask: true, ..PLAIN });
    attn_gpt2_causal => attn(Flags { mask: true, causal: true, ..PLAIN });
    attn_causal_additive => attn(Flags { mask: true, causal: true, ..PLAIN });
    attn_nan_guard => attn(Flags { mask: true, ..PLAIN });
    attn_alibi => attn(Flags { mask: true, bias: true, ..PLAIN });
    attn_gqa => attn(Flags { kv_heads: 1, causal: true, ..PLAIN });
    attn_rotary => attn(Flags { rotary: true, ..PLAIN });
    attn_const_causal => attn(Flags { causal: true, ..PLAIN });
    attn_const_additive_bias => attn(Flags { bias: true, ..PLAIN });
    attn_shifted_causal_additive => attn(Flags { bias: true, ..PLAIN });
    nofuse_attn_const_where => nofuse(Some(("attention-fuse", "neither causal nor a key mask")));
    nofuse_attn_shifted_causal_where =>
        nofuse(Some(("attention-fuse", "neither causal nor a key mask")));
    nofuse_attn_softmax_axis => nofuse(Some(("attention-fuse", "softmax is over axis 2")));
}
