//! Hugging Face checkpoints and architecture dispatch on small safetensors folders written here:
//! single and sharded checkpoints, weight names with and without the architecture prefix, f16 and
//! bf16 converted to f32 on request (f32 mapped in place), and the typed error of every broken
//! folder (mis-shaped or missing weights, truncated or garbage files, escaping shard names,
//! missing or invalid `config.json`, unsupported architectures).

use kiln_compiler::ir::{DType, WeightData};
use kiln_frontends::hf::checkpoint::Checkpoint;
use kiln_frontends::hf::{load_folder, supported};
use kiln_frontends::Error;
use kiln_runtime::{bf16, f16};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::Path;

/// One tensor to write: name, dtype, shape, little-endian bytes.
type Spec = (String, Dtype, Vec<usize>, Vec<u8>);

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn write_st(path: &Path, tensors: &[Spec]) {
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn f32_tensor(name: &str, shape: &[usize], v: &[f32]) -> Spec {
    (name.to_string(), Dtype::F32, shape.to_vec(), f32_bytes(v))
}

fn values(ck: &Checkpoint, name: &str, shape: &[usize]) -> Vec<f64> {
    ck.weight(name, shape, DType::F32)
        .unwrap_or_else(|e| panic!("{e}"))
        .to_tensor()
        .unwrap()
        .to_f64_vec()
}

fn open_err(dir: &Path) -> Error {
    match Checkpoint::open(dir) {
        Ok(ck) => panic!("opened {:?}", ck.names().collect::<Vec<_>>()),
        Err(e) => e,
    }
}

#[test]
fn a_single_file_is_read_and_f32_is_mapped_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    write_st(
        &tmp.path().join("model.safetensors"),
        &[
            f32_tensor("a", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            f32_tensor("b", &[1], &[-7.5]),
        ],
    );
    let ck = Checkpoint::open(tmp.path()).unwrap();
    assert_eq!(ck.dir(), tmp.path());
    assert_eq!(ck.names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(ck.shape("a"), Some(vec![2, 3]));
    let w = ck.weight("a", &[2, 3], DType::F32).unwrap();
    assert!(
        matches!(w.data(), WeightData::Mapped { len: 24, .. }),
        "{:?}",
        w.data()
    );
    assert_eq!((w.dtype, w.shape.clone()), (DType::F32, vec![2, 3]));
    assert_eq!(
        w.to_tensor().unwrap().to_f64_vec(),
        [1., 2., 3., 4., 5., 6.]
    );
    assert_eq!(values(&ck, "b", &[1]), [-7.5]);
}

#[test]
fn a_sharded_checkpoint_reads_weights_from_every_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_st(
        &d.join("model-00001-of-00002.safetensors"),
        &[
            f32_tensor("embeddings.weight", &[2, 2], &[1.0, 2.0, 3.0, 4.0]),
            f32_tensor("layer.0.bias", &[2], &[0.5, -0.5]),
        ],
    );
    write_st(
        &d.join("model-00002-of-00002.safetensors"),
        &[f32_tensor("layer.1.bias", &[3], &[9.0, 8.0, 7.0])],
    );
    let index = serde_json::json!({
        "metadata": {"total_size": 36},
        "weight_map": {
            "embeddings.weight": "model-00001-of-00002.safetensors",
            "layer.0.bias": "model-00001-of-00002.safetensors",
            "layer.1.bias": "model-00002-of-00002.safetensors",
        }
    });
    std::fs::write(d.join("model.safetensors.index.json"), index.to_string()).unwrap();
    // A stray single-file checkpoint is ignored when an index is present.
    std::fs::write(d.join("model.safetensors"), b"not read").unwrap();

    let ck = Checkpoint::open(d).unwrap();
    assert_eq!(
        ck.names().collect::<Vec<_>>(),
        ["embeddings.weight", "layer.0.bias", "layer.1.bias"]
    );
    assert_eq!(values(&ck, "embeddings.weight", &[2, 2]), [1., 2., 3., 4.]);
    assert_eq!(values(&ck, "layer.0.bias", &[2]), [0.5, -0.5]);
    assert_eq!(values(&ck, "layer.1.bias", &[3]), [9., 8., 7.]);
    let w = ck.weight("layer.1.bias", &[3], DType::F32).unwrap();
    assert!(matches!(w.data(), WeightData::Mapped { .. }));

    // A weight that is mis-shaped in the second shard names that shard.
    let e = ck.weight("layer.1.bias", &[4], DType::F32).unwrap_err();
    assert_eq!(
        e.path(),
        Some(d.join("model-00002-of-00002.safetensors").as_path())
    );
}

#[test]
fn names_resolve_with_and_without_the_architecture_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    write_st(
        &tmp.path().join("model.safetensors"),
        &[
            f32_tensor("bert.embeddings.word_embeddings.weight", &[1], &[1.0]),
            f32_tensor("encoder.layer.0.output.dense.bias", &[1], &[2.0]),
            f32_tensor("model.norm.weight", &[1], &[3.0]),
            f32_tensor("lm_head.weight", &[1], &[4.0]),
        ],
    );
    let ck = Checkpoint::open(tmp.path()).unwrap();
    // Stored with the prefix, asked without.
    assert_eq!(
        ck.resolve("embeddings.word_embeddings.weight").as_deref(),
        Some("bert.embeddings.word_embeddings.weight")
    );
    assert_eq!(
        values(&ck, "embeddings.word_embeddings.weight", &[1]),
        [1.0]
    );
    assert_eq!(
        ck.resolve("norm.weight").as_deref(),
        Some("model.norm.weight")
    );
    assert_eq!(values(&ck, "norm.weight", &[1]), [3.0]);
    // Stored without the prefix, asked with it.
    assert_eq!(
        ck.resolve("bert.encoder.layer.0.output.dense.bias")
            .as_deref(),
        Some("encoder.layer.0.output.dense.bias")
    );
    assert_eq!(
        values(&ck, "bert.encoder.layer.0.output.dense.bias", &[1]),
        [2.0]
    );
    assert_eq!(values(&ck, "model.lm_head.weight", &[1]), [4.0]);
    // Exact names resolve to themselves.
    assert_eq!(
        ck.resolve("model.norm.weight").as_deref(),
        Some("model.norm.weight")
    );
    assert!(ck.has("embeddings.word_embeddings.weight"));
    assert_eq!(ck.shape("bert.norm.weight"), None);
    assert!(!ck.has("pooler.dense.weight"));
    assert_eq!(ck.resolve("pooler.dense.weight"), None);
}

