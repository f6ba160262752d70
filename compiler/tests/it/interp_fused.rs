//! Reference-interpreter tests for the fused ops: gelu (exact and tanh) against mpmath, and
//! attention against a separate loop-based implementation written here from the
//! `Op::Attention` doc comment. (layer_norm and rms_norm are tested in `interp/fused.rs`.)

use crate::common::t;
use kiln_compiler::interp::eval_op;
use kiln_compiler::ir::{Bindings, GeluApprox, Op};
use kiln_runtime::{DType, Tensor};

fn eval(op: &Op, xs: &[&Tensor]) -> Result<Tensor, String> {
    eval_op(op, xs, &Bindings::new()).map(|mut v| v.remove(0))
}

fn close(got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            g == w || (g - w).abs() <= rel * w.abs(),
            "got {got:?}, want {want:?}"
        );
    }
}

/// Deterministic, irregular values in [-1, 1] (period 1009, longer than any test tensor).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let seed = seed as usize;
    (0..n)
        .map(|i| ((i * 7919 + seed * 104729) % 1009) as f64 / 504.0 - 1.0)
        .collect()
}

#[test]
fn gelu_exact_and_tanh() {
    let xs = [-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, -10.0];
    let x = t(DType::F64, &[8], &xs);
    // mpmath, 100 digits: 0.5·x·(1 + erf(x/√2)) and 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    #[rustfmt::skip]
    let exact = [-0.0040496940948902835, -0.15865525393145705, -0.15426876936299344, 0.0,
                 0.34573123063700656, 0.8413447460685429, 2.99595030590511, -7.619853024160526e-23];
    #[rustfmt::skip]
    let tanh = [-0.003637392081773019, -0.1588080093917233, -0.15428599017485609, 0.0,
                0.34571400982514394, 0.8411919906082767, 2.996362607918227, -1.2040923482098103e-37];
    let g = |a| eval(&Op::Gelu { approx: a }, &[&x]).unwrap().to_f64_vec();
    close(&g(GeluApprox::None), &exact, 1e-13);
    close(&g(GeluApprox::Tanh), &tanh, 1e-13);
    let ends = t(
        DType::F32,
        &[3],
        &[f64::NEG_INFINITY, f64::INFINITY, f64::NAN],
    );
    for a in [GeluApprox::None, GeluApprox::Tanh] {
        let y = eval(&Op::Gelu { approx: a }, &[&ends])
            .unwrap()
            .to_f64_vec();
        assert_eq!(y[..2], [0.0, f64::INFINITY]);
        assert!(y[2].is_nan());
    }
    let i = Tensor::from_i64(vec![1], vec![1]).unwrap();
    let op = Op::Gelu {
        approx: GeluApprox::None,
    };
    assert!(eval(&op, &[&i]).is_err());
}

/// Attention problem sizes and flags for the loop reference.
#[derive(Clone, Copy)]
struct Cfg {
    b: usize,
    h: usize,
    kvh: usize,
    sq: usize,
    sk: usize,
    d: usize,
    dv: usize,
    causal: bool,
}

