#!/usr/bin/env python3
"""Text-generation speed: Kiln vs ONNX Runtime GenAI (fp32) vs llama.cpp (Q4_1).

The issue's acceptance, SmolLM2-135M-Instruct, side by side in one run, same
thread count for every engine (default 2), medians over >= 5 rounds:
  * decode tokens/s: 128 new tokens after a 5-token prompt, greedy;
    Kiln fp32 must be >= 1.25x ORT GenAI fp32 (built from the same weights);
  * prefill of a 300-token prompt (time to first token): Kiln faster than ORT GenAI;
  * llama.cpp (llama-cpp-python on the Q4_1 GGUF) is reported beside as the
    quantized reference.

Definitions used for the in-process engines (ORT GenAI, llama.cpp):
  prefill_ms  = wall time from handing over the 300 prompt ids to having the
                first generated token (one forward over the prompt + argmax);
  decode tok/s = (N - 1) / (time of token N - time of token 1), N = 128: the
                steady one-token steps only, prefill excluded. EOS is ignored so
                that every run makes exactly N tokens.
Kiln runs as a subprocess (`--kiln CMD`): its own `prefill_ms` and
`decode_tokens_per_s` (last stdout line, JSON) are taken as reported, so its
process start and model compile are not counted.

Rounds: every engine is loaded and warmed once; then each round runs every
engine's prefill and decode measures, the engine order rotating from round to
round so that none always runs first after another's cache pollution.

"CPU cores busy" = process CPU time / wall time over a decode run (for Kiln:
the whole subprocess, start-up included); well under the thread count means
the machine was contended and the figures are not representative.

Also checks that the engines agree: greedy ids for the 5-token prompt, ORT
GenAI fp32 vs transformers on the fp32 folder (same weights; should match),
and llama.cpp / Kiln beside them (first divergence reported).

Setup (what the reported figures used):
  python3 -m venv /work/venv-genbench
  /work/venv-genbench/bin/pip install onnxruntime-genai onnx-ir
  # torch/transformers/gguf/safetensors from the shared venv, lowest priority:
  echo /work/venv/lib/python3.11/site-packages \
      > /work/venv-genbench/lib/python3.11/site-packages/zz_shared_venv.pth
  # llama.cpp from source; AMX must be off: this VM advertises amx_tile but
  # faults (SIGILL on tilezero) when ggml uses it with -march=native.
  CMAKE_ARGS="-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' \
    -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' -DLLAVA_BUILD=OFF" \
    /work/venv-genbench/bin/pip install --no-cache-dir llama-cpp-python
  /work/venv-genbench/bin/python tools/make_smollm2_fp32.py
  HF_HUB_OFFLINE=1 /work/venv-genbench/bin/python -m onnxruntime_genai.models.builder \
    -i /work/model-cache/smollm2-135m-instruct-fp32 \
    -o /work/model-cache/smollm2-ortgenai-fp32 -p fp32 -e cpu -c /tmp/ortgenai_cache
  (the builder's --help crashes on a '%' in its help text in 0.18.0; read
  get_args() in builder.py. -i alone, without -m, builds from local files.)

Run:
  /work/venv-genbench/bin/python tools/bench_generate.py --rounds 5 \
    --kiln "/work/main/target/release/kiln generate MODEL"
  (repeat --kiln "LABEL=COMMAND" to run several Kiln artifacts in the same rounds, e.g. the
  GGUF's blocks kept and `kiln compile --decoder --dequantize`'s f32 weights)
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

DEF_HF = "/work/model-cache/smollm2-135m-instruct-fp32"
DEF_ORT = "/work/model-cache/smollm2-ortgenai-fp32"
DEF_GGUF = "/work/model-cache/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
SHORT_PROMPT = "The capital of France is"
EOS = 2  # <|im_end|>, config.json eos_token_id
LONG_SEED = (
    "The history of the printing press begins in the fifteenth century, when "
    "Johannes Gutenberg combined movable metal type, oil-based ink and a wooden "
    "screw press into a practical system for producing books. Before this, texts "
    "were copied by hand, a slow and expensive process that kept literacy rare. "
    "Within fifty years presses were operating in more than two hundred cities "
    "across Europe, and millions of volumes had been printed. Scholars exchanged "
    "ideas faster than ever, scientific results could be checked against one "
    "another, and religious and political pamphlets spread widely. Historians "
    "still debate how much of the Renaissance, the Reformation and the Scientific "
    "Revolution can be traced to this single technology, but few doubt that it "
    "changed how knowledge moved through society. "
)


# ----------------------------------------------------------------------------- prompts

def load_tokenizer(hf_dir):
    from tokenizers import Tokenizer
    return Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))


def encode(tok, text):
    return tok.encode(text, add_special_tokens=False).ids


def make_prompt(tok, n):
    """A text that tokenizes to exactly n tokens (checked by re-encoding)."""
    text = LONG_SEED
    while len(encode(tok, text)) < n + 20:
        text += LONG_SEED
    ids = encode(tok, text)
    for cut in range(n, n + 20):
        cand = tok.decode(ids[:cut])
        if len(encode(tok, cand)) == n:
            return cand, encode(tok, cand)
    # trim words from the end of a longer decode until it is exact
    words = tok.decode(ids[: n + 20]).split(" ")
    while words:
        cand = " ".join(words)
        k = len(encode(tok, cand))
        if k == n:
            return cand, encode(tok, cand)
        words.pop()
    raise SystemExit(f"could not build a {n}-token prompt")


# ----------------------------------------------------------------------------- engines

class OrtGenAI:
    name = "ORT GenAI fp32"

    def __init__(self, path, threads):
        import onnxruntime_genai as og
        self.og = og
        cfg = og.Config(path)
        cfg.clear_providers()  # CPU
        cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": threads, "inter_op_num_threads": 1}}}}))
        self.model = og.Model(cfg)

    def run(self, ids, n_new):
        """Greedy; returns (ids, t_first_token_s, [t after each token])."""
        og = self.og
        params = og.GeneratorParams(self.model)
        total = len(ids) + n_new
        params.set_search_options(do_sample=False, max_length=total, min_length=total)
        gen = og.Generator(self.model, params)
        out, stamps = [], []
        t0 = time.perf_counter()
        gen.append_tokens(ids)
        while len(out) < n_new and not gen.is_done():
            gen.generate_next_token()
            out.append(int(gen.get_next_tokens()[0]))
            stamps.append(time.perf_counter() - t0)
        del gen
        return out, stamps


class LlamaCpp:
    name = "llama.cpp Q4_1"

    def __init__(self, gguf, threads, n_ctx=512):
        from llama_cpp import Llama
        import numpy as np
        self.np = np
        self.llm = Llama(model_path=gguf, n_threads=threads, n_threads_batch=threads,
                         n_ctx=n_ctx, n_batch=512, n_ubatch=512, logits_all=False,
                         verbose=False)
        self.n_vocab = self.llm.n_vocab()

    def run(self, ids, n_new):
        llm, np = self.llm, self.np
        llm.reset()
        out, stamps = [], []
        t0 = time.perf_counter()
        llm.eval(ids)
        for i in range(n_new):
            # llama-cpp-python >= 0.3 no longer copies logits into llm.scores
            # unless logits_all; read the last token's row straight from the context.
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(self.n_vocab,))
            t = int(np.argmax(logits))
            out.append(t)
            stamps.append(time.perf_counter() - t0)
            if i + 1 < n_new:
                llm.eval([t])
        return out, stamps


class Kiln:
    name = "Kiln fp32"

    def __init__(self, cmd, timeout, name=None):
        self.cmd = shlex.split(cmd)
        if name:
            self.name = name
        self.timeout = timeout
        self.error = None

    def run_text(self, text, n_new):
        argv = self.cmd + ["--prompt", text, "--max-new-tokens", str(n_new), "--json", "--ignore-eos"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        if p.returncode != 0:
            raise RuntimeError(f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[-400:]}")
        lines = [l for l in p.stdout.strip().splitlines() if l.strip()]
        if not lines:
            raise RuntimeError("no stdout")
        r = json.loads(lines[-1])
        for k in ("ids", "prefill_ms", "decode_tokens_per_s"):
            if k not in r:
                raise RuntimeError(f"JSON lacks {k!r}: {lines[-1][:200]}")
        return r


# ----------------------------------------------------------------------------- measures

def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def decode_rate(stamps):
    n = len(stamps)
    return (n - 1) / (stamps[-1] - stamps[0]) if n > 1 else float("nan")


def first_divergence(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def transformers_greedy(hf_dir, ids, n_new, threads):
    import torch
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(threads)
    m = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        # natural greedy: stops at EOS like `kiln generate` does
        o = m.generate(torch.tensor([ids]), max_new_tokens=n_new, do_sample=False)
    del m
    return o[0, len(ids):].tolist()


def cpu_info():
    flags, model = set(), "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("model name") and model == "?":
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    isa = "avx512f" if "avx512f" in flags else ("avx2" if "avx2" in flags else "no avx2")
    extra = [f for f in ("avx512_vnni", "avx512_bf16", "amx_tile", "avx_vnni") if f in flags]
    return model, isa, extra


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hf", default=DEF_HF, help="fp32 HF folder (tokenizer, transformers check)")
    ap.add_argument("--ort", default=DEF_ORT, help="ORT GenAI model folder")
    ap.add_argument("--gguf", default=DEF_GGUF)
    ap.add_argument("--kiln", action="append", default=[],
                    help="command prefix, e.g. 'kiln generate MODEL', or 'LABEL=COMMAND'; "
                         "repeat to compare several Kiln artifacts in the same rounds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prefill-tokens", type=int, default=300)
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--no-check", action="store_true", help="skip the transformers agreement check")
    ap.add_argument("--kiln-timeout", type=float, default=600)
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    if a.rounds < 5:
        print("note: fewer than 5 rounds; the acceptance asks for >= 5", file=sys.stderr)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(v, str(a.threads))

    tok = load_tokenizer(a.hf)
    short_ids = encode(tok, SHORT_PROMPT)
    assert len(short_ids) == 5, f"short prompt is {len(short_ids)} tokens, want 5"
    long_text, long_ids = make_prompt(tok, a.prefill_tokens)
    assert len(long_ids) == a.prefill_tokens
    print(f"prompts: short {len(short_ids)} tokens {short_ids}; long {len(long_ids)} tokens",
          file=sys.stderr)

    engines = []
    if not a.no_ort:
        t = time.perf_counter()
        engines.append(OrtGenAI(a.ort, a.threads))
        print(f"ORT GenAI loaded in {time.perf_counter()-t:.1f}s", file=sys.stderr)
    if not a.no_llama:
        try:
            t = time.perf_counter()
            engines.append(LlamaCpp(a.gguf, a.threads))
            print(f"llama.cpp loaded in {time.perf_counter()-t:.1f}s", file=sys.stderr)
        except ImportError as e:
            print(f"llama.cpp not available: {e}", file=sys.stderr)
    kilns = []
    for spec in a.kiln:
        # "LABEL=COMMAND" when the text before the first '=' is not a path or an option
        head = spec.split("=", 1)[0]
        label, cmd = ((head, spec.split("=", 1)[1]) if "=" in spec and "/" not in head
                      and not head.lstrip().startswith("-") else (None, spec))
        if "--threads" not in cmd:
            cmd += f" --threads {a.threads}"  # same thread count as the others
        kilns.append(Kiln(cmd, a.kiln_timeout, label.strip() if label else None))
    kiln_cmd = "; ".join(" ".join(k.cmd) for k in kilns)

    names = [e.name for e in engines] + [k.name for k in kilns]
    prefill = {n: [] for n in names}
    decode = {n: [] for n in names}
    cores = {n: [] for n in names}  # CPU seconds / wall seconds over a decode run
    gen_ids = {}

    # warm-up (not counted) and the greedy ids for the agreement check
    for e in engines:
        e.run(long_ids, 1)
        ids, _ = e.run(short_ids, a.new_tokens)
        gen_ids[e.name] = ids
    for kiln in kilns:
        try:
            r = kiln.run_text(SHORT_PROMPT, a.new_tokens)
            gen_ids[kiln.name] = [int(x) for x in r["ids"]][-a.new_tokens:]
            if len(r["ids"]) not in (a.new_tokens, a.new_tokens + len(short_ids)):
                print(f"warn: Kiln returned {len(r['ids'])} ids", file=sys.stderr)
            r = kiln.run_text(long_text, 1)
        except Exception as ex:  # noqa: BLE001 - any failure means "not available"
            kiln.error = str(ex).splitlines()[0][:300] if str(ex) else type(ex).__name__
            print(f"{kiln.name} not available: {kiln.error}", file=sys.stderr)

    runners = list(engines) + [k for k in kilns if not k.error]
    for rnd in range(a.rounds):
        k = rnd % len(runners) if runners else 0
        order = runners[k:] + runners[:k]
        for e in order:
            if isinstance(e, Kiln):
                r = e.run_text(long_text, 1)
                prefill[e.name].append(float(r["prefill_ms"]))
                c0, w0 = children_cpu(), time.perf_counter()
                r = e.run_text(SHORT_PROMPT, a.new_tokens)
                cores[e.name].append((children_cpu() - c0) / (time.perf_counter() - w0))
                e.made = min(getattr(e, "made", 1 << 30), len(r["ids"]))
                decode[e.name].append(float(r["decode_tokens_per_s"]))
            else:
                _, st = e.run(long_ids, 1)
                prefill[e.name].append(st[0] * 1e3)
                c0, w0 = time.process_time(), time.perf_counter()
                _, st = e.run(short_ids, a.new_tokens)
                cores[e.name].append((time.process_time() - c0) / (time.perf_counter() - w0))
                if len(st) != a.new_tokens:
                    print(f"warn: {e.name} made {len(st)} tokens", file=sys.stderr)
                decode[e.name].append(decode_rate(st))
        print(f"round {rnd+1}/{a.rounds}: " + ", ".join(
            f"{e.name} {prefill[e.name][-1]:.1f} ms / {decode[e.name][-1]:.1f} tok/s"
            for e in order) + f"; load avg {os.getloadavg()[0]:.1f}", file=sys.stderr)

    # agreement
    ref_name = None
    if not a.no_check:
        try:
            gen_ids["transformers fp32"] = transformers_greedy(a.hf, short_ids, a.new_tokens, a.threads)
            ref_name = "transformers fp32"
        except Exception as ex:  # noqa: BLE001
            print(f"transformers check failed: {ex}", file=sys.stderr)
    if ref_name is None and gen_ids:
        ref_name = next(iter(gen_ids))

    # report
    model, isa, extra = cpu_info()
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    ort_name = OrtGenAI.name
    L = []
    L.append(f"### SmolLM2-135M-Instruct generation, {a.threads} threads each, "
             f"median of {a.rounds} rounds")
    L.append("")
    L.append(f"CPU: {model}; ISA: {isa}" + (f" (+{', '.join(extra)})" if extra else "")
             + f"; {os.cpu_count()} logical CPUs; load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    L.append(f"Threads: {a.threads} per engine (ORT intra_op_num_threads, llama.cpp "
             f"n_threads/n_threads_batch" + "".join(f", {k.name} `{' '.join(k.cmd)}`" for k in kilns)
             + ")")
    L.append(f"Prefill: {a.prefill_tokens}-token prompt, time to first token. "
             f"Decode: {a.new_tokens} new tokens after the {len(short_ids)}-token prompt "
             f"{SHORT_PROMPT!r}, greedy.")
    L.append("")
    L.append(f"| engine | prefill {a.prefill_tokens} tokens (ms, median) | "
             f"decode tok/s (median) | CPU cores busy in decode (median) | "
             f"prefill runs (ms) | decode runs (tok/s) |")
    L.append("|---|---:|---:|---:|---|---|")
    for n in names:
        if not prefill[n]:
            L.append(f"| {n} | not available | not available | | | |")
            continue
        L.append(f"| {n} | {med(prefill[n]):.1f} | {med(decode[n]):.1f} | {med(cores[n]):.2f} | "
                 + " ".join(f"{x:.1f}" for x in prefill[n]) + " | "
                 + " ".join(f"{x:.1f}" for x in decode[n]) + " |")
    if load[0] > os.cpu_count() or any(cores[n] and med(cores[n]) < 0.8 * a.threads
                                         for n in names if n not in [k.name for k in kilns]):
        L.append("")
        L.append(f"WARNING: the machine was contended (load avg {load[0]:.1f} on "
                 f"{os.cpu_count()} CPUs; an engine got well under {a.threads} cores): "
                 "absolute figures are not representative, ratios only roughly so.")
    for kiln in kilns:
      if not kiln.error and getattr(kiln, "made", a.new_tokens) < a.new_tokens:
        L.append("")
        L.append(f"WARNING: {kiln.name} stopped after {kiln.made} new tokens (greedy EOS), so its "
                 f"decode tok/s covers {kiln.made} tokens, not {a.new_tokens}; ORT GenAI and "
                 "llama.cpp suppress EOS. A like-for-like figure needs an ignore-EOS option "
                 "in `kiln generate`.")
    L.append("")
    for kiln in kilns:
        if kiln.error:
            L.append(f"{kiln.name}: not available ({kiln.error})")
        elif prefill.get(ort_name):
            rp = med(prefill[ort_name]) / med(prefill[kiln.name])
            rd = med(decode[kiln.name]) / med(decode[ort_name])
            L.append(f"Ratio {kiln.name}/ORT GenAI: decode {rd:.2f}x (goal >= 1.25: "
                     f"{'PASS' if rd >= 1.25 else 'FAIL'}); prefill speed {rp:.2f}x "
                     f"(goal > 1: {'PASS' if rp > 1 else 'FAIL'})")
    if not kilns:
        L.append("Kiln: not run (no --kiln)")
    if "llama.cpp Q4_1" in decode and decode["llama.cpp Q4_1"] and decode.get(ort_name):
        L.append(f"llama.cpp Q4_1 / ORT GenAI fp32: decode "
                 f"{med(decode['llama.cpp Q4_1'])/med(decode[ort_name]):.2f}x, prefill speed "
                 f"{med(prefill[ort_name])/med(prefill['llama.cpp Q4_1']):.2f}x")
    L.append("")
    L.append(f"Agreement, greedy ids for {SHORT_PROMPT!r} ({a.new_tokens} tokens), vs {ref_name}:")
    ref = gen_ids.get(ref_name, [])
    for n, ids in gen_ids.items():
        if n == ref_name:
            continue
        d = first_divergence(ref, ids)
        m = min(len(ref), len(ids))
        if d is None:
            L.append(f"- {n}: identical")
        elif d == m:
            L.append(f"- {n}: identical over the common {m} tokens ({len(ids)} vs ref {len(ref)})")
        elif EOS in (ref[d], ids[d]):
            L.append(f"- {n}: identical for {d} tokens; at token {d} one side emits EOS "
                     f"(ref {ref[d]} vs {ids[d]}): ORT GenAI and llama.cpp runs suppress EOS "
                     f"(min_length) so that they make exactly {a.new_tokens} tokens")
        else:
            L.append(f"- {n}: first divergence at new token {d} "
                     f"(ref {ref[d] if d < len(ref) else '-'} vs {ids[d] if d < len(ids) else '-'}); "
                     f"common prefix {d} tokens")
    if ref:
        L.append(f"- {ref_name} first 16: {ref[:16]} = {tok.decode(ref[:16])!r}")
    L.append("")
    L.append(f"python {platform.python_version()}; " + versions())
    report = "\n".join(L)
    print(report)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"prefill_ms": prefill, "decode_tok_s": decode, "ids": gen_ids,
                       "kiln_errors": {k.name: k.error for k in kilns}, "isa": isa,
                       "threads": a.threads, "rounds": a.rounds}, f, indent=1)


def versions():
    out = []
    for mod in ("onnxruntime_genai", "onnxruntime", "llama_cpp", "transformers", "torch"):
        try:
            m = __import__(mod)
            out.append(f"{mod} {getattr(m, '__version__', '?')}")
        except Exception:  # noqa: BLE001
            out.append(f"{mod} -")
    return ", ".join(out)


if __name__ == "__main__":
    main()
