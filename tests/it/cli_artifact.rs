//! The `.kiln` artifact through the command line: `compile`, `inspect ARTIFACT` (text and JSON),
//! `inspect MODEL --stage kernels`, `run` (CPU against the reference backend), `bench`, and the
//! failures a user can cause: corrupt or truncated artifacts, artifacts built for CPU features
//! this machine lacks, unwritable outputs, unknown feature names and mismatched inputs. Every
//! failure must exit with status 1 and one `error: <file>: <cause>` line, never a panic.
//!
//! The model is `examples/tiny_classifier.kir` (inputs `examples/tiny_classifier_inputs.npz`);
//! the shared `bert-tiny.onnx` fixture adds a model with attention when `../shared` is present.

use crate::common;

use common::{allclose, example, kiln, stdout_ok};
use kiln_runtime::{CpuFeature, CpuFeatures, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

fn tiny() -> PathBuf {
    example("tiny_classifier.kir")
}

fn tiny_inputs() -> PathBuf {
    example("tiny_classifier_inputs.npz")
}

/// `kiln compile MODEL -o OUT [extra...]`.
fn compile(model: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"compile", &model, &"-o", &out];
    args.extend(extra.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
    kiln(&args)
}

/// Compiles the tiny classifier into `dir`; returns the artifact's path.
fn tiny_artifact(dir: &Path) -> PathBuf {
    let art = dir.join("tiny.kiln");
    stdout_ok(&compile(&tiny(), &art, &[]));
    art
}

/// `kiln run MODEL --inputs IN --outputs OUT [extra...]`.
fn run(model: &Path, inputs: &Path, outputs: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"run", &model, &"--inputs", &inputs, &"--outputs", &outputs];
    args.extend(extra.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
    kiln(&args)
}

/// `kiln bench ARTIFACT --inputs IN --iters N [extra...]`.
fn bench(model: &Path, inputs: &Path, iters: &str, extra: &[&str]) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"bench", &model, &"--inputs", &inputs, &"--iters", &iters];
    args.extend(extra.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
    kiln(&args)
}