/// The doc comment of `Op::Attention`, followed literally. `bias` is given in full
/// `[B, H, Sq, Sk]`, `mask` as `[B, Sk]`, `rope` as per-position `[S, D]` cos/sin tables.
fn reference(
    c: Cfg,
    scale: f64,
    (q, k, v): (&[f64], &[f64], &[f64]),
    bias: Option<&[f64]>,
    mask: Option<&[bool]>,
    rope: Option<(&[f64], &[f64])>,
) -> Vec<f64> {
    let rotate = |x: &[f64], s: usize| -> Vec<f64> {
        let Some((cos, sin)) = rope else {
            return x.to_vec();
        };
        let (lo, hi) = x.split_at(c.d / 2);
        let rot: Vec<f64> = hi.iter().map(|v| -v).chain(lo.iter().copied()).collect();
        (0..c.d)
            .map(|i| x[i] * cos[s * c.d + i] + rot[i] * sin[s * c.d + i])
            .collect()
    };
    let mut out = vec![0.0; c.b * c.h * c.sq * c.dv];
    for b in 0..c.b {
        for h in 0..c.h {
            let kh = h / (c.h / c.kvh);
            for i in 0..c.sq {
                let qs = ((b * c.h + h) * c.sq + i) * c.d;
                let qi = rotate(&q[qs..qs + c.d], i);
                let keys: Vec<usize> = (0..c.sk)
                    .filter(|&j| mask.is_none_or(|m| m[b * c.sk + j]))
                    .filter(|&j| !c.causal || j + c.sq <= i + c.sk)
                    .collect();
                let scores: Vec<f64> = keys
                    .iter()
                    .map(|&j| {
                        let ks = ((b * c.kvh + kh) * c.sk + j) * c.d;
                        let kj = rotate(&k[ks..ks + c.d], j);
                        let dot: f64 = qi.iter().zip(&kj).map(|(a, b)| a * b).sum();
                        let bb = bias.map_or(0.0, |t| t[((b * c.h + h) * c.sq + i) * c.sk + j]);
                        dot * scale + bb
                    })
                    .collect();
                let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                for (&j, s) in keys.iter().zip(&scores) {
                    let p = (s - m).exp() / z;
                    for e in 0..c.dv {
                        let vs = ((b * c.kvh + kh) * c.sk + j) * c.dv;
                        out[((b * c.h + h) * c.sq + i) * c.dv + e] += p * v[vs + e];
                    }
                }
            }
        }
    }
    out
}

fn attn_op(c: Cfg, scale: f64, bias: bool, mask: bool, rotary: bool) -> Op {
    Op::Attention {
        heads: c.h as u32,
        kv_heads: c.kvh as u32,
        scale,
        causal: c.causal,
        bias,
        mask,
        rotary,
    }
}

/// Random q, k, v for a configuration, as f64 tensors and raw values.
fn qkv(c: Cfg, seed: u64) -> ([Tensor; 3], [Vec<f64>; 3]) {
    let q = values(c.b * c.h * c.sq * c.d, seed);
    let k = values(c.b * c.kvh * c.sk * c.d, seed + 1);
    let v = values(c.b * c.kvh * c.sk * c.dv, seed + 2);
    let tq = t(DType::F64, &[c.b, c.h, c.sq, c.d], &q);
    let tk = t(DType::F64, &[c.b, c.kvh, c.sk, c.d], &k);
    let tv = t(DType::F64, &[c.b, c.kvh, c.sk, c.dv], &v);
    ([tq, tk, tv], [q, k, v])
}

const BASE: Cfg = Cfg {
    b: 2,
    h: 2,
    kvh: 2,
    sq: 3,
    sk: 3,
    d: 4,
    dv: 3,
    causal: false,
};

#[test]
fn attention_by_hand() {
    // One query, two keys, D = 1: scores [0, ln 3] → weights [1/4, 3/4] → 0.25·4 + 0.75·8 = 7.
    let c = Cfg {
        b: 1,
        h: 1,
        kvh: 1,
        sq: 1,
        sk: 2,
        d: 1,
        dv: 1,
        causal: false,
    };
    let q = t(DType::F64, &[1, 1, 1, 1], &[1.0]);
    let k = t(DType::F64, &[1, 1, 2, 1], &[0.0, 3f64.ln()]);
    let v = t(DType::F64, &[1, 1, 2, 1], &[4.0, 8.0]);
    let y = eval(&attn_op(c, 1.0, false, false, false), &[&q, &k, &v]).unwrap();
    assert_eq!(y.shape(), &[1, 1, 1, 1]);
    close(&y.to_f64_vec(), &[7.0], 1e-15);
}

