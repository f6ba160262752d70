"""Write the ONNX Runtime contrib-op test set in tests/models/contrib/ (see
tests/it/onnx_contrib.rs), with ONNX Runtime's outputs as the references:

  NAME.onnx + NAME.npz      one com.microsoft op (SkipLayerNormalization, Attention, MatMulNBits,
                            ...) built with onnx.helper on random inputs; the .npz holds the
                            graph inputs and ONNX Runtime's outputs under the output names.
  ort-FIXTURE.onnx + .npz   a shared fixture (../shared/fixtures/FIXTURE.onnx) after ONNX Runtime's
                            transformer optimizer (onnxruntime.transformers.optimizer), with the
                            fixture's inputs and ONNX Runtime's outputs. To keep the repository
                            small, the initializers the optimizer left unchanged are not stored:
                            the file's metadata `kiln.base` names the fixture they come from, and
                            the test copies them back in (so these run only where ../shared is).
  ort-llama-tiny-q4         the optimized llama fixture with its MatMuls quantized to 4 bits by
                            onnxruntime.quantization's MatMulNBitsQuantizer (stored whole; needs onnx_ir).

It prints the contrib ops each optimized model contains. With --minilm DIR it also exports
all-MiniLM-L6-v2 with torch (eager attention, legacy exporter, opset 14) into a temporary folder,
optimizes it and writes DIR/minilm-ort.onnx (90 MB: never into the repository), its inputs
(the tokenised sentences of the model folder's reference.npz) as DIR/minilm-ort.npz and ONNX
Runtime's and PyTorch's last_hidden_state as DIR/minilm-ort-expected.npz (`ort`, `torch`), for
measuring Kiln on it by hand (`kiln run`).

Usage: HF_HUB_OFFLINE=1 python tools/export_ort_contrib.py [--out DIR] [--shared DIR]
       [--only NAME,...] [--minilm DIR]
Needs onnx, onnxruntime (with onnxruntime.transformers), numpy; onnx_ir for the quantized model;
torch and transformers only for --minilm."""
import argparse, collections, os, tempfile
import numpy as np, onnx
import onnxruntime as ort
from onnx import TensorProto, helper as oh, numpy_helper as nh

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "models", "contrib"))
ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
ap.add_argument("--only", help="comma-separated names to write (default: all)")
ap.add_argument("--minilm", help="also export and optimize all-MiniLM-L6-v2 into this folder")
a = ap.parse_args()
ONLY = set(a.only.split(",")) if a.only else None
MS = "com.microsoft"
os.makedirs(a.out, exist_ok=True)
rng = np.random.default_rng(20240611)
ELEM = {np.float32: TensorProto.FLOAT, np.int32: TensorProto.INT32, np.int64: TensorProto.INT64,
        np.uint8: TensorProto.UINT8}


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def save(name, model, feeds):
    """Runs `model` on `feeds` with ONNX Runtime; writes NAME.onnx and NAME.npz (the feeds and
    every output under its name)."""
    outs = session(model).run(None, feeds)
    names = [o.name for o in model.graph.output]
    onnx.save(model, os.path.join(a.out, name + ".onnx"))
    np.savez(os.path.join(a.out, name + ".npz"), **feeds, **dict(zip(names, outs)))
    return dict(zip(names, outs))


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def single(name, op, ins, outs, feeds, consts=None, domain=MS, dyn=None, **attrs):
    """A model of one node `op` with inputs `ins` ('' = absent): `feeds` become graph inputs
    (static shapes unless `dyn` names dims: {input: [name or None per dim]}), `consts`
    initializers; the outputs `outs` ('' = not requested) become graph outputs."""
    if ONLY and name not in ONLY:
        return
    consts = consts or {}
    dyn = dyn or {}
    node = oh.make_node(op, ins, outs, domain=domain, **attrs)
    gin = []
    for k, v in feeds.items():
        shape = [d if d else s for d, s in zip(dyn[k], v.shape)] if k in dyn else list(v.shape)
        gin.append(oh.make_tensor_value_info(k, ELEM[v.dtype.type], shape))
    gout = [onnx.ValueInfoProto(name=o) for o in outs if o]
    graph = oh.make_graph([node], name, gin, gout, [nh.from_array(v, k) for k, v in consts.items()])
    model = oh.make_model(graph, ir_version=8,
                          opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid(MS, 1)])
    res = save(name, model, feeds)
    print(f"{name}: {op} -> " + ", ".join(f"{k} {list(v.shape)}" for k, v in res.items()))


