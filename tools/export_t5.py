"""Write the tiny T5 folders that tests/it/hf_t5.rs checks: randomly initialised
`T5ForConditionalGeneration` models and what transformers computes with them.

  tests/models/hf/t5-tiny/        feed_forward_proj relu, tied embeddings (decoder output scaled
                                  by d_model^-0.5), d_kv (12) != d_model / heads (32 / 4)
  tests/models/hf/t5-tiny-gated/  gated-gelu (gelu_new), untied lm_head and no output scaling
                                  as T5 v1.1 (transformers 5 writes tie_word_embeddings true,
                                  scale_decoder_outputs false and keeps lm_head.weight)

Both have 8 relative-position buckets with max distance 16, so sources of up to 27 tokens and
20 generated tokens reach the logarithmic and the saturated buckets. After the initialisation
the position biases get std 1.5, the norm weights U(0.5, 1.5) and the attention and
feed-forward output projections 4x their weights (T5_OUT_SCALE), so that the buckets matter
and greedy decoding does not repeat one token; the seeds (0) give top-2 margins of at least
0.016 and, in the gated model, a row that ends with EOS inside the padded batch. Every
reference is computed by the model reloaded from the saved folder. Each folder holds
save_pretrained's config.json, generation_config.json and model.safetensors, plus
reference.json:

  buckets           transformers' _relative_position_bucket of relative -40..=40 for this
                    config and for t5-small's (32 buckets, max distance 128) over -300..=300,
                    bidirectional (encoder) and not (decoder)
  cases             a list of {"input_ids", "attention_mask", "greedy_ids", "margins"}: three
                    single sources and one right-padded batch of three lengths;
                    greedy_ids = model.generate(do_sample=False, num_beams=1,
                    max_new_tokens=20) (the decoder start token first), margins the top-2 logit
                    gap at each generated position (the smallest over the batch)
  last_hidden_state the encoder output of the padded batch [3, source, d_model]
  first_logits      the first decoder step's logits of the padded batch [3, vocab]

Usage: HF_HUB_OFFLINE=1 python tools/export_t5.py [OUT_DIR]"""
import json
import os
import sys

import numpy as np
import torch
from transformers import T5Config, T5ForConditionalGeneration
from transformers.models.t5.modeling_t5 import T5Attention

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "models", "hf")
VOCAB, NEW = 160, 20
OUT_SCALE = float(os.environ.get("T5_OUT_SCALE", "4"))
LENGTHS, BATCH = [4, 13, 27], [27, 9, 18]


def config(**kw):
    return T5Config(vocab_size=VOCAB, d_model=32, d_kv=12, d_ff=64, num_layers=2,
                    num_decoder_layers=2, num_heads=4, relative_attention_num_buckets=8,
                    relative_attention_max_distance=16, dropout_rate=0.0,
                    initializer_factor=kw.pop("factor"), decoder_start_token_id=0,
                    pad_token_id=0, eos_token_id=1, attn_implementation="eager", **kw)


def sources(g):
    cases = []
    for n in LENGTHS:
        ids = g.integers(2, VOCAB, size=(1, n))
        cases.append((ids, np.ones_like(ids)))
    width = max(BATCH)
    ids = np.zeros((len(BATCH), width), np.int64)
    mask = np.zeros_like(ids)
    for r, n in enumerate(BATCH):
        ids[r, :n] = g.integers(2, VOCAB, size=n)
        mask[r, :n] = 1
    cases.append((ids.astype(np.int64), mask))
    return cases


def buckets(cfg):
    out = {}
    for name, nb, md, span in [("tiny", cfg.relative_attention_num_buckets,
                                cfg.relative_attention_max_distance, 40),
                               ("t5_small", 32, 128, 300)]:
        rel = torch.arange(-span, span + 1)
        for bidi in (True, False):
            b = T5Attention._relative_position_bucket(rel, bidirectional=bidi, num_buckets=nb,
                                                      max_distance=md)
            out[f"{name}_{'encoder' if bidi else 'decoder'}"] = {
                "num_buckets": nb, "max_distance": md, "first": -span,
                "buckets": b.tolist()}
    return out


def export(name, seed, factor, untied, **kw):
    """Saves a random model, then computes every reference with the model reloaded from the
    folder, so that they are what the folder means to transformers."""
    torch.manual_seed(seed)
    g = np.random.default_rng(seed)
    model = T5ForConditionalGeneration(config(factor=factor, **kw))
    with torch.no_grad():
        # Stronger position biases and uneven norm weights than the initialisation's, so that
        # the buckets matter and greedy decoding does not just repeat one token.
        for n, w in model.named_parameters():
            if n.endswith("relative_attention_bias.weight"):
                w.normal_(0.0, 1.5)
            elif "layer_norm" in n:
                w.uniform_(0.5, 1.5)
            elif n.endswith((".o.weight", ".wo.weight")):
                w.mul_(OUT_SCALE)
    if untied:
        # transformers 5 always ties lm_head to shared unless the checkpoint holds a different
        # lm_head.weight; tie_word_embeddings=False only turns the output scaling off.
        model.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, model.config.d_model))
    dest = os.path.join(OUT, name)
    model.save_pretrained(dest, safe_serialization=True)
    model = T5ForConditionalGeneration.from_pretrained(dest).eval()
    assert (model.lm_head.weight is model.shared.weight) != untied
    cfg = model.config
    cases = []
    worst = float("inf")
    with torch.no_grad():
        for ids, mask in sources(g):
            ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
            gen = model.generate(input_ids=ids_t, attention_mask=mask_t, do_sample=False,
                                 num_beams=1, max_new_tokens=NEW,
                                 output_scores=True, return_dict_in_generate=True)
            margins = []
            for s in gen.scores:
                top = torch.topk(s.float(), 2, dim=-1).values
                margins.append(float((top[:, 0] - top[:, 1]).min()))
            worst = min(worst, min(margins))
            cases.append({"input_ids": ids.tolist(), "attention_mask": mask.tolist(),
                          "greedy_ids": gen.sequences.tolist(),
                          "margins": [round(m, 6) for m in margins]})
        ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
        enc = model.encoder(input_ids=ids_t, attention_mask=mask_t).last_hidden_state
        start = torch.full((ids.shape[0], 1), cfg.decoder_start_token_id)
        logits = model(encoder_outputs=(enc,), attention_mask=mask_t,
                       decoder_input_ids=start).logits[:, 0]
    reference = {"buckets": buckets(cfg), "cases": cases,
                 "last_hidden_state": np.round(enc.numpy().astype(np.float64), 7).tolist(),
                 "first_logits": np.round(logits.numpy().astype(np.float64), 7).tolist()}
    with open(os.path.join(dest, "reference.json"), "w") as f:
        json.dump(reference, f, separators=(",", ":"))
    distinct = min(len(set(r)) for c in cases for r in c["greedy_ids"])
    eos = sum(cfg.eos_token_id in r for c in cases for r in c["greedy_ids"])
    print(f"{name}: fewest distinct ids in a row {distinct}, rows with EOS {eos}")
    print(f"{name}: smallest top-2 margin {worst:.4f}, |enc| max {enc.abs().max():.3f}, "
          f"|logits| max {logits.abs().max():.3f}, ids {cases[-1]['greedy_ids'][0]}")


if __name__ == "__main__":
    export("t5-tiny", 0, 1.0, False, feed_forward_proj="relu", tie_word_embeddings=True)
    export("t5-tiny-gated", 0, 1.0, True, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