/// `kiln inspect ARTIFACT --format json`, parsed.
fn inspect_json(art: &Path) -> serde_json::Value {
    let out = stdout_ok(&kiln(&[&"inspect", &art, &"--format", &"json"]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Checks a failure: exit status 1, stderr exactly one line `error: ...` that contains `file`
/// and every one of `needles`, and no panic. Returns the line.
fn assert_error(o: &Output, file: &Path, needles: &[&str], what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: status {:?}, stderr: {err}",
        o.status
    );
    assert!(!err.contains("panicked"), "{what}: a panic: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: not one line: {err}");
    assert!(lines[0].starts_with("error: "), "{what}: {err}");
    let file = file.display().to_string();
    assert!(err.contains(&file), "{what}: does not name {file}: {err}");
    for n in needles {
        assert!(err.contains(n), "{what}: does not say `{n}`: {err}");
    }
    lines[0].to_string()
}

/// The `.npz` arrays of a file written by `kiln run`.
fn read(path: &Path) -> BTreeMap<String, Tensor> {
    kiln::read_npz(path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn compile_then_inspect_shows_header_target_sections_kernels_and_arena() {
    let tmp = tempfile::tempdir().unwrap();
    let art = tmp.path().join("tiny.kiln");
    let out = stdout_ok(&compile(&tiny(), &art, &[]));
    assert!(art.is_file(), "no artifact at {}", art.display());
    assert!(out.contains(&art.display().to_string()), "stdout: {out}");

    let text = stdout_ok(&kiln(&[&"inspect", &art]));
    for needle in [
        "format version: 1",
        &format!("target: {}", std::env::consts::ARCH),
        "checksum: ",
        "section plan: ",
        "section weights: ",
        "kernels: ",
        "arena: ",
        "inputs: tokens",
        "outputs: logits",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }

    let v = inspect_json(&art);
    let size = std::fs::metadata(&art).unwrap().len();
    assert_eq!(v["bytes"], size);
    assert_eq!(v["format_version"], 1);
    assert!(v["compiler_version"].is_string(), "{v}");
    assert_eq!(v["target"]["arch"], std::env::consts::ARCH);
    assert_eq!(v["target"]["runs_here"], true);
    assert_eq!(v["target"]["features"], CpuFeatures::host().to_string());
    let sections = v["sections"].as_array().expect("a `sections` array");
    let names: Vec<&str> = sections.iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(
        names.contains(&"plan") && names.contains(&"weights"),
        "{names:?}"
    );
    for s in sections {
        let (off, len) = (s["offset"].as_u64().unwrap(), s["len"].as_u64().unwrap());
        assert!(off + len <= size, "section {s} past the end ({size} bytes)");
        assert!(off.is_multiple_of(s["align"].as_u64().unwrap()), "{s}");
    }
    let steps = v["steps"].as_u64().expect("`steps`");
    assert!(steps > 0);
    let kernels = v["kernels"].as_object().expect("a `kernels` object");
    assert_eq!(
        kernels.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        steps
    );
    assert!(
        v["arena_slots"].as_u64().is_some() && v["arena_bytes"].is_string(),
        "{v}"
    );
    assert_eq!(v["inputs"][0]["name"], "tokens");
    assert_eq!(v["inputs"][0]["dtype"], "i64");
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!(["batch", "seq"]));
    assert_eq!(v["outputs"][0]["name"], "logits");

    // The plan the model lowers to: one `step N:` line per step of the artifact's plan.
    let plan = stdout_ok(&kiln(&[&"inspect", &tiny(), &"--stage", &"kernels"]));
    let lines: Vec<&str> = plan.lines().filter(|l| l.starts_with("step ")).collect();
    assert_eq!(lines.len() as u64, steps, "{plan}");
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with(&format!("step {i}: ")), "{l}");
    }
    assert!(
        plan.contains("kernels: ") && plan.contains("arena: "),
        "{plan}"
    );
    println!(
        "tiny_classifier: {size} bytes, sections {names:?}, {steps} steps, kernels {kernels:?}"
    );
}

/// `run ARTIFACT` (CPU by default) against `run MODEL --backend reference`.
fn cpu_matches_reference(model: &Path, inputs: &Path, dir: &Path) -> f64 {
    let art = dir.join("m.kiln");
    stdout_ok(&compile(model, &art, &[]));
    let (cpu, reference) = (dir.join("cpu.npz"), dir.join("ref.npz"));
    let out = stdout_ok(&run(&art, inputs, &cpu, &[]));
    assert!(out.contains(&cpu.display().to_string()), "{out}");
    stdout_ok(&run(model, inputs, &reference, &["--backend", "reference"]));
    let (got, want) = (read(&cpu), read(&reference));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    let mut max = 0.0f64;
    for (k, w) in &want {
        let d = allclose(&got[k], w, 1e-5, 1e-5).unwrap_or_else(|e| panic!("`{k}`: {e}"));
        max = max.max(d);
    }
    max
}

#[test]
fn run_artifact_matches_the_reference_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let max = cpu_matches_reference(&tiny(), &tiny_inputs(), tmp.path());
    println!("tiny_classifier: cpu vs reference max |diff| {max:.2e}");
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let inputs = bert_inputs(&shared, tmp.path());
    let onnx = shared.join("fixtures/bert-tiny.onnx");
    let max = cpu_matches_reference(&onnx, &inputs, tmp.path());
    println!("bert-tiny.onnx: cpu vs reference max |diff| {max:.2e}");
}

/// The bert-tiny fixture's inputs (without PyTorch's `out`) written to `dir/bert-in.npz`.
fn bert_inputs(shared: &Path, dir: &Path) -> PathBuf {
    let mut npz = read(&shared.join("fixtures/bert-tiny.npz"));
    npz.remove("out");
    let path = dir.join("bert-in.npz");
    kiln::write_npz(&path, &npz, kiln::npz::Compression::Stored).unwrap();
    path
}

