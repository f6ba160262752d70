"""Write the model-family test set in tests/models/: tiny, randomly initialised Hugging Face
models of families and sizes other than the shared fixtures (DistilBERT, OPT, BLOOM, and BERT and
GPT-2 at other sizes), each as
  NAME.onnx          legacy TorchScript exporter, opset 14, dynamic batch/seq axes
  NAME-dynamo.onnx   torch.export-based exporter, opset 18 (+ NAME-dynamo.onnx.data external weights)
  NAME.npz           the graph inputs (batch 2, seq 7, the last row right-padded) and PyTorch's
                     output `out`
Optionally (--minilm DIR) also export the real all-MiniLM-L6-v2 with both exporters into DIR
(not into the repository: too big), with DIR/minilm.npz holding the tokenised sentences of
sentences.json and PyTorch's last_hidden_state as `out`.

Usage: HF_HUB_OFFLINE=1 python tools/export_families.py [OUT_DIR] [--minilm DIR [--minilm-src HF_DIR]]
(OUT_DIR defaults to tests/models; needs torch, transformers, onnx, onnxscript, numpy.)
The decoders use a larger initialiser range than Hugging Face's default 0.02, so that their logits
are of order 1 and a tolerance of atol 1e-4 means something (with 0.02 they are ~1e-2)."""
import argparse, json, os, sys
import numpy as np, torch
from transformers import (BertConfig, BertModel, BloomConfig, BloomForCausalLM, DistilBertConfig,
                          DistilBertModel, GPT2Config, GPT2LMHeadModel, OPTConfig, OPTForCausalLM)

ap = argparse.ArgumentParser()
ap.add_argument("out", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "tests", "models"))
ap.add_argument("--minilm", help="also export the real all-MiniLM-L6-v2 into this folder")
ap.add_argument("--minilm-src", default="/work/shared/models/all-MiniLM-L6-v2")
ap.add_argument("--only", help="comma-separated model names to export (default: all)")
a = ap.parse_args()
torch.manual_seed(4321)
g = np.random.default_rng(11)


class Wrap(torch.nn.Module):
    def __init__(s, m, names, pick): super().__init__(); s.m = m; s.names = names; s.pick = pick
    def forward(s, *args):
        return getattr(s.m(**dict(zip(s.names, args))), s.pick)


def export(dst, name, model, feeds, pick, dyn_axes):
    """Writes dst/NAME.onnx, dst/NAME-dynamo.onnx(+.data) and dst/NAME.npz; returns the files."""
    os.makedirs(dst, exist_ok=True)
    model.eval()
    names = list(feeds)
    w = Wrap(model, names, pick)
    args = tuple(torch.from_numpy(feeds[n]) for n in names)
    with torch.no_grad():
        ref = w(*args).numpy()
    np.savez(f"{dst}/{name}.npz", **feeds, out=ref)
    files = [f"{name}.npz"]
    try:
        torch.onnx.export(w, args, f"{dst}/{name}.onnx", dynamo=False, opset_version=14, input_names=names,
                          output_names=["out"], dynamic_axes={**{n: dyn_axes for n in names}, "out": dyn_axes})
        files.append(f"{name}.onnx")
    except Exception as e:
        print(f"legacy export failed: {name}: {e}", file=sys.stderr)
    try:
        torch.onnx.export(w, args, f"{dst}/{name}-dynamo.onnx", dynamo=True, opset_version=18,
                          input_names=names, output_names=["out"], external_data=True)
        files.append(f"{name}-dynamo.onnx")
    except Exception as e:
        print(f"dynamo export failed: {name}: {e}", file=sys.stderr)
    return files


def text_feeds(vocab, batch=2, seq=7, tt=False):
    """Random ids (>= 5, so never the pad id 0/1), the last row right-padded by 3 tokens."""
    ids = g.integers(5, vocab, size=(batch, seq)).astype(np.int64)
    mask = np.ones_like(ids); mask[-1, seq - 3:] = 0
    d = {"input_ids": ids, "attention_mask": mask}
    if tt:
        d["token_type_ids"] = np.concatenate([np.zeros((batch, seq // 2), np.int64),
                                              np.ones((batch, seq - seq // 2), np.int64)], 1)
    return d


ax = {0: "batch", 1: "seq"}
MODELS = {
    # Encoder without token types or pooler: hidden 32, 2 heads of 16, 2 layers.
    "distilbert-h32": lambda: (DistilBertModel(DistilBertConfig(
        vocab_size=300, dim=32, n_layers=2, n_heads=2, hidden_dim=80, max_position_embeddings=64)),
        text_feeds(300), "last_hidden_state"),
    # BERT at another size than the fixture: hidden 48, 3 heads of 16, 3 layers, gelu_new.
    "bert-h48": lambda: (BertModel(BertConfig(
        vocab_size=457, hidden_size=48, num_hidden_layers=3, num_attention_heads=3, intermediate_size=96,
        max_position_embeddings=40, type_vocab_size=2, hidden_act="gelu_new")),
        text_feeds(457, tt=True), "last_hidden_state"),
    # GPT-2 at another size: hidden 48, 3 heads, 3 layers, odd vocabulary.
    "gpt2-h48": lambda: (GPT2LMHeadModel(GPT2Config(vocab_size=389, n_embd=48, n_layer=3, n_head=3, n_positions=32,
                                         initializer_range=0.1)),
        text_feeds(389), "logits"),
    # OPT (pre-LN, learned positions offset by 2 and derived from the attention mask).
    "opt-h32": lambda: (OPTForCausalLM(OPTConfig(
        vocab_size=320, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
        max_position_embeddings=48, word_embed_proj_dim=32, pad_token_id=1, init_std=0.1)),
        text_feeds(320), "logits"),
    # OPT as the 350m checkpoint is built: post-LN and word_embed_proj_dim != hidden (project_in/out).
    "opt-postln-h64": lambda: (OPTForCausalLM(OPTConfig(
        vocab_size=350, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=128,
        max_position_embeddings=48, word_embed_proj_dim=24, do_layer_norm_before=False, pad_token_id=1,
        init_std=0.2)),
        text_feeds(350), "logits"),
    # BLOOM: ALiBi position biases (computed from the attention mask), fused QKV, embedding LN.
    "bloom-h48": lambda: (BloomForCausalLM(BloomConfig(
        vocab_size=400, hidden_size=48, n_layer=3, n_head=3, pad_token_id=3, initializer_range=0.1)),
        text_feeds(400), "logits"),
}

only = set(a.only.split(",")) if a.only else None
for name, build in MODELS.items():
    if only and name not in only:
        continue
    model, feeds, pick = build()
    print(name, export(a.out, name, model, feeds, pick, ax))

if a.minilm:
    from transformers import AutoTokenizer
    src = a.minilm_src
    tok = AutoTokenizer.from_pretrained(src)
    m = BertModel.from_pretrained(src)
    sents = json.load(open(f"{src}/sentences.json"))["sentences"]
    enc = tok(sents, padding=True, return_tensors="np")
    feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    print("all-MiniLM-L6-v2", export(a.minilm, "minilm", m, feeds, "last_hidden_state", ax))
