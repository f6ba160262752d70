//! ggml block formats to f32: every supported type against the `gguf` Python package's
//! `dequantize` on random blocks (`tests/data/gguf_dequant_golden.bin`, written by
//! `tools/gguf_dequant_golden.py`), hand-built blocks whose values are known, and refused
//! types and lengths.

use kiln_frontends::gguf::dequant::{dequantize, GgmlType};

/// `(type, block bytes, expected values)` from the golden file.
fn golden() -> Vec<(GgmlType, Vec<u8>, Vec<f32>)> {
    let data = include_bytes!("../data/gguf_dequant_golden.bin");
    let mut out = Vec::new();
    let mut at = 0;
    let u32_at = |at: &mut usize| {
        let v = u32::from_le_bytes(data[*at..*at + 4].try_into().unwrap());
        *at += 4;
        v as usize
    };
    while at < data.len() {
        let ty = GgmlType::from_id(u32_at(&mut at) as u32).expect("a known type");
        let n = u32_at(&mut at);
        let bytes = data[at..at + n].to_vec();
        at += n;
        let m = u32_at(&mut at);
        let vals = data[at..at + 4 * m]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        at += 4 * m;
        out.push((ty, bytes, vals));
    }
    out
}

#[test]
fn every_type_matches_gguf_py() {
    let cases = golden();
    let names: Vec<&str> = cases.iter().map(|c| c.0.name()).collect();
    assert_eq!(
        names,
        [
            "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16",
            "BF16"
        ]
    );
    for (ty, bytes, want) in cases {
        let got = dequantize(ty, &bytes, want.len()).expect("dequantizes");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            // gguf-py computes in f32 too; allow one rounding of difference.
            let tol = 1e-6 * w.abs().max(1e-3);
            assert!(
                (g - w).abs() <= tol,
                "{}: element {i}: {g} vs {w}",
                ty.name()
            );
        }
    }
}

fn f16(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_le_bytes()
}

#[test]
fn hand_built_blocks() {
    // Q8_0: d = 0.5, q = -16..16.
    let mut b = f16(0.5).to_vec();
    b.extend((0..32).map(|i| (i as i8 - 16) as u8));
    let y = dequantize(GgmlType::Q8_0, &b, 32).unwrap();
    assert_eq!(
        y,
        (0..32).map(|i| (i as f32 - 16.0) * 0.5).collect::<Vec<_>>()
    );
    // Q4_1: d = 2, m = -1; low nibbles j, high nibbles 15 - j: y[j] = 2j - 1, y[16+j] = 29 - 2j.
    let mut b = f16(2.0).to_vec();
    b.extend(f16(-1.0));
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let y = dequantize(GgmlType::Q4_1, &b, 32).unwrap();
    for j in 0..16 {
        assert_eq!(y[j], 2.0 * j as f32 - 1.0);
        assert_eq!(y[16 + j], 29.0 - 2.0 * j as f32);
    }
    // Q5_0: the fifth bit of element j is bit j of qh; all set with nibbles 0 → q = 16 → 0.
    let mut b = f16(1.0).to_vec();
    b.extend(u32::MAX.to_le_bytes());
    b.extend([0u8; 16]);
    assert!(dequantize(GgmlType::Q5_0, &b, 32)
        .unwrap()
        .iter()
        .all(|&v| v == 0.0));
    // Q8_K: f32 d = 0.25, q = i - 128, bsums ignored.
    let mut b = 0.25f32.to_le_bytes().to_vec();
    b.extend((0..256i32).map(|i| (i - 128) as i8 as u8));
    b.extend([0xAB; 32]);
    let y = dequantize(GgmlType::Q8_K, &b, 256).unwrap();
    assert_eq!(
        y,
        (0..256)
            .map(|i| (i as f32 - 128.0) * 0.25)
            .collect::<Vec<_>>()
    );
    // Q6_K: scales 1, d = 1, ql = qh = 0 → every value −32.
    let mut b = vec![0u8; 192];
    b.extend([1u8; 16]);
    b.extend(f16(1.0));
    assert!(dequantize(GgmlType::Q6_K, &b, 256)
        .unwrap()
        .iter()
        .all(|&v| v == -32.0));
    // F32 passes through.
    let b: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(dequantize(GgmlType::F32, &b, 2).unwrap(), [1.5, -2.0]);
}

#[test]
fn unsupported_types_and_bad_lengths_are_errors() {
    let e = dequantize(GgmlType::IQ2_XXS, &[0; 66], 256).unwrap_err();
    assert!(e.contains("IQ2_XXS is not supported"), "{e}");
    let e = dequantize(GgmlType::Q4_0, &[0; 17], 32).unwrap_err();
    assert!(
        e.contains("17 bytes do not hold 32 elements of type Q4_0"),
        "{e}"
    );
    assert!(dequantize(GgmlType::Q4_0, &[0; 18], 31).is_err());
    assert_eq!(GgmlType::from_id(12), Some(GgmlType::Q4_K));
    assert_eq!(GgmlType::Q4_K.id(), 12);
    assert_eq!(GgmlType::from_id(4), None);
}