#[test]
fn bench_ends_with_the_median() {
    let tmp = tempfile::tempdir().unwrap();
    let art = tiny_artifact(tmp.path());
    for extra in [&[][..], &["--threads", "1"]] {
        let out = stdout_ok(&bench(&art, &tiny_inputs(), "3", extra));
        let last = out.lines().last().unwrap_or("");
        let ms: f64 = last
            .strip_prefix("median_ms: ")
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("final line `{last}` is not `median_ms: <float>`:\n{out}"));
        assert!(ms.is_finite() && ms >= 0.0, "{last}");
        assert!(out.contains("iters: 3"), "{out}");
        // Batch 2 × 5 tokens: gather and layer norm 80 outputs each, GEMMs 2·10·16·8 twice,
        // the mean 16 outputs, the head 2·2·4·8.
        assert!(out.contains("\nflop_per_run: 5424\n"), "{out}");
        assert!(
            out.contains("\ngflops: ") && out.contains("\narena_bytes: "),
            "{out}"
        );
    }
}

/// An artifact with a code section and its inputs: bert-tiny when the shared data is present
/// (its plan always has generated kernels), else the tiny classifier.
fn artifact_with_code(dir: &Path) -> (PathBuf, PathBuf) {
    let art = tiny_artifact(dir);
    let has_code = |a: &Path| {
        inspect_json(a)["sections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "code" && s["len"].as_u64() > Some(0))
    };
    if has_code(&art) {
        return (art, tiny_inputs());
    }
    let shared = common::shared_dir().expect("the tiny classifier has no code section");
    let bert = dir.join("bert.kiln");
    stdout_ok(&compile(
        &shared.join("fixtures/bert-tiny.onnx"),
        &bert,
        &[],
    ));
    assert!(has_code(&bert), "bert-tiny's artifact has no code section");
    (bert, bert_inputs(&shared, dir))
}

#[test]
fn corrupt_and_truncated_artifacts_are_refused_by_run_and_bench() {
    let tmp = tempfile::tempdir().unwrap();
    let (art, inputs) = artifact_with_code(tmp.path());
    let bytes = std::fs::read(&art).unwrap();
    let v = inspect_json(&art);
    let section = |name: &str| {
        let s = v["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` section: {v}"));
        (
            s["offset"].as_u64().unwrap() as usize,
            s["len"].as_u64().unwrap() as usize,
        )
    };
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let header_len = u32_at(12);
    // The compiler version string follows the section table (48 + 24 × count).
    let version_at = 48 + 24 * u32_at(40);
    let mid = |name: &str| {
        let (off, len) = section(name);
        assert!(len > 0, "section `{name}` is empty");
        off + len / 2
    };
    // (label, byte to flip or length to cut to, expected cause)
    let mut cases: Vec<(String, Result<usize, usize>, &str)> = vec![
        ("magic".into(), Ok(1), "not a kiln artifact"),
        ("format version".into(), Ok(8), "format version"),
        ("checksum field".into(), Ok(16), "checksum mismatch"),
        (
            "compiler version".into(),
            Ok(version_at),
            "checksum mismatch",
        ),
        (
            "target arch".into(),
            Ok(header_len - 1),
            "checksum mismatch",
        ),
    ];
    for name in ["plan", "weights", "code"] {
        cases.push((
            format!("{name} section"),
            Ok(mid(name)),
            "checksum mismatch",
        ));
    }
    let (plan_off, _) = section("plan");
    for cut in [
        0,
        20,
        47,
        header_len - 1,
        plan_off + 1,
        mid("weights"),
        bytes.len() - 1,
    ] {
        cases.push((format!("cut to {cut} bytes"), Err(cut), "truncated"));
    }
    for (label, edit, cause) in &cases {
        let bad = tmp.path().join("bad.kiln");
        let mut b = bytes.clone();
        match *edit {
            Ok(at) => b[at] ^= 0x20,
            Err(len) => b.truncate(len),
        }
        std::fs::write(&bad, &b).unwrap();
        let outputs = tmp.path().join("never.npz");
        let o = run(&bad, &inputs, &outputs, &[]);
        let line = assert_error(&o, &bad, &[cause], &format!("run, {label}"));
        assert!(
            !outputs.exists(),
            "run, {label}: an outputs file was written"
        );
        assert_error(
            &bench(&bad, &inputs, "1", &[]),
            &bad,
            &[cause],
            &format!("bench, {label}"),
        );
        let o = kiln(&[&"inspect", &bad]);
        assert_error(&o, &bad, &[cause], &format!("inspect, {label}"));
        println!("{label}: {line}");
    }
}

