"""Sentence embeddings: sentence-transformers (PyTorch) vs `kiln pipeline feature-extraction`.

Embeds 1,000 deterministic sentences of 3 to 120 words with all-MiniLM-L6-v2 both ways, in
alternating rounds (ST, Kiln, ST, Kiln, ...) so that machine noise hits both alike, and prints
the median wall time of each, the ratio Kiln / ST (below 1 = Kiln faster), sentences per second,
and the smallest cosine similarity between the two sets of embeddings.

  sentence-transformers: SentenceTransformer(MODEL).encode(sentences, batch_size=32) in this
      process, torch.set_num_threads(THREADS); the model is loaded once, untimed.
  Kiln: `kiln compile MODEL -o ARTIFACT` once (untimed), then each timed run is the whole command
      `kiln pipeline feature-extraction ARTIFACT --json` with the sentences on stdin, one per line,
      KILN_THREADS=THREADS; it prints a JSON array with one embedding per line. Its time includes
      process start and artifact load, which the script also measures alone (one sentence) and
      reports as the fixed cost.

Kiln's embeddings may be pooled vectors (normalised or not) or per-token vectors: a per-token
array is mean-pooled here (all tokens, as sentence-transformers does for an unpadded sentence)
before comparing. Cosine similarity ignores scale.

    cargo build --release
    HF_HUB_OFFLINE=1 python tools/bench_pipeline_vs_st.py [--kiln target/release/kiln]
        [--model ../shared/models/all-MiniLM-L6-v2] [--rounds 5] [--threads 2] [--json OUT]"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--kiln", default=os.path.join(ROOT, "target", "release", "kiln"),
                    help="the kiln binary (default target/release/kiln)")
parser.add_argument("--model", default=os.path.join(
    os.environ.get("KILN_SHARED", os.path.join(ROOT, "..", "shared")), "models", "all-MiniLM-L6-v2"))
parser.add_argument("--artifact", help="where to write the compiled model (default: a temp dir)")
parser.add_argument("--sentences", type=int, default=1000)
parser.add_argument("--rounds", type=int, default=5, help="timed runs of each system (>= 5)")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--pipeline-arg", action="append", default=[],
                    help="extra argument for `kiln pipeline` (repeatable)")
parser.add_argument("--json", help="also write the results as JSON to this file")
args = parser.parse_args()
if args.rounds < 5:
    parser.error("--rounds must be at least 5")

WORDS = """the of and a to in is was it for on with as by at from his her they this that which
an be are were had has have not but or one two three first new time year people way day man
woman child world life hand part place case week company system program question work government
number night point home water room mother area money story fact month lot right study book eye
job word business issue side kind head house service friend father power hour game line end
member law car city community name president team minute idea kid body information back parent
face others level office door health person art war history party result change morning reason
research girl guy moment air teacher force education river mountain garden window kitchen train
station bridge market village forest island ocean winter summer spring autumn music film paper
letter color light small large old young long short early late quick slow bright dark warm cold
happy strange quiet loud simple difficult important different local national social public open
walked found gave told asked seemed felt became left brought began kept held wrote stood heard
played ran moved lived believed carried understood remembered discovered explained described
always never often sometimes already still almost quite very really perhaps however because
although while before after during under over between through across against without within
café naïve résumé Zürich São Paulo Kraków München 2024 1999 3.14 42 100% e-mail self-driving
don't can't it's we'll they're""".split()


