//! GGUF container: a small file with every metadata value type parses to what was written;
//! hostile files (truncated at every byte, huge counts and lengths, tensors outside the file or
//! overlapping, bad alignment, duplicate names, unknown types) are `Error::Gguf` values that
//! name the file and the place, never a panic or a huge allocation.

use crate::gguf_common::*;
use kiln_frontends::gguf::dequant::GgmlType;
use kiln_frontends::gguf::reader::{parse, Array, Header};
use kiln_frontends::gguf::Value;
use kiln_frontends::Error;
use std::path::Path;

fn ok(g: &Gguf) -> Header {
    parse(Path::new("m.gguf"), &g.bytes()).expect("a valid file parses")
}

/// Asserts that `bytes` is refused with an `Error::Gguf` whose message has `fragment`.
#[track_caller]
fn refused(bytes: &[u8], fragment: &str) {
    match parse(Path::new("m.gguf"), bytes) {
        Ok(_) => panic!("accepted a file that should fail with `{fragment}`"),
        Err(e @ Error::Gguf { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with("m.gguf: GGUF "), "{msg}");
            assert!(msg.contains(fragment), "`{msg}` lacks `{fragment}`");
            assert!(!msg.contains('\n'), "{msg}");
        }
        Err(e) => panic!("not a GGUF error: {e}"),
    }
}

