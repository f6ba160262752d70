//! Kernel edge cases: special values (−∞ biases, NaN, huge scores), empty dims, every view
//! validation error, and a timing print for the MiniLM attention shape.

use super::reference::{check, isas, Case};
use super::{attention, AttentionError, Dims, Inputs, Params, View, ViewMut};

fn small() -> Dims {
    Dims {
        batch: 2,
        heads: 2,
        kv_heads: 2,
        sq: 9,
        sk: 70,
        d: 8,
        dv: 8,
    }
}

#[test]
fn minus_infinity_bias_and_huge_scores() {
    let dm = small();
    let (b, h, sq, sk) = (dm.batch, dm.heads, dm.sq, dm.sk);
    let mut case = Case::random(900, dm, false);
    let mut bias = vec![0.0f32; b * h * sq * sk];
    for (n, x) in bias.iter_mut().enumerate() {
        let (row, j) = (n / sk, n % sk);
        *x = match row % 4 {
            0 => f32::NEG_INFINITY, // every key -∞: NaN, as the definition gives
            1 if j != 69 => f32::NEG_INFINITY, // only the last key (second key block) counts
            2 if j < 64 => f32::NEG_INFINITY, // the whole first key block is -∞
            _ => 30.0 * ((j % 7) as f32 - 3.0), // e^90 would overflow without the max
        };
    }
    case.bias = Some((bias, [h * sq * sk, sq * sk, sk, 1]));
    check(&case, "-inf bias");
    // Masking every key of those rows instead gives zeros, never NaN.
    case.mask = Some(vec![0; b * sk]);
    check(&case, "-inf bias, all masked");
    assert!(case.run(isas()[0]).iter().all(|&x| x == 0.0));
}

#[test]
fn nan_propagates_to_its_rows_only() {
    let dm = small();
    let mut case = Case::random(901, dm, false);
    case.q.data[3] = f32::NAN; // batch 0, head 0, row 0
    check(&case, "NaN query");
    let out = case.run(isas()[0]);
    assert!(out[..dm.dv].iter().all(|x| x.is_nan()));
    assert!(out[dm.dv..].iter().all(|x| x.is_finite()));
}

#[test]
fn non_finite_values_at_excluded_keys_do_not_leak() {
    let dm = Dims {
        batch: 1,
        heads: 1,
        kv_heads: 1,
        sq: 20,
        sk: 20,
        d: 8,
        dv: 8,
    };
    let mut case = Case::random(908, dm, true);
    // Key 3 is masked out; key 10 is causally excluded for rows 0..10 only.
    for j in [3, 10] {
        case.k.data[j * dm.d] = f32::NAN;
        case.v.data[j * dm.dv + 1] = f32::INFINITY;
    }
    let mut mask = vec![1u8; dm.sk];
    mask[3] = 0;
    case.mask = Some(mask);
    let mut bias = vec![0.0f32; dm.sq * dm.sk];
    bias[5 * dm.sk + 12] = f32::NAN; // row 5 never sees key 12
    case.bias = Some((bias, [0, 0, dm.sk, 1]));
    check(&case, "non-finite at excluded keys");
    let out = case.run(isas()[0]);
    assert!(out[..10 * dm.dv].iter().all(|x| x.is_finite()));
}

#[test]
fn empty_dims() {
    let mut dm = small();
    dm.sk = 0;
    check(&Case::random(902, dm, false), "Sk = 0");
    let mut dm = small();
    dm.d = 0;
    check(&Case::random(903, dm, true), "D = 0");
    let mut dm = small();
    dm.sq = 0;
    check(&Case::random(904, dm, true), "Sq = 0");
}

/// Runs the default small call with one operand replaced.
fn call_with(
    edit: impl FnOnce(&mut Case, &mut Vec<f32>, &mut [usize; 3]),
) -> Result<(), AttentionError> {
    let dm = small();
    let mut case = Case::random(905, dm, false);
    let mut out = vec![0.0; dm.batch * dm.heads * dm.sq * dm.dv];
    let mut strides = [dm.heads * dm.sq * dm.dv, dm.sq * dm.dv, dm.dv];
    edit(&mut case, &mut out, &mut strides);
    case.run_into(isas()[0], &mut out, strides)
}