#[test]
fn f16_and_bf16_are_converted_to_f32_on_request() {
    let vals = [1.5f32, -2.25, 0.1, 65504.0, -0.0, 3.0e-5];
    let h: Vec<u8> = vals
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect();
    let b: Vec<u8> = vals
        .iter()
        .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    write_st(
        &tmp.path().join("model.safetensors"),
        &[
            ("half".to_string(), Dtype::F16, vec![2, 3], h.clone()),
            ("brain".to_string(), Dtype::BF16, vec![3, 2], b.clone()),
        ],
    );
    let ck = Checkpoint::open(tmp.path()).unwrap();

    let want_h: Vec<f64> = vals
        .iter()
        .map(|&v| f64::from(f16::from_f32(v).to_f32()))
        .collect();
    let want_b: Vec<f64> = vals
        .iter()
        .map(|&v| f64::from(bf16::from_f32(v).to_f32()))
        .collect();
    for (name, shape, want) in [("half", [2, 3], &want_h), ("brain", [3, 2], &want_b)] {
        let w = ck.weight(name, &shape, DType::F32).unwrap();
        assert_eq!((w.dtype, w.shape.as_slice()), (DType::F32, &shape[..]));
        assert!(matches!(w.data(), WeightData::Owned(_)), "{name} is copied");
        let got = w.to_tensor().unwrap().to_f64_vec();
        assert_eq!(&got, want, "{name}");
        assert!(got[4].is_sign_negative(), "{name}: -0.0 keeps its sign");
    }

    // Asked in the stored dtype, the bytes are mapped as they are.
    let w = ck.weight("half", &[2, 3], DType::F16).unwrap();
    assert_eq!(w.dtype, DType::F16);
    assert!(matches!(w.data(), WeightData::Mapped { .. }));
    assert_eq!(w.bytes().unwrap(), h.as_slice());
    let w = ck.weight("brain", &[3, 2], DType::BF16).unwrap();
    assert_eq!(w.bytes().unwrap(), b.as_slice());
}

