"""Write the Hugging Face task-head folders that tests/it/hf_heads.rs checks: tiny, randomly
initialised transformers models of every head Kiln builds (BERT, RoBERTa, XLM-RoBERTa and
DistilBERT masked-LM / sequence / token classification / question answering, ViT image
classification) and the base models Kiln added next to them (RobertaModel, XLMRobertaModel,
DistilBertModel, GPT2Model, LlamaModel). For each NAME it writes

  tests/models/hf/heads/NAME/      save_pretrained: config.json + model.safetensors
  tests/models/hf/heads/NAME.npz   the inputs and transformers' outputs under their names
                                   (logits, start_logits, end_logits, last_hidden_state)

Text models get batch 2, sequence 7; the second row is right-padded (its last 3 tokens are the
padding id, attention_mask 0). Widths are 32 with 2 layers and vocabularies of 100 to 160, and
initializer_range 0.2 makes the heads' logits of order 1. save_pretrained leaves tied weights
out, so the masked-LM folders hold no decoder weight: Kiln must tie it to the word embeddings.

Usage: HF_HUB_OFFLINE=1 python tools/export_hf_heads.py [OUT_DIR]"""
import os
import sys

import numpy as np
import torch
import transformers as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "models", "hf", "heads")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(20240611)
g = np.random.default_rng(5)
BATCH, SEQ, PADDED = 2, 7, 3
INIT = 0.2
LABELS3 = {"id2label": {0: "neg", 1: "neu", 2: "pos"}, "label2id": {"neg": 0, "neu": 1, "pos": 2}}
LABELS5 = {"num_labels": 5}


def text_feeds(vocab, pad, token_types=False):
    ids = g.integers(3, vocab, size=(BATCH, SEQ)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, SEQ - PADDED:] = 0
    ids[1, SEQ - PADDED:] = pad
    d = {"input_ids": ids, "attention_mask": mask}
    if token_types:
        tt = np.zeros_like(ids)
        tt[:, 4:] = 1
        d["token_type_ids"] = tt
    return d


def save(name, model, feeds, outputs):
    model.eval()
    with torch.no_grad():
        res = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    outs = {k: getattr(res, k).float().numpy() for k in outputs}
    model.save_pretrained(f"{OUT}/{name}", safe_serialization=True)
    np.savez(f"{OUT}/{name}.npz", **feeds, **outs)
    size = sum(os.path.getsize(f"{OUT}/{name}/{f}") for f in os.listdir(f"{OUT}/{name}"))
    desc = ", ".join(f"{k} {v.shape} |max| {np.abs(v).max():.2f}" for k, v in outs.items())
    print(f"{name}: {size // 1024} KB; {desc}")


HEADS = [
    ("mlm", "ForMaskedLM", {}, ["logits"]),
    ("seqcls", "ForSequenceClassification", LABELS3, ["logits"]),
    ("tokcls", "ForTokenClassification", LABELS5, ["logits"]),
    ("qa", "ForQuestionAnswering", {}, ["start_logits", "end_logits"]),
]
BASE = ("base", "Model", {}, ["last_hidden_state"])

# BERT: gelu_new in the encoder and the masked-LM transform; BertModel itself is
# tests/models/hf/bert-h48.
bert = dict(vocab_size=140, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, hidden_act="gelu_new", max_position_embeddings=24,
            type_vocab_size=2, initializer_range=INIT, attn_implementation="eager")
for short, suffix, extra, outs in HEADS:
    cls = getattr(tf, f"Bert{suffix}")
    save(f"bert-{short}", cls(tf.BertConfig(**bert, **extra)), text_feeds(140, 0, True), outs)

# RoBERTa as released: type_vocab_size 1, pad_token_id 1, positions from pad_token_id + 1.
roberta = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=20, type_vocab_size=1,
               pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
               initializer_range=INIT, attn_implementation="eager")
for short, suffix, extra, outs in [BASE] + HEADS:
    cls = getattr(tf, f"Roberta{suffix}")
    kw = {"add_pooling_layer": False} if short == "base" else {}
    save(f"roberta-{short}", cls(tf.RobertaConfig(**roberta, **extra), **kw),
         text_feeds(120, 1), outs)

# XLM-RoBERTa: the same graph under model_type xlm-roberta (relu in the encoder).
xlmr = dict(roberta, vocab_size=100, hidden_act="relu")
for short, suffix, extra, outs in [BASE, HEADS[0], HEADS[2]]:
    cls = getattr(tf, f"XLMRoberta{suffix}")
    kw = {"add_pooling_layer": False} if short == "base" else {}
    save(f"xlmr-{short}", cls(tf.XLMRobertaConfig(**xlmr, **extra), **kw),
         text_feeds(100, 1), outs)

distil = dict(vocab_size=110, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
              max_position_embeddings=24, initializer_range=INIT, attn_implementation="eager")
for short, suffix, extra, outs in [BASE] + HEADS:
    cls = getattr(tf, f"DistilBert{suffix}")
    save(f"distilbert-{short}", cls(tf.DistilBertConfig(**distil, **extra)),
         text_feeds(110, 0), outs)

vit = dict(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
           intermediate_size=64, initializer_range=INIT, attn_implementation="eager",
           id2label={i: f"class{i}" for i in range(4)})
save("vit-imgcls", tf.ViTForImageClassification(tf.ViTConfig(**vit)),
     {"pixel_values": g.standard_normal((BATCH, 3, 16, 16)).astype(np.float32)}, ["logits"])

save("gpt2-base", tf.GPT2Model(tf.GPT2Config(
    vocab_size=130, n_embd=32, n_layer=2, n_head=4, n_positions=24, bos_token_id=0,
    eos_token_id=0, initializer_range=INIT, attn_implementation="eager")),
    text_feeds(130, 0), ["last_hidden_state"])

save("llama-base", tf.LlamaModel(tf.LlamaConfig(
    vocab_size=130, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=24,
    initializer_range=INIT, attn_implementation="eager", bos_token_id=0, eos_token_id=0,
    pad_token_id=0)),
    text_feeds(130, 0), ["last_hidden_state"])
print("done")
