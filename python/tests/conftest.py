"""Shared fixtures of the kiln Python tests: where ../shared is (KILN_SHARED, skipping when it is
absent unless KILN_REQUIRE_SHARED=1), the real all-MiniLM-L6-v2 folder compiled once per session,
its reference.npz, and the `kiln` command-line binary when one is built (to compare messages)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import kiln

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """The shared test data folder, or a skip (a failure when KILN_REQUIRE_SHARED=1)."""
    path = Path(os.environ.get("KILN_SHARED") or REPO.parent / "shared")
    if not path.is_dir():
        message = f"{path} is missing (set KILN_SHARED to the shared test data folder)"
        if os.environ.get("KILN_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    path = shared_dir() / "models" / "all-MiniLM-L6-v2"
    assert path.is_dir(), f"{path} is missing"
    return path


@pytest.fixture(scope="session")
def minilm(minilm_dir: Path) -> kiln.Model:
    return kiln.compile(minilm_dir)


@pytest.fixture(scope="session")
def reference(minilm_dir: Path) -> dict:
    with np.load(minilm_dir / "reference.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="session")
def feeds(reference: dict) -> dict:
    return {k: reference[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


@pytest.fixture(scope="session")
def kiln_cli():
    """The `kiln` binary (KILN_BIN, else the newer of the workspace's release and debug builds,
    so a stale build of either is not compared with the wheel), or None."""
    candidates = [os.environ.get("KILN_BIN")]
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    builds = [target / "release" / "kiln", target / "debug" / "kiln"]
    builds = sorted((b for b in builds if b.is_file()), key=lambda b: b.stat().st_mtime, reverse=True)
    candidates += [str(b) for b in builds]
    candidates.append(shutil.which("kiln"))
    for c in candidates:
        if c and os.access(c, os.X_OK) and Path(c).is_file():
            return c
    return None
