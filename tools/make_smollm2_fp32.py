#!/usr/bin/env python3
"""Write an fp32 Hugging Face folder for SmolLM2-135M-Instruct from its Q4_1 GGUF.

Only the GGUF is available locally, so the fp32 comparison models (transformers,
ONNX Runtime GenAI) are built from the *dequantized* GGUF weights: every engine in
tools/bench_generate.py then computes with the same numbers (up to fp32 rounding),
llama.cpp excepted, which runs the Q4_1 file itself.

Weights are read with the `gguf` package (not transformers' GGUF loader) so that
the result does not depend on which transformers version is installed:
  * every tensor is dequantized to fp32 (`gguf.quants.dequantize`);
  * llama.cpp's converter permutes the rows of attn_q / attn_k so that its rope
    kernel can rotate adjacent pairs; HF rotates halves, so the permutation is
    undone here (q with n_head, k with n_head_kv);
  * the embedding is tied (`tie_word_embeddings`), no `output.weight` exists.

config.json is the shared one, with the rope base forced to the GGUF's
`llama.rope.freq_base` (100000) under both spellings transformers has used
(`rope_theta`, `rope_parameters.rope_theta`): a loader that falls back to the
llama default 10000 silently produces a different model.

Usage:
  python tools/make_smollm2_fp32.py [--gguf FILE] [--meta DIR] [--out DIR] [--no-verify]
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

DEF_GGUF = "/work/model-cache/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
DEF_META = "/work/shared/models/smollm2-135m-instruct"
DEF_OUT = "/work/model-cache/smollm2-135m-instruct-fp32"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def unpermute(w, n_head):
    """Inverse of llama.cpp convert_hf_to_gguf's LlamaModel.permute."""
    rows = w.shape[0]
    return (w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:])
             .swapaxes(1, 2)
             .reshape(w.shape))


def hf_name(name):
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        return "lm_head.weight"
    parts = name.split(".")
    assert parts[0] == "blk", name
    i, rest = parts[1], ".".join(parts[2:])
    table = {
        "attn_norm.weight": "input_layernorm.weight",
        "ffn_norm.weight": "post_attention_layernorm.weight",
        "attn_q.weight": "self_attn.q_proj.weight",
        "attn_k.weight": "self_attn.k_proj.weight",
        "attn_v.weight": "self_attn.v_proj.weight",
        "attn_output.weight": "self_attn.o_proj.weight",
        "ffn_gate.weight": "mlp.gate_proj.weight",
        "ffn_up.weight": "mlp.up_proj.weight",
        "ffn_down.weight": "mlp.down_proj.weight",
    }
    return f"model.layers.{i}.{table[rest]}"


def convert(gguf_path, meta_dir, out_dir):
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors.numpy import save_file

    r = GGUFReader(gguf_path)
    arch = field(r, "general.architecture")
    assert arch == "llama", arch
    n_head = int(field(r, "llama.attention.head_count"))
    n_kv = int(field(r, "llama.attention.head_count_kv"))
    freq_base = float(field(r, "llama.rope.freq_base"))
    eps = float(field(r, "llama.attention.layer_norm_rms_epsilon"))

    with open(os.path.join(meta_dir, "config.json")) as f:
        cfg = json.load(f)
    # Cross-check the shared config against the GGUF's own metadata.
    checks = {
        "num_hidden_layers": int(field(r, "llama.block_count")),
        "hidden_size": int(field(r, "llama.embedding_length")),
        "intermediate_size": int(field(r, "llama.feed_forward_length")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "vocab_size": int(field(r, "llama.vocab_size")),
    }
    for k, v in checks.items():
        if cfg.get(k) != v:
            sys.exit(f"config.json {k}={cfg.get(k)} but GGUF says {v}")
    if abs(cfg.get("rms_norm_eps", eps) - eps) > 1e-12:
        sys.exit(f"rms_norm_eps mismatch: {cfg.get('rms_norm_eps')} vs {eps}")

    tensors = {}
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        # GGUF dims are innermost-first; numpy data is already (rows, cols).
        want = tuple(int(d) for d in reversed(t.shape))
        w = w.reshape(want)
        if t.name.endswith("attn_q.weight"):
            w = unpermute(w, n_head)
        elif t.name.endswith("attn_k.weight"):
            w = unpermute(w, n_kv)
        tensors[hf_name(t.name)] = np.ascontiguousarray(w)
    tied = "lm_head.weight" not in tensors
    cfg["tie_word_embeddings"] = tied

    # rope base: force the GGUF's value under both spellings.
    cfg["rope_theta"] = freq_base
    rp = dict(cfg.get("rope_parameters") or {})
    rp.setdefault("rope_type", "default")
    rp["rope_theta"] = freq_base
    cfg["rope_parameters"] = rp
    cfg["dtype"] = "float32"
    cfg["torch_dtype"] = "float32"
    cfg["_source_gguf"] = os.path.basename(gguf_path)

    os.makedirs(out_dir, exist_ok=True)
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for name in TOKENIZER_FILES:
        src = os.path.join(meta_dir, name)
        if os.path.exists(src):
            dst = os.path.join(out_dir, name)
            if os.path.exists(dst):
                os.remove(dst)  # shared copies are read-only; rerunning must work
            shutil.copyfile(src, dst)
    n = sum(v.size for v in tensors.values())
    print(f"wrote {out_dir}: {len(tensors)} tensors, {n/1e6:.1f}M params, "
          f"tied={tied}, rope_theta={freq_base}")


def verify(out_dir, meta_dir):
    """Greedy 8 tokens with transformers; check rope_theta as transformers sees it,
    and compare with the shared reference greedy ids if present."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tok = AutoTokenizer.from_pretrained(out_dir)
    model = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32)
    model.eval()
    c = model.config
    theta = getattr(c, "rope_theta", None)
    rp = getattr(c, "rope_parameters", None) or {}
    theta = rp.get("rope_theta", theta) if isinstance(rp, dict) else theta
    print(f"transformers sees rope_theta={theta}")
    if theta is None or abs(float(theta) - 100000.0) > 1e-3:
        sys.exit(f"FAIL: rope_theta as loaded is {theta}, want 100000")
    if c.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    prompt = "The capital of France is"
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    new = out[0, ids.shape[1]:].tolist()
    print(f"prompt ids {ids[0].tolist()} -> greedy {new} {tok.decode(new)!r}")

    ref_path = os.path.join(meta_dir, "reference.json")
    if os.path.exists(ref_path):
        with open(ref_path) as f:
            ref = json.load(f)
        for case in ref.get("cases", []):
            if case["prompt"] != prompt:
                continue
            want = case["greedy_ids"][:8]
            if ids[0].tolist() != case["prompt_ids"]:
                print(f"WARN prompt ids differ from reference {case['prompt_ids']}")
            if new == want:
                print("matches shared reference.json greedy ids (first 8)")
            else:
                print(f"WARN differs from reference.json: want {want}")
    return new


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", default=DEF_GGUF)
    ap.add_argument("--meta", default=DEF_META, help="folder with config.json and tokenizer files")
    ap.add_argument("--out", default=DEF_OUT)
    ap.add_argument("--no-verify", action="store_true")
    a = ap.parse_args()
    convert(a.gguf, a.meta, a.out)
    if not a.no_verify:
        verify(a.out, a.meta)


if __name__ == "__main__":
    main()
