#!/usr/bin/env bash
# Builds the kiln Python wheel and tests it, as CI does: a fresh virtual environment with
# maturin, numpy, pytest and tokenizers from PyPI; `maturin build --release` of python/ (the
# workspace's Cargo.lock, its target folder or CARGO_TARGET_DIR) into a wheel folder; the wheel
# installed into the environment; then the pytest suite in python/tests (which reads
# KILN_SHARED / KILN_REQUIRE_SHARED like the Rust tests).
# Usage: python/build_and_test.sh [PYTEST ARGS...]; KILN_PY_WORK=DIR keeps the environment and
# wheel there (default: a temporary folder, removed at the end).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
if [ -n "${KILN_PY_WORK:-}" ]; then
  work="$KILN_PY_WORK"
  rm -rf "$work/venv" "$work/wheels"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi

echo "== python: virtual environment in $work/venv"
"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
"$venv_python" -m pip install --quiet --disable-pip-version-check \
  "maturin>=1.9.4,<2" numpy pytest tokenizers

echo "== python: maturin build --release"
start=$(date +%s)
(cd "$here" && "$work/venv/bin/maturin" build --release --locked \
  --interpreter "$venv_python" --out "$work/wheels")
echo "== python: wheel built in $(( $(date +%s) - start )) s: $(cd "$work/wheels" && ls)"
"$venv_python" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall \
  "$work/wheels"/*.whl

echo "== python: pytest"
# Run from the tests folder with the environment's pytest script, so `import kiln` finds the
# installed wheel, not the source folder python/kiln (which has no extension module).
cd "$here/tests"
"$work/venv/bin/pytest" -p no:cacheprovider -ra "$@"