/// A file with one value of every type and two tensors, the last ending the file.
fn every_type() -> Gguf {
    let nested = {
        let mut inner = arr(U16, 2, &[1, 0, 2, 0]);
        inner.extend(arr(U16, 1, &[3, 0]));
        arr(ARR, 2, &inner)
    };
    Gguf::default()
        .kv("u8", U8, vec![200])
        .kv("i8", I8, vec![0xFF])
        .kv("u16", U16, 60000u16.to_le_bytes().to_vec())
        .kv("i16", I16, (-2i16).to_le_bytes().to_vec())
        .u32("u32", 7)
        .kv("i32", I32, (-3i32).to_le_bytes().to_vec())
        .f32("f32", 0.5)
        .kv("bool", BOOL, vec![1])
        .str("str", "héllo")
        .kv("u64", U64, u64::MAX.to_le_bytes().to_vec())
        .kv("i64", I64, (-4i64).to_le_bytes().to_vec())
        .kv("f64", F64, 0.25f64.to_le_bytes().to_vec())
        .kv("strs", ARR, strs(&["a", "bc"]))
        .kv("nested", ARR, nested)
        .kv("empty", ARR, arr(I32, 0, &[]))
        .f32_tensor("a", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .f32_tensor("b", &[4], &[7.0, 8.0, 9.0, 10.0])
}

#[test]
fn every_value_type_reads_back() {
    let h = ok(&every_type());
    let m = &h.metadata;
    assert_eq!(h.version, 3);
    assert_eq!(m["u8"], Value::U8(200));
    assert_eq!(m["i8"], Value::I8(-1));
    assert_eq!(m["u16"], Value::U16(60000));
    assert_eq!(m["i16"], Value::I16(-2));
    assert_eq!(m["u32"].as_u64(), Some(7));
    assert_eq!(m["i32"], Value::I32(-3));
    assert_eq!(m["f32"].as_f64(), Some(0.5));
    assert_eq!(m["bool"].as_bool(), Some(true));
    assert_eq!(m["str"].as_str(), Some("héllo"));
    assert_eq!(m["u64"].as_u64(), Some(u64::MAX));
    assert_eq!(m["i64"].as_u64(), None);
    assert_eq!(m["f64"], Value::F64(0.25));
    assert_eq!(
        m["strs"].as_strs(),
        Some(&["a".to_string(), "bc".to_string()][..])
    );
    assert_eq!(
        m["nested"],
        Value::Array(Array::Array(vec![
            Array::U16(vec![1, 2]),
            Array::U16(vec![3])
        ]))
    );
    assert_eq!(m["empty"].as_ints(), Some(vec![]));
    assert_eq!(h.alignment, 32);
    assert_eq!(h.data_start % 32, 0);
    let (a, b) = (&h.tensors[0], &h.tensors[1]);
    assert_eq!(
        (a.name.as_str(), &a.dims[..], a.ggml_type),
        ("a", &[2, 3][..], GgmlType::F32)
    );
    assert_eq!((a.numel, a.len, a.start), (6, 24, h.data_start));
    assert_eq!((b.start, b.len), (h.data_start + 32, 16));
}

#[test]
fn version_2_and_a_custom_alignment_parse() {
    let mut g = every_type().u32("general.alignment", 64);
    g.version = 2;
    g.alignment = 64;
    let h = ok(&g);
    assert_eq!((h.version, h.alignment), (2, 64));
    assert_eq!(h.data_start % 64, 0);
    assert_eq!(h.tensors[1].start, h.data_start + 64);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = every_type().bytes();
    for n in 0..bytes.len() {
        assert!(
            parse(Path::new("m.gguf"), &bytes[..n]).is_err(),
            "a file cut at byte {n} of {} parsed",
            bytes.len()
        );
    }
}

#[test]
fn bad_magic_and_versions_are_refused() {
    let mut b = every_type().bytes();
    b[0] = b'X';
    refused(&b, "not a GGUF file");
    for v in [1u32, 4, 0x0300_0000] {
        let mut g = every_type();
        g.version = v;
        refused(&g.bytes(), "is not supported");
    }
}

/// The header with a `u64` field at `at` replaced by `v`.
fn with_u64(mut b: Vec<u8>, at: usize, v: u64) -> Vec<u8> {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    b
}

#[test]
fn huge_counts_and_lengths_are_refused_before_allocating() {
    let b = every_type().bytes();
    refused(&with_u64(b.clone(), 8, u64::MAX), "tensor count");
    refused(&with_u64(b.clone(), 8, 1 << 40), "tensor count");
    refused(&with_u64(b.clone(), 16, u64::MAX / 2), "metadata count");
    // The first key's length.
    refused(&with_u64(b.clone(), 24, u64::MAX), "string length");
    let g = Gguf::default().kv("a", ARR, arr(U8, u64::MAX, &[1, 2]));
    refused(&g.bytes(), "array length");
    let g = Gguf::default().kv("a", ARR, arr(STR, 1 << 60, &s("x")));
    refused(&g.bytes(), "array length");
    let g = Gguf::default().kv("a", STR, (u64::MAX - 3).to_le_bytes().to_vec());
    refused(&g.bytes(), "string length");
    // Arrays nested 100 deep.
    let mut deep = arr(U8, 0, &[]);
    for _ in 0..100 {
        deep = arr(ARR, 1, &deep);
    }
    refused(&Gguf::default().kv("a", ARR, deep).bytes(), "nested deeper");
}

#[test]
fn bad_values_are_refused() {
    refused(
        &Gguf::default().kv("b", BOOL, vec![2]).bytes(),
        "neither 0 nor 1",
    );
    refused(
        &Gguf::default().kv("x", 13, vec![0; 8]).bytes(),
        "unknown value type 13",
    );
    refused(
        &Gguf::default().kv("x", ARR, arr(99, 0, &[])).bytes(),
        "unknown array element type 99",
    );
    let mut bad = 1u64.to_le_bytes().to_vec();
    bad.push(0xFF);
    refused(&Gguf::default().kv("x", STR, bad).bytes(), "not UTF-8");
    refused(
        &Gguf::default().u32("k", 1).u32("k", 2).bytes(),
        "key `k`: appears twice",
    );
}

#[test]
fn bad_alignments_are_refused() {
    for a in [0u32, 3, 48] {
        refused(
            &every_type().u32("general.alignment", a).bytes(),
            "power of two",
        );
    }
    let g = every_type().kv("general.alignment", U64, 32u64.to_le_bytes().to_vec());
    refused(&g.bytes(), "general.alignment");
    let mut g = every_type();
    g.offsets = Some(vec![0, 36]);
    refused(&g.bytes(), "not a multiple of the alignment");
}

#[test]
fn bad_tensor_infos_are_refused() {
    let mut g = every_type();
    g.offsets = Some(vec![0, 1 << 20]);
    refused(
        &g.bytes(),
        "tensor `b`: data (16 bytes at data offset 1048576) lies outside",
    );
    let mut g = every_type();
    g.offsets = Some(vec![0, u64::MAX - 31]);
    refused(&g.bytes(), "lies outside");
    let mut g = every_type();
    g.tensors[0].1 = vec![4];
    g.offsets = Some(vec![0, 0]);
    refused(&g.bytes(), "overlaps tensor `a`");
    let mut g = every_type();
    g.tensors[1].0 = "a".into();
    refused(&g.bytes(), "tensor `a`: appears twice");
    let mut g = every_type();
    g.tensors[1].2 = 99;
    refused(&g.bytes(), "unknown ggml type 99");
    let mut g = every_type();
    g.tensors[1].1 = vec![1, 1, 1, 1, 4];
    refused(&g.bytes(), "5 dimensions");
    let mut g = every_type();
    g.tensors[1].1 = vec![u64::MAX, 4];
    refused(&g.bytes(), "overflows");
    // A Q4_0 row must be whole 32-element blocks.
    let mut g = every_type();
    g.tensors[1] = ("q".into(), vec![33], 2, vec![0; 18]);
    refused(&g.bytes(), "not whole Q4_0 blocks");
}
