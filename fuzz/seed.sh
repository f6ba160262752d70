#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (git-ignored) from the
# repository's fixtures and the shared ones (KILN_SHARED, default ../shared beside the checkout).
# Usage: fuzz/seed.sh [target...]   (default: every target). Existing corpus files are kept.
# The `artifact` seeds are compiled by the built `artifact` fuzz binary itself (it writes them
# when KILN_FUZZ_WRITE_SEEDS is set), so build the targets first (tools/fuzz.sh does).
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$fuzz_dir")
shared=${KILN_SHARED:-$root/../shared}
corpus=$fuzz_dir/corpus
bin_dir=${KILN_FUZZ_BIN_DIR:-$fuzz_dir/target/x86_64-unknown-linux-gnu/release}

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(onnx hf_folder npz kir artifact differential)

# copy_seed FILE TARGET: the file under its content hash (so re-seeding adds no duplicates).
copy_seed() {
    local hash
    hash=$(sha1sum "$1" | cut -c1-40)
    install -m 644 "$1" "$corpus/$2/$hash"
}

for t in "${targets[@]}"; do
    mkdir -p "$corpus/$t"
    case $t in
    onnx)
        for f in "$root"/tests/models/*.onnx "$shared"/fixtures/*.onnx \
            "$shared"/onnx-node-tests/node/*/model.onnx; do
            [ -f "$f" ] && copy_seed "$f" onnx
        done
        ;;
    hf_folder)
        # u16 LE length of config.json, config.json, model.safetensors (kiln_fuzz::split_hf).
        for d in "$root"/tests/models/hf/*/ "$shared"/fixtures/*/; do
            [ -f "$d/config.json" ] && [ -f "$d/model.safetensors" ] || continue
            tmp=$(mktemp)
            n=$(stat -c %s "$d/config.json")
            printf "\\x$(printf %02x $((n & 255)))\\x$(printf %02x $((n >> 8)))" >"$tmp"
            cat "$d/config.json" "$d/model.safetensors" >>"$tmp"
            copy_seed "$tmp" hf_folder
            rm -f "$tmp"
        done
        ;;
    npz)
        while IFS= read -r f; do
            copy_seed "$f" npz
        done < <(find "$root/examples" "$root/tests" "$shared/fixtures" "$shared/models" \
            -name '*.npz' -size -1024k 2>/dev/null)
        ;;
    kir)
        while IFS= read -r f; do
            copy_seed "$f" kir
        done < <(find "$root/examples" "$root/compiler/tests" "$fuzz_dir/seeds" -name '*.kir')
        ;;
    artifact)
        if [ ! -x "$bin_dir/artifact" ]; then
            echo "seed.sh: $bin_dir/artifact is not built (cargo +nightly fuzz build artifact)" >&2
            exit 1
        fi
        tmp=$(mktemp -d)
        KILN_FUZZ_WRITE_SEEDS=$tmp "$bin_dir/artifact" -runs=0 "$tmp/empty-corpus" >/dev/null 2>&1 ||
            KILN_FUZZ_WRITE_SEEDS=$tmp "$bin_dir/artifact" -runs=0 >/dev/null 2>&1 || true
        for f in "$tmp"/*.kiln; do
            [ -f "$f" ] && copy_seed "$f" artifact
        done
        rm -rf "$tmp"
        ;;
    differential)
        # Random bytes from a fixed seed: the generator reads any input as a graph.
        RANDOM=12
        for i in $(seq 1 64); do
            f=$(mktemp)
            for _ in $(seq 1 $((16 + i))); do printf "\\x$(printf %02x $((RANDOM & 255)))"; done >"$f"
            copy_seed "$f" differential
            rm -f "$f"
        done
        ;;
    *)
        echo "seed.sh: unknown target $t" >&2
        exit 2
        ;;
    esac
    echo "seed.sh: $t: $(find "$corpus/$t" -type f | wc -l) files in fuzz/corpus/$t"
done
