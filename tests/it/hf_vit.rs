//! The Hugging Face `ViTModel` frontend against the vit-tiny fixture: PyTorch's
//! `last_hidden_state`, another batch size, a wrong image size, and a missing weight.

use crate::common;

use kiln::kiln_compiler::interp;
use kiln::kiln_compiler::ir::Graph;
use kiln::kiln_frontends::hf::load_folder;
use kiln::kiln_frontends::Error;
use kiln::kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The fixture folder and its `.npz` (`pixel_values`, `out`), or `None` when the shared data
/// is missing.
fn fixture() -> Option<(PathBuf, BTreeMap<String, Tensor>)> {
    let shared = common::shared_dir()?;
    let fixtures = shared.join("fixtures");
    let npz = kiln::read_npz(&fixtures.join("vit-tiny.npz")).expect("the vit-tiny npz reads");
    Some((fixtures.join("vit-tiny"), npz))
}

/// Runs the graph on `pixel_values` and returns `last_hidden_state`.
fn run(g: &Graph, pixels: &Tensor) -> Result<Tensor, kiln::kiln_compiler::Error> {
    let inputs = BTreeMap::from([("pixel_values".to_string(), pixels.clone())]);
    let outs = interp::run(g, &inputs)?;
    let (name, t) = outs.into_iter().next().expect("one output");
    assert_eq!(name, "last_hidden_state");
    Ok(t)
}

/// The f32 values and shape of a tensor.
fn values(t: &Tensor) -> (Vec<f32>, Vec<usize>) {
    let v = t.to_f64_vec().into_iter().map(|x| x as f32).collect();
    (v, t.shape().to_vec())
}

#[test]
fn vit_tiny_matches_pytorch() {
    let Some((dir, npz)) = fixture() else { return };
    let g = load_folder(&dir).expect("vit-tiny builds");
    let got = run(&g, &npz["pixel_values"]).expect("vit-tiny runs");
    assert_eq!(got.shape(), &[2, 17, 64]);
    let max = common::allclose(&got, &npz["out"], 1e-3, 1e-4).expect("matches PyTorch");
    println!("vit-tiny last_hidden_state: max |diff| {max:.3e}");
}

#[test]
fn vit_other_batch_and_wrong_image_size() {
    let Some((dir, npz)) = fixture() else { return };
    let g = load_folder(&dir).expect("vit-tiny builds");
    let pixels = &npz["pixel_values"];
    let base = run(&g, pixels).expect("batch 2 runs");

    // Batch 3: the fixture's two images and the first one again.
    let (px, shape) = values(pixels);
    let image = px.len() / shape[0];
    let mut three = px.clone();
    three.extend_from_slice(&px[..image]);
    let three = Tensor::from_f32(vec![3, shape[1], shape[2], shape[3]], three).unwrap();
    let got = run(&g, &three).expect("batch 3 runs");
    assert_eq!(got.shape(), &[3, 17, 64]);
    let (b, _) = values(&base);
    let (t, _) = values(&got);
    let row = b.len() / 2;
    let want: Vec<f32> = b.iter().chain(&b[..row]).copied().collect();
    let want = Tensor::from_f32(vec![3, 17, 64], want).unwrap();
    let max = common::allclose(&got, &want, 1e-5, 1e-6).expect("rows equal the batch-2 run");
    println!("batch 3 vs batch 2 rows: max |diff| {max:.3e}");
    assert_eq!(t.len(), 3 * row);

    // 16x16 images: the position embeddings fix the image size at 32.
    let small = Tensor::from_f32(vec![1, 3, 16, 16], vec![0.5; 3 * 16 * 16]).unwrap();
    let err = run(&g, &small).expect_err("a 16x16 image is refused");
    let msg = err.to_string();
    assert!(
        matches!(err, kiln::kiln_compiler::Error::Input { ref name, .. } if name == "pixel_values"),
        "{msg}"
    );
    assert!(msg.contains("pixel_values"), "{msg}");
}

#[test]
fn vit_missing_weight_is_named() {
    let Some((dir, _)) = fixture() else { return };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("config.json"), tmp.path().join("config.json")).unwrap();
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let missing = "encoder.layer.1.attention.attention.key.weight";
    let kept: Vec<_> = st
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != missing)
        .collect();
    assert_eq!(kept.len() + 1, st.len());
    safetensors::serialize_to_file(kept, None, &tmp.path().join("model.safetensors")).unwrap();

    let err = load_folder(tmp.path()).expect_err("a missing weight is an error");
    let msg = err.to_string();
    match &err {
        Error::MissingWeight {
            tensor, expected, ..
        } => {
            assert_eq!(tensor, missing);
            assert_eq!(expected, &[64, 64]);
        }
        other => panic!("expected MissingWeight, got {other}"),
    }
    assert!(msg.contains(missing), "{msg}");
}
