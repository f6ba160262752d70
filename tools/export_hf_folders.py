"""Write the Hugging Face folders that tests/hf_families.rs checks: tiny, randomly initialised
models of Kiln's supported architectures at sizes and settings that differ from the fixtures in
shared/fixtures (see shared/tools/export_fixtures.py), so that nothing in the frontends can be
keyed to the fixtures' sizes. For each NAME it writes

  tests/models/hf/NAME/      save_pretrained(safe_serialization=True): config.json + model.safetensors
  tests/models/hf/NAME.npz   the inputs and PyTorch's output under `out`

Text models get batch 2, sequence 7, with the last row's final 2 tokens masked out.

Also writes, outside the tested folder (default /tmp/kiln-hf-extra, or argv[2]), a
`BertForSequenceClassification` folder (weights under `bert.`) for trying the CLI by hand; the
task heads are tested with the folders of tools/export_hf_heads.py.

Usage: HF_HUB_OFFLINE=1 python tools/export_hf_folders.py [OUT_DIR] [EXTRA_DIR]"""
import os
import sys

import numpy as np
import torch
from transformers import (BertConfig, BertForSequenceClassification, BertModel, GPT2Config,
                          GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, ViTConfig, ViTModel)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "models", "hf")
EXTRA = sys.argv[2] if len(sys.argv) > 2 else "/tmp/kiln-hf-extra"
os.makedirs(OUT, exist_ok=True)
os.makedirs(EXTRA, exist_ok=True)
torch.manual_seed(4321)
g = np.random.default_rng(11)
BATCH, SEQ, MASKED = 2, 7, 2


def text_feeds(vocab, tt=False):
    ids = g.integers(3, vocab, size=(BATCH, SEQ)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[-1, SEQ - MASKED:] = 0
    d = {"input_ids": ids, "attention_mask": mask}
    if tt:
        d["token_type_ids"] = np.concatenate(
            [np.zeros((BATCH, 3), np.int64), np.ones((BATCH, SEQ - 3), np.int64)], 1)
    return d


def save(name, model, feeds, pick, dest=OUT):
    model.eval()
    with torch.no_grad():
        out = getattr(model(**{k: torch.from_numpy(v) for k, v in feeds.items()}), pick)
    out = out.float().numpy()
    model.save_pretrained(f"{dest}/{name}", safe_serialization=True)
    np.savez(f"{dest}/{name}.npz", **feeds, out=out)
    print(f"{name}: out {out.shape}, |out| max {np.abs(out).max():.3f}, std {out.std():.3f}")


bert_cfg = dict(vocab_size=300, hidden_size=48, num_hidden_layers=3, num_attention_heads=3,
                intermediate_size=96, hidden_act="gelu_new", max_position_embeddings=32,
                type_vocab_size=2, initializer_range=0.15, attn_implementation="eager")
save("bert-h48", BertModel(BertConfig(**bert_cfg)), text_feeds(300, tt=True), "last_hidden_state")

# A task-head folder: its weights carry the `bert.` prefix and config.json names
# BertForSequenceClassification; kept out of the tested folder (see export_hf_heads.py).
save("bert-seqcls-h48", BertForSequenceClassification(BertConfig(num_labels=3, **bert_cfg)),
     text_feeds(300, tt=True), "logits", dest=EXTRA)

save("gpt2-h48", GPT2LMHeadModel(GPT2Config(vocab_size=300, n_embd=48, n_layer=3, n_head=3,
     n_positions=32, bos_token_id=0, eos_token_id=0, initializer_range=0.15,
     attn_implementation="eager")),
     text_feeds(300), "logits")

# llama3 rope scaling: wavelengths 2*pi/inv_freq with head_dim 12 and theta 100 are about
# 6.3, 13.5, 29, 63, 135, 292; with original_max_position_embeddings 16 and high/low freq
# factors 4/1 the first two (between 4 and 16) are smoothed and the rest divided by 8.
save("llama-h48-llama3", LlamaForCausalLM(LlamaConfig(
    vocab_size=300, hidden_size=48, intermediate_size=80, num_hidden_layers=3,
    num_attention_heads=4, num_key_value_heads=1, head_dim=12, max_position_embeddings=64,
    tie_word_embeddings=True, initializer_range=0.15, attn_implementation="eager",
    rope_parameters={"rope_type": "llama3", "rope_theta": 100.0, "factor": 8.0,
                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 16})),
    text_feeds(300), "logits")

save("llama-h32-linear", LlamaForCausalLM(LlamaConfig(
    vocab_size=257, hidden_size=32, intermediate_size=72, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
    tie_word_embeddings=False, initializer_range=0.15, attn_implementation="eager",
    rope_parameters={"rope_type": "linear", "rope_theta": 1000.0, "factor": 2.0})),
    text_feeds(257), "logits")

save("vit-h48", ViTModel(ViTConfig(image_size=24, patch_size=6, hidden_size=48, num_hidden_layers=2,
     num_attention_heads=3, intermediate_size=96, initializer_range=0.15,
     attn_implementation="eager"), add_pooling_layer=False),
     {"pixel_values": g.standard_normal((BATCH, 3, 24, 24)).astype(np.float32)}, "last_hidden_state")
print("done")
