//! Malformed `.npz` input: each defect gives its own typed error naming the file and the array,
//! and no input at all (random bytes, mutated valid files, random headers) makes the reader panic.

use kiln::npz::{read_npz, read_npz_bytes, write_npz_bytes, Compression, NpzError};
use kiln_runtime::Tensor;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::Path;

const FILE: &str = "dir/in.npz";

/// A zip of raw members.
fn zip_of(members: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in members {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// An `.npy` v1.0 file with the given header dict and data.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn header(descr: &str, fortran: bool, shape: &str) -> String {
    let f = if fortran { "True" } else { "False" };
    format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}\n")
}

fn read_one(member: &[u8]) -> NpzError {
    let z = zip_of(&[("x.npy", member)], zip::CompressionMethod::Stored);
    let err = read_npz_bytes(&z, Path::new(FILE)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("dir/in.npz: "), "{msg}");
    err
}

fn assert_names_key(e: &NpzError) {
    assert!(e.to_string().contains("array `x`"), "{e}");
}

#[test]
fn not_a_zip() {
    for bytes in [&b""[..], b"hello", b"PK\x03\x04 truncated"] {
        let e = read_npz_bytes(bytes, Path::new(FILE)).unwrap_err();
        assert!(matches!(e, NpzError::NotZip { .. }), "{e}");
        assert!(
            e.to_string().starts_with("dir/in.npz: not a valid .npz"),
            "{e}"
        );
    }
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let e = read_npz(Path::new("/nonexistent/in.npz")).unwrap_err();
    assert!(matches!(e, NpzError::Io { .. }), "{e}");
    assert!(e.to_string().starts_with("/nonexistent/in.npz: "), "{e}");
}

#[test]
fn members_must_be_npy() {
    let z = zip_of(&[("notes.txt", b"hi")], zip::CompressionMethod::Stored);
    let e = read_npz_bytes(&z, Path::new(FILE)).unwrap_err();
    assert!(
        matches!(&e, NpzError::NotNpy { key, .. } if key == "notes.txt"),
        "{e}"
    );
}

#[test]
fn bad_magic_and_versions() {
    let e = read_one(b"\x93NUMPZ\x01\x00\x00\x00");
    assert!(matches!(e, NpzError::BadMagic { .. }), "{e}");
    assert_names_key(&e);
    let e = read_one(b"");
    assert!(matches!(e, NpzError::BadMagic { .. }), "{e}");
    let e = read_one(b"\x93NUMPY\x04\x01\x00\x00");
    assert!(
        matches!(
            e,
            NpzError::UnsupportedVersion {
                major: 4,
                minor: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("4.1"), "{e}");
}

#[test]
fn bad_headers() {
    let truncated = b"\x93NUMPY\x01\x00\x50\x00{'descr'";
    for member in [
        truncated.to_vec(),
        npy("{'descr': '<f4', 'shape': (1,)}", &[0; 4]),
        npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
            &[0; 4],
        ),
        npy("not a dict", &[]),
        npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}",
            &[],
        ),
    ] {
        let e = read_one(&member);
        assert!(matches!(e, NpzError::BadHeader { .. }), "{e}");
        assert_names_key(&e);
    }
}

#[test]
fn unsupported_dtypes() {
    for descr in ["<c8", "|O", "<U4", "<f16", "|S3", "<m8[s]"] {
        let e = read_one(&npy(&header(descr, false, "(1,)"), &[0; 16]));
        assert!(
            matches!(&e, NpzError::UnsupportedDType { descr: d, .. } if d == descr),
            "{e}"
        );
        assert_names_key(&e);
    }
    let structured =
        "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,)}";
    let e = read_one(&npy(structured, &[0; 8]));
    assert!(matches!(e, NpzError::UnsupportedDType { .. }), "{e}");
}

#[test]
fn big_endian_and_fortran_order() {
    let e = read_one(&npy(&header(">f4", false, "(1,)"), &[0; 4]));
    assert!(matches!(e, NpzError::BigEndian { .. }), "{e}");
    assert!(e.to_string().contains("little-endian"), "{e}");
    let e = read_one(&npy(&header("<f4", true, "(2, 2)"), &[0; 16]));
    assert!(matches!(e, NpzError::FortranOrder { .. }), "{e}");
    assert_names_key(&e);
    // A Fortran flag on a 1-d array is still refused: the flag is what the file says.
    let e = read_one(&npy(&header("<f4", true, "(2,)"), &[0; 8]));
    assert!(matches!(e, NpzError::FortranOrder { .. }), "{e}");
}

