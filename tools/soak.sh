#!/usr/bin/env bash
# Memory soak of the release `kiln` CLI: resident memory must not grow, neither from one process to
# the next nor within one long-running process.
#
#   tools/soak.sh [KILN] [SHARED]        (KILN default target/release/kiln, SHARED default ../shared)
#
# 1. Many processes: `kiln run` in a loop (SOAK_ITERS times, default 100, or for SOAK_SECS seconds
#    per model when set) on the shipped example (the .kir compiled in memory each time, and its
#    .kiln artifact) and on all-MiniLM-L6-v2's artifact; each process's peak RSS (`/usr/bin/time -f
#    %M`, or python3's getrusage(RUSAGE_CHILDREN) where GNU time is missing). Reports first, last,
#    min and max and fails when the last run's peak exceeds the first's by more than MARGIN_KIB
#    (default 4096).
# 2. One process: `kiln bench ARTIFACT --iters N` on both artifacts, N from a 20-run calibration so
#    that it lasts about BENCH_SECS seconds (default 30), with VmRSS sampled from /proc/PID/status
#    every 0.2 s. Reports the RSS after warm-up (the sample at 10 % of the run), the last sample
#    and the maximum, and fails when the growth from the one to the other, less the 8 bytes per
#    run that `bench` keeps for its timings (N f64s, touched as they fill), exceeds MARGIN_KIB.
# Exits 1 on growth, printing every figure either way.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=$(realpath "${1:-$root/target/release/kiln}")
shared=$(realpath "${2:-${KILN_SHARED:-$root/../shared}}")
iters=${SOAK_ITERS:-100}
secs=${SOAK_SECS:-}
margin=${MARGIN_KIB:-4096}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
status=0

# Peak RSS in KiB of one command (its stdout and stderr are dropped).
if [ -x /usr/bin/time ]; then
  peak_kib() { /usr/bin/time -f %M -o "$work/time" "$@" >/dev/null 2>&1; tail -n1 "$work/time"; }
else
  peak_kib() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
  }
fi

# Keep only the entries of an .npz that are model inputs (python's zipfile: no numpy needed).
inputs_of() { # SRC DST KEEP...
  python3 - "$@" <<'PY'
import sys, zipfile
src, dst, keep = sys.argv[1], sys.argv[2], set(k + ".npy" for k in sys.argv[3:])
with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
    for name in z.namelist():
        if name in keep:
            out.writestr(name, z.read(name))
PY
}

# Many processes: NAME MODEL INPUTS.
processes() {
  local name=$1 model=$2 inputs=$3 n=0 first="" last="" min="" max=0 start=$SECONDS
  while :; do
    if [ -n "$secs" ]; then [ $((SECONDS - start)) -ge "$secs" ] && break
    else [ "$n" -ge "$iters" ] && break; fi
    last=$(peak_kib "$kiln" run "$model" --inputs "$inputs" --outputs "$work/out.npz")
    n=$((n + 1))
    [ -z "$first" ] && first=$last && min=$last
    [ "$last" -gt "$max" ] && max=$last
    [ "$last" -lt "$min" ] && min=$last
  done
  local verdict=ok
  if [ $((last - first)) -gt "$margin" ]; then verdict="GREW"; status=1; fi
  printf '%-24s %5d processes in %4ds: peak RSS first %7d KiB, last %7d, min %7d, max %7d  %s\n' \
    "run $name" "$n" $((SECONDS - start)) "$first" "$last" "$min" "$max" "$verdict"
}

# One process: NAME ARTIFACT INPUTS.
one_process() {
  local name=$1 art=$2 inputs=$3 start=$SECONDS n ms
  ms=$("$kiln" bench "$art" --inputs "$inputs" --iters 20 | awk '/^median_ms:/ {print $2}')
  n=$(python3 -c "print(max(100, int(${BENCH_SECS:-30} * 1000 / max($ms, 1e-3))))")
  "$kiln" bench "$art" --inputs "$inputs" --iters "$n" >"$work/bench.out" 2>&1 &
  local pid=$! samples=()
  while kill -0 "$pid" 2>/dev/null; do
    local rss
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$rss" ] && samples+=("$rss")
    sleep 0.2
  done
  wait "$pid" || { echo "kiln bench failed on $name:"; cat "$work/bench.out"; exit 1; }
  local count=${#samples[@]}
  if [ "$count" -lt 5 ]; then
    echo "bench $name: only $count RSS samples; raise BENCH_SECS"; status=1; return
  fi
  local warm=${samples[$((count / 10))]} last=${samples[$((count - 1))]} max=0 s
  for s in "${samples[@]}"; do [ "$s" -gt "$max" ] && max=$s; done
  # The timings vector touched between the two samples: 8 bytes per run, runs spread evenly.
  local timings=$((n * 8 * (count - 1 - count / 10) / count / 1024)) verdict=ok
  local rest=$((last - warm - timings))
  if [ "$rest" -gt "$margin" ]; then verdict="GREW"; status=1; fi
  printf '%-24s %7d runs in %4ds, %4d samples: RSS after warm-up %7d KiB, last %7d, max %7d; growth less the timings (%d KiB) %+d KiB  %s  %s\n' \
    "bench $name" "$n" $((SECONDS - start)) "$count" "$warm" "$last" "$max" "$timings" "$rest" \
    "$verdict" "$(grep median_ms "$work/bench.out")"
}

"$kiln" compile "$root/examples/tiny_classifier.kir" -o "$work/tiny.kiln" >/dev/null
tiny_in=$root/examples/tiny_classifier_inputs.npz
minilm=$shared/models/all-MiniLM-L6-v2
inputs_of "$minilm/reference.npz" "$work/minilm.npz" input_ids attention_mask token_type_ids
"$kiln" compile "$minilm" -o "$work/minilm.kiln" >/dev/null

echo "kiln: $kiln; margin $margin KiB"
processes "tiny_classifier.kir" "$root/examples/tiny_classifier.kir" "$tiny_in"
processes "tiny_classifier.kiln" "$work/tiny.kiln" "$tiny_in"
processes "all-MiniLM-L6-v2.kiln" "$work/minilm.kiln" "$work/minilm.npz"
one_process "tiny_classifier.kiln" "$work/tiny.kiln" "$tiny_in"
one_process "all-MiniLM-L6-v2.kiln" "$work/minilm.kiln" "$work/minilm.npz"
[ "$status" -eq 0 ] && echo "soak: no growth" || echo "soak: memory grew"
exit "$status"