#[test]
fn a_mis_shaped_weight_names_the_tensor_and_both_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("model.safetensors");
    write_st(
        &file,
        &[f32_tensor("bert.pooler.dense.bias", &[2, 3], &[0.0; 6])],
    );
    let ck = Checkpoint::open(tmp.path()).unwrap();
    let e = ck
        .weight("pooler.dense.bias", &[3, 2], DType::F32)
        .unwrap_err();
    match &e {
        Error::WeightShape {
            path,
            tensor,
            expected,
            found,
        } => {
            assert_eq!(path, &file);
            assert_eq!(tensor, "bert.pooler.dense.bias");
            assert_eq!(expected, &[3, 2]);
            assert_eq!(found, &[2, 3]);
        }
        other => panic!("expected WeightShape, got {other:?}"),
    }
    let msg = e.to_string();
    for part in [
        "bert.pooler.dense.bias",
        "[2, 3]",
        "[3, 2]",
        "model.safetensors",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
}

#[test]
fn a_missing_weight_is_named_with_its_expected_shape() {
    let tmp = tempfile::tempdir().unwrap();
    write_st(
        &tmp.path().join("model.safetensors"),
        &[f32_tensor("present", &[1], &[1.0])],
    );
    let ck = Checkpoint::open(tmp.path()).unwrap();
    let e = ck.weight("absent.weight", &[4, 5], DType::F32).unwrap_err();
    match &e {
        Error::MissingWeight {
            path,
            tensor,
            expected,
        } => {
            assert_eq!(path, tmp.path());
            assert_eq!(tensor, "absent.weight");
            assert_eq!(expected, &[4, 5]);
        }
        other => panic!("expected MissingWeight, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("missing weight `absent.weight`"), "{msg}");
    assert!(msg.contains("[4, 5]"), "{msg}");
}

#[test]
fn truncated_and_garbage_files_are_safetensors_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.safetensors");
    write_st(&good, &[f32_tensor("w", &[4, 4], &[1.0; 16])]);
    let bytes = std::fs::read(&good).unwrap();
    let header = usize::try_from(u64::from_le_bytes(bytes[..8].try_into().unwrap())).unwrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("data cut short", bytes[..bytes.len() - 5].to_vec()),
        ("header cut short", bytes[..8 + header / 2].to_vec()),
        ("only part of the size", bytes[..5].to_vec()),
        ("empty", Vec::new()),
        (
            "garbage",
            b"this is not a safetensors file, just some text".to_vec(),
        ),
        ("huge header size", {
            let mut v = u64::MAX.to_le_bytes().to_vec();
            v.extend_from_slice(b"{}");
            v
        }),
        ("header not JSON", {
            let mut v = 4u64.to_le_bytes().to_vec();
            v.extend_from_slice(b"{{{{");
            v
        }),
    ];
    for (what, data) in cases {
        let dir = tmp.path().join(what.replace(' ', "_"));
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("model.safetensors");
        std::fs::write(&file, &data).unwrap();
        match open_err(&dir) {
            Error::Safetensors { path, message } => {
                assert_eq!(path, file, "{what}");
                assert!(!message.is_empty(), "{what}");
            }
            other => panic!("{what}: expected Safetensors, got {other:?}"),
        }
    }
}