#[test]
fn attention_plain_causal_and_grouped_query() {
    let cases = [
        BASE,
        Cfg {
            causal: true,
            ..BASE
        },
        Cfg {
            sq: 2,
            sk: 5,
            causal: true,
            ..BASE
        },
        // Sq > Sk: the first Sq - Sk query rows see no key and give zeros.
        Cfg {
            sq: 4,
            sk: 2,
            causal: true,
            ..BASE
        },
        Cfg {
            h: 4,
            kvh: 2,
            sq: 2,
            sk: 4,
            ..BASE
        },
        Cfg {
            h: 4,
            kvh: 1,
            causal: true,
            ..BASE
        },
    ];
    for (n, c) in cases.into_iter().enumerate() {
        let ([q, k, v], [qv, kv, vv]) = qkv(c, 10 * n as u64);
        let y = eval(&attn_op(c, 0.5, false, false, false), &[&q, &k, &v]).unwrap();
        assert_eq!(y.shape(), &[c.b, c.h, c.sq, c.dv]);
        let want = reference(c, 0.5, (&qv, &kv, &vv), None, None, None);
        close(&y.to_f64_vec(), &want, 1e-12);
    }
    let c = Cfg {
        sq: 4,
        sk: 2,
        causal: true,
        ..BASE
    };
    let ([q, k, v], _) = qkv(c, 30);
    let y = eval(&attn_op(c, 0.5, false, false, false), &[&q, &k, &v]).unwrap();
    assert_eq!(y.to_f64_vec()[..6], [0.0; 6]);
}

#[test]
fn attention_mask_and_bias() {
    let c = Cfg { sk: 4, ..BASE };
    let ([q, k, v], [qv, kv, vv]) = qkv(c, 40);
    // Batch 0 pads its last key (i64 mask); batch 1 masks every key, so its rows are zero.
    let mask = Tensor::from_i64(vec![2, 4], vec![1, 1, 3, 0, 0, 0, 0, 0]).unwrap();
    let keep = [true, true, true, false, false, false, false, false];
    let y = eval(&attn_op(c, 0.7, false, true, false), &[&q, &k, &v, &mask]).unwrap();
    let want = reference(c, 0.7, (&qv, &kv, &vv), None, Some(&keep), None);
    close(&y.to_f64_vec(), &want, 1e-12);
    assert!(y.to_f64_vec()[18..].iter().all(|&x| x == 0.0));
    // Additive bias [H, Sq, Sk] broadcast over the batch, with a bool mask and causal.
    let c = Cfg {
        sk: 4,
        causal: true,
        ..BASE
    };
    let bias = values(2 * 3 * 4, 41);
    let full: Vec<f64> = bias.iter().chain(&bias).map(|b| b * 3.0).collect();
    let tb = t(DType::F64, &[2, 3, 4], &full[..24]);
    let bm = Tensor::from_bools(
        vec![2, 4],
        vec![true, false, true, true, true, true, true, false],
    )
    .unwrap();
    let keep = bm.to_bool_vec();
    let op = attn_op(c, 0.3, true, true, false);
    let y = eval(&op, &[&q, &k, &v, &tb, &bm]).unwrap();
    let want = reference(c, 0.3, (&qv, &kv, &vv), Some(&full), Some(&keep), None);
    close(&y.to_f64_vec(), &want, 1e-12);
    let fm = t(DType::F32, &[2, 4], &[1.0; 8]);
    assert!(eval(&op, &[&q, &k, &v, &tb, &fm])
        .unwrap_err()
        .contains("mask"));
    let short = Tensor::from_bools(vec![2, 3], vec![true; 6]).unwrap();
    assert!(eval(&op, &[&q, &k, &v, &tb, &short])
        .unwrap_err()
        .contains("mask"));
    assert!(eval(&op, &[&q, &k, &v, &tb])
        .unwrap_err()
        .contains("inputs"));
}

