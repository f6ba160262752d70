"""Runs every ONNX fixture of ../shared/fixtures through the `kiln` CLI (`kiln run ... --backend
BACKEND`, default cpu) and compares the output with PyTorch's (`out` in NAME.npz), rtol 1e-3,
atol 1e-4.

    cargo build --release && python3 tools/check_fixtures.py [SHARED_DIR] [--backend reference]

The other-shape checks (batch 3, other sequence lengths) are in tests/onnx_fixtures.rs."""
import os, subprocess, sys, tempfile
import numpy as np

args = sys.argv[1:]
backend = "cpu"
if "--backend" in args:
    i = args.index("--backend")
    backend = args[i + 1]
    del args[i:i + 2]
shared = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "..", "shared")
kiln = os.environ.get("KILN", os.path.join(os.path.dirname(__file__), "..", "target", "release", "kiln"))
fx = os.path.join(shared, "fixtures")
bad = 0
with tempfile.TemporaryDirectory() as tmp:
    for npz in sorted(f for f in os.listdir(fx) if f.endswith(".npz")):
        fam = npz[:-4]
        ref = np.load(os.path.join(fx, npz))
        inputs = os.path.join(tmp, f"{fam}-in.npz")
        np.savez(inputs, **{k: ref[k] for k in ref.files if k != "out"})
        for model in (f"{fam}.onnx", f"{fam}-dynamo.onnx"):
            out = os.path.join(tmp, f"{model}.npz")
            r = subprocess.run([kiln, "run", os.path.join(fx, model), "--inputs", inputs, "--outputs", out,
                                "--backend", backend], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{model:24s} FAILED: {r.stderr.strip()}")
                bad += 1
                continue
            o = np.load(out)
            got = o[o.files[0]]
            ok = got.shape == ref["out"].shape and np.allclose(got, ref["out"], rtol=1e-3, atol=1e-4)
            bad += not ok
            print(f"{model:24s} max|diff| {np.abs(got - ref['out']).max():.2e} {'ok' if ok else 'MISMATCH'}")
sys.exit(1 if bad else 0)
