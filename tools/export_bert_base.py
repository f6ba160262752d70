"""Export a randomly initialised BERT-base (12 layers, hidden 768, 12 heads, intermediate 3072,
vocab 30522, 512 positions) for the optimizer timing benchmark and real-size weight checks:
  OUT_DIR/bert-base.onnx          legacy TorchScript exporter, opset 14, dynamic batch/seq axes
  OUT_DIR/bert-base-dynamo.onnx   torch.export-based exporter, opset 18 (+ bert-base-dynamo.onnx.data)
  OUT_DIR/bert-base.npz           inputs input_ids, attention_mask, token_type_ids (batch 2, seq 16,
                                  int64, the last row right-padded by 4 tokens) and PyTorch's
                                  last_hidden_state as `out`
The outputs are ~440 MB each, so OUT_DIR is outside the repository.

Usage: HF_HUB_OFFLINE=1 python tools/export_bert_base.py OUT_DIR
(needs torch, transformers, onnx, onnxscript, numpy.)"""
import os, sys
import numpy as np, torch
from transformers import BertConfig, BertModel

if len(sys.argv) != 2:
    sys.exit(__doc__)
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(1234)
g = np.random.default_rng(5)


class Wrap(torch.nn.Module):
    def __init__(s, m, names): super().__init__(); s.m = m; s.names = names
    def forward(s, *args):
        return s.m(**dict(zip(s.names, args))).last_hidden_state


cfg = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
model = BertModel(cfg).eval()

batch, seq, pad = 2, 16, 4
ids = g.integers(5, cfg.vocab_size, size=(batch, seq)).astype(np.int64)
mask = np.ones_like(ids); mask[-1, seq - pad:] = 0
ids[-1, seq - pad:] = 0  # the pad token id
tt = np.concatenate([np.zeros((batch, seq // 2), np.int64), np.ones((batch, seq - seq // 2), np.int64)], 1)
feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}
names = list(feeds)
w = Wrap(model, names).eval()
args = tuple(torch.from_numpy(feeds[n]) for n in names)
with torch.no_grad():
    ref = w(*args).numpy()
np.savez(f"{out}/bert-base.npz", **feeds, out=ref)

ax = {0: "batch", 1: "seq"}
ok = True
try:
    torch.onnx.export(w, args, f"{out}/bert-base.onnx", dynamo=False, opset_version=14, input_names=names,
                      output_names=["out"], dynamic_axes={**{n: ax for n in names}, "out": ax})
    print("wrote", f"{out}/bert-base.onnx")
except Exception as e:
    ok = False
    print(f"legacy export failed: {e}", file=sys.stderr)
try:
    torch.onnx.export(w, args, f"{out}/bert-base-dynamo.onnx", dynamo=True, opset_version=18,
                      input_names=names, output_names=["out"], external_data=True)
    print("wrote", f"{out}/bert-base-dynamo.onnx")
except Exception as e:
    ok = False
    print(f"dynamo export failed: {e}", file=sys.stderr)
sys.exit(0 if ok else 1)