#[test]
fn view_validation_errors() {
    let operand = |r: Result<(), AttentionError>| match r {
        Err(AttentionError::TooShort { operand, .. }) => operand,
        other => panic!("expected TooShort, got {other:?}"),
    };
    assert_eq!(call_with(|_, _, _| {}), Ok(()));
    assert_eq!(
        operand(call_with(|c, _, _| {
            c.q.data.pop();
        })),
        "q"
    );
    assert_eq!(
        operand(call_with(|c, _, _| {
            c.k.strides[2] += 1;
        })),
        "k"
    );
    assert_eq!(
        operand(call_with(|c, _, _| {
            c.v.data.truncate(10);
        })),
        "v"
    );
    assert_eq!(
        operand(call_with(|_, o, _| {
            o.pop();
        })),
        "out"
    );
    assert_eq!(
        operand(call_with(
            |c, _, _| c.bias = Some((vec![0.0; 69], [0, 0, 0, 1]))
        )),
        "bias"
    );
    assert_eq!(
        operand(call_with(|c, _, _| c.mask = Some(vec![1; 139]))),
        "key_mask"
    );
    assert!(matches!(
        call_with(|c, _, _| c.rotary = Some((vec![], vec![], 0, 8))),
        Err(AttentionError::Rotary {
            sq: 9,
            sk: 70,
            d: 8
        })
    ));
    assert!(matches!(
        call_with(|c, _, _| c.dims.kv_heads = 3),
        Err(AttentionError::Heads {
            heads: 2,
            kv_heads: 3
        })
    ));
    assert!(matches!(
        call_with(|c, _, _| c.q.strides[0] = usize::MAX - 5),
        Err(AttentionError::Overflow { operand: "q" })
    ));
    assert!(matches!(
        call_with(|_, _, s| s[1] = 0),
        Err(AttentionError::OverlappingOutput { .. })
    ));
    assert!(matches!(
        call_with(|_, _, s| s[2] = 4),
        Err(AttentionError::OverlappingOutput { .. })
    ));
}

#[test]
fn rotary_tables_are_validated() {
    let mut dm = small();
    dm.sq = dm.sk;
    let mut case = Case::random(906, dm, false);
    case.rotary = Some((
        vec![0.0; dm.sk * dm.d - 1],
        vec![0.0; dm.sk * dm.d],
        0,
        dm.d,
    ));
    let mut out = vec![0.0; dm.batch * dm.heads * dm.sq * dm.dv];
    let strides = [dm.heads * dm.sq * dm.dv, dm.sq * dm.dv, dm.dv];
    assert!(matches!(
        case.run_into(isas()[0], &mut out, strides),
        Err(AttentionError::TooShort { operand: "cos", .. })
    ));
}

#[test]
fn minilm_layer_timing() {
    // B=1, H=12, S=128, D=32: ~25 MFLOP. Printed, not asserted (run with --nocapture).
    for batch in [1, 8] {
        let dm = Dims {
            batch,
            heads: 12,
            kv_heads: 12,
            sq: 128,
            sk: 128,
            d: 32,
            dv: 32,
        };
        let case = Case::random(907, dm, false);
        let mut out = vec![0.0; batch * 12 * 128 * 32];
        let p = Params {
            scale: case.params.scale,
            causal: false,
        };
        for isa in isas() {
            let mut times = Vec::new();
            for _ in 0..(240 / (batch * 8)).max(5) {
                let t = std::time::Instant::now();
                let inputs = Inputs {
                    q: case.q.view(),
                    k: case.k.view(),
                    v: case.v.view(),
                    bias: None,
                    key_mask: None,
                    rotary: None,
                };
                attention(
                    isa,
                    &dm,
                    &p,
                    inputs,
                    ViewMut::contiguous(&mut out, 12, 128, 32),
                )
                .unwrap();
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            println!(
                "attention B={batch} H=12 S=128 D=32 {isa:?}: median {:.3} ms, min {:.3} ms ({} threads)",
                times[times.len() / 2],
                times[0],
                rayon::current_num_threads()
            );
        }
    }
    let _ = View::contiguous(&[], 1, 1, 1);
}
