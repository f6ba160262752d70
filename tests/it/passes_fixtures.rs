//! Differential test of the canonicalization passes on every ONNX fixture of the shared folder:
//! the reference interpreter gives the same outputs (1e-5 relative) before and after
//! `canonicalize`, and the node counts before and after are reported.

use crate::common;

use kiln_compiler::interp::run;
use kiln_compiler::passes::canonicalize;

#[test]
fn canonicalize_preserves_every_onnx_fixture() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures");
    let mut models: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    models.sort();
    assert!(!models.is_empty(), "no .onnx fixtures in {}", dir.display());
    for model in models {
        let stem = model.file_stem().unwrap().to_string_lossy().into_owned();
        // `NAME-dynamo.onnx` shares the inputs of `NAME.npz`.
        let base = stem.trim_end_matches("-dynamo");
        let mut inputs = kiln::read_npz(&dir.join(format!("{base}.npz")))
            .unwrap_or_else(|e| panic!("{base}.npz: {e}"));
        inputs.remove("out");
        let mut g = kiln_frontends::onnx::import::import_file(&model)
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let want = run(&g, &inputs).unwrap_or_else(|e| panic!("{stem} before: {e}"));
        let stats = canonicalize(&mut g).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let got = run(&g, &inputs).unwrap_or_else(|e| panic!("{stem} after: {e}"));
        println!(
            "{stem}: {} -> {} nodes ({:?}, {} rounds)",
            stats.nodes_before,
            stats.nodes_after,
            stats.per_pass(),
            stats.rounds
        );
        assert!(stats.nodes_after <= stats.nodes_before, "{stem}");
        assert_eq!(want.len(), got.len(), "{stem}");
        for ((name, w), (gname, t)) in want.iter().zip(&got) {
            assert_eq!(name, gname, "{stem}");
            assert_eq!(w.dtype(), t.dtype(), "{stem}: output `{name}`");
            common::allclose(t, w, 1e-5, 0.0)
                .unwrap_or_else(|e| panic!("{stem}: output `{name}`: {e}"));
        }
    }
}

/// `kiln run` with and without the optimizer (`-O0`) writes the same outputs for a fixture, and
/// `inspect --stage optimized --format json` reports the optimized node count with its passes.
#[test]
fn the_cli_runs_and_inspects_the_optimized_graph() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures");
    let model = dir.join("gpt2-tiny.onnx");
    let mut inputs = kiln::read_npz(&dir.join("gpt2-tiny.npz")).expect("the fixture's npz reads");
    inputs.remove("out");
    let tmp = tempfile::tempdir().unwrap();
    let feeds = tmp.path().join("in.npz");
    kiln::write_npz(&feeds, &inputs, kiln::npz::Compression::Stored).unwrap();
    let mut results = Vec::new();
    for level in ["-O0", "-O1"] {
        let out = tmp.path().join(format!("out{level}.npz"));
        let o = common::kiln(&[
            &"run",
            &model,
            &"--inputs",
            &feeds,
            &"--outputs",
            &out,
            &level,
        ]);
        common::stdout_ok(&o);
        results.push(kiln::read_npz(&out).unwrap());
    }
    assert_eq!(results[0].len(), results[1].len());
    for (name, want) in &results[0] {
        let got = &results[1][name];
        // -O1 fuses attention, layer norms and GELU: computed once in f64, not step by step.
        common::allclose(got, want, 1e-4, 1e-5).unwrap_or_else(|e| panic!("`{name}`: {e}"));
    }

    let json = |stage: &str| -> serde_json::Value {
        let o = common::kiln(&[&"inspect", &model, &"--stage", &stage, &"--format", &"json"]);
        serde_json::from_str(&common::stdout_ok(&o)).expect("one JSON object")
    };
    let imported = json("imported");
    let optimized = json("optimized");
    assert!(imported.get("passes").is_none());
    let mut g = kiln_frontends::onnx::import::import_file(&model).unwrap();
    let before = g.num_nodes();
    let report = kiln_compiler::optimize::optimize(&mut g).unwrap();
    let stats = report.canonicalize;
    assert_eq!(imported["nodes"], serde_json::json!(stats.nodes_before));
    assert_eq!(imported["nodes"], serde_json::json!(before));
    assert_eq!(optimized["nodes"], serde_json::json!(g.num_nodes()));
    for (pass, n) in stats.per_pass() {
        assert_eq!(optimized["passes"][pass], serde_json::json!(n), "{pass}");
    }
    assert!(stats.nodes_after < stats.nodes_before);
}