#[test]
fn an_artifact_for_missing_cpu_features_is_refused_but_inspectable() {
    let host = CpuFeatures::host();
    let Some(missing) = CpuFeature::ALL.into_iter().find(|f| !host.contains(*f)) else {
        println!("skipped: this CPU has every feature Kiln knows; none can be missing");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let art = tmp.path().join("elsewhere.kiln");
    let list = host.with(missing).to_string();
    let out = stdout_ok(&compile(&tiny(), &art, &["--cpu-features", &list]));
    assert!(out.contains(&art.display().to_string()), "{out}");

    let lacks = format!("this CPU lacks {}", missing.name());
    let want = ["built for a CPU with ", &lacks];
    let o = run(&art, &tiny_inputs(), &tmp.path().join("o.npz"), &[]);
    let line = assert_error(&o, &art, &want, "run");
    assert!(line.contains(missing.name()), "{line}");
    assert_error(&bench(&art, &tiny_inputs(), "1", &[]), &art, &want, "bench");

    let text = stdout_ok(&kiln(&[&"inspect", &art]));
    assert!(text.contains("format version: 1"), "{text}");
    assert!(text.contains(&format!("({lacks})")), "{text}");
    let v = inspect_json(&art);
    assert_eq!(v["target"]["runs_here"], false);
    assert_eq!(v["target"]["features"], list);
    println!("{line}");
}

/// The names in a directory.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn unwritable_outputs_and_unknown_features_are_refused_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let nowhere = tmp.path().join("no-such-dir").join("x.kiln");
    let o = compile(&tiny(), &nowhere, &[]);
    let line = assert_error(&o, &nowhere, &[], "compile into a missing directory");
    println!("missing directory: {line}");
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));

    // The output path is an existing directory: refused, and nothing is left beside it.
    let dir = tmp.path().join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let o = compile(&tiny(), &dir, &[]);
    let line = assert_error(&o, &dir, &[], "compile onto a directory");
    println!("onto a directory: {line}");
    assert_eq!(entries(tmp.path()), ["a-directory"]);
    assert!(entries(&dir).is_empty());

    let art = tmp.path().join("x.kiln");
    // An unknown feature name is a usage error (status 2) that lists the known names; names
    // are case-insensitive.
    let o = compile(&tiny(), &art, &["--cpu-features", "avx2,avx9000"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("avx9000"), "{err}");
    for name in CpuFeature::ALL.iter().map(|f| f.name()) {
        assert!(err.contains(name), "{err}");
    }
    let o = compile(&tiny(), &art, &["--cpu-features", "AVX2,Fma"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_file(&art).unwrap();
    assert_eq!(entries(tmp.path()), ["a-directory"]);
}

#[test]
fn mismatched_inputs_name_the_input_and_what_was_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let art = tiny_artifact(tmp.path());
    let tokens = read(&tiny_inputs())["tokens"].clone();
    let f32_tokens = tokens.cast(kiln_runtime::DType::F32);
    let flat = tokens.clone().reshaped(vec![tokens.len()]).unwrap();
    // (label, arrays of the inputs file, what the message must say)
    type Case<'a> = (&'a str, Vec<(&'a str, Tensor)>, &'a [&'a str]);
    // (An extra key is ignored with a note: `cli_friction::extra_npz_keys_are_ignored_with_a_note`.)
    let cases: [Case; 3] = [
        (
            "wrong dtype",
            vec![("tokens", f32_tokens)],
            &["input `tokens`", "f32", "expected i64"],
        ),
        (
            "wrong rank",
            vec![("tokens", flat)],
            &["input `tokens`", "rank 1", "rank 2"],
        ),
        ("missing", vec![], &["input `tokens`", "missing"]),
    ];
    for (label, arrays, needles) in cases {
        let inputs = tmp.path().join(format!("{}.npz", label.replace(' ', "-")));
        let map: BTreeMap<String, Tensor> = arrays
            .into_iter()
            .map(|(k, t)| (k.to_string(), t))
            .collect();
        kiln::write_npz(&inputs, &map, kiln::npz::Compression::Stored).unwrap();
        let o = run(&art, &inputs, &tmp.path().join("o.npz"), &[]);
        let line = assert_error(&o, &inputs, needles, label);
        println!("{label}: {line}");
    }
}
