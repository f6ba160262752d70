//! `.npz` round trips through Kiln's writer and reader for every dtype (0-d and empty arrays
//! included, stored and deflated), and reading files written by numpy itself (`tests/data/`,
//! generated once with numpy 2.4 `np.savez`, `np.savez_compressed` and
//! `np.lib.format.write_array(..., version=(3, 0))`).

use kiln::npz::{read_npz, read_npz_bytes, write_npz, write_npz_bytes, Compression, NpzError};
use kiln_runtime::{bf16, f16, DType, Tensor, TensorData};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn every_dtype() -> BTreeMap<String, Tensor> {
    let mut m = BTreeMap::new();
    let values = [0.0, 1.0, -2.0, 3.5, 100.0, -0.25];
    for d in DType::ALL {
        let t = Tensor::from_f64_values(d, vec![2, 3], &values).unwrap();
        m.insert(format!("{d}_2x3"), t);
        let scalar = Tensor::from_f64_values(d, vec![], &[1.0]).unwrap();
        m.insert(format!("{d}_scalar"), scalar);
        let empty = Tensor::from_f64_values(d, vec![3, 0, 2], &[]).unwrap();
        m.insert(format!("{d}_empty"), empty);
    }
    m.insert(
        "extremes".into(),
        Tensor::new(
            vec![3],
            TensorData::F32(vec![f32::MAX, f32::MIN_POSITIVE, -0.0]),
        )
        .unwrap(),
    );
    m.insert(
        "i64_extremes".into(),
        Tensor::from_i64(vec![2], vec![i64::MIN, i64::MAX]).unwrap(),
    );
    m.insert("nested/key with spaces".into(), Tensor::scalar_f32(7.0));
    m
}

/// `m` read back as a model with `want`'s dtypes as inputs reads it: bf16, stored as `<u2`
/// bits, is reinterpreted where bf16 is expected.
fn as_inputs_of(
    m: BTreeMap<String, Tensor>,
    want: &BTreeMap<String, Tensor>,
) -> BTreeMap<String, Tensor> {
    let dtypes: Vec<(String, DType)> = want.iter().map(|(k, t)| (k.clone(), t.dtype())).collect();
    kiln::npz::bits_as_bf16(m, &dtypes)
}

#[test]
fn every_dtype_round_trips_stored_and_deflated() {
    let tensors = every_dtype();
    for c in [Compression::Stored, Compression::Deflated] {
        let bytes = write_npz_bytes(&tensors, c, Path::new("mem.npz")).unwrap();
        let back = read_npz_bytes(&bytes, Path::new("mem.npz")).unwrap();
        assert_eq!(as_inputs_of(back, &tensors), tensors, "{c:?}");
    }
}

#[test]
fn nan_bits_survive() {
    let nan = f32::from_bits(0x7fc0_1234);
    let mut m = BTreeMap::new();
    m.insert(
        "x".to_string(),
        Tensor::from_f32(vec![1], vec![nan]).unwrap(),
    );
    let bytes = write_npz_bytes(&m, Compression::Stored, Path::new("m.npz")).unwrap();
    let back = read_npz_bytes(&bytes, Path::new("m.npz")).unwrap();
    match back["x"].data() {
        TensorData::F32(v) => assert_eq!(v[0].to_bits(), 0x7fc0_1234),
        other => panic!("wrong data {other:?}"),
    }
}

