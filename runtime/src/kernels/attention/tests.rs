//! Kernel against the f64 definition on random inputs, for every ISA this machine has: shapes
//! (block remainders, D = 1…80, Dv ≠ D, GQA, Sq ≠ Sk), bias broadcasts, key masks, causal
//! exclusion, rotary, strided layouts and a long sequence.

use super::reference::{assert_close, check, isas, Case, Rng, T4};
use super::Dims;

/// `[B, H, Sq, D]` attention dims from `(batch, heads, kv_heads, sq, sk, d, dv)`.
fn dims(b: usize, h: usize, kvh: usize, sq: usize, sk: usize, d: usize, dv: usize) -> Dims {
    Dims {
        batch: b,
        heads: h,
        kv_heads: kvh,
        sq,
        sk,
        d,
        dv,
    }
}

#[test]
fn shapes_against_reference() {
    let shapes = [
        dims(1, 1, 1, 1, 1, 1, 1),
        dims(1, 2, 2, 5, 7, 1, 1),
        dims(2, 3, 3, 17, 33, 8, 8),
        dims(1, 2, 2, 40, 70, 32, 32),
        dims(1, 1, 1, 33, 130, 64, 64),
        dims(1, 2, 2, 20, 20, 80, 80),
        dims(2, 2, 2, 9, 11, 32, 48),
        dims(1, 2, 2, 16, 65, 24, 40),
        dims(1, 8, 2, 24, 24, 16, 16),
        dims(2, 4, 1, 35, 35, 8, 17),
        dims(1, 2, 2, 33, 40, 12, 60),
        dims(1, 1, 1, 20, 30, 16, 100),
    ];
    for (n, &dm) in shapes.iter().enumerate() {
        for causal in [false, true] {
            check(
                &Case::random(n as u64, dm, causal),
                &format!("{dm:?} causal={causal}"),
            );
        }
    }
}

#[test]
fn causal_offset_when_sq_differs_from_sk() {
    // Sq < Sk: the queries are the last Sq positions. Sq > Sk: the first rows see no key (zeros).
    for (n, dm) in [dims(1, 2, 2, 7, 100, 32, 32), dims(2, 2, 1, 50, 20, 16, 16)]
        .into_iter()
        .enumerate()
    {
        let case = Case::random(100 + n as u64, dm, true);
        check(&case, &format!("causal {dm:?}"));
        if dm.sq > dm.sk {
            let out = case.run(isas()[0]);
            assert!(out[..(dm.sq - dm.sk - 1) * dm.dv].iter().all(|&x| x == 0.0));
        }
    }
}

#[test]
fn bias_broadcasts() {
    let dm = dims(2, 3, 3, 19, 70, 16, 16);
    let (b, h, sq, sk) = (dm.batch, dm.heads, dm.sq, dm.sk);
    // (shape as stored, strides [b, h, q, k])
    let layouts: [([usize; 4], [usize; 4]); 6] = [
        ([b, h, sq, sk], [h * sq * sk, sq * sk, sk, 1]),
        ([b, 1, 1, sk], [sk, 0, 0, 1]),
        ([1, h, sq, sk], [0, sq * sk, sk, 1]),
        ([1, 1, sq, sk], [0, 0, sk, 1]),
        ([b, h, sq, 1], [h * sq, sq, 1, 0]),
        ([1, 1, 1, 1], [0, 0, 0, 0]),
    ];
    for (n, (shape, strides)) in layouts.into_iter().enumerate() {
        for causal in [false, true] {
            let mut case = Case::random(200 + n as u64, dm, causal);
            let data = Rng(300 + n as u64).values_f32(shape.iter().product(), -1.0, 1.0);
            case.bias = Some((data.iter().map(|x| 3.0 * x).collect(), strides));
            check(&case, &format!("bias {shape:?} causal={causal}"));
        }
    }
}

