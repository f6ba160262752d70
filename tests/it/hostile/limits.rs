//! The memory budget and model folders' input limits: a run over `--max-memory` (or the memory
//! available) is refused naming its input dims; sequences longer than a position table and ids
//! outside the vocabulary are refused at input validation.

use super::{refused, run, token_inputs, write_inputs};
use crate::common::{self, example};
use kiln_runtime::Tensor;

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
    let o = run(&model, &inputs, &out, &["--max-memory", "1MB"]);
    let err = refused(&o);
    assert!(
        err.contains("`tokens` [4, 4096]") && err.contains("--max-memory"),
        "{err}"
    );
    // The same run fits a larger budget.
    let o = run(&model, &inputs, &out, &["--max-memory", "64MiB"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // 10M tokens need ~1.3 GB of arena (128 bytes a token since the mean runs natively, without
    // a reference kernel's f64 scratch): more than the default budget under a 1 GiB limit.
    let inputs = write_inputs(dir.path(), &[("tokens", tokens(1, 10_000_000))]);
    std::fs::remove_file(&out).unwrap();
    let o = run(&model, &inputs, &out, &[]);
    let err = refused(&o);
    assert!(err.contains("`tokens` [1, 10000000]"), "{err}");
    assert!(!out.exists());
    let o = run(&model, &inputs, &out, &["--max-memory", "lots"]);
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
    let inputs = write_inputs(dir.path(), &token_inputs(vec![1; n], true));
    let out = dir.path().join("out.npz");
    let model = dir.path().to_path_buf();
    for backend in ["cpu", "reference"] {
        let o = run(&model, &inputs, &out, &["--backend", backend]);
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
        let inputs = write_inputs(dir.path(), &token_inputs(vec![1, bad, 2], true));
        let o = run(&model, &inputs, &out, &["--backend", backend]);
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
        let inputs = write_inputs(dir.path(), &token_inputs(vec![-1, 0], false));
        let o = run(&folder, &inputs, &out, &[]);
        let err = refused(&o);
        assert!(
            err.contains("`input_ids`") && err.contains("-1"),
            "{family}: {err}"
        );
    }
}
