"""Kiln vs ONNX Runtime on one ONNX model, side by side in one run, at batch 1 and 8 × 128 tokens.

Both get the same number of threads (default 2) and the same inputs; ONNX Runtime runs with all
graph optimizations. Each system is timed in alternating rounds (ORT, Kiln, ORT, Kiln, ...) so that
machine noise hits both alike; the reported figure is the median over all timed runs, and the
ratio is Kiln / ORT (below 1 = Kiln faster). The outputs are also compared (rtol 1e-3, atol 1e-4).

    cargo build --release
    HF_HUB_OFFLINE=1 python tools/export_families.py /tmp/exports/families --minilm /tmp/exports/minilm
    python tools/bench_vs_onnxruntime.py /tmp/exports/minilm/minilm.onnx [--threads 2] [--iters 30]

Installs onnxruntime with pip when it is missing (needs numpy). The model's inputs must be
`input_ids`, `attention_mask` and optionally `token_type_ids` (BERT-style encoders)."""
import argparse, os, re, subprocess, sys, tempfile, time

parser = argparse.ArgumentParser()
parser.add_argument("onnx")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--iters", type=int, default=30, help="timed runs per system and batch size")
parser.add_argument("--rounds", type=int, default=3, help="alternating rounds the runs are split into")
parser.add_argument("--seq", type=int, default=128)
parser.add_argument("--batches", default="1,8")
parser.add_argument("--kiln", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "kiln"))
args = parser.parse_args()

try:
    import onnxruntime as ort
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "onnxruntime"])
    import onnxruntime as ort
import numpy as np

opts = ort.SessionOptions()
opts.intra_op_num_threads = args.threads
opts.inter_op_num_threads = 1
opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(args.onnx, opts, providers=["CPUExecutionProvider"])
names = [i.name for i in sess.get_inputs()]

def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2

with tempfile.TemporaryDirectory() as tmp:
    artifact = os.path.join(tmp, "model.kiln")
    subprocess.run([args.kiln, "compile", args.onnx, "-o", artifact], check=True, capture_output=True)
    print(f"onnxruntime {ort.__version__}, {args.threads} threads each; model {args.onnx}")
    print(f"{'batch':>5} {'seq':>4} {'ort_ms':>8} {'kiln_ms':>8} {'ratio':>6}  max|diff|")
    worst = 0.0
    for b in [int(x) for x in args.batches.split(",")]:
        rng = np.random.default_rng(b)
        ids = rng.integers(1000, 30000, size=(b, args.seq)).astype(np.int64)
        ids[:, 0], ids[:, -1] = 101, 102
        feed = {"input_ids": ids, "attention_mask": np.ones((b, args.seq), np.int64),
                "token_type_ids": np.zeros((b, args.seq), np.int64)}
        feed = {k: v for k, v in feed.items() if k in names}
        inp = os.path.join(tmp, f"in{b}.npz")
        np.savez(inp, **feed)
        out = os.path.join(tmp, f"out{b}.npz")
        subprocess.run([args.kiln, "run", artifact, "--inputs", inp, "--outputs", out], check=True, capture_output=True)
        got = np.load(out)
        want = sess.run(None, feed)[0]
        diff = float(np.abs(got[got.files[0]] - want).max())
        ok = np.allclose(got[got.files[0]], want, rtol=1e-3, atol=1e-4)
        ort_times, kiln_medians = [], []
        per_round = max(1, args.iters // args.rounds)
        for _ in range(3):
            sess.run(None, feed)
        for _ in range(args.rounds):
            for _ in range(per_round):
                t = time.perf_counter()
                sess.run(None, feed)
                ort_times.append((time.perf_counter() - t) * 1e3)
            r = subprocess.run([args.kiln, "bench", artifact, "--inputs", inp, "--iters", str(per_round),
                                "--threads", str(args.threads)], check=True, capture_output=True, text=True)
            kiln_medians.append(float(re.search(r"median_ms: ([0-9.]+)", r.stdout).group(1)))
        o, k = median(ort_times), median(kiln_medians)
        worst = max(worst, k / o)
        print(f"{b:>5} {args.seq:>4} {o:8.2f} {k:8.2f} {k / o:6.2f}  {diff:.2e} {'ok' if ok else 'MISMATCH'}")
    print(f"worst ratio: {worst:.2f}")
