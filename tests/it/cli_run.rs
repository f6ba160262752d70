//! `kiln run` end to end on the shipped example: the output `.npz` holds the logits with the
//! right shape, finite values, bit-identical to an in-process run of the reference interpreter;
//! failures leave no output file behind.

use crate::common;

use common::{example, kiln};

use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_example(out: &Path, extra: &[&str]) -> Output {
    let model = example("tiny_classifier.kir");
    let inputs = example("tiny_classifier_inputs.npz");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"run", &model, &"--inputs", &inputs, &"--outputs", &out];
    for e in extra {
        args.push(e);
    }
    kiln(&args)
}

fn in_process() -> Vec<(String, Tensor)> {
    let g = kiln::load_model(&example("tiny_classifier.kir")).unwrap();
    let inputs = kiln::read_npz(&example("tiny_classifier_inputs.npz")).unwrap();
    kiln_compiler::interp::run(&g, &inputs).unwrap()
}

#[test]
fn the_example_runs_and_matches_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.npz");
    let o = run_example(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("logits: f32[2, 4]"), "{stdout}");

    let got = kiln::read_npz(&out).unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["logits"]);
    let logits = &got["logits"];
    assert_eq!(logits.shape(), &[2, 4]);
    assert_eq!(logits.dtype(), kiln_runtime::DType::F32);
    let values = logits.to_f64_vec();
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
    assert!(values.iter().any(|&v| v != 0.0), "{values:?}");

    // The default backend is `cpu` (f32 GEMMs and generated kernels); the interpreter computes
    // in f64 and rounds once, so the two agree to a few ulps.
    let want: BTreeMap<String, Tensor> = in_process().into_iter().collect();
    for (a, b) in logits.to_f64_vec().iter().zip(want["logits"].to_f64_vec()) {
        assert!((a - b).abs() <= 1e-6 + 1e-5 * b.abs(), "{a} vs {b}");
    }
    let o = run_example(&out, &["--backend", "reference"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(kiln::read_npz(&out).unwrap(), want);
}

#[test]
fn every_backend_spelling_and_level_of_the_reference_path_agree() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.npz");
    let b = dir.path().join("b.npz");
    let o = run_example(&a, &["-O0", "--backend", "reference"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_example(&b, &["--backend", "reference", "-O", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(kiln::read_npz(&a).unwrap(), kiln::read_npz(&b).unwrap());
}

#[test]
fn an_existing_output_is_replaced_and_no_temporary_file_remains() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.npz");
    std::fs::write(&out, b"stale").unwrap();
    let o = run_example(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(kiln::read_npz(&out).unwrap().contains_key("logits"));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["out.npz".to_string()]);
}

#[test]
fn a_failed_run_leaves_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad_inputs = dir.path().join("bad.npz");
    let mut m = BTreeMap::new();
    m.insert(
        "tokens".to_string(),
        Tensor::from_i64(vec![1, 3], vec![0, 99, 1]).unwrap(),
    );
    kiln::write_npz(&bad_inputs, &m, kiln::npz::Compression::Stored).unwrap();
    let out = dir.path().join("out.npz");
    let model = example("tiny_classifier.kir");
    // Token 99 is out of range for the 16-row embedding: the gather fails mid-run.
    let o = kiln(&[&"run", &model, &"--inputs", &bad_inputs, &"--outputs", &out]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: ") && err.contains("tiny_classifier.kir"),
        "{err}"
    );
    assert!(err.contains("gather"), "{err}");
    assert!(!out.exists());

    // A pre-existing output survives a failed run untouched.
    std::fs::write(&out, b"previous").unwrap();
    let o = kiln(&[&"run", &model, &"--inputs", &bad_inputs, &"--outputs", &out]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn an_unwritable_output_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no-such-dir").join("out.npz");
    let o = run_example(&out, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: ") && err.contains("no-such-dir/out.npz"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn the_shipped_model_text_is_stable_under_print_and_parse() {
    let text = std::fs::read_to_string(example("tiny_classifier.kir")).unwrap();
    let g = kiln_compiler::text::parse(&text).unwrap();
    assert_eq!(kiln_compiler::text::print(&g).unwrap(), text);
    let values: usize = g.weights().iter().map(|(_, w)| w.numel()).sum();
    assert!((100..=500).contains(&values), "{values} weight values");
    assert_eq!(
        g.input_symbols().into_iter().collect::<Vec<_>>(),
        vec!["batch", "seq"]
    );
}

/// Regression (issue 12, case 1): an output path that exists and is not a regular file — a
/// device, a symbolic link, a directory — was replaced by the temp-file rename (as root,
/// `--outputs /dev/stdout` destroyed the device node). It is refused, in one line, untouched.
#[test]
fn an_output_that_is_not_a_regular_file_is_refused_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.npz");
    std::fs::write(&target, b"kept").unwrap();
    let link = dir.path().join("link.npz");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let subdir = dir.path().join("sub.npz");
    std::fs::create_dir(&subdir).unwrap();
    let null = Path::new("/dev/null");
    for out in [null, link.as_path(), subdir.as_path()] {
        let o = run_example(out, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("error: ")
                && err.contains(&out.display().to_string())
                && err.contains("not a regular file")
                && err.trim_end().lines().count() == 1,
            "{err}"
        );
    }
    let model = example("tiny_classifier.kir");
    let o = kiln(&[&"compile", &model, &"-o", &null]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    // Everything is as it was, and no temporary file was left behind.
    assert!(std::fs::metadata(null)
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), b"kept");
    assert!(subdir.is_dir());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
}

/// Regression (issue 12, case 9): a model or input path that is a device (or a symbolic link to
/// one, such as `/dev/zero`) was read until memory ran out. It is refused before any read.
#[test]
fn a_device_as_model_or_inputs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let zero_onnx = dir.path().join("zero.onnx");
    std::os::unix::fs::symlink("/dev/zero", &zero_onnx).unwrap();
    let zero_npz = dir.path().join("zero.npz");
    std::os::unix::fs::symlink("/dev/zero", &zero_npz).unwrap();
    let out = dir.path().join("out.npz");
    let inputs = example("tiny_classifier_inputs.npz");
    let model = example("tiny_classifier.kir");
    for (m, i, culprit) in [
        (&zero_onnx, &inputs, &zero_onnx),
        (&model, &zero_npz, &zero_npz),
    ] {
        let o = kiln(&[&"run", m, &"--inputs", i, &"--outputs", &out]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("error: ")
                && err.contains(&culprit.display().to_string())
                && err.contains("not a regular file"),
            "{err}"
        );
        assert!(!out.exists());
    }
}

/// Regression (issue 12, case 10): `kiln compile m.kir -o m.kir` overwrote the model and
/// `--outputs` equal to `--inputs` overwrote the inputs (also through a hard link). Refused
/// before any work, the file untouched.
#[test]
fn an_output_that_is_one_of_the_inputs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.kir");
    std::fs::copy(example("tiny_classifier.kir"), &model).unwrap();
    let inputs = dir.path().join("in.npz");
    std::fs::copy(example("tiny_classifier_inputs.npz"), &inputs).unwrap();
    let alias = dir.path().join("alias.npz");
    std::fs::hard_link(&inputs, &alias).unwrap();
    let before = (
        std::fs::read(&model).unwrap(),
        std::fs::read(&inputs).unwrap(),
    );
    let runs: [Vec<&dyn AsRef<std::ffi::OsStr>>; 4] = [
        vec![&"compile", &model, &"-o", &model],
        vec![&"run", &model, &"--inputs", &inputs, &"--outputs", &inputs],
        vec![&"run", &model, &"--inputs", &inputs, &"--outputs", &alias],
        vec![&"run", &model, &"--inputs", &inputs, &"--outputs", &model],
    ];
    for args in runs {
        let o = kiln(&args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("error: ") && err.contains("is also an input of this command"),
            "{err}"
        );
    }
    let after = (
        std::fs::read(&model).unwrap(),
        std::fs::read(&inputs).unwrap(),
    );
    assert!(before == after, "an input changed");
}