def make_sentences(n, seed=20240607):
    """n sentences of 3..120 words (uniform), deterministic."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        k = rnd.randint(3, 120)
        words = [rnd.choice(WORDS) for _ in range(k)]
        for i in range(4, k - 1, rnd.randint(6, 14)):   # commas now and then
            words[i] += ","
        s = " ".join(words)
        out.append(s[0].upper() + s[1:] + rnd.choice([".", ".", ".", "?", "!"]))
    return out


def pooled(item):
    a = np.asarray(item, dtype=np.float64)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:          # per-token embeddings: mean over the tokens
        a = a.mean(axis=0)
    if a.ndim != 1:
        raise ValueError(f"an embedding of shape {a.shape}")
    return a


def run_kiln(artifact, lines, env):
    cmd = [args.kiln, "pipeline", "feature-extraction", artifact, "--json", *args.pipeline_arg]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, input="".join(s + "\n" for s in lines), capture_output=True, text=True,
                       env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"`{' '.join(cmd)}` failed ({p.returncode}):\n{p.stderr[-2000:]}")
    try:
        emb = json.loads(p.stdout)
    except json.JSONDecodeError as e:
        sys.exit(f"kiln printed no JSON array ({e}); stdout starts {p.stdout[:300]!r}, "
                 f"stderr {p.stderr[-500:]!r}")
    if not isinstance(emb, list) or len(emb) != len(lines):
        sys.exit(f"kiln returned {len(emb) if isinstance(emb, list) else type(emb).__name__} "
                 f"embeddings for {len(lines)} lines")
    return dt, emb


def main():
    if not os.access(args.kiln, os.X_OK):
        sys.exit(f"no kiln binary at {args.kiln} (cargo build --release, or --kiln PATH)")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    sentences = make_sentences(args.sentences)
    env = dict(os.environ, KILN_THREADS=str(args.threads))
    st = SentenceTransformer(args.model, device="cpu")
    n_tok = [len(st.tokenizer(s)["input_ids"]) for s in sentences]
    print(f"{len(sentences)} sentences, {min(len(s.split()) for s in sentences)}-"
          f"{max(len(s.split()) for s in sentences)} words, {min(n_tok)}-{max(n_tok)} tokens "
          f"(mean {statistics.mean(n_tok):.1f}; ST truncates at {st.max_seq_length}); "
          f"{args.threads} threads each; torch {torch.__version__}")

    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact or os.path.join(tmp, "minilm.kiln")
        t0 = time.perf_counter()
        c = subprocess.run([args.kiln, "compile", args.model, "-o", artifact], capture_output=True,
                           text=True, env=env)
        if c.returncode != 0:
            sys.exit(f"kiln compile failed ({c.returncode}):\n{c.stderr[-2000:]}")
        print(f"kiln compile: {time.perf_counter() - t0:.1f} s (untimed below)")

        # warm-up (page cache, lazy init), untimed
        st.encode(sentences[:64], batch_size=args.batch_size)
        run_kiln(artifact, sentences[:64], env)

        st_times, kiln_times, fixed = [], [], []
        ref = kiln_emb = None
        for r in range(args.rounds):
            t0 = time.perf_counter()
            e = st.encode(sentences, batch_size=args.batch_size, convert_to_numpy=True)
            st_times.append(time.perf_counter() - t0)
            ref = e if ref is None else ref
            dt, emb = run_kiln(artifact, sentences, env)
            kiln_times.append(dt)
            kiln_emb = emb if kiln_emb is None else kiln_emb
            fixed.append(run_kiln(artifact, sentences[:1], env)[0])
            print(f"round {r + 1}: sentence-transformers {st_times[-1]:.3f} s, kiln {dt:.3f} s")

    k = np.stack([pooled(v) for v in kiln_emb])
    if k.shape != ref.shape:
        sys.exit(f"embedding shapes differ: kiln {k.shape}, sentence-transformers {ref.shape}")
    r = ref.astype(np.float64)
    cos = (k * r).sum(1) / (np.linalg.norm(k, axis=1) * np.linalg.norm(r, axis=1))
    st_med, kiln_med, fixed_med = (statistics.median(x) for x in (st_times, kiln_times, fixed))
    res = {
        "sentences": len(sentences), "threads": args.threads, "rounds": args.rounds,
        "st_median_s": st_med, "kiln_median_s": kiln_med, "ratio_kiln_over_st": kiln_med / st_med,
        "st_sentences_per_s": len(sentences) / st_med,
        "kiln_sentences_per_s": len(sentences) / kiln_med,
        "kiln_fixed_cost_s": fixed_med,
        "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
        "worst_sentence": int(cos.argmin()),
        "kiln_norm_range": [float(np.linalg.norm(k, axis=1).min()), float(np.linalg.norm(k, axis=1).max())],
        "st_times_s": st_times, "kiln_times_s": kiln_times,
    }
    print(f"sentence-transformers median {st_med:.3f} s ({res['st_sentences_per_s']:.0f} sentences/s)")
    print(f"kiln pipeline         median {kiln_med:.3f} s ({res['kiln_sentences_per_s']:.0f} sentences/s), "
          f"of which fixed cost (start, load; 1 sentence) {fixed_med:.3f} s")
    print(f"ratio kiln / sentence-transformers: {kiln_med / st_med:.3f} (below 1 = kiln faster)")
    print(f"cosine kiln vs sentence-transformers: min {cos.min():.6f} (sentence {cos.argmin()}), "
          f"mean {cos.mean():.6f}; kiln norms {res['kiln_norm_range'][0]:.4f}-{res['kiln_norm_range'][1]:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if cos.min() > 0.999 else 1


if __name__ == "__main__":
    sys.exit(main())
