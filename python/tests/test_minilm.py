"""The real all-MiniLM-L6-v2 folder through kiln.compile and Model.run: its inputs and outputs,
last_hidden_state against PyTorch's (reference.npz), sentence embeddings from the `tokenizers`
package against sentence-transformers' (cosine >= 0.9999), artifacts written and loaded, and
several Python threads sharing one model."""

import json
import threading

import numpy as np
import pytest

import kiln

RTOL, ATOL = 1e-3, 1e-4  # as the Rust MiniLM test (tests/it/cpu_backend.rs)


def test_inputs_and_outputs_are_named_typed_and_symbolic(minilm):
    names = [i.name for i in minilm.inputs]
    assert names == ["input_ids", "attention_mask", "token_type_ids"]
    for info in minilm.inputs:
        assert info.dtype == "int64"
        assert info.shape == ["batch", "seq"]
    (out,) = minilm.outputs
    name, dtype, shape = out
    assert (name, dtype) == ("last_hidden_state", "float32")
    assert shape == ["batch", "seq", 384]
    assert "last_hidden_state" in repr(minilm)


def test_last_hidden_state_matches_pytorch(minilm, feeds, reference):
    out = minilm.run(feeds)
    assert list(out) == ["last_hidden_state"]
    got, want = out["last_hidden_state"], reference["last_hidden_state"]
    assert got.dtype == np.float32 and got.shape == want.shape
    mask = feeds["attention_mask"].astype(bool)
    np.testing.assert_allclose(got[mask], want[mask], rtol=RTOL, atol=ATOL)


def test_keyword_call_is_run(minilm, feeds):
    a = minilm.run(feeds)["last_hidden_state"]
    b = minilm(**feeds)["last_hidden_state"]
    np.testing.assert_array_equal(a, b)


def test_non_contiguous_and_list_inputs_give_the_same_result(minilm, feeds):
    want = minilm.run(feeds)["last_hidden_state"]
    fortran = {k: np.asfortranarray(v) for k, v in feeds.items()}
    strided = {k: np.repeat(v, 2, axis=1)[:, ::2] for k, v in feeds.items()}
    assert not strided["input_ids"].flags.c_contiguous
    lists = {k: v.tolist() for k, v in feeds.items()}
    swapped = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in feeds.items()}
    for inputs in (fortran, strided, lists, swapped):
        np.testing.assert_array_equal(minilm.run(inputs)["last_hidden_state"], want)


def mean_pool_normalised(hidden, mask):
    m = mask[..., None].astype(np.float64)
    pooled = (hidden.astype(np.float64) * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_sentence_embeddings_match_sentence_transformers(minilm, minilm_dir, reference):
    tokenizers = pytest.importorskip("tokenizers")
    sentences = json.loads((minilm_dir / "sentences.json").read_text())["sentences"]
    tok = tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(sentences)
    feeds = {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }
    for k in feeds:  # the tokenizer pads as the reference's inputs were padded
        np.testing.assert_array_equal(feeds[k], reference[k])
    hidden = minilm(**feeds)["last_hidden_state"]
    got = mean_pool_normalised(hidden, feeds["attention_mask"])
    want = reference["sentence_embedding"].astype(np.float64)
    assert got.shape == want.shape == (3, 384)
    cos = (got * want).sum(axis=1) / np.linalg.norm(want, axis=1)
    assert (cos >= 0.9999).all(), cos


def test_artifact_written_atomically_and_loaded(minilm, minilm_dir, feeds, tmp_path):
    out = tmp_path / "minilm.kiln"
    compiled = kiln.compile(minilm_dir, out=out)
    assert out.is_file() and compiled.path == str(out)
    assert [p.name for p in tmp_path.iterdir()] == ["minilm.kiln"]  # no temporary left
    loaded = kiln.load(str(out), threads=2, max_memory="1GiB")
    want = minilm.run(feeds)["last_hidden_state"]
    for m in (compiled, loaded):
        np.testing.assert_array_equal(m.run(feeds)["last_hidden_state"], want)
    info = kiln.inspect(out)
    assert info["artifact"] == str(out)
    assert [i["name"] for i in info["inputs"]] == [i.name for i in loaded.inputs]


def test_unoptimized_compile_agrees(minilm_dir, feeds, reference):
    m = kiln.compile(str(minilm_dir), optimize=False)
    got = m.run(feeds)["last_hidden_state"]
    mask = feeds["attention_mask"].astype(bool)
    np.testing.assert_allclose(got[mask], reference["last_hidden_state"][mask], rtol=RTOL, atol=ATOL)


def test_threads_share_one_model(minilm, feeds):
    rng = np.random.default_rng(7)
    cases = []
    for i in range(4):
        batch, seq = 1 + i % 2, 8 + 5 * i
        cases.append(
            {
                "input_ids": rng.integers(1000, 30000, size=(batch, seq), dtype=np.int64),
                "attention_mask": np.ones((batch, seq), dtype=np.int64),
                "token_type_ids": np.zeros((batch, seq), dtype=np.int64),
            }
        )
    cases.append(feeds)
    want = [minilm.run(c)["last_hidden_state"] for c in cases]
    results, errors = {}, []

    def worker(t):
        try:
            for r in range(3):
                k = (t + r) % len(cases)
                results[(t, r)] = (k, minilm.run(cases[k])["last_hidden_state"])
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 18
    for k, got in results.values():
        np.testing.assert_array_equal(got, want[k])
