//! Regressions of issue 12: inputs a hostile or careless user sends (huge constant shapes,
//! zip bombs, out-of-range ids, absurd flags) are refused in one `error:` line with exit 1 —
//! never an abort, a panic or a memory blow-up. Each command runs under an address-space limit
//! (`prlimit --as`), so an allocation the budget should have refused fails the test instead of
//! the machine.

use crate::common::{self, example, onnx};
use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Address space a refused command may use: well under 1 GiB of it is ever touched.
const AS_LIMIT: &str = "1073741824";

/// Runs `kiln` with `args` under the address-space limit, with two worker threads (so the
/// per-thread stacks and malloc arenas fit on any machine).
fn bounded(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={AS_LIMIT}"))
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_THREADS", "2")
        .env("MALLOC_ARENA_MAX", "2");
    for a in args {
        c.arg(a);
    }
    c.output().expect("prlimit runs kiln")
}

/// The one-line error of a command that must have been refused with exit 1.
fn refused(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "expected exit 1, stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

fn write_model(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn write_inputs(dir: &Path, tensors: &[(&str, Tensor)]) -> PathBuf {
    let p = dir.join("in.npz");
    let map: BTreeMap<String, Tensor> = tensors
        .iter()
        .map(|(k, t)| (k.to_string(), t.clone()))
        .collect();
    kiln::write_npz(&p, &map, kiln::npz::Compression::Stored).unwrap();
    p
}

/// `y = op(x, constant inputs…)` for `x: f32[2]`, with int64 constants as initializers.
fn unary_with_constants(op: &str, consts: &[(&str, &[i64], &[i64])]) -> Vec<u8> {
    let mut ins = vec!["x"];
    ins.extend(consts.iter().map(|c| c.0));
    onnx::model(
        vec![onnx::node("n0", "", op, &ins, &["y"])],
        consts
            .iter()
            .map(|(n, dims, v)| onnx::tensor_i64(n, dims, v))
            .collect(),
        vec![onnx::value_f32("x", &["2"])],
        vec![onnx::value_f32("y", &[])],
        &[("", 17)],
    )
}

/// Compiles `model` to an artifact (which must succeed), then runs the artifact, the model on
/// the CPU backend and the model on the reference backend with input `x`; every run must be
/// refused, naming `what`. Returns the folder and the model's path for further checks.
fn compiles_then_run_is_refused(
    model: &[u8],
    x: Tensor,
    what: &str,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let m = write_model(dir.path(), "m.onnx", model);
    let art = dir.path().join("m.kiln");
    let o = bounded(&[&"compile", &m, &"-o", &art]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let inputs = write_inputs(dir.path(), &[("x", x)]);
    let out = dir.path().join("out.npz");
    for (model, backend) in [(&art, "cpu"), (&m, "cpu"), (&m, "reference")] {
        let o = bounded(&[
            &"run",
            model,
            &"--inputs",
            &inputs,
            &"--outputs",
            &out,
            &"--backend",
            &backend,
        ]);
        let err = refused(&o);
        assert!(err.contains(what), "{backend}: {err}");
        assert!(!out.exists());
    }
    (dir, m)
}

/// `x = [1, 2]`, the input of the one-op models.
fn pair() -> Tensor {
    Tensor::from_f32(vec![2], vec![1., 2.]).unwrap()
}

/// Case 4: `ConstantOfShape` with the constant shape [65536, 65536] (16 GiB of f32) aborted the
/// compiler while folding. Constant folding has a byte limit: the op stays in the graph, and the
/// run is refused by the memory budget.
#[test]
fn a_huge_constant_of_shape_is_not_folded_and_its_run_is_refused() {
    let model = onnx::model(
        vec![
            onnx::node("fill", "", "ConstantOfShape", &["shape"], &["c"]),
            onnx::node("add", "", "Add", &["c", "x"], &["y"]),
        ],
        vec![onnx::tensor_i64("shape", &[2], &[65536, 65536])],
        vec![onnx::value_f32("x", &["1"])],
        vec![onnx::value_f32("y", &[])],
        &[("", 17)],
    );
    let x = Tensor::from_f32(vec![1], vec![1.]).unwrap();
    compiles_then_run_is_refused(&model, x, "memory");
}

/// Case 5: `Range(0, 1e18, 1)` compiled with a wrapped (negative) arena size, and `kiln run`
/// panicked with `capacity overflow`.
#[test]
fn a_huge_range_is_refused_by_the_memory_budget() {
    let model = onnx::model(
        vec![
            onnx::node("range", "", "Range", &["start", "limit", "delta"], &["r"]),
            onnx::node("cast", "", "Cast", &["r"], &["rf"]),
            onnx::node("add", "", "Add", &["rf", "x"], &["y"]),
        ]
        .into_iter()
        .map(|mut n| {
            if n.op_type == "Cast" {
                n.attribute
                    .push(kiln_frontends::onnx::proto::AttributeProto {
                        name: "to".into(),
                        r#type: kiln_frontends::onnx::proto::attribute_proto::AttributeType::Int
                            as i32,
                        i: 1,
                        ..Default::default()
                    });
            }
            n
        })
        .collect(),
        vec![
            onnx::tensor_i64("start", &[], &[0]),
            onnx::tensor_i64("limit", &[], &[1_000_000_000_000_000_000]),
            onnx::tensor_i64("delta", &[], &[1]),
        ],
        vec![onnx::value_f32("x", &["1"])],
        vec![onnx::value_f32("y", &[])],
        &[("", 17)],
    );
    let x = Tensor::from_f32(vec![1], vec![1.]).unwrap();
    let (_dir, m) = compiles_then_run_is_refused(&model, x, "memory");
    // The arena's size stays exact: no wrapped, negative term.
    let o = bounded(&[&"inspect", &m, &"--stage", &"kernels"]);
    let text = common::stdout_ok(&o);
    let arena = text.lines().find(|l| l.starts_with("arena: ")).unwrap();
    let size = arena
        .split("slots, ")
        .nth(1)
        .and_then(|r| r.split(" bytes").next());
    let size = size.unwrap_or_else(|| panic!("no size in {arena}"));
    assert!(!size.contains('-'), "a negative size term: {arena}");
    assert!(size.starts_with("wide_add("), "{arena}");
}

/// Case 6: `Tile` by 2^40, `Pad` by 2^40 and `Expand` to [100000, 100000] aborted on both
/// backends.
#[test]
fn huge_tile_pad_and_expand_are_refused_by_the_memory_budget() {
    let big = 1i64 << 40;
    compiles_then_run_is_refused(
        &unary_with_constants("Tile", &[("repeats", &[1], &[big])]),
        pair(),
        "memory",
    );
    compiles_then_run_is_refused(
        &unary_with_constants("Pad", &[("pads", &[2], &[0, big])]),
        pair(),
        "memory",
    );
    compiles_then_run_is_refused(
        &unary_with_constants("Expand", &[("shape", &[3], &[100_000, 100_000, 2])]),
        pair(),
        "memory",
    );
}

/// Case 2: the memory budget. A run whose arena exceeds `--max-memory` is refused before
/// anything is allocated, naming the input dims that made it large; by default the budget is
/// the memory available (here the address-space limit).
#[test]
fn a_run_over_the_memory_budget_names_the_inputs_that_made_it_large() {
    let dir = tempfile::tempdir().unwrap();
    let model = example("tiny_classifier.kir");
    let tokens = |b: usize, s: usize| Tensor::from_i64(vec![b, s], vec![1; b * s]).unwrap();
    let inputs = write_inputs(dir.path(), &[("tokens", tokens(4, 4096))]);
    let out = dir.path().join("out.npz");
    let o = bounded(&[
        &"run",
        &model,
        &"--inputs",
        &inputs,
        &"--outputs",
        &out,
        &"--max-memory",
        &"1MB",
    ]);
    let err = refused(&o);
    assert!(
        err.contains("`tokens` [4, 4096]") && err.contains("--max-memory"),
        "{err}"
    );
    // The same run fits a larger budget.
    let o = bounded(&[
        &"run",
        &model,
        &"--inputs",
        &inputs,
        &"--outputs",
        &out,
        &"--max-memory",
        &"64MiB",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // 4M tokens need ~1.4 GB of arena: more than the default budget under a 1 GiB limit.
    let inputs = write_inputs(dir.path(), &[("tokens", tokens(1, 4_000_000))]);
    std::fs::remove_file(&out).unwrap();
    let o = bounded(&[&"run", &model, &"--inputs", &inputs, &"--outputs", &out]);
    let err = refused(&o);
    assert!(err.contains("`tokens` [1, 4000000]"), "{err}");
    assert!(!out.exists());
    let o = bounded(&[
        &"run",
        &model,
        &"--inputs",
        &inputs,
        &"--outputs",
        &out,
        &"--max-memory",
        &"lots",
    ]);
    // A size that is not one is a usage error (status 2, as clap reports them).
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--max-memory"));
}

/// Case 2, model limits: a sequence longer than a model folder's position table (MiniLM with
/// 2,000,000 tokens allocated 20 GB before a step noticed) is refused at input validation,
/// naming the input and the limit.
#[test]
fn tokens_beyond_the_position_table_are_refused_at_input_validation() {
    let dir = tempfile::tempdir().unwrap();
    crate::hf_bert::write_folder(dir.path(), "BertModel", "", &crate::hf_bert::tiny_weights());
    let n = 2_000_000;
    let inputs = write_inputs(
        dir.path(),
        &[
            (
                "input_ids",
                Tensor::from_i64(vec![1, n], vec![1; n]).unwrap(),
            ),
            (
                "attention_mask",
                Tensor::from_i64(vec![1, n], vec![1; n]).unwrap(),
            ),
            (
                "token_type_ids",
                Tensor::from_i64(vec![1, n], vec![0; n]).unwrap(),
            ),
        ],
    );
    let out = dir.path().join("out.npz");
    let model = dir.path().to_path_buf();
    for backend in ["cpu", "reference"] {
        let o = bounded(&[
            &"run",
            &model,
            &"--inputs",
            &inputs,
            &"--outputs",
            &out,
            &"--backend",
            &backend,
        ]);
        let err = refused(&o);
        assert!(
            err.contains("`input_ids`") && err.contains("2000000") && err.contains("at most 8"),
            "{err}"
        );
    }
}

/// Case 7: `input_ids = -1` for a model folder silently read the last embedding row (PyTorch
/// raises). Ids outside `[0, vocab_size)` are refused, naming the input, the value and the range.
#[test]
fn out_of_range_token_ids_of_a_model_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    crate::hf_bert::write_folder(dir.path(), "BertModel", "", &crate::hf_bert::tiny_weights());
    let model = dir.path().to_path_buf();
    let out = dir.path().join("out.npz");
    for (bad, backend) in [(-1, "cpu"), (10, "cpu"), (-1, "reference")] {
        let inputs = write_inputs(
            dir.path(),
            &[
                (
                    "input_ids",
                    Tensor::from_i64(vec![1, 3], vec![1, bad, 2]).unwrap(),
                ),
                (
                    "attention_mask",
                    Tensor::from_i64(vec![1, 3], vec![1; 3]).unwrap(),
                ),
                (
                    "token_type_ids",
                    Tensor::from_i64(vec![1, 3], vec![0; 3]).unwrap(),
                ),
            ],
        );
        let o = bounded(&[
            &"run",
            &model,
            &"--inputs",
            &inputs,
            &"--outputs",
            &out,
            &"--backend",
            &backend,
        ]);
        let err = refused(&o);
        assert!(
            err.contains("`input_ids`")
                && err.contains(&bad.to_string())
                && err.contains("[0, 10)"),
            "{err}"
        );
        assert!(!out.exists());
    }
    // GPT-2 and Llama folders declare their vocabularies too.
    let Some(shared) = common::shared_dir() else {
        return;
    };
    for family in ["gpt2-tiny", "llama-tiny"] {
        let folder = shared.join("fixtures").join(family);
        let inputs = write_inputs(
            dir.path(),
            &[
                (
                    "input_ids",
                    Tensor::from_i64(vec![1, 2], vec![-1, 0]).unwrap(),
                ),
                (
                    "attention_mask",
                    Tensor::from_i64(vec![1, 2], vec![1; 2]).unwrap(),
                ),
            ],
        );
        let o = bounded(&[&"run", &folder, &"--inputs", &inputs, &"--outputs", &out]);
        let err = refused(&o);
        assert!(
            err.contains("`input_ids`") && err.contains("-1"),
            "{family}: {err}"
        );
    }
}

/// Case 3: a zip-bomb `.npz` (the member's header says 408 bytes, it inflates to 4 GiB) was
/// inflated entirely before the size mismatch was reported. Reading stops at the declared size.
#[test]
fn a_zip_bomb_npz_is_refused_without_inflating_it() {
    use flate2::{Compress, Compression, FlushCompress};
    // One 1 MiB block of zeros, ended by a full flush (byte-aligned, dictionary reset), can be
    // repeated; 4096 copies and a final empty block inflate to 4 GiB.
    let block = |input: &[u8], flush| {
        let mut c = Compress::new(Compression::fast(), false);
        let mut out = Vec::with_capacity(input.len() + 1024);
        c.compress_vec(input, &mut out, flush).unwrap();
        out
    };
    let chunk = block(&vec![0u8; 1 << 20], FlushCompress::Full);
    let mut data = chunk.repeat(4096);
    data.extend(block(&[], FlushCompress::Finish));
    let name = b"tokens.npy";
    let mut zip = Vec::new();
    let local = |zip: &mut Vec<u8>| {
        zip.extend(0x0403_4b50u32.to_le_bytes());
        zip.extend([20, 0, 0, 0, 8, 0, 0, 0, 0, 0]); // version, flags, deflate, time, date
        zip.extend(0u32.to_le_bytes()); // crc
        zip.extend((data.len() as u32).to_le_bytes());
        zip.extend(408u32.to_le_bytes()); // the declared (uncompressed) size
        zip.extend((name.len() as u16).to_le_bytes());
        zip.extend(0u16.to_le_bytes());
        zip.extend(name);
    };
    local(&mut zip);
    zip.extend(&data);
    let cd = zip.len() as u32;
    zip.extend(0x0201_4b50u32.to_le_bytes());
    zip.extend([20, 0, 20, 0, 0, 0, 8, 0, 0, 0, 0, 0]);
    zip.extend(0u32.to_le_bytes());
    zip.extend((data.len() as u32).to_le_bytes());
    zip.extend(408u32.to_le_bytes());
    zip.extend((name.len() as u16).to_le_bytes());
    zip.extend([0u8; 12]); // extra, comment, disk, internal and external attributes
    zip.extend(0u32.to_le_bytes()); // local header offset
    zip.extend(name);
    let cd_len = zip.len() as u32 - cd;
    zip.extend(0x0605_4b50u32.to_le_bytes());
    zip.extend([0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend(cd_len.to_le_bytes());
    zip.extend(cd.to_le_bytes());
    zip.extend(0u16.to_le_bytes());

    let dir = tempfile::tempdir().unwrap();
    let bomb = write_model(dir.path(), "bomb.npz", &zip);
    let out = dir.path().join("out.npz");
    let started = std::time::Instant::now();
    let o = bounded(&[
        &"run",
        &example("tiny_classifier.kir"),
        &"--inputs",
        &bomb,
        &"--outputs",
        &out,
    ]);
    let err = refused(&o);
    assert!(err.contains("tokens") && err.contains("408"), "{err}");
    // Inflating 4 GiB takes many seconds; stopping at the declared size takes milliseconds.
    assert!(
        started.elapsed().as_secs() < 5,
        "took {:?}",
        started.elapsed()
    );
}

/// Case 8: `kiln bench --iters 4294967295` pre-allocated 34 GB of timings and aborted.
#[test]
fn an_absurd_bench_iteration_count_is_refused() {
    let o = bounded(&[
        &"bench",
        &example("tiny_classifier.kir"),
        &"--inputs",
        &example("tiny_classifier_inputs.npz"),
        &"--iters",
        &"4294967295",
    ]);
    let err = refused(&o);
    assert!(err.contains("--iters"), "{err}");
}

/// Case 10: an opset newer than any Kiln knows was accepted (and imported with the semantics of
/// an older one).
#[test]
fn an_unknown_future_opset_is_refused() {
    let model = onnx::model(
        vec![onnx::node("add0", "", "Add", &["x", "b"], &["y"])],
        vec![onnx::tensor_f32("b", &[2], &[10.0, 20.0])],
        vec![onnx::value_f32("x", &["n", "2"])],
        vec![onnx::value_f32("y", &["n", "2"])],
        &[("", 999)],
    );
    let dir = tempfile::tempdir().unwrap();
    let m = write_model(dir.path(), "m.onnx", &model);
    let o = bounded(&[&"compile", &m, &"-o", &dir.path().join("m.kiln")]);
    let err = refused(&o);
    assert!(err.contains("opset 999") && err.contains("m.onnx"), "{err}");
}

/// Case 10: a `Gather` whose constant indices are out of range for a known axis compiled into an
/// artifact that could only fail. The compiler refuses it, naming the node and the index.
#[test]
fn a_constant_out_of_range_gather_is_refused_at_compile_time() {
    let model = onnx::model(
        vec![onnx::node("pick", "", "Gather", &["x", "idx"], &["y"])],
        vec![onnx::tensor_i64("idx", &[2], &[0, 5])],
        vec![onnx::value_f32("x", &["3", "n"])],
        vec![onnx::value_f32("y", &[])],
        &[("", 17)],
    );
    let dir = tempfile::tempdir().unwrap();
    let m = write_model(dir.path(), "m.onnx", &model);
    let o = bounded(&[&"compile", &m, &"-o", &dir.path().join("m.kiln")]);
    let err = refused(&o);
    assert!(
        err.contains("pick") && err.contains('5') && err.contains("out of range"),
        "{err}"
    );
}

/// Case 9, model folders: a `config.json` or `model.safetensors` that is a link to `/dev/zero`
/// was read until memory ran out. Files of a folder are refused unless regular.
#[test]
fn a_device_inside_a_model_folder_is_refused() {
    for culprit in ["config.json", "model.safetensors"] {
        let dir = tempfile::tempdir().unwrap();
        crate::hf_bert::write_folder(dir.path(), "BertModel", "", &crate::hf_bert::tiny_weights());
        std::fs::remove_file(dir.path().join(culprit)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(culprit)).unwrap();
        let o = bounded(&[&"compile", &dir.path(), &"-o", &dir.path().join("m.kiln")]);
        let err = refused(&o);
        assert!(
            err.contains(culprit) && err.contains("not a regular file"),
            "{culprit}: {err}"
        );
    }
}