#[test]
fn attention_rotary() {
    let c = Cfg {
        h: 4,
        kvh: 2,
        sq: 3,
        sk: 3,
        d: 6,
        dv: 2,
        causal: true,
        ..BASE
    };
    let ([q, k, v], [qv, kv, vv]) = qkv(c, 50);
    // Standard RoPE tables: angle s · 10000^(-2i/D) for i < D/2, repeated for both halves.
    let (mut cos, mut sin) = (Vec::new(), Vec::new());
    for s in 0..3 {
        for i in 0..6 {
            let ang = s as f64 * 10000f64.powf(-2.0 * (i % 3) as f64 / 6.0);
            cos.push(ang.cos());
            sin.push(ang.sin());
        }
    }
    let op = attn_op(c, 1.0 / 6f64.sqrt(), false, false, true);
    let want = reference(
        c,
        1.0 / 6f64.sqrt(),
        (&qv, &kv, &vv),
        None,
        None,
        Some((&cos, &sin)),
    );
    // cos/sin as [S, D] and as the full [B, 1, S, D] broadcast.
    for shape in [vec![3, 6], vec![1, 1, 3, 6]] {
        let (tc, ts) = (t(DType::F64, &shape, &cos), t(DType::F64, &shape, &sin));
        let y = eval(&op, &[&q, &k, &v, &tc, &ts]).unwrap();
        close(&y.to_f64_vec(), &want, 1e-12);
    }
    let (tc, ts) = (t(DType::F64, &[3, 6], &cos), t(DType::F64, &[3, 6], &sin));
    let plain = eval(
        &attn_op(c, 1.0 / 6f64.sqrt(), false, false, false),
        &[&q, &k, &v],
    )
    .unwrap();
    assert_ne!(plain.to_f64_vec(), want);
    // Rotary needs Sq = Sk and an even head dim.
    let c2 = Cfg { sq: 2, ..c };
    let ([q2, k2, v2], _) = qkv(c2, 60);
    let e = eval(
        &attn_op(c2, 1.0, false, false, true),
        &[&q2, &k2, &v2, &tc, &ts],
    );
    assert!(e.unwrap_err().contains("Sq = Sk"));
    let c3 = Cfg { d: 5, ..c };
    let ([q3, k3, v3], _) = qkv(c3, 70);
    let (c5, s5) = (
        t(DType::F64, &[3, 5], &[1.0; 15]),
        t(DType::F64, &[3, 5], &[0.0; 15]),
    );
    let e = eval(
        &attn_op(c3, 1.0, false, false, true),
        &[&q3, &k3, &v3, &c5, &s5],
    );
    assert!(e.unwrap_err().contains("even"));
}

#[test]
fn attention_rejects_inconsistent_shapes() {
    let ([q, k, v], _) = qkv(BASE, 80);
    // Plain attention ops whose head counts do not match the tensors, or each other.
    let heads = |h, kvh| attn_op(Cfg { h, kvh, ..BASE }, 1.0, false, false, false);
    let bad_heads = heads(3, 3);
    assert!(eval(&bad_heads, &[&q, &k, &v])
        .unwrap_err()
        .contains("heads"));
    let not_multiple = heads(2, 3);
    assert!(eval(&not_multiple, &[&q, &k, &v]).is_err());
    let op = attn_op(BASE, 1.0, false, false, false);
    let v_short = t(DType::F64, &[2, 2, 2, 3], &[0.0; 24]);
    assert!(eval(&op, &[&q, &k, &v_short]).is_err());
    let k32 = k.cast(DType::F32);
    assert!(eval(&op, &[&q, &k32, &v]).unwrap_err().contains("dtype"));
    let q3 = t(DType::F64, &[2, 3, 4], &[0.0; 24]);
    assert!(eval(&op, &[&q3, &k, &v]).unwrap_err().contains("rank 4"));
    let bias_op = attn_op(BASE, 1.0, true, false, false);
    let bad_bias = t(DType::F64, &[3, 2], &[0.0; 6]);
    assert!(eval(&bias_op, &[&q, &k, &v, &bad_bias])
        .unwrap_err()
        .contains("broadcast"));
}
