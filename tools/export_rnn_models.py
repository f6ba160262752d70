"""Write the recurrent-layer test set in tests/models/rnn/ (read by tests/it/rnn_models.rs):

  lstm-bi2.onnx      PyTorch nn.LSTM(8, 16, num_layers=2, bidirectional=True), initial states
                     as inputs; legacy TorchScript exporter, opset 14, dynamic seq/batch axes
  gru-bf.onnx        PyTorch nn.GRU(8, 16, batch_first=True) (exported as GRU with
                     linear_before_reset=1 and transposes around it)
  lstm-bi2-qdq.onnx  lstm-bi2 after onnxruntime.quantization.quantize_dynamic: its LSTMs become
                     com.microsoft::DynamicQuantizeLSTM with int8 W and R
  lstm-variants.onnx, gru-variants.onnx, rnn-variants.onnx
                     single ONNX nodes with what the exporters never write: clip, input_forget,
                     peepholes, sequence_lens shorter than the sequence, reverse and
                     bidirectional directions, linear_before_reset=0, activations with
                     alpha/beta (ONNX Runtime's reading of activation_alpha/beta); not
                     layout=1, which ONNX Runtime refuses (the ONNX node tests cover it)

Sequence lengths are at least 1: for an empty sequence ONNX Runtime returns zeros as Y_h and Y_c
where Kiln returns the initial state (steps past the length keep the state; the kernel tests
cover length 0).

and for each model NAME.a.npz and NAME.b.npz: inputs at two shapes (so that seq and batch stay
symbolic) and ONNX Runtime's outputs, keyed `ort:OUTPUT`; the quantized model also keeps the
float model's ORT outputs as `ort_float:OUTPUT`. Everything is tiny (hidden 16, < 1 MB in all).

With --bench DIR it writes instead the benchmark models of realistic size into DIR (not the
repository): {lstm,gru}-h128-d{1,2}.onnx (input 64, hidden 128, W/R/B initializers, GRU with
linear_before_reset=1, seq and batch symbolic) and x-s200-b{1,8}.npz (200 steps, batch 1 and 8),
for `kiln bench MODEL --inputs X [--backend reference]`.

Usage: python tools/export_rnn_models.py [OUT_DIR | --bench DIR]   (needs torch, onnx, onnxruntime,
numpy)
"""
import os, sys
import numpy as np, onnx, onnxruntime as ort, torch
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

bench = len(sys.argv) > 2 and sys.argv[1] == "--bench"
out = sys.argv[-1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "models", "rnn")
os.makedirs(out, exist_ok=True)
torch.manual_seed(7)
g = np.random.default_rng(7)
I, H = 8, 16


def ort_run(path, feeds):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(None, feeds)))


def save(name, feeds, path=None, extra=None, tag="a"):
    res = ort_run(path or f"{out}/{name}.onnx", feeds)
    d = dict(feeds)
    d.update({f"ort:{k}": v for k, v in res.items()})
    d.update(extra or {})
    np.savez(f"{out}/{name}.{tag}.npz", **d)
    return res


class LstmBi2(torch.nn.Module):
    def __init__(s):
        super().__init__(); s.rnn = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    def forward(s, x, h0, c0):
        y, (h, c) = s.rnn(x, (h0, c0)); return y, h, c


class GruBf(torch.nn.Module):
    def __init__(s):
        super().__init__(); s.rnn = torch.nn.GRU(I, H, batch_first=True)
    def forward(s, x):
        y, h = s.rnn(x); return y, h


def lstm_feeds(seq, batch):
    return {"x": g.standard_normal((seq, batch, I)).astype(np.float32),
            "h0": (0.5 * g.standard_normal((4, batch, H))).astype(np.float32),
            "c0": (0.5 * g.standard_normal((4, batch, H))).astype(np.float32)}


