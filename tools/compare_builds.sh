#!/usr/bin/env bash
# Runs two builds of the `kiln` CLI on the same models and inputs and checks that their outputs are
# byte-identical: the check behind a refactor that claims "no change in behaviour".
#
#   tools/compare_builds.sh OLD_KILN NEW_KILN [SHARED]
#
# Models: the shipped example, every fixture family of SHARED (default ../shared) as legacy ONNX,
# dynamo ONNX and Hugging Face folder, and all-MiniLM-L6-v2; each on the `cpu` backend (compiled in
# memory), through a compiled `.kiln` artifact, and on the `reference` interpreter. Inputs are the
# fixtures' `.npz` files with the reference outputs left out. Exits 1 on the first difference.
set -euo pipefail
old=$(realpath "$1"); new=$(realpath "$2")
shared=$(realpath "${3:-$(dirname "$0")/../../shared}")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

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

models=()   # "NAME|MODEL|INPUTS"
models+=("tiny_classifier|$root/examples/tiny_classifier.kir|$root/examples/tiny_classifier_inputs.npz")
for fam in bert gpt2 llama vit resnet; do
  case $fam in
    bert) keys="input_ids attention_mask token_type_ids" ;;
    gpt2|llama) keys="input_ids attention_mask" ;;
    vit|resnet) keys="pixel_values" ;;
  esac
  inputs_of "$shared/fixtures/$fam-tiny.npz" "$work/$fam.npz" $keys
  models+=("$fam-onnx|$shared/fixtures/$fam-tiny.onnx|$work/$fam.npz")
  models+=("$fam-dynamo|$shared/fixtures/$fam-tiny-dynamo.onnx|$work/$fam.npz")
  # No Hugging Face importer handles ResNetModel yet.
  [ $fam = resnet ] || models+=("$fam-hf|$shared/fixtures/$fam-tiny|$work/$fam.npz")
done
minilm="$shared/models/all-MiniLM-L6-v2"
inputs_of "$minilm/reference.npz" "$work/minilm.npz" input_ids attention_mask token_type_ids
models+=("minilm|$minilm|$work/minilm.npz")

compared=0
for entry in "${models[@]}"; do
  IFS='|' read -r name model inputs <<<"$entry"
  for how in cpu artifact reference; do
    for build in old new; do
      bin=${!build}
      out="$work/$name-$how-$build.npz"
      case $how in
        artifact)
          "$bin" compile "$model" -o "$work/$name-$build.kiln" >/dev/null
          "$bin" run "$work/$name-$build.kiln" --inputs "$inputs" --outputs "$out" >/dev/null ;;
        *) "$bin" run "$model" --backend "$how" --inputs "$inputs" --outputs "$out" >/dev/null ;;
      esac
    done
    if ! cmp -s "$work/$name-$how-old.npz" "$work/$name-$how-new.npz"; then
      echo "DIFFERENT: $name ($how)"; exit 1
    fi
    compared=$((compared + 1))
  done
done
echo "$compared runs identical (${#models[@]} models; cpu, artifact, reference)"
