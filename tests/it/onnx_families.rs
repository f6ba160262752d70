//! Hugging Face model families and sizes other than the shared fixtures, through the ONNX
//! importer and the reference interpreter: every `tests/models/*.onnx` (written by
//! `tools/export_families.py`: tiny random DistilBERT, OPT, BLOOM, and BERT and GPT-2 at other
//! sizes; `NAME.onnx` is the legacy TorchScript export with dynamic batch and sequence axes,
//! `NAME-dynamo.onnx` + `.onnx.data` the dynamo export; `NAME.npz` the inputs, batch 2 × seq 7
//! with the last row right-padded, and PyTorch's output `out`). Models under
//! `tests/models/pending/` are not read.
//!
//! 1. Import with `kiln_frontends::onnx::import::import_file`, run with
//!    `kiln_compiler::interp::run` on the `.npz` inputs, compare the first output with `out`
//!    within rtol 1e-3, atol 1e-4.
//! 2. When the graph's inputs have dynamic dims, run it again at batch 3 (rows 0, 1, 0 or 1, 0, 1
//!    of the inputs) with a shorter sequence (a prefix of the inputs) and with a longer one
//!    (masked padding appended), and compare with the first run where the semantics say they
//!    must agree: a causal model's logits at the earlier positions do not change; a bidirectional
//!    encoder gives the same outputs for a row whose dropped or added tokens are all masked.
//!    When they are static (the dynamo exports), the other shape must be refused with an error
//!    naming the input.
//!
//! A model that does not import, does not run or mismatches fails the test (it never skips).
//! Each model prints one summary line; see them with
//! `cargo test --test onnx_families -- --nocapture`.

use crate::common;

use common::{resize_axis1, take_rows, unmasked, Kind};

use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-4;

/// The family of a model file, from the prefix of its name; `None` for a family this test does
/// not know (which fails: add it here).
fn kind_of(name: &str) -> Option<Kind> {
    let family = name.split('-').next().unwrap_or_default();
    match family {
        "bert" | "distilbert" | "roberta" | "electra" => Some(Kind::Encoder),
        "gpt2" | "opt" | "bloom" | "llama" | "gptneo" => Some(Kind::Causal),
        _ => None,
    }
}

/// The inputs at another shape, the expected value (from the run at the original shape), a
/// function of the new first output to compare with it, and a label.
struct Variant {
    inputs: BTreeMap<String, Tensor>,
    want: Tensor,
    pick: Box<dyn Fn(&Tensor) -> Tensor>,
    label: String,
}

/// Every input, rows `rows`, axis 1 cut or padded (id 0, token type 0, mask 0) to `len`.
fn reshaped(
    inputs: &BTreeMap<String, Tensor>,
    rows: &[usize],
    len: usize,
) -> BTreeMap<String, Tensor> {
    inputs
        .iter()
        .map(|(k, t)| (k.clone(), resize_axis1(&take_rows(t, rows), len, 0.0)))
        .collect()
}