def pack(codes, bits):
    """Packs the last axis of `codes` (< 2^bits) into bytes, low bits first."""
    n = codes.shape[-1]
    out = np.zeros(codes.shape[:-1] + ((n * bits + 7) // 8,), np.uint8)
    for i in range(n):
        out[..., (i * bits) // 8] |= (codes[..., i].astype(np.uint8) << ((i * bits) % 8))
    return out


def norms():
    B, S, H = 2, 5, 16
    single("skip_layer_norm", "SkipLayerNormalization", ["x", "skip", "gamma", "beta", "bias"],
           ["y", "mean", "inv_std", "sum"],
           {"x": f32(B, S, H), "skip": f32(B, S, H), "gamma": f32(H), "beta": f32(H),
            "bias": f32(H)}, dyn={"x": ["batch", "seq", None], "skip": ["batch", "seq", None]},
           epsilon=1e-5)
    single("skip_layer_norm_bcast", "SkipLayerNormalization", ["x", "skip", "gamma"], ["y", "", "", "sum"],
           {"x": f32(B, S, H), "skip": f32(S, H)}, {"gamma": f32(H)})
    single("skip_simplified_layer_norm", "SkipSimplifiedLayerNormalization",
           ["x", "skip", "gamma", "bias"], ["y", "", "inv_std", "sum"],
           {"x": f32(B, S, H), "skip": f32(B, S, H)}, {"gamma": f32(H), "bias": f32(H)},
           epsilon=1e-6)
    single("simplified_layer_norm", "SimplifiedLayerNormalization", ["x", "scale"], ["y", "inv_std"],
           {"x": f32(B, S, H)}, {"scale": f32(H)}, domain="", epsilon=1e-6)
    V, P = 30, 12
    ids = rng.integers(0, V, (B, S)).astype(np.int32)
    seg = rng.integers(0, 2, (B, S)).astype(np.int32)
    mask = np.array([[1] * S, [1] * (S - 2) + [0] * 2], np.int32)
    tables = {"word": f32(V, H), "pos": f32(P, H), "segment": f32(2, H), "gamma": f32(H),
              "beta": f32(H)}
    single("embed_layer_norm", "EmbedLayerNormalization",
           ["ids", "seg", "word", "pos", "segment", "gamma", "beta", "mask"],
           ["y", "mask_index", "embedding_sum"], {"ids": ids, "seg": seg, "mask": mask}, tables)
    single("embed_layer_norm_pos", "EmbedLayerNormalization",
           ["ids", "", "word", "pos", "", "gamma", "beta", "", "position_ids"], ["y", "mask_index"],
           {"ids": ids, "position_ids": rng.integers(0, P, (1, S)).astype(np.int32)},
           {k: tables[k] for k in ["word", "pos", "gamma", "beta"]}, epsilon=1e-5)


def activations():
    x = f32(2, 3, 16, scale=2.0)
    b = f32(16)
    single("gelu", "Gelu", ["x"], ["y"], {"x": x})
    single("bias_gelu", "BiasGelu", ["x", "bias"], ["y"], {"x": x}, {"bias": b})
    single("fast_gelu", "FastGelu", ["x", "bias"], ["y"], {"x": x}, {"bias": b})
    single("fast_gelu_nobias", "FastGelu", ["x"], ["y"], {"x": x})
    single("quick_gelu", "QuickGelu", ["x"], ["y"], {"x": x})
    single("quick_gelu_silu", "QuickGelu", ["x"], ["y"], {"x": x}, alpha=1.0)
    a, b3 = f32(2, 4, 3), f32(2, 5, 3)
    single("fused_matmul", "FusedMatMul", ["a", "b"], ["y"], {"a": a, "b": b3}, transB=1, alpha=0.5)
    single("fused_matmul_trans_a", "FusedMatMul", ["a", "w"], ["y"], {"a": f32(2, 3, 4)},
           {"w": f32(3, 6)}, transA=1, alpha=2.0)
    single("transpose_matmul", "TransposeMatMul", ["a", "b"], ["y"], {"a": a, "b": b3}, transB=1)
    for act, attrs in [("Relu", {}), ("LeakyRelu", {"activation_alpha": 0.1}),
                       ("HardSigmoid", {"activation_alpha": 0.3, "activation_beta": 0.4}),
                       ("Tanh", {}), ("Sigmoid", {})]:
        single(f"fused_gemm_{act.lower()}", "FusedGemm", ["a", "w", "c"], ["y"],
               {"a": f32(6, 4)}, {"w": f32(5, 4), "c": f32(5)}, transB=1, alpha=0.7, beta=0.5,
               activation=act, **attrs)


def matmul_nbits(name, K, N, bits, block, zp="packed", flat=False, bias=False, a_shape=(3,)):
    kb = (K + block - 1) // block
    codes = rng.integers(0, 2 ** bits, (N, kb, block))
    consts = {"B": pack(codes, bits)}
    scales = (rng.random((N, kb)) * 0.1 + 0.01).astype(np.float32)
    consts["scales"] = scales.ravel() if flat else scales
    ins = ["a", "B", "scales"]
    if zp == "packed":
        z = pack(rng.integers(0, 2 ** bits, (N, kb)), bits)
        consts["zp"] = z.ravel() if flat else z
        ins.append("zp")
    elif zp == "float":
        consts["zp"] = (rng.random((N, kb)) * 2 ** bits).astype(np.float32)
        ins.append("zp")
    if bias:
        consts["bias"] = f32(N)
        ins += [""] * (5 - len(ins)) + ["bias"]
    single(name, "MatMulNBits", ins, ["y"], {"a": f32(*a_shape, K)}, consts,
           K=K, N=N, bits=bits, block_size=block, accuracy_level=1)


def quant():
    matmul_nbits("matmul_nbits_q4", 40, 24, 4, 16, bias=True, a_shape=(2, 3))
    matmul_nbits("matmul_nbits_q4_nozp", 64, 8, 4, 32, zp=None, flat=True)
    matmul_nbits("matmul_nbits_q4_odd_blocks", 48, 5, 4, 16, flat=True)
    matmul_nbits("matmul_nbits_q4_float_zp", 32, 8, 4, 16, zp="float")
    matmul_nbits("matmul_nbits_q8", 40, 8, 8, 16)
    matmul_nbits("matmul_nbits_q2", 32, 8, 2, 16)


def attention():
    B, S, Din, N, H = 2, 6, 16, 2, 8
    D = N * H
    x = f32(B, S, Din)
    w = {"w": f32(Din, 3 * D, scale=0.5), "b": f32(3 * D, scale=0.1)}
    mask2d = np.array([[1] * S, [1] * (S - 2) + [0] * 2], np.int32)
    dyn = {"x": ["batch", "seq", None], "mask": ["batch", "seq"]}
    single("attention_mask2d", "Attention", ["x", "w", "b", "mask"], ["y"],
           {"x": x, "mask": mask2d}, w, dyn=dyn, num_heads=N)
    single("attention_mask1d", "Attention", ["x", "w", "b", "mask"], ["y"],
           {"x": x, "mask": np.array([S, 3], np.int32)}, w, num_heads=N)
    single("attention_mask_end_start", "Attention", ["x", "w", "b", "mask"], ["y"],
           {"x": x, "mask": np.array([S, S - 1, 1, 2], np.int32)}, w, num_heads=N)
    mask3d = rng.integers(0, 2, (B, S, S)).astype(np.int32)
    mask3d[:, :, 0] = 1
    single("attention_mask3d", "Attention", ["x", "w", "b", "mask"], ["y"],
           {"x": x, "mask": mask3d}, w, num_heads=N, mask_filter_value=-1000.0)
    P = 3
    single("attention_causal_past", "Attention", ["x", "w", "b", "mask", "past"], ["y", "present"],
           {"x": x, "mask": np.array([[1] * (P + S), [1] * (P + S - 2) + [0] * 2], np.int32),
            "past": f32(2, B, N, P, H)}, w, num_heads=N, unidirectional=1)
    w2 = {"w": f32(Din, 2 * D + 2 * D, scale=0.5)}
    single("attention_qkv_sizes", "Attention", ["x", "w", "", "", "", "attn_bias"], ["y"],
           {"x": x, "attn_bias": f32(1, N, S, S)}, w2, num_heads=N,
           qkv_hidden_sizes=[D, D, 2 * D], scale=0.2)


def mha():
    B, S, L, N, H = 2, 4, 6, 2, 8
    D = N * H
    q, k, v = f32(B, S, D), f32(B, L, D), f32(B, L, D)
    kpm = np.array([[1] * L, [1] * (L - 2) + [0] * 2], np.int32)
    single("mha_bias_mask", "MultiHeadAttention", ["q", "k", "v", "bias", "kpm"], ["y"],
           {"q": q, "k": k, "v": v, "kpm": kpm}, {"bias": f32(3 * D, scale=0.1)}, num_heads=N)
    single("mha_mask1d", "MultiHeadAttention", ["q", "k", "v", "", "kpm"], ["y"],
           {"q": q, "k": k, "v": v, "kpm": np.array([L, 4], np.int32)}, num_heads=N)
    P = 3
    q2 = f32(B, L, D)
    single("mha_causal_past", "MultiHeadAttention",
           ["q", "k", "v", "bias", "", "", "past_key", "past_value"],
           ["y", "present_key", "present_value"],
           {"q": q2, "k": k, "v": v, "past_key": f32(B, N, P, H), "past_value": f32(B, N, P, H)},
           {"bias": f32(3 * D, scale=0.1)}, num_heads=N, unidirectional=1)
    single("mha_kv_bnsh", "MultiHeadAttention", ["q", "k", "v", "", "", "attn_bias"], ["y"],
           {"q": q, "k": f32(B, N, L, H), "v": f32(B, N, L, H), "attn_bias": f32(B, 1, S, L)},
           num_heads=N, scale=0.3)


def gqa():
    B, S, N, Nkv, H = 2, 5, 4, 2, 16
    q, k, v = f32(B, S, N * H), f32(B, S, Nkv * H), f32(B, S, Nkv * H)
    sl = np.array([S - 1, 2], np.int32)
    tot = np.array(S, np.int32)
    cos = np.cos(np.outer(np.arange(16), 1.0 / 10000 ** (np.arange(H // 2) / (H // 2)))).astype(np.float32)
    sin = np.sin(np.outer(np.arange(16), 1.0 / 10000 ** (np.arange(H // 2) / (H // 2)))).astype(np.float32)
    outs = ["y", "present_key", "present_value"]
    single("gqa", "GroupQueryAttention", ["q", "k", "v", "", "", "seqlens_k", "total_len"], outs,
           {"q": q, "k": k, "v": v, "seqlens_k": sl, "total_len": tot},
           num_heads=N, kv_num_heads=Nkv)
    single("gqa_rotary", "GroupQueryAttention",
           ["q", "k", "v", "", "", "seqlens_k", "total_len", "cos", "sin"], outs,
           {"q": q, "k": k, "v": v, "seqlens_k": sl, "total_len": tot}, {"cos": cos, "sin": sin},
           num_heads=N, kv_num_heads=Nkv, do_rotary=1)
    single("gqa_rotary_interleaved", "GroupQueryAttention",
           ["q", "k", "v", "", "", "seqlens_k", "total_len", "cos", "sin"], outs,
           {"q": q, "k": k, "v": v, "seqlens_k": sl, "total_len": tot}, {"cos": cos, "sin": sin},
           num_heads=N, kv_num_heads=Nkv, do_rotary=1, rotary_interleaved=1, scale=0.1)
    empty = np.zeros((B, Nkv, 0, H), np.float32)
    single("gqa_packed_empty_past", "GroupQueryAttention",
           ["qkv", "", "", "past_key", "past_value", "seqlens_k", "total_len"], outs,
           {"qkv": np.concatenate([q, k, v], -1), "past_key": empty, "past_value": empty,
            "seqlens_k": np.array([S - 1, S - 1], np.int32), "total_len": tot},
           num_heads=N, kv_num_heads=Nkv)
    single("gqa_attn_bias", "GroupQueryAttention",
           ["q", "k", "v", "", "", "seqlens_k", "total_len", "", "", "", "attn_bias"], outs,
           {"q": q, "k": k, "v": v, "seqlens_k": sl, "total_len": tot,
            "attn_bias": f32(1, N, S, S)}, num_heads=N, kv_num_heads=Nkv)
    single("gqa_bidirectional", "GroupQueryAttention", ["q", "k", "v", "", "", "seqlens_k", "total_len"],
           outs, {"q": q, "k": k, "v": v, "seqlens_k": sl, "total_len": tot},
           num_heads=N, kv_num_heads=Nkv, causal=0)


def rotary():
    B, S, N, H = 2, 4, 2, 8
    x = f32(B, S, N * H)
    cos, sin = f32(10, H // 2), f32(10, H // 2)
    pos = rng.integers(0, 10, (B, S)).astype(np.int64)
    single("rotary_embedding", "RotaryEmbedding", ["x", "pos", "cos", "sin"], ["y"],
           {"x": x, "pos": pos}, {"cos": cos, "sin": sin})
    single("rotary_embedding_interleaved", "RotaryEmbedding", ["x", "pos", "cos", "sin"], ["y"],
           {"x": x, "pos": pos}, {"cos": cos, "sin": sin}, interleaved=1)
    single("rotary_embedding_offset", "RotaryEmbedding", ["x", "pos", "cos", "sin"], ["y"],
           {"x": x, "pos": np.array([3], np.int64)}, {"cos": cos, "sin": sin})
    single("rotary_embedding_bnsh", "RotaryEmbedding", ["x", "pos", "cos", "sin"], ["y"],
           {"x": f32(B, N, S, H), "pos": pos}, {"cos": cos, "sin": sin})
    single("rotary_embedding_partial", "RotaryEmbedding", ["x", "pos", "cos", "sin"], ["y"],
           {"x": x, "pos": pos}, {"cos": cos[:, :2].copy(), "sin": sin[:, :2].copy()},
           num_heads=N, rotary_embedding_dim=4)


def contrib_ops(model):
    c = collections.Counter(n.op_type for n in model.graph.node if n.domain == MS)
    other = collections.Counter(n.op_type for n in model.graph.node
                                if n.domain not in ("", "ai.onnx", MS))
    return dict(c), dict(other)


def optimized(fixture, model_type, heads, hidden, tag="", options=None, level=1):
    """The fixture through ONNX Runtime's transformer optimizer; writes ort-FIXTURE[TAG] with only
    the initializers the optimizer changed or added (the rest are the fixture's)."""
    from onnxruntime.transformers.optimizer import optimize_model
    name = f"ort-{fixture}{tag}"
    if ONLY and name not in ONLY:
        return None
    src = os.path.join(a.shared, "fixtures", fixture + ".onnx")
    npz = np.load(os.path.join(a.shared, "fixtures", fixture + ".npz"))
    om = optimize_model(src, model_type=model_type, num_heads=heads, hidden_size=hidden,
                        opt_level=level, optimization_options=options)
    model = om.model
    feeds = {i.name: npz[i.name] for i in model.graph.input}
    outs = session(model).run(None, feeds)
    diff = float(np.abs(outs[0] - npz["out"]).max())
    ms, other = contrib_ops(model)
    print(f"{name}: contrib ops {ms}{' other ' + str(other) if other else ''}; "
          f"ORT vs PyTorch max |diff| {diff:.2e}")
    base = {t.name: t for t in onnx.load(src).graph.initializer}
    kept = [t for t in model.graph.initializer
            if not (t.name in base and base[t.name].data_type == t.data_type
                    and np.array_equal(nh.to_array(base[t.name]), nh.to_array(t)))]
    full = onnx.ModelProto()
    full.CopyFrom(model)
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    del model.metadata_props[:]
    model.metadata_props.add(key="kiln.base", value=f"fixtures/{fixture}.onnx")
    onnx.save(model, os.path.join(a.out, name + ".onnx"))
    np.savez(os.path.join(a.out, name + ".npz"), **feeds,
             **{o.name: v for o, v in zip(model.graph.output, outs)})
    return full


def quantized(model, name):
    """`model` with its MatMuls as 4-bit MatMulNBits (block 16, asymmetric), stored whole."""
    if ONLY and name not in ONLY:
        return
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError as e:
        print(f"skipped {name}: {e} (the quantizer needs the onnx_ir package)")
        return
    q = MatMulNBitsQuantizer(model, block_size=16, is_symmetric=False, bits=4)
    q.process()
    qm = q.model.model
    npz = np.load(os.path.join(a.shared, "fixtures", "llama-tiny.npz"))
    feeds = {i.name: npz[i.name] for i in qm.graph.input}
    res = save(name, qm, feeds)
    ms, _ = contrib_ops(qm)
    diff = float(np.abs(next(iter(res.values())) - npz["out"]).max())
    print(f"{name}: contrib ops {ms}; 4-bit ORT vs f32 PyTorch max |diff| {diff:.2e}")


def fixtures():
    from onnxruntime.transformers.fusion_options import FusionOptions
    if not os.path.isdir(os.path.join(a.shared, "fixtures")):
        print(f"skipped the optimized fixtures: {a.shared}/fixtures not found")
        return
    optimized("bert-tiny", "bert", 4, 64)
    mha_opts = FusionOptions("bert")
    mha_opts.use_multi_head_attention = True
    optimized("bert-tiny", "bert", 4, 64, "-mha", mha_opts)
    raw = FusionOptions("bert")
    raw.enable_embed_layer_norm = False
    raw.use_raw_attention_mask(True)
    optimized("bert-tiny", "bert", 4, 64, "-rawmask", raw)
    optimized("gpt2-tiny", "gpt2", 4, 64)
    # Level 2 adds ONNX Runtime's own fusions, among them QuickGelu for Llama's SiLU.
    llama = optimized("llama-tiny", "gpt2", 4, 64, level=2)
    optimized("vit-tiny", "vit", 4, 64)
    if llama is not None:
        quantized(llama, "ort-llama-tiny-q4")


def minilm(dst):
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel
    src = os.path.join(a.shared, "models", "all-MiniLM-L6-v2")
    model = AutoModel.from_pretrained(src, attn_implementation="eager").eval()
    ref = np.load(os.path.join(src, "reference.npz"))
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Wrap(torch.nn.Module):
        def __init__(s):
            super().__init__()
            s.m = model

        def forward(s, ids, mask, types):
            return s.m(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    feeds = {k: ref[k].astype(np.int64) for k in names}
    want = ref["last_hidden_state"]
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "minilm.onnx")
        torch.onnx.export(Wrap(), tuple(torch.from_numpy(feeds[k]) for k in names), raw,
                          input_names=names, output_names=["out"], opset_version=14,
                          dynamic_axes={k: {0: "batch", 1: "seq"} for k in names}, dynamo=False)
        om = optimize_model(raw, model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
    os.makedirs(dst, exist_ok=True)
    om.save_model_to_file(os.path.join(dst, "minilm-ort.onnx"))
    out = session(om.model).run(None, feeds)[0]
    np.savez(os.path.join(dst, "minilm-ort.npz"), **feeds)
    np.savez(os.path.join(dst, "minilm-ort-expected.npz"), ort=out, torch=want)
    ms, _ = contrib_ops(om.model)
    m = feeds["attention_mask"][..., None].astype(bool)
    print(f"minilm-ort: contrib ops {ms}; ORT vs PyTorch max |diff| where the mask is set "
          f"{float(np.abs(np.where(m, out - want, 0)).max()):.2e}; written to {dst}")


norms()
activations()
quant()
attention()
mha()
gqa()
rotary()
fixtures()
if a.minilm:
    minilm(a.minilm)
total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
print(f"{a.out}: {len(os.listdir(a.out))} files, {total / 1e6:.2f} MB")
