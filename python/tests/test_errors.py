"""Errors raise kiln.KilnError (kiln.InputError for inputs that do not fit) with the one-line
message the `kiln` command line prints after `error: `; where a `kiln` binary is built, the
messages are compared with its output directly. Also `kiln.inspect` against the CLI's JSON."""

import json
import subprocess

import numpy as np
import pytest

import kiln


def cli_error(kiln_cli, *args):
    """The one line `kiln ARGS` prints after `error: ` (it must fail with status 1)."""
    p = subprocess.run([kiln_cli, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.startswith("error: ")
    return p.stderr[len("error: ") :].rstrip("\n")


def test_exception_hierarchy():
    assert issubclass(kiln.KilnError, Exception)
    assert issubclass(kiln.InputError, kiln.KilnError)
    assert kiln.KilnError.__module__ == "kiln"


def test_missing_file(tmp_path, kiln_cli):
    missing = tmp_path / "nope.onnx"
    message = f"{missing}: No such file or directory (os error 2)"
    for call in (
        lambda: kiln.compile(missing),
        lambda: kiln.load(missing),
        lambda: kiln.inspect(missing),
    ):
        with pytest.raises(kiln.KilnError) as e:
            call()
        assert str(e.value) == message
    if kiln_cli:
        assert cli_error(kiln_cli, "inspect", missing) == message
        assert cli_error(kiln_cli, "compile", missing, "-o", tmp_path / "o.kiln") == message


def test_not_a_model(tmp_path, kiln_cli):
    bad = tmp_path / "model.kir"
    bad.write_text("this is not IR\n")
    with pytest.raises(kiln.KilnError) as e:
        kiln.compile(bad)
    assert str(e.value).startswith(f"{bad}: 1:")
    if kiln_cli:
        assert cli_error(kiln_cli, "compile", bad, "-o", tmp_path / "o.kiln") == str(e.value)


def write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


def test_wrong_input_dtype(minilm, minilm_dir, feeds, tmp_path, kiln_cli):
    bad = dict(feeds, input_ids=feeds["input_ids"].astype(np.int32))
    with pytest.raises(kiln.InputError) as e:
        minilm.run(bad)
    assert str(e.value) == "<inputs>: input `input_ids` has dtype i32, expected i64"
    if kiln_cli:
        npz = write_npz(tmp_path / "in.npz", bad)
        got = cli_error(kiln_cli, "run", minilm_dir, "--inputs", npz, "--outputs", tmp_path / "o.npz")
        assert got == str(e.value).replace("<inputs>", str(npz))


def test_unknown_input_name(minilm, minilm_dir, feeds, tmp_path, kiln_cli):
    # A dict key that names no input is a mistake in the caller's code: an error. (The CLI, whose
    # `.npz` files often carry reference outputs too, ignores such keys with a note.)
    bad = dict(feeds, input_idz=feeds["input_ids"])
    with pytest.raises(kiln.InputError) as e:
        minilm(**bad)
    assert str(e.value) == (
        f"<inputs>: array `input_idz` names no input of {minilm_dir} "
        "(expected inputs: `input_ids`, `attention_mask`, `token_type_ids`)"
    )
    if kiln_cli:
        npz = write_npz(tmp_path / "in.npz", bad)
        args = [kiln_cli, "run", minilm_dir, "--inputs", npz, "--outputs", tmp_path / "o.npz"]
        p = subprocess.run(list(map(str, args)), capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert p.stderr.startswith(f"note: {npz}: ignoring `input_idz`"), p.stderr


def test_missing_input_and_bad_shape(minilm, feeds):
    partial = {k: v for k, v in feeds.items() if k != "token_type_ids"}
    with pytest.raises(kiln.InputError, match=r"^<inputs>: input `token_type_ids` is missing"):
        minilm.run(partial)
    with pytest.raises(kiln.InputError, match=r"^<inputs>: input `input_ids`"):
        minilm.run(dict(feeds, input_ids=feeds["input_ids"][0]))


def test_dtype_kiln_has_no_type_for(minilm, feeds):
    bad = dict(feeds, input_ids=feeds["input_ids"].astype(np.complex64))
    with pytest.raises(kiln.InputError) as e:
        minilm.run(bad)
    assert str(e.value).startswith("<inputs>: array `input_ids`: unsupported dtype `<c8`")
    with pytest.raises(kiln.InputError, match=r"input `input_ids` has dtype u32, expected i64"):
        minilm.run(dict(feeds, input_ids=feeds["input_ids"].astype(np.uint32)))
    with pytest.raises(kiln.InputError):
        minilm.run(dict(feeds, input_ids=np.array(["a", "b"])))


def test_ids_outside_the_vocabulary(minilm, feeds):
    bad = dict(feeds, input_ids=np.full_like(feeds["input_ids"], 10**6))
    with pytest.raises(kiln.InputError, match=r"^<inputs>: input `input_ids`"):
        minilm.run(bad)


def test_bad_arguments(minilm, minilm_dir, tmp_path):
    with pytest.raises(ValueError):
        kiln.inspect(minilm_dir, stage="lowered")
    with pytest.raises(ValueError):
        kiln.compile(minilm_dir, target="tpu")
    with pytest.raises(kiln.KilnError, match="target `cuda` is not available yet"):
        kiln.compile(minilm_dir, target="cuda")
    with pytest.raises(ValueError):
        kiln.load(tmp_path / "x.kiln", threads=0)
    with pytest.raises(kiln.KilnError, match=r"^max_memory `lots`"):
        kiln.load(tmp_path / "x.kiln", max_memory="lots")
    with pytest.raises(TypeError):
        minilm.run([1, 2, 3])


def test_output_over_input_is_refused(minilm_dir, tmp_path, kiln_cli):
    model = tmp_path / "m.kir"
    model.write_text("not even parsed\n")
    with pytest.raises(kiln.KilnError) as e:
        kiln.compile(model, out=model)
    assert str(e.value) == (
        f"{model}: is also an input of this command ({model}); write the output to another path"
    )
    assert model.read_text() == "not even parsed\n"
    if kiln_cli:
        assert cli_error(kiln_cli, "compile", model, "-o", model) == str(e.value)


def test_memory_budget(minilm_dir, feeds):
    small = kiln.compile(minilm_dir, max_memory=1000)
    with pytest.raises(kiln.KilnError, match="more than the budget"):
        small.run(feeds)


@pytest.mark.parametrize("stage", [None, "imported", "optimized", "kernels"])
def test_inspect_is_the_cli_json(minilm_dir, stage, kiln_cli):
    got = kiln.inspect(minilm_dir, stage=stage)
    if stage in (None, "imported", "optimized"):
        assert got["file"] == str(minilm_dir)
        assert got["stage"] == (stage or "imported")
        assert got["inputs"][0] == {"name": "input_ids", "dtype": "i64", "shape": ["batch", "seq"]}
    else:
        assert got["steps"] == len(got["step_list"])
    if stage == "optimized":
        assert got["fusions"]["Attention"] == 6
        assert "optimizer" in got and "passes" in got
    if kiln_cli:
        args = [kiln_cli, "inspect", str(minilm_dir), "--format", "json"]
        if stage:
            args += ["--stage", stage]
        want = json.loads(subprocess.run(args, capture_output=True, check=True, text=True).stdout)
        if stage == "optimized":  # timings differ from run to run
            for d in (got["optimizer"], want["optimizer"]):
                for k in [k for k in d if k.endswith("_ms")]:
                    del d[k]
        assert got == want