/// The two other-shape runs of a dynamic graph: batch 3 with a shorter and a longer sequence.
fn variants(
    kind: Kind,
    inputs: &BTreeMap<String, Tensor>,
    first: &Tensor,
) -> Result<Vec<Variant>, String> {
    let mask = inputs
        .get("attention_mask")
        .ok_or("the inputs have no `attention_mask`")?;
    let (batch, seq) = (mask.shape()[0], mask.shape()[1]);
    let m = mask.to_i64_vec();
    // The fewest unmasked tokens of a row, and a row with that many (all at the front).
    let counts: Vec<usize> = (0..batch)
        .map(|r| {
            m[r * seq..(r + 1) * seq]
                .iter()
                .filter(|&&x| x != 0)
                .count()
        })
        .collect();
    let (short_row, &short) = counts
        .iter()
        .enumerate()
        .min_by_key(|&(_, c)| *c)
        .ok_or("empty batch")?;
    if short == 0 || short == seq || m[short_row * seq..short_row * seq + short].contains(&0) {
        return Err(format!(
            "the test needs a row right-padded with masked tokens, mask is {m:?}"
        ));
    }
    let other = (short_row + 1) % batch;
    let long = seq + 3;
    let mut out = vec![];
    match kind {
        Kind::Causal => {
            // Earlier positions see only earlier tokens: the logits prefix must not change.
            let rows = [0, 1, 0].map(|r| r % batch);
            let want = take_rows(first, &rows);
            out.push(Variant {
                inputs: reshaped(inputs, &rows, short),
                want: resize_axis1(&want, short, 0.0),
                pick: Box::new(Tensor::clone),
                label: format!("batch 3 × seq {short} (logits prefix)"),
            });
            out.push(Variant {
                inputs: reshaped(inputs, &rows, long),
                want,
                pick: Box::new(move |t| resize_axis1(t, seq, 0.0)),
                label: format!(
                    "batch 3 × seq {long} (masked padding appended, first {seq} positions)"
                ),
            });
        }
        Kind::Encoder => {
            // Cutting the row that has `short` unmasked tokens to them drops only masked tokens:
            // its outputs at the unmasked positions must not change. (The other row, cut short,
            // is a different sentence; it is only run, not compared.)
            let rows = [short_row, other, short_row];
            let new_mask = resize_axis1(&take_rows(mask, &rows), short, 0.0);
            let want = unmasked(&take_rows(first, &rows), &new_mask, &[0, 2]);
            let m2 = new_mask.clone();
            out.push(Variant {
                inputs: reshaped(inputs, &rows, short),
                want,
                pick: Box::new(move |t| unmasked(t, &m2, &[0, 2])),
                label: format!("batch 3 × seq {short} (masked tokens dropped, rows 0 and 2)"),
            });
            // Appending masked padding to every row changes nothing at the unmasked positions.
            let rows = [other, short_row, other];
            let old_mask = take_rows(mask, &rows);
            let want = unmasked(&take_rows(first, &rows), &old_mask, &[0, 1, 2]);
            out.push(Variant {
                inputs: reshaped(inputs, &rows, long),
                want,
                pick: Box::new(move |t| unmasked(t, &old_mask, &[0, 1, 2])),
                label: format!("batch 3 × seq {long} (masked padding appended)"),
            });
        }
        Kind::Vision => return Err("the family models are text models".into()),
    }
    Ok(out)
}

/// Checks one model file; `Ok` is the summary, `Err` the failure (both one line).
fn check(model: &Path) -> Result<String, String> {
    let name = common::model_name(model)?;
    let kind = kind_of(name).ok_or_else(|| {
        format!(
            "unknown family `{name}`: add its name prefix to `kind_of` in tests/it/onnx_families.rs"
        )
    })?;
    let npz = model.with_file_name(format!("{name}.npz"));
    let mut inputs = kiln::npz::read_npz(&npz).map_err(|e| format!("reading inputs: {e}"))?;
    let reference = inputs.remove("out").ok_or("the .npz has no `out`")?;

    let t0 = Instant::now();
    let g = kiln_frontends::onnx::import::import_file(model).map_err(|e| format!("import: {e}"))?;
    let t_import = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let outs = kiln_compiler::interp::run(&g, &inputs).map_err(|e| format!("run: {e}"))?;
    let t_run = t0.elapsed().as_secs_f64();
    let (out_name, first) = outs.first().ok_or("the graph has no outputs")?;
    let max = common::allclose(first, &reference, RTOL, ATOL)
        .map_err(|e| format!("output `{out_name}` vs PyTorch: {e}"))?;
    let mut summary = format!(
        "{} nodes, import {t_import:.2}s, run {t_run:.2}s, shape {:?}: max |diff| vs PyTorch {max:.2e}",
        g.num_nodes(),
        reference.shape()
    );

    let is_static = common::has_static_inputs(&g);
    for v in variants(kind, &inputs, first)? {
        let result = kiln_compiler::interp::run(&g, &v.inputs);
        if is_static {
            let e = match result {
                Ok(_) => {
                    return Err(format!(
                        "{}: static-shape graph accepted other shapes",
                        v.label
                    ))
                }
                Err(e) => e.to_string(),
            };
            if !e.contains("input `") {
                return Err(format!(
                    "{}: refused without naming the input: {e}",
                    v.label
                ));
            }
            summary.push_str(&format!(
                "; static input shapes, {} refused as it must be",
                v.label
            ));
            continue;
        }
        let outs = result.map_err(|e| format!("{}: run: {e}", v.label))?;
        let new = &outs.first().ok_or("the graph has no outputs")?.1;
        if new.to_f64_vec().iter().any(|x| !x.is_finite()) {
            return Err(format!("{}: the output is not finite", v.label));
        }
        let got = (v.pick)(new);
        if v.want.shape().iter().product::<usize>() == 0 {
            return Err(format!("{}: nothing to compare", v.label));
        }
        let max = common::allclose(&got, &v.want, RTOL, ATOL)
            .map_err(|e| format!("{} vs the original shape: {e}", v.label))?;
        summary.push_str(&format!("; {}: max |diff| {max:.2e}", v.label));
    }
    Ok(summary)
}

