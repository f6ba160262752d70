"""Speech to text: `kiln transcribe` vs CTranslate2 (fp32) on one WAV file, greedy decoding.

Runs both in alternating rounds (Kiln, CT2, Kiln, CT2, ...) so that machine noise hits both
alike, and prints per side the median of
  - `process`: the whole command's wall time, as a user sees it. Kiln's includes compiling the
    encoder and the cached decoder in memory (there is no Whisper artifact yet); CT2's includes
    Python start, imports and loading the converted model.
  - `infer`: features + encoder + decoding inside the process (Kiln: `encode_ms + decode_ms` of
    `--json`; CT2: the transformers feature extractor + `Whisper.generate`, timed in the child).
and the ratios Kiln / CT2 (below 1 = Kiln faster). Both must give the same ids.

  Kiln: `KILN_THREADS=THREADS kiln transcribe MODEL WAV --json`.
  CT2: this script as a child (`--ct2-once`): `ctranslate2.models.Whisper(CT2_DIR, device="cpu",
      compute_type="float32", inter_threads=1, intra_threads=THREADS)`, prompt
      `[50257, 50362]`, `beam_size=1`, `suppress_blank=True` (begin_suppress_tokens),
      `suppress_tokens=[-1]` (the model's list), `max_length=448`.

    cargo build --release -p kiln
    pip install ctranslate2   # beside transformers and torch, for the converter
    ct2-transformers-converter --model ../shared/models/whisper-tiny.en \\
        --output_dir /tmp/ct2-whisper --quantization float32
    python tools/bench_transcribe.py [--kiln target/release/kiln] [--ct2 /tmp/ct2-whisper]
        [--model ../shared/models/whisper-tiny.en] [--rounds 5] [--threads 2]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import wave


def read_wav(path):
    import numpy as np

    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2, "16-bit PCM expected"
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    data = data.reshape(-1, channels).mean(axis=1) / 32768.0
    assert rate == 16000, "16 kHz expected"
    return data


def ct2_once(args):
    import ctranslate2
    from transformers import WhisperFeatureExtractor

    model = ctranslate2.models.Whisper(
        args.ct2,
        device="cpu",
        compute_type="float32",
        inter_threads=1,
        intra_threads=args.threads,
    )
    fe = WhisperFeatureExtractor.from_pretrained(args.model)
    t0 = time.perf_counter()
    audio = read_wav(args.wav)
    mel = fe(audio, sampling_rate=16000, return_tensors="np").input_features
    features = ctranslate2.StorageView.from_array(mel)
    res = model.generate(
        features,
        [[50257, 50362]],
        beam_size=1,
        suppress_blank=True,
        suppress_tokens=[-1],
        max_length=448,
        return_scores=False,
    )
    ms = (time.perf_counter() - t0) * 1e3
    ids = [t for t in res[0].sequences_ids[0] if t != 50256]
    print(json.dumps({"ids": ids, "infer_ms": ms}))


def timed(cmd, env):
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return (time.perf_counter() - t0) * 1e3, json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default="target/release/kiln")
    ap.add_argument("--ct2", default="/tmp/ct2-whisper")
    ap.add_argument("--model", default="../shared/models/whisper-tiny.en")
    ap.add_argument("--wav", default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ct2-once", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.wav = args.wav or os.path.join(args.model, "speech_16k.wav")
    if args.ct2_once:
        return ct2_once(args)
    env = dict(os.environ, KILN_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    kiln_cmd = [args.kiln, "transcribe", args.model, args.wav, "--json"]
    ct2_cmd = [sys.executable, __file__, "--ct2-once", "--ct2", args.ct2, "--model", args.model,
               "--wav", args.wav, "--threads", str(args.threads)]
    k_proc, k_inf, c_proc, c_inf = [], [], [], []
    for r in range(args.rounds):
        ms, k = timed(kiln_cmd, env)
        k_proc.append(ms)
        k_inf.append(k["encode_ms"] + k["decode_ms"])
        ms, c = timed(ct2_cmd, env)
        c_proc.append(ms)
        c_inf.append(c["infer_ms"])
        same = "same ids" if k["ids"] == c["ids"] else f"IDS DIFFER: {k['ids']} vs {c['ids']}"
        print(f"round {r + 1}: kiln {k_proc[-1]:.0f} ms ({k_inf[-1]:.0f} infer), "
              f"ct2 {c_proc[-1]:.0f} ms ({c_inf[-1]:.0f} infer), {same}")
    med = statistics.median
    print(f"kiln process median_ms: {med(k_proc):.1f}   infer median_ms: {med(k_inf):.1f}")
    print(f"ct2  process median_ms: {med(c_proc):.1f}   infer median_ms: {med(c_inf):.1f}")
    print(f"ratio kiln/ct2: process {med(k_proc) / med(c_proc):.2f}, "
          f"infer {med(k_inf) / med(c_inf):.2f}")


if __name__ == "__main__":
    main()