def export_torch():
    m = LstmBi2().eval()
    f = lstm_feeds(7, 3)
    torch.onnx.export(m, tuple(torch.from_numpy(f[k]) for k in ("x", "h0", "c0")), f"{out}/lstm-bi2.onnx",
                      dynamo=False, opset_version=14, input_names=["x", "h0", "c0"], output_names=["y", "h", "c"],
                      dynamic_axes={"x": {0: "seq", 1: "batch"}, "h0": {1: "batch"}, "c0": {1: "batch"},
                                    "y": {0: "seq", 1: "batch"}, "h": {1: "batch"}, "c": {1: "batch"}})
    qpath = f"{out}/lstm-bi2-qdq.onnx"
    quantize_dynamic(f"{out}/lstm-bi2.onnx", qpath, weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM"])
    ops = {n.op_type for n in onnx.load(qpath).graph.node}
    assert "DynamicQuantizeLSTM" in ops, f"quantize_dynamic wrote {ops}"
    for tag, shape in (("a", (7, 3)), ("b", (11, 2))):
        f = lstm_feeds(*shape)
        res = save("lstm-bi2", f, tag=tag)
        save("lstm-bi2-qdq", f, qpath, {f"ort_float:{k}": v for k, v in res.items()}, tag=tag)
    m = GruBf().eval()
    x = g.standard_normal((3, 7, I)).astype(np.float32)
    torch.onnx.export(m, (torch.from_numpy(x),), f"{out}/gru-bf.onnx", dynamo=False, opset_version=14,
                      input_names=["x"], output_names=["y", "h"],
                      dynamic_axes={"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}, "h": {1: "batch"}})
    for tag, shape in (("a", (3, 7)), ("b", (2, 12))):
        save("gru-bf", {"x": g.standard_normal(shape + (I,)).astype(np.float32)}, tag=tag)


def variants(op, nodes, gates):
    """One model with several `op` nodes sharing X (and the optional inputs each names)."""
    inputs = {"x": ["seq", "batch", I], "lens": ["batch"]}
    inits, graph_nodes, outs = [], [], []
    for k, (attrs, opt) in enumerate(nodes):
        dirs = 2 if attrs.get("direction") == "bidirectional" else 1
        w = (g.standard_normal((dirs, gates * H, I)) / np.sqrt(I)).astype(np.float32)
        r = (g.standard_normal((dirs, gates * H, H)) / np.sqrt(H)).astype(np.float32)
        b = (0.3 * g.standard_normal((dirs, 2 * gates * H))).astype(np.float32)
        p = (0.3 * g.standard_normal((dirs, 3 * H))).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(r, f"r{k}"),
                  numpy_helper.from_array(b, f"b{k}")]
        if op == "LSTM":
            inits.append(numpy_helper.from_array(p, f"p{k}"))
        state = [dirs, "batch", H]
        names = ["x", f"w{k}", f"r{k}", f"b{k}" if "b" in opt else "",
                 "lens" if "lens" in opt else ""]
        for s in ("h0", "c0"):
            if s in opt:
                inputs[f"{s}_{k}"] = state
            names.append(f"{s}_{k}" if s in opt else "")
        if op == "LSTM":
            names.append(f"p{k}" if "p" in opt else "")
        else:
            names = names[:6]
        while names[-1] == "":
            names.pop()
        o = [f"y{k}", f"yh{k}"] + ([f"yc{k}"] if op == "LSTM" else [])
        graph_nodes.append(helper.make_node(op, names, o, name=f"{op.lower()}{k}", **attrs))
        outs += o
    ins = [helper.make_tensor_value_info(n, TensorProto.INT32 if n == "lens" else TensorProto.FLOAT, s)
           for n, s in inputs.items()]
    gr = helper.make_graph(graph_nodes, "g", ins, [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                                                    for n in outs], initializer=inits)
    m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 14)])
    m.ir_version = 8
    name = f"{op.lower()}-variants"
    onnx.save(m, f"{out}/{name}.onnx")
    for tag, (seq, batch) in (("a", (6, 4)), ("b", (9, 3))):
        feeds = {"x": g.standard_normal((seq, batch, I)).astype(np.float32),
                 "lens": np.array([seq, 1, 2, seq - 1][:batch], np.int32)}
        for n, s in inputs.items():
            if n.startswith(("h0", "c0")):
                feeds[n] = (0.5 * g.standard_normal([batch if d == "batch" else d for d in s])).astype(np.float32)
        save(name, feeds, tag=tag)


def export_variants():
    all_opt = {"b", "lens", "h0", "c0", "p"}
    variants("LSTM", [
        ({"hidden_size": H, "clip": 0.7, "input_forget": 1}, all_opt),
        ({"hidden_size": H, "direction": "reverse"}, {"b", "lens", "h0", "c0", "p"}),
        ({"hidden_size": H, "direction": "bidirectional"}, {"b", "lens", "h0"}),
        ({"hidden_size": H, "activations": ["HardSigmoid", "LeakyRelu", "ScaledTanh"],
          "activation_alpha": [0.3, 0.05, 0.9], "activation_beta": [0.4, 1.1]}, {"b"}),
    ], 4)
    variants("GRU", [
        ({"hidden_size": H, "linear_before_reset": 0, "direction": "bidirectional"}, {"b", "lens", "h0"}),
        ({"hidden_size": H, "linear_before_reset": 1, "direction": "reverse", "clip": 0.8}, {"b", "lens"}),
        ({"hidden_size": H, "activations": ["Sigmoid", "Relu"]}, {"h0"}),
    ], 3)
    variants("RNN", [
        ({"hidden_size": H, "activations": ["Relu"]}, {"b", "lens", "h0"}),
        ({"hidden_size": H, "direction": "bidirectional", "activations": ["Tanh", "Affine"],
          "activation_alpha": [0.6], "activation_beta": [0.1]}, {"b", "h0"}),
        ({"hidden_size": H, "direction": "reverse", "clip": 0.5}, {"b", "lens"}),
    ], 1)


def export_bench():
    bi, bh = 64, 128
    for op, gates in (("LSTM", 4), ("GRU", 3)):
        for dirs in (1, 2):
            w = (g.standard_normal((dirs, gates * bh, bi)) / np.sqrt(bi)).astype(np.float32)
            r = (g.standard_normal((dirs, gates * bh, bh)) / np.sqrt(bh)).astype(np.float32)
            b = (0.1 * g.standard_normal((dirs, 2 * gates * bh))).astype(np.float32)
            attrs = {"hidden_size": bh, "direction": "bidirectional" if dirs == 2 else "forward"}
            if op == "GRU":
                attrs["linear_before_reset"] = 1
            outs = ["y", "y_h"] + (["y_c"] if op == "LSTM" else [])
            node = helper.make_node(op, ["x", "w", "r", "b"], outs, **attrs)
            gr = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", "batch", bi])],
                                   [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
                                   initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(r, "r"),
                                                numpy_helper.from_array(b, "b")])
            m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 14)])
            m.ir_version = 8
            onnx.save(m, f"{out}/{op.lower()}-h128-d{dirs}.onnx")
    for batch in (1, 8):
        np.savez(f"{out}/x-s200-b{batch}.npz", x=g.standard_normal((200, batch, bi)).astype(np.float32))


if bench:
    export_bench()
    sys.exit(0)
export_torch()
export_variants()
total = sum(os.path.getsize(f"{out}/{f}") for f in os.listdir(out))
print(f"{len(os.listdir(out))} files, {total} bytes in {out}")