#[test]
fn files_round_trip_and_are_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.npz");
    std::fs::write(&path, b"old contents").unwrap();
    let tensors = every_dtype();
    write_npz(&path, &tensors, Compression::Deflated).unwrap();
    assert_eq!(as_inputs_of(read_npz(&path).unwrap(), &tensors), tensors);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("out.npz")]);
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("out.npz");
    let err = write_npz(&path, &every_dtype(), Compression::Stored).unwrap_err();
    assert!(matches!(err, NpzError::Output { .. }), "{err}");
    assert!(err.to_string().contains("missing-dir"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn check_numpy_file(m: &BTreeMap<String, Tensor>) {
    let f32s: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
    assert_eq!(m["f32"], Tensor::from_f32(vec![2, 3], f32s).unwrap());
    let f16s = [1.5, -2.0, 65504.0].map(f16::from_f32).to_vec();
    assert_eq!(
        m["f16"],
        Tensor::new(vec![3], TensorData::F16(f16s)).unwrap()
    );
    assert_eq!(
        m["f64"],
        Tensor::new(vec![1, 1], TensorData::F64(vec![3.25])).unwrap()
    );
    assert_eq!(
        m["i64"],
        Tensor::from_i64(vec![3], vec![-(1 << 40), 0, 7]).unwrap()
    );
    assert_eq!(
        m["i32"],
        Tensor::new(vec![2], TensorData::I32(vec![-5, i32::MAX])).unwrap()
    );
    assert_eq!(
        m["i8"],
        Tensor::new(vec![2], TensorData::I8(vec![-128, 127])).unwrap()
    );
    assert_eq!(
        m["u8"],
        Tensor::new(vec![3], TensorData::U8(vec![0, 255, 9])).unwrap()
    );
    assert_eq!(
        m["b"],
        Tensor::from_bools(vec![3], vec![true, false, true]).unwrap()
    );
    assert_eq!(m["scalar"], Tensor::scalar_f32(2.5));
    assert_eq!(m["empty"], Tensor::from_f32(vec![2, 0], vec![]).unwrap());
    assert_eq!(m.len(), 10);
}

#[test]
fn reads_numpy_savez() {
    check_numpy_file(&read_npz(&data("numpy_savez.npz")).unwrap());
}

#[test]
fn reads_numpy_savez_compressed() {
    check_numpy_file(&read_npz(&data("numpy_savez_compressed.npz")).unwrap());
}

#[test]
fn reads_version_3_headers_and_rejects_fortran_order() {
    let path = data("numpy_v3_and_fortran.npz");
    let bytes = std::fs::read(&path).unwrap();
    let err = read_npz_bytes(&bytes, &path).unwrap_err();
    match &err {
        NpzError::FortranOrder { key, path: p } => {
            assert_eq!(key, "fortran");
            assert_eq!(p, &path);
        }
        other => panic!("expected FortranOrder, got {other}"),
    }
    // The v3 member alone reads fine.
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut v3 = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("v3.npy").unwrap(), &mut v3).unwrap();
    assert_eq!(&v3[6..8], &[3, 0]);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("v3.npy", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut w, &v3).unwrap();
    let only = w.finish().unwrap().into_inner();
    let m = read_npz_bytes(&only, Path::new("v3.npz")).unwrap();
    let want = Tensor::new(vec![4], TensorData::I32(vec![0, 1, 2, 3])).unwrap();
    assert_eq!(m["v3"], want);
}

#[test]
fn bf16_is_stored_as_u2_bits_and_read_back_as_bf16_where_expected() {
    let t = Tensor::new(
        vec![2],
        TensorData::BF16(vec![bf16::from_f32(1.0), bf16::from_f32(-3.0)]),
    )
    .unwrap();
    let mut m = BTreeMap::new();
    m.insert("w".to_string(), t.clone());
    let bytes = write_npz_bytes(&m, Compression::Stored, Path::new("m.npz")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("'descr': '<u2'"), "{text}");
    let read = read_npz_bytes(&bytes, Path::new("m.npz")).unwrap();
    assert_eq!(read["w"].dtype(), DType::U16);
    let back = kiln::npz::bits_as_bf16(read, &[("w".to_string(), DType::BF16)]);
    assert_eq!(back["w"], t);
}

proptest::proptest! {
    #[test]
    fn random_tensors_round_trip(
        dtype in proptest::sample::select(DType::ALL.to_vec()),
        shape in proptest::collection::vec(0usize..4, 0..4),
        seed in proptest::collection::vec(-1e6f64..1e6, 64),
        deflate in proptest::bool::ANY,
    ) {
        let n: usize = shape.iter().product();
        let values: Vec<f64> = (0..n).map(|i| seed[i % seed.len()]).collect();
        let t = Tensor::from_f64_values(dtype, shape, &values).unwrap();
        let m = BTreeMap::from([("t".to_string(), t)]);
        let c = if deflate { Compression::Deflated } else { Compression::Stored };
        let bytes = write_npz_bytes(&m, c, Path::new("p.npz")).unwrap();
        let back = read_npz_bytes(&bytes, Path::new("p.npz")).unwrap();
        proptest::prop_assert_eq!(as_inputs_of(back, &m), m);
    }
}