#[test]
fn an_index_naming_a_file_outside_the_folder_is_a_config_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("model");
    std::fs::create_dir(&d).unwrap();
    // The escaping shard exists, so only the name check can refuse it.
    write_st(
        &tmp.path().join("x.safetensors"),
        &[f32_tensor("w", &[1], &[1.0])],
    );
    for shard in [
        "../x.safetensors",
        "/etc/x.safetensors",
        "sub/x.safetensors",
        "..",
    ] {
        let index = serde_json::json!({"weight_map": {"w": shard}});
        let index_path = d.join("model.safetensors.index.json");
        std::fs::write(&index_path, index.to_string()).unwrap();
        match open_err(&d) {
            Error::Config { path, message } => {
                assert_eq!(path, index_path, "{shard}");
                assert!(message.contains(shard), "{shard}: {message}");
            }
            other => panic!("{shard}: expected Config, got {other:?}"),
        }
    }
}

#[test]
fn broken_indexes_and_missing_files_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // No checkpoint at all: the expected single file cannot be read.
    match open_err(d) {
        Error::Io { path, .. } => assert_eq!(path, d.join("model.safetensors")),
        other => panic!("expected Io, got {other:?}"),
    }
    let index_path = d.join("model.safetensors.index.json");
    for (text, what) in [
        ("{ not json", "not valid JSON"),
        (r#"{"metadata": {}}"#, "weight_map"),
    ] {
        std::fs::write(&index_path, text).unwrap();
        match open_err(d) {
            Error::Config { path, message } => {
                assert_eq!(path, index_path);
                assert!(message.contains(what), "{message}");
            }
            other => panic!("expected Config, got {other:?}"),
        }
    }
    // A shard the index names that is not there.
    let index = serde_json::json!({"weight_map": {"w": "model-00001-of-00001.safetensors"}});
    std::fs::write(&index_path, index.to_string()).unwrap();
    match open_err(d) {
        Error::Io { path, .. } => {
            assert_eq!(path, d.join("model-00001-of-00001.safetensors"))
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn config_json_missing_or_invalid_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("config.json");
    match load_folder(tmp.path()) {
        Err(Error::Io { path, .. }) => assert_eq!(path, cfg),
        other => panic!("expected Io, got {other:?}"),
    }
    std::fs::write(&cfg, "{\"architectures\": [\"BertModel\",").unwrap();
    match load_folder(tmp.path()) {
        Err(Error::Config { path, message }) => {
            assert_eq!(path, cfg);
            assert!(message.contains("not valid JSON"), "{message}");
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

#[test]
fn an_unsupported_architecture_lists_the_supported_ones() {
    let names = supported();
    assert!(!names.is_empty());
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("config.json");
    for (config, found) in [
        (
            r#"{"architectures": ["FooForMaskedLM"], "model_type": "foo"}"#,
            "FooForMaskedLM",
        ),
        (r#"{"model_type": "foo"}"#, "foo"),
        (
            "{}",
            "(none: config.json names no `architectures` or `model_type`)",
        ),
    ] {
        std::fs::write(&cfg, config).unwrap();
        let e = load_folder(tmp.path()).unwrap_err();
        match &e {
            Error::UnsupportedArchitecture {
                path,
                found: f,
                supported: s,
            } => {
                assert_eq!(path, &cfg);
                assert_eq!(f, found);
                assert_eq!(s, &names);
            }
            other => panic!("{config}: expected UnsupportedArchitecture, got {other:?}"),
        }
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("unsupported architecture `{found}`")),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("supported: {}", names.join(", "))),
            "{msg}"
        );
        for n in &names {
            assert!(msg.contains(n), "{msg}");
        }
    }
}