/// The model files this test checks: `tests/models/*.onnx`, sorted.
fn models() -> Vec<PathBuf> {
    common::onnx_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models"))
}

#[test]
fn every_family_model_matches_pytorch_at_both_shapes() {
    let files = models();
    assert!(
        files.len() >= 10,
        "expected the exported family models in tests/models, found {files:?}"
    );
    // Two workers: the models are independent and the interpreter is single-threaded.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(f) = files.get(i) else { break };
                let r = check(f);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let mut failed = vec![];
    for (i, r) in results {
        let label = files[i].file_name().unwrap().to_string_lossy().into_owned();
        match r {
            Ok(s) => println!("family {label}: PASS {s}"),
            Err(e) => {
                let e = e.split_whitespace().collect::<Vec<_>>().join(" ");
                println!("family {label}: FAIL {e}");
                failed.push(format!("{label}: {e}"));
            }
        }
    }
    common::assert_none_failed(&failed);
}

#[test]
fn every_model_has_its_inputs_and_a_known_family() {
    for f in models() {
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        let name = stem.strip_suffix("-dynamo").unwrap_or(&stem);
        assert!(kind_of(name).is_some(), "{}: unknown family", f.display());
        assert!(
            f.with_file_name(format!("{name}.npz")).is_file(),
            "{}: no {name}.npz beside it",
            f.display()
        );
        if stem.ends_with("-dynamo") {
            let data = f.with_file_name(format!("{stem}.onnx.data"));
            assert!(data.is_file(), "{}: no external data file", f.display());
        }
    }
}

/// The check is not vacuous: the same model with PyTorch's output moved by 1e-3 in one element,
/// or with a reference of another shape, fails.
#[test]
fn a_perturbed_reference_fails_the_check() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("opt-h32.onnx");
    std::fs::copy(src.join("opt-h32.onnx"), &model).unwrap();
    let mut npz = kiln::npz::read_npz(&src.join("opt-h32.npz")).unwrap();
    let out = npz["out"].clone();
    let mut v = out.to_f64_vec();
    let base = v.clone();
    let write = |npz: &BTreeMap<String, Tensor>| {
        let path = dir.path().join("opt-h32.npz");
        kiln::npz::write_npz(&path, npz, kiln::npz::Compression::Stored).unwrap();
    };
    write(&npz);
    check(&model).expect("the unmodified copy passes");
    v[17] += 1e-3 + 2e-3 * v[17].abs();
    let moved = Tensor::from_f64_values(out.dtype(), out.shape().to_vec(), &v).unwrap();
    npz.insert("out".into(), moved);
    write(&npz);
    let e = check(&model).expect_err("a moved element must fail");
    assert!(e.contains("vs PyTorch") && e.contains("element 17"), "{e}");
    let cut = Tensor::from_f64_values(out.dtype(), vec![base.len()], &base).unwrap();
    npz.insert("out".into(), cut);
    write(&npz);
    let e = check(&model).expect_err("a reference of another shape must fail");
    assert!(e.contains("shape"), "{e}");
}

#[test]
fn shape_helpers_tile_cut_pad_and_mask() {
    let t = Tensor::from_i64(vec![2, 3], vec![1, 2, 3, 4, 5, 6]).unwrap();
    assert_eq!(
        take_rows(&t, &[1, 0, 1]).to_i64_vec(),
        [4, 5, 6, 1, 2, 3, 4, 5, 6]
    );
    assert_eq!(resize_axis1(&t, 2, 0.0).to_i64_vec(), [1, 2, 4, 5]);
    let p = resize_axis1(&t, 4, 9.0);
    assert_eq!(p.shape(), &[2, 4]);
    assert_eq!(p.to_i64_vec(), [1, 2, 3, 9, 4, 5, 6, 9]);
    let x = Tensor::from_f32(vec![2, 3, 1], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let mask = Tensor::from_i64(vec![2, 2], vec![1, 0, 1, 1]).unwrap();
    assert_eq!(unmasked(&x, &mask, &[0, 1]).to_f64_vec(), [1.0, 4.0, 5.0]);
    assert_eq!(unmasked(&x, &mask, &[1]).to_f64_vec(), [4.0, 5.0]);
    assert_eq!(kind_of("opt-postln-h64"), Some(Kind::Causal));
    assert_eq!(kind_of("distilbert-h32"), Some(Kind::Encoder));
    assert_eq!(kind_of("resnet-tiny"), None);
}