#[test]
fn data_size_must_match_the_shape() {
    for (shape, len, expected) in [
        ("(2, 3)", 20, 24),
        ("(2, 3)", 28, 24),
        ("()", 0, 4),
        ("(0,)", 4, 0),
    ] {
        let e = read_one(&npy(&header("<f4", false, shape), &vec![0; len]));
        match &e {
            NpzError::SizeMismatch {
                expected: x, found, ..
            } => {
                assert_eq!((*x, *found), (expected, len), "{e}")
            }
            other => panic!("expected SizeMismatch, got {other}"),
        }
        assert_names_key(&e);
    }
    let huge = "(4294967296, 4294967296, 4294967296)";
    let e = read_one(&npy(&header("<f8", false, huge), &[]));
    assert!(matches!(e, NpzError::ShapeOverflow { .. }), "{e}");
}

#[test]
fn corrupt_deflate_data_is_a_member_error() {
    let payload = npy(&header("<f4", false, "(64,)"), &[7u8; 256]);
    let mut z = zip_of(&[("x.npy", &payload)], zip::CompressionMethod::Deflated);
    // Local header is 30 bytes + the 5-byte name; corrupt the compressed stream after it.
    for b in &mut z[35..45] {
        *b ^= 0x5a;
    }
    let e = read_npz_bytes(&z, Path::new(FILE)).unwrap_err();
    assert!(
        matches!(e, NpzError::Member { .. } | NpzError::NotZip { .. }),
        "{e}"
    );
    assert!(e.to_string().starts_with("dir/in.npz: "), "{e}");
}

#[test]
fn an_unknown_compression_method_names_the_array() {
    let payload = npy(&header("<f4", false, "()"), &[0; 4]);
    let mut z = zip_of(&[("x.npy", &payload)], zip::CompressionMethod::Stored);
    // Method 99 (AES) without the AES extra field, in the local and the central header.
    z[8] = 99;
    let central = (0..z.len() - 4)
        .find(|&i| &z[i..i + 4] == b"PK\x01\x02")
        .unwrap();
    z[central + 10] = 99;
    let e = read_npz_bytes(&z, Path::new(FILE)).unwrap_err();
    assert!(e.to_string().starts_with("dir/in.npz: "), "{e}");
    match &e {
        NpzError::Member { key, .. } => assert_eq!(key, "x"),
        other => panic!("expected a member error, got {other}"),
    }
}

#[test]
fn duplicate_keys_are_refused() {
    let member = npy(&header("<f4", false, "()"), &[0; 4]);
    let mut z = zip_of(
        &[("a.npy", &member), ("b.npy", &member)],
        zip::CompressionMethod::Stored,
    );
    // Rename `b.npy` to `a.npy` in both the local and the central headers.
    for i in 0..z.len() - 5 {
        if &z[i..i + 5] == b"b.npy" {
            z[i] = b'a';
        }
    }
    let e = read_npz_bytes(&z, Path::new(FILE)).unwrap_err();
    assert!(matches!(e, NpzError::DuplicateKey { .. }), "{e}");
    assert!(e.to_string().starts_with("dir/in.npz: "), "{e}");
}

fn valid_npz() -> Vec<u8> {
    let mut m = BTreeMap::new();
    m.insert(
        "a".to_string(),
        Tensor::from_f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
    );
    m.insert(
        "b".to_string(),
        Tensor::from_i64(vec![3], vec![1, 2, 3]).unwrap(),
    );
    write_npz_bytes(&m, Compression::Deflated, Path::new("v.npz")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_npz_bytes(&bytes, Path::new(FILE));
    }

    #[test]
    fn mutated_files_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut z = valid_npz();
        for (i, v) in flips {
            let i = i.index(z.len());
            z[i] = v;
        }
        if truncate {
            z.truncate(cut.index(z.len()));
        }
        let _ = read_npz_bytes(&z, Path::new(FILE));
    }

    #[test]
    fn random_headers_never_panic(h in "[{}()\\[\\]'\":, a-z_<>|0-9TrueFalsL-]{0,80}",
                                  data in proptest::collection::vec(any::<u8>(), 0..32)) {
        let z = zip_of(&[("x.npy", &npy(&h, &data))], zip::CompressionMethod::Stored);
        let _ = read_npz_bytes(&z, Path::new(FILE));
    }
}
