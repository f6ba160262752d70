#!/usr/bin/env bash
# Runs the runtime's `unsafe` code under Miri, AddressSanitizer and valgrind; exits 1 on the first
# tool that reports an error.
#
#   tools/sanitizers.sh [miri] [asan] [valgrind]      (default: all three; needs the nightly
#                                                      toolchain with miri, and valgrind)
#
# miri      kiln-runtime's unit tests that Miri can run: the artifact loader (from bytes), the plan,
#           the executor on a plan of library kernels (arena, frame, gather, portable GEMM and
#           attention, reference kernels, two threads), the portable GEMM, the object parser and
#           relocations, tensors and the op set (not the dim parser's proptests: safe code, hours
#           under Miri). Tests that map files, make code executable, run generated code or sweep
#           large inputs carry `#[cfg_attr(miri, ignore = "why")]`.
#           Tree Borrows: rayon's crossbeam-epoch breaks Stacked Borrows' rules (crossbeam#545);
#           leaks are ignored for crossbeam-epoch's global collector, which is never freed.
# asan      every kiln-runtime test (the generated-code loader and the AVX2/AVX-512 kernels
#           included) and the root package's CPU-backend tests (fixtures, MiniLM, the ONNX cases
#           on the CPU backend) and stress tests, built with -Zsanitizer=address (LeakSanitizer
#           on). Not the RSS soak: ASan's allocator and quarantine move the RSS by megabytes.
# valgrind  memcheck on the release `kiln run` of the example (.kir compiled in memory, and a
#           .kiln artifact) and of all-MiniLM-L6-v2's artifact (KILN_SHARED, default ../shared),
#           compiled for avx2,fma because valgrind does not emulate AVX-512; fails on any memory
#           error or definite leak.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
steps=("$@"); [ ${#steps[@]} -eq 0 ] && steps=(miri asan valgrind)
host=$(rustc -vV | sed -n 's/^host: //p')
target_dir=${CARGO_TARGET_DIR:-$root/target}

for step in "${steps[@]}"; do
  case $step in
    miri)
      echo "== miri"
      cargo +nightly miri setup >/dev/null
      MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation -Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks}" \
        cargo +nightly miri test -p kiln-runtime --lib -- \
        artifact:: plan:: exec:: kernels::gemm:: code:: tensor:: dtype:: cpu:: model:: ops::op::
      ;;
    asan)
      echo "== asan"
      RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
        cargo +nightly test --target "$host" -p kiln-runtime --features test-util
      RUSTFLAGS="-Zsanitizer=address" \
        cargo +nightly test --target "$host" -p kiln --test it -- cpu_backend stress
      ;;
    valgrind)
      echo "== valgrind"
      cargo build --release --bin kiln
      kiln=$target_dir/release/kiln
      shared=$(realpath "${KILN_SHARED:-$root/../shared}")
      work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
      vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
          --show-leak-kinds=definite)
      tiny_in=$root/examples/tiny_classifier_inputs.npz
      "$kiln" compile examples/tiny_classifier.kir --cpu-features avx2,fma -o "$work/tiny.kiln" >/dev/null
      minilm=$shared/models/all-MiniLM-L6-v2
      python3 - "$minilm/reference.npz" "$work/minilm.npz" <<'PY'
import sys, zipfile
keep = {k + ".npy" for k in ("input_ids", "attention_mask", "token_type_ids")}
with zipfile.ZipFile(sys.argv[1]) as z, zipfile.ZipFile(sys.argv[2], "w") as out:
    for name in z.namelist():
        if name in keep:
            out.writestr(name, z.read(name))
PY
      "$kiln" compile "$minilm" --cpu-features avx2,fma -o "$work/minilm.kiln" >/dev/null
      for run in "examples/tiny_classifier.kir|$tiny_in" "$work/tiny.kiln|$tiny_in" \
                 "$work/minilm.kiln|$work/minilm.npz"; do
        IFS='|' read -r model inputs <<<"$run"
        echo "valgrind kiln run $(basename "$model")"
        "${vg[@]}" "$kiln" run "$model" --inputs "$inputs" --outputs "$work/out.npz"
      done
      ;;
    *) echo "unknown step $step (miri, asan, valgrind)"; exit 2 ;;
  esac
done
echo "sanitizers: ${steps[*]} clean"
