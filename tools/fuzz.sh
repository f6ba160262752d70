#!/usr/bin/env bash
# Smoke run of Kiln's fuzz targets (cargo-fuzz / libFuzzer; see fuzz/README.md): builds them with
# the nightly toolchain, seeds the corpora (fuzz/seed.sh), then runs each named target (default:
# all) for SECONDS (default 60) under `nice`, one after the other. Not part of CI.
#
#   tools/fuzz.sh [-t SECONDS] [target...]
#
# Crashes land in fuzz/artifacts/<target>/; reproduce one with
#   cd fuzz && cargo +nightly fuzz run <target> artifacts/<target>/<file>
# and minimize it with `cargo +nightly fuzz tmin <target> artifacts/<target>/<file>`.
# The toolchain is `cargo +nightly` when rustup has a nightly; otherwise the pinned stable is
# used with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs unstable -Z flags).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=60
while getopts "t:h" opt; do
    case $opt in
    t) seconds=$OPTARG ;;
    *)
        sed -n '2,12p' "$0"
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(onnx hf_folder npz kir artifact differential)

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo=(cargo +nightly)
else
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
fi

# The largest input each target reads (its seeds must fit: ONNX fixtures are up to 1 MB).
max_len() {
    case $1 in
    onnx) echo 1100000 ;;
    hf_folder) echo 1000000 ;;
    npz) echo 700000 ;;
    kir) echo 65536 ;;
    artifact) echo 65536 ;;
    differential) echo 512 ;;
    esac
}

cd "$root/fuzz"
nice -n 19 "${cargo[@]}" fuzz build
./seed.sh "${targets[@]}"

status=0
for t in "${targets[@]}"; do
    echo "== $t: ${seconds}s"
    # Loading a model starts a rayon pool whose threads outlive the run that loaded it, which
    # LeakSanitizer reports as leaked thread-local storage: no leak checks for those targets.
    extra=()
    case $t in differential | artifact) extra=(-detect_leaks=0) ;; esac
    RAYON_NUM_THREADS=1 nice -n 19 "${cargo[@]}" fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=60 \
        -print_final_stats=1 "${extra[@]}" || status=1
done
exit $status