#[test]
fn key_mask_with_a_fully_masked_batch() {
    let dm = dims(3, 2, 2, 21, 90, 32, 32);
    for causal in [false, true] {
        let mut case = Case::random(400, dm, causal);
        let mut rng = Rng(401);
        let mut mask: Vec<u8> = (0..dm.batch * dm.sk)
            .map(|_| u8::from(!rng.next_u64().is_multiple_of(3)))
            .collect();
        mask[dm.sk..2 * dm.sk].fill(0);
        mask[2 * dm.sk] = 7; // any non-zero value attends
        case.mask = Some(mask);
        check(&case, &format!("mask causal={causal}"));
        let out = case.run(isas()[0]);
        let per_batch = dm.heads * dm.sq * dm.dv;
        assert!(out[per_batch..2 * per_batch].iter().all(|&x| x == 0.0));
    }
}

#[test]
fn rotary_shared_and_per_batch_tables() {
    let dm = dims(2, 4, 2, 37, 37, 32, 24);
    for per_batch in [false, true] {
        let mut case = Case::random(500, dm, true);
        let mut rng = Rng(501);
        let n = if per_batch { dm.batch } else { 1 };
        let cos = rng.values_f32(n * dm.sq * dm.d, -1.0, 1.0);
        let sin = rng.values_f32(n * dm.sq * dm.d, -1.0, 1.0);
        let sb = if per_batch { dm.sq * dm.d } else { 0 };
        case.rotary = Some((cos, sin, sb, dm.d));
        check(&case, &format!("rotary per_batch={per_batch}"));
    }
}

#[test]
fn strided_views_from_projection_layout() {
    let dm = dims(2, 4, 2, 33, 45, 16, 16);
    let mut case = Case::random(600, dm, false);
    let mut rng = Rng(601);
    case.q = T4::random_bshd(&mut rng, [dm.batch, dm.heads, dm.sq, dm.d]);
    case.k = T4::random_bshd(&mut rng, [dm.batch, dm.kv_heads, dm.sk, dm.d]);
    case.v = T4::random_bshd(&mut rng, [dm.batch, dm.kv_heads, dm.sk, dm.dv]);
    let want = case.reference();
    check(&case, "bshd views");
    // Output written straight into a [B, Sq, H·Dv] buffer.
    let (b, h, sq, dv) = (dm.batch, dm.heads, dm.sq, dm.dv);
    for isa in isas() {
        let mut out = vec![f32::NAN; b * sq * h * dv];
        case.run_into(isa, &mut out, [sq * h * dv, dv, h * dv])
            .unwrap();
        let mut got = Vec::new();
        for bi in 0..b {
            for hi in 0..h {
                for i in 0..sq {
                    let at = bi * sq * h * dv + i * h * dv + hi * dv;
                    got.extend_from_slice(&out[at..at + dv]);
                }
            }
        }
        assert_close(&got, &want, &format!("bshd output [{isa:?}]"));
    }
}

#[test]
fn padded_row_strides() {
    let dm = dims(1, 2, 2, 18, 30, 8, 8);
    let mut case = Case::random(700, dm, true);
    let mut rng = Rng(701);
    // Rows 11 floats apart (3 unused), heads 400 apart.
    let padded = |rng: &mut Rng, s: usize| T4 {
        data: rng.values_f32(2 * 400, -1.0, 1.0),
        strides: [800, 400, 11].map(|x| if s == 0 { 0 } else { x }),
    };
    case.q = padded(&mut rng, dm.sq);
    case.k = padded(&mut rng, dm.sk);
    case.v = padded(&mut rng, dm.sk);
    check(&case, "padded strides");
}

#[test]
fn long_sequence_against_reference() {
    let dm = dims(1, 2, 1, 1000, 1000, 32, 32);
    for causal in [false, true] {
        let case = Case::random(800, dm, causal);
        check(&case, &format!("S=1000 causal={causal}"));
    }
}
