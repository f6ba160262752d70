"""Write the reference data that the `kiln-pipelines` tests compare against: what transformers'
own `pipeline(...)` returns for small task models, in tests/models/pipelines/.

Layout (OUT = tests/models/pipelines by default)

  OUT/minilm-fill-mask/             BertForMaskedLM              (MiniLM encoder + random MLM head)
  OUT/minilm-text-classification/   BertForSequenceClassification (3 labels)
  OUT/minilm-token-classification/  BertForTokenClassification    (O, B-/I- PER, ORG, LOC)
  OUT/minilm-question-answering/    BertForQuestionAnswering      (random, scaled qa_outputs)
      config.json                   the task model's config (architectures, id2label, ...), with
                                    "transformers_weights": "model.safetensors.index.json"
      head.safetensors              the tensors that are not in MiniLM's model.safetensors, named as
                                    save_pretrained names them (cls.predictions.bias, classifier.weight, ...)
      model.safetensors.index.json  {"metadata": {"total_size"}, "weight_map"}: every tensor of MiniLM's
                                    model.safetensors, under its stored name (no `bert.` prefix), ->
                                    "model.safetensors"; every head tensor -> "head.safetensors"
      reference.json
  OUT/vit-image-classification/     a complete tiny ViTForImageClassification folder
      config.json, model.safetensors, preprocessor_config.json, reference.json
      images/*                      the inputs (PNG RGB/RGBA/L/P, JPEG 4:2:0 and 4:4:4), none 32x32
      pixel_values.npz              key = image file name: float32 (3, 32, 32), the image processor's output
      stages.npz                    "decoded/NAME": uint8 (H, W, 3) after transformers' load_image
                                    (EXIF transpose + PIL convert("RGB")); "resized/NAME": uint8 (32, 32, 3)
                                    after PIL resize (BILINEAR), before rescale/normalize

A MiniLM folder is not usable alone: a test assembles one directory from links to MiniLM's
model.safetensors, tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt
(shared/models/all-MiniLM-L6-v2) and to the fixture's three files. MiniLM's model.safetensors holds
pooler.dense.* too; BertForMaskedLM and BertForTokenClassification/QuestionAnswering have no
pooler and ignore them. The MLM decoder weight is tied to the word embeddings and its bias to
cls.predictions.bias, so neither is stored. transformers prefers model.safetensors over an index
when both exist; the config's "transformers_weights" makes it read the index instead.

reference.json
  {"task": "fill-mask" | "text-classification" | "token-classification" | "question-answering"
           | "image-classification",
   "transformers_version": "5.25.0", "notes": [...],
   "cases": [{"inputs": <str | {"question", "context"} | "images/NAME">,
              "kwargs": {<keyword arguments of the call; null = None>},
              "output": <exactly what the pipeline returned: numpy scalars as JSON numbers
                         (float32 values written as the shortest repr of the double they widen to)>,
              "meta": {<optional facts about the case, not part of the output>}}]}
  A case is the call `pipe(inputs, **kwargs)` (question-answering: `pipe(question=..., context=...,
  **kwargs)`), with pipe = pipeline(task, model=<assembled folder>).

transformers 5 removed the question-answering pipeline; its cases come from QuestionAnsweringPipeline
of transformers 4.57.6 (the last release that had it), whose code path for fast tokenizers and
PyTorch is reproduced in `qa_pipeline_4_57` below.

Every reference is made from the assembled folder (built in a temporary directory), and checked:
the loaded weights equal the ones written, and a second pipeline built from the in-memory model
returns the same outputs. Decisiveness (margins between the scores that decide an order) is
printed and asserted so that float32 noise in another implementation cannot reorder outputs.

Usage: HF_HUB_OFFLINE=1 python tools/make_pipeline_refs.py [OUT_DIR]
       (MiniLM from $KILN_SHARED/models/all-MiniLM-L6-v2, KILN_SHARED defaulting to ../shared)"""
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers
from PIL import Image, ImageDraw, ImageFilter
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import (AutoImageProcessor, AutoTokenizer, BertConfig, BertForMaskedLM,
                          BertForQuestionAnswering, BertForSequenceClassification,
                          BertForTokenClassification, BertModel, ViTConfig,
                          ViTForImageClassification, pipeline)
from transformers.image_utils import load_image
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "models", "pipelines")
SHARED = os.environ.get("KILN_SHARED", os.path.join(ROOT, "..", "shared"))
MINILM = os.path.join(SHARED, "models", "all-MiniLM-L6-v2")
MINILM_FILES = ["model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "vocab.txt"]
FIXTURE_FILES = ["config.json", "head.safetensors", "model.safetensors.index.json"]

transformers.logging.set_verbosity_error()
torch.set_num_threads(2)
TOK = AutoTokenizer.from_pretrained(MINILM)
with safe_open(os.path.join(MINILM, "model.safetensors"), "pt") as f:
    MINILM_KEYS = list(f.keys())
with open(os.path.join(MINILM, "model.safetensors"), "rb") as f:
    # data bytes = file size - 8-byte header length - header
    MINILM_BYTES = os.path.getsize(os.path.join(MINILM, "model.safetensors")) - 8 - int.from_bytes(f.read(8), "little")
TMP = tempfile.mkdtemp(prefix="kiln-pipeline-refs-")


# ----------------------------------------------------------------------------------------------
# helpers

def plain(x):
    """Numpy scalars/arrays, tuples -> JSON-able Python values (floats stay exact)."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return plain(x.tolist())
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, float) and not np.isfinite(x):
        raise ValueError(f"non-finite number in an output: {x}")
    return x


def write_npz(path, arrays):
    """np.savez_compressed with fixed entry dates, so that a rerun writes identical bytes."""
    import zipfile
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(v), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(k + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue(),
                       compress_type=zipfile.ZIP_DEFLATED)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def init_head(model, seed, overrides):
    """Give every parameter outside `bert.` a deterministic value: overrides[name](shape, gen)
    when given, else N(0, 0.02) for matrices, zeros for biases, ones for LayerNorm weights."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("bert."):
                continue
            if name in overrides:
                v = overrides[name](tuple(p.shape), gen)
            elif "LayerNorm.weight" in name:
                v = torch.ones(p.shape)
            elif name.endswith("bias"):
                v = torch.zeros(p.shape)
            else:
                v = torch.randn(p.shape, generator=gen) * 0.02
            p.copy_(v)


def load_task_model(cls, config):
    """The task model on MiniLM's encoder weights (head initialised by init_head afterwards)."""
    return cls.from_pretrained(MINILM, config=config).eval()


def write_minilm_fixture(name, model):
    """Save `model`'s head-only tensors + index + config into OUT/name; return the folder."""
    full = os.path.join(TMP, name + "-full")
    model.save_pretrained(full)
    saved = load_file(os.path.join(full, "model.safetensors"))
    head = {k: v.contiguous() for k, v in saved.items() if not k.startswith("bert.")}
    dest = os.path.join(OUT, name)
    os.makedirs(dest, exist_ok=True)
    save_file(head, os.path.join(dest, "head.safetensors"), metadata={"format": "pt"})
    weight_map = {k: "model.safetensors" for k in MINILM_KEYS}
    for k in head:
        assert k not in weight_map, k
        weight_map[k] = "head.safetensors"
    total = MINILM_BYTES + sum(v.numel() * v.element_size() for v in head.values())
    write_json(os.path.join(dest, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})
    cfg = json.load(open(os.path.join(full, "config.json")))
    cfg["transformers_weights"] = "model.safetensors.index.json"
    write_json(os.path.join(dest, "config.json"), cfg)
    return dest


def assemble(fixture, name):
    """Build the usable folder the way the tests do: links to MiniLM's files and the fixture's."""
    d = os.path.join(TMP, name + "-assembled")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for f in MINILM_FILES:
        os.symlink(os.path.abspath(os.path.join(MINILM, f)), os.path.join(d, f))
    for f in FIXTURE_FILES:
        os.symlink(os.path.abspath(os.path.join(fixture, f)), os.path.join(d, f))
    return d


def check_same_weights(loaded, model):
    a, b = loaded.state_dict(), model.state_dict()
    assert a.keys() == b.keys(), set(a.keys()) ^ set(b.keys())
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after loading the assembled folder"


def rel_gaps(values):
    """Smallest relative gap between consecutive values of a descending list."""
    return min(((values[i] - values[i + 1]) / abs(values[i]) for i in range(len(values) - 1)),
               default=float("inf"))


def run_cases(pipe, cases):
    out = []
    for inputs, kwargs in cases:
        out.append(plain(pipe(inputs, **kwargs)))
    return out


def finish(name, task, cases, outputs, notes, metas=None):
    ref = {"task": task, "transformers_version": transformers.__version__, "notes": notes,
           "cases": []}
    for i, ((inputs, kwargs), output) in enumerate(zip(cases, outputs)):
        case = {"inputs": inputs, "kwargs": kwargs, "output": output}
        if metas and metas[i]:
            case["meta"] = metas[i]
        ref["cases"].append(case)
    write_json(os.path.join(OUT, name, "reference.json"), ref)
    # the file must reproduce exactly: JSON round trip of the floats
    back = json.load(open(os.path.join(OUT, name, "reference.json")))
    assert [c["output"] for c in back["cases"]] == outputs
    print(f"{name}: {len(cases)} cases")


# ----------------------------------------------------------------------------------------------
# fill-mask

FILL_MASK = [
    "The capital of France is [MASK].",
    "Paris is the [MASK] of France.",
    "[MASK] is the largest planet in the solar system.",
    "She poured herself a cup of [MASK] before the meeting.",
    "The children played football in the [MASK] after school.",
    "He was born in 1987 and studied [MASK] at Oxford.",
    "The quick brown fox jumps over the lazy [MASK].",
    "I can't believe it's already [MASK]!",
    "Water boils at 100 degrees [MASK] at sea level.",
    "The museum's new exhibition opens on [MASK] morning.",
    "My favourite café serves the best [MASK] in town.",
    "Tokyo is a [MASK] city with more than thirteen million people.",
    "Please remember to [MASK] the door when you leave.",
    "The doctor told him to take the medicine twice a [MASK].",
    "Photosynthesis converts sunlight into chemical [MASK].",
    "The orchestra performed a symphony by [MASK].",
    "After the storm, the [MASK] was covered in fallen branches.",
    "A triangle has three [MASK].",
    "The spacecraft landed safely on the [MASK] of Mars.",
    "They celebrated their anniversary at an Italian [MASK].",
    "Reading books is a great way to [MASK] your vocabulary.",
    "The password must contain at least eight [MASK], including a number.",
    "[MASK]",
    "hello [MASK] world , isn ' t it ?",
]


def make_fill_mask():
    name = "minilm-fill-mask"
    cfg = BertConfig.from_pretrained(MINILM, architectures=["BertForMaskedLM"])
    model = load_task_model(BertForMaskedLM, cfg)
    encs = [TOK(s, return_tensors="pt") for s in FILL_MASK]

    def min_gap():
        # relative gaps among the top 6 probabilities (the 6th decides the 5th)
        gaps = []
        for enc in encs:
            with torch.no_grad():
                logits = model(**enc).logits[0]
            pos = (enc["input_ids"][0] == TOK.mask_token_id).nonzero()[0, 0]
            gaps.append(rel_gaps(logits[pos].softmax(-1).topk(6).values.tolist()))
        return min(gaps)

    for seed in range(1001, 1041):
        # LayerNorm gain 4 makes the logits' spread (~4.4) give peaked top-5 scores
        init_head(model, seed, {
            "cls.predictions.transform.dense.weight": lambda s, g: torch.randn(s, generator=g) * 0.05,
            "cls.predictions.transform.LayerNorm.weight": lambda s, g: torch.full(s, 4.0),
            "cls.predictions.bias": lambda s, g: torch.randn(s, generator=g) * 0.5,
        })
        gap = min_gap()
        if gap > 1e-3:
            break
    assert gap > 1e-3, "no head seed separates every top-6 score by 0.1%"
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    fixture = write_minilm_fixture(name, model)
    d = assemble(fixture, name)
    pipe = pipeline("fill-mask", model=d)
    check_same_weights(pipe.model, model)
    cases = [(s, {"top_k": 5}) for s in FILL_MASK]
    outputs = run_cases(pipe, cases)
    assert outputs == run_cases(pipeline("fill-mask", model=model, tokenizer=TOK), cases)
    subwords = sum(o["token_str"].startswith("##") for out in outputs for o in out)
    print(f"  fill-mask: top-1 score range {min(o[0]['score'] for o in outputs):.4f}.."
          f"{max(o[0]['score'] for o in outputs):.4f}, head seed {seed}, min relative gap among "
          f"top-6 {gap:.2e}, '##' predictions {subwords}")
    finish(name, "fill-mask", cases, outputs, [
        "token_str = tokenizer.decode([token]) (a '##' piece keeps its '##'); sequence = decode of the "
        "input ids with the mask replaced, padding removed, skip_special_tokens=True",
        "score = softmax over the whole vocabulary at the mask position, float32",
    ])


# ----------------------------------------------------------------------------------------------
# text-classification

TEXT_CLASSIFICATION = [
    "I absolutely loved this film, the acting was wonderful.",
    "The service was slow and the food arrived cold.",
    "The package arrived on Tuesday.",
    "What a fantastic day at the beach with friends!",
    "This is the worst phone I have ever owned.",
    "The meeting has been moved to the second floor.",
    "Honestly, I'm not sure how I feel about the ending.",
    "Great value for money, would buy again.",
    "The instructions were confusing and the parts didn't fit.",
    "Temperatures will stay around twelve degrees this week.",
    "Nothing special, but nothing terrible either.",
    "Wow.",
]


def make_text_classification():
    name = "minilm-text-classification"
    labels = ["negative", "neutral", "positive"]
    cfg = BertConfig.from_pretrained(MINILM, architectures=["BertForSequenceClassification"],
                                     id2label=dict(enumerate(labels)),
                                     label2id={l: i for i, l in enumerate(labels)})
    model = load_task_model(BertForSequenceClassification, cfg)
    with torch.no_grad():
        pooled = torch.cat([model.bert(**TOK(s, return_tensors="pt")).pooler_output
                            for s in TEXT_CLASSIFICATION])
    # the pooled vectors of all sentences share a large common part: centre the logits on the
    # sentences' mean so that their differences decide the label, then look for a seed that
    # makes every label win somewhere and keeps the sorted scores apart
    for seed in range(2002, 2102):
        gen = torch.Generator().manual_seed(seed)
        w = torch.randn(3, 384, generator=gen) * 4.0
        b = -w @ pooled.mean(0) + torch.randn(3, generator=gen) * 0.3
        probs = (pooled @ w.T + b).softmax(-1).sort(descending=True)
        tops = set(probs.indices[:, 0].tolist())
        gap = (probs.values[:, :-1] - probs.values[:, 1:]).min().item()
        if len(tops) == 3 and gap > 1e-3:
            break
    assert len(tops) == 3 and gap > 1e-3, "no seed gives a decisive three-label head"
    init_head(model, seed, {"classifier.weight": lambda s, g: w, "classifier.bias": lambda s, g: b})
    fixture = write_minilm_fixture(name, model)
    d = assemble(fixture, name)
    pipe = pipeline("text-classification", model=d)
    check_same_weights(pipe.model, model)
    cases = [(s, {}) for s in TEXT_CLASSIFICATION] + [(s, {"top_k": None}) for s in TEXT_CLASSIFICATION]
    outputs = run_cases(pipe, cases)
    assert outputs == run_cases(pipeline("text-classification", model=model, tokenizer=TOK), cases)
    full = outputs[len(TEXT_CLASSIFICATION):]
    tops = {o[0]["label"] for o in full}
    gap = min(min(o[i]["score"] - o[i + 1]["score"] for i in range(2)) for o in full)
    print(f"  text-classification: seed {seed}, top labels {sorted(tops)}, min gap between sorted "
          f"scores {gap:.3e}")
    assert tops == set(labels) and gap > 1e-3
    finish(name, "text-classification", cases, outputs, [
        "a single string without top_k returns a one-element list [{label, score}] (legacy form); "
        "top_k=None returns every label sorted by score",
        "score = numpy float32 softmax over the logits (sigmoid if num_labels == 1)",
    ])


# ----------------------------------------------------------------------------------------------
# token-classification

NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
# [text](TYPE) marks an entity. The head is fitted (logistic regression on MiniLM's frozen
# features) to NER_TRAIN so that it produces real multi-token entities of every type.
NER_TRAIN = [
    "[Angela Merkel](PER) met [Emmanuel Macron](PER) in [Paris](LOC) on Tuesday.",
    "[Barack Obama](PER) was born in [Honolulu](LOC), [Hawaii](LOC).",
    "[Microsoft](ORG) opened a new office in [Nairobi](LOC) last year.",
    "[Marie Curie](PER) worked at the [University of Paris](ORG).",
    "The [World Health Organization](ORG) is based in [Geneva](LOC).",
    "[Lionel Messi](PER) signed with [Inter Miami](ORG) in 2023.",
    "[Ada Lovelace](PER) wrote notes on the engine designed by [Charles Babbage](PER).",
    "[Toyota](ORG) builds cars in [Kentucky](LOC) and [Aichi](LOC).",
    "We flew from [Buenos Aires](LOC) to [Cape Town](LOC) with [Lufthansa](ORG).",
    "[Greta Thunberg](PER) spoke at the [United Nations](ORG) in [New York](LOC).",
    "The [European Central Bank](ORG) raised rates, said [Christine Lagarde](PER).",
    "[Wolfgang Amadeus Mozart](PER) was born in [Salzburg](LOC).",
    "[Nelson Mandela](PER) was released from prison near [Cape Town](LOC).",
    "The [Massachusetts Institute of Technology](ORG) is in [Cambridge](LOC).",
    "[Frida Kahlo](PER) painted in [Mexico City](LOC).",
    "[Samsung Electronics](ORG) reported record profits in [Seoul](LOC).",
    "[Serena Williams](PER) won the title in [Melbourne](LOC).",
    "The river flows through [Budapest](LOC) and [Belgrade](LOC).",
    "[Amazon](ORG) hired [Andy Jassy](PER) as chief executive.",
    "[Rio de Janeiro](LOC) hosted the games organised by the [International Olympic Committee](ORG).",
    "It rained all week, so we stayed at home and read books.",
    "The committee will meet again next month to discuss the budget.",
]
NER_REFERENCE = [
    "[Angela Merkel](PER) met [Emmanuel Macron](PER) in [Paris](LOC) on Tuesday.",
    "[Wolfgang Amadeus Mozart](PER) was born in [Salzburg](LOC).",
    "We flew from [Buenos Aires](LOC) to [Cape Town](LOC) with [Lufthansa](ORG).",
    "[Jacinda Ardern](PER) visited [Wellington](LOC) and met staff from [Google](ORG).",
    "[Chimamanda Ngozi Adichie](PER) gave a lecture at [Stanford University](ORG).",
    "The [Red Cross](ORG) sent doctors to [Kathmandu](LOC) after the earthquake.",
    "[Kazuo Ishiguro](PER) moved from [Nagasaki](LOC) to [Guildford](LOC) as a child.",
    "[Siemens](ORG) and [Deutsche Bahn](ORG) tested a train between [Munich](LOC) and [Berlin](LOC).",
    "Yesterday [Ngozi Okonjo-Iweala](PER) addressed the [World Trade Organization](ORG) in [Geneva](LOC).",
    "[Zuckerberg](PER) and [Schwarzenegger](PER) were seen in [Reykjavik](LOC).",
    "It rained all week, so we stayed at home.",
    "[São Paulo](LOC) is larger than [Montréal](LOC), says [Anaïs Nin](PER).",
]


def parse_marked(s):
    text, spans, pos = "", [], 0
    for m in re.finditer(r"\[([^\]]+)\]\((PER|ORG|LOC)\)", s):
        text += s[pos:m.start()]
        spans.append((len(text), len(text) + len(m.group(1)), m.group(2)))
        text += m.group(1)
        pos = m.end()
    return text + s[pos:], spans


def token_labels(text, spans):
    enc = TOK(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    labels = []
    for (a, b), special in zip(enc["offset_mapping"], enc["special_tokens_mask"]):
        lab = -100 if special else 0
        for s, e, t in spans:
            if not special and s <= a and b <= e:
                lab = NER_LABELS.index(("B-" if a == s else "I-") + t)
        labels.append(lab)
    return enc, labels


def make_token_classification():
    name = "minilm-token-classification"
    cfg = BertConfig.from_pretrained(MINILM, architectures=["BertForTokenClassification"],
                                     id2label=dict(enumerate(NER_LABELS)),
                                     label2id={l: i for i, l in enumerate(NER_LABELS)})
    model = load_task_model(BertForTokenClassification, cfg)
    init_head(model, 3003, {})
    # fit the classifier on frozen features (full batch, Adam, fixed seed: deterministic)
    feats, labs = [], []
    for s in NER_TRAIN:
        enc, lab = token_labels(*parse_marked(s))
        with torch.no_grad():
            h = model.bert(**{k: torch.tensor([v]) for k, v in enc.items()
                              if k in ("input_ids", "attention_mask", "token_type_ids")}).last_hidden_state[0]
        feats.append(h)
        labs.append(torch.tensor(lab))
    x, y = torch.cat(feats), torch.cat(labs)
    torch.manual_seed(3003)
    clf = model.classifier
    opt = torch.optim.Adam(clf.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(clf(x), y, ignore_index=-100)
        loss.backward()
        opt.step()
    print(f"  token-classification: head fitted, train loss {loss.item():.4f}")
    fixture = write_minilm_fixture(name, model)
    d = assemble(fixture, name)
    pipe = pipeline("token-classification", model=d)
    check_same_weights(pipe.model, model)
    texts = [parse_marked(s)[0] for s in NER_REFERENCE]
    cases = ([(t, {"aggregation_strategy": "simple"}) for t in texts]
             + [(t, {"aggregation_strategy": "none"}) for t in texts])
    outputs = run_cases(pipe, cases)
    assert outputs == run_cases(pipeline("token-classification", model=model, tokenizer=TOK), cases)
    simple = outputs[:len(texts)]
    groups = [e for o in simple for e in o]
    multi = [e for e in groups if len(TOK.tokenize(e["word"])) > 1]
    types = {e["entity_group"] for e in multi}
    # decisiveness: top-1 vs top-2 probability for every token of every reference text
    margin = 1.0
    for t in texts:
        enc = TOK(t, return_tensors="pt")
        with torch.no_grad():
            p = pipe.model(**enc).logits[0].softmax(-1).sort(descending=True).values
        margin = min(margin, (p[1:-1, 0] - p[1:-1, 1]).min().item())
    print(f"  token-classification: {len(groups)} entity groups, {len(multi)} of several tokens "
          f"(types {sorted(types)}), min top-1/top-2 probability margin {margin:.3e}")
    assert types == {"PER", "ORG", "LOC"} and len(multi) >= 6 and margin > 1e-3
    finish(name, "token-classification", cases, outputs, [
        "aggregation 'none' lists every token whose argmax label is not 'O': entity, score (float32), "
        "index (token position incl. [CLS]), word (the token, '##' kept), start, end (char offsets)",
        "aggregation 'simple' groups consecutive tokens: a token joins the group when its tag (B-/I- "
        "stripped; a bare label counts as I-) equals the group's and it is not B-; groups whose "
        "entity is 'O' are dropped; score = float32 mean of the tokens' scores; word = "
        "tokenizer.convert_tokens_to_string(tokens) (WordPiece decoder with cleanup)",
    ])


# ----------------------------------------------------------------------------------------------
# question-answering (transformers 4.57.6 QuestionAnsweringPipeline, fast tokenizer, PyTorch)

def _decode_spans(start, end, topk, max_answer_len, undesired_tokens):
    if start.ndim == 1:
        start = start[None]
    if end.ndim == 1:
        end = end[None]
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    scores_flat = candidates.flatten()
    if topk == 1:
        idx_sort = [np.argmax(scores_flat)]
    elif len(scores_flat) < topk:
        idx_sort = np.argsort(-scores_flat)
    else:
        idx = np.argpartition(-scores_flat, topk)[0:topk]
        idx_sort = idx[np.argsort(-scores_flat[idx])]
    starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
    desired = np.isin(starts, undesired_tokens.nonzero()) & np.isin(ends, undesired_tokens.nonzero())
    starts, ends = starts[desired], ends[desired]
    return starts, ends, candidates[0, starts, ends]


def _select_starts_ends(start, end, p_mask, attention_mask, min_null_score, top_k,
                        handle_impossible_answer, max_answer_len):
    undesired_tokens = np.abs(np.array(p_mask) - 1)
    if attention_mask is not None:
        undesired_tokens = undesired_tokens & attention_mask
    undesired_tokens_mask = undesired_tokens == 0.0
    start = np.where(undesired_tokens_mask, -10000.0, start)
    end = np.where(undesired_tokens_mask, -10000.0, end)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0
    starts, ends, scores = _decode_spans(start, end, top_k, max_answer_len, undesired_tokens)
    return starts, ends, scores, min_null_score


def qa_pipeline_4_57(model, tokenizer, question, context, top_k=1, doc_stride=None,
                     max_answer_len=15, max_seq_len=None, max_question_len=64,
                     handle_impossible_answer=False, align_to_words=True, padding="do_not_pad",
                     trace=None, boundary=None):
    """QuestionAnsweringPipeline(...)(question=..., context=..., **kwargs) of transformers 4.57.6,
    for a fast tokenizer and a PyTorch model, batch size 1. `trace`, when a list, receives one
    dict per kept answer candidate: window index, token start/end, score; `boundary`, when a list,
    receives per window the relative gap between the last span kept and the first left out."""
    if max_seq_len is None:
        max_seq_len = min(tokenizer.model_max_length, 384)
    if doc_stride is None:
        doc_stride = min(max_seq_len // 2, 128)
    if doc_stride > max_seq_len:
        raise ValueError("doc_stride larger than max_seq_len")
    question_first = tokenizer.padding_side == "right"
    enc = tokenizer(
        text=question if question_first else context,
        text_pair=context if question_first else question,
        padding=padding, truncation="only_second" if question_first else "only_first",
        max_length=max_seq_len, stride=doc_stride, return_token_type_ids=True,
        return_overflowing_tokens=True, return_offsets_mapping=True,
        return_special_tokens_mask=True)
    num_spans = len(enc["input_ids"])
    p_mask = [[tok != 1 if question_first else 0 for tok in enc.sequence_ids(i)]
              for i in range(num_spans)]
    min_null_score = 1000000
    answers = []
    for i in range(num_spans):
        ids = enc["input_ids"][i]
        if tokenizer.cls_token_id is not None:
            for c in np.nonzero(np.array(ids) == tokenizer.cls_token_id)[0]:
                p_mask[i][c] = 0
        fw = {k: torch.tensor(enc[k][i]).unsqueeze(0) for k in tokenizer.model_input_names}
        with torch.no_grad():
            out = model(**fw)
        attention_mask = fw["attention_mask"].numpy() if "attention_mask" in fw else None
        pre_topk = top_k * 2 + 10 if align_to_words else top_k
        # (4.57 passes p_mask as a torch tensor of int64; the same values as a numpy array)
        starts, ends, scores, min_null_score = _select_starts_ends(
            out.start_logits, out.end_logits, np.array([p_mask[i]]), attention_mask,
            min_null_score, pre_topk, handle_impossible_answer, max_answer_len)
        if boundary is not None:
            sc = _select_starts_ends(out.start_logits, out.end_logits, np.array([p_mask[i]]),
                                     attention_mask, 1e6, pre_topk + 1, False, max_answer_len)[2]
            if len(sc) > pre_topk:
                boundary.append(float((sc[pre_topk - 1] - sc[pre_topk]) / sc[pre_topk - 1]))
        e_ = enc[i]
        offset = 0
        if tokenizer.padding_side == "left":
            offset = (fw["input_ids"] == tokenizer.pad_token_id).numpy().sum()
        sequence_index = 1 if question_first else 0
        for s, e, score in zip(starts, ends, scores):
            s, e = s - offset, e - offset
            if align_to_words:
                try:
                    start_index = e_.word_to_chars(e_.token_to_word(s), sequence_index=sequence_index)[0]
                    end_index = e_.word_to_chars(e_.token_to_word(e), sequence_index=sequence_index)[1]
                except Exception:
                    start_index, end_index = e_.offsets[s][0], e_.offsets[e][1]
            else:
                start_index, end_index = e_.offsets[s][0], e_.offsets[e][1]
            target = context[start_index:end_index]
            found = next((a for a in answers if a["answer"].lower() == target.lower()), None)
            if found:
                found["score"] += score.item()
            else:
                answers.append({"score": score.item(), "start": start_index, "end": end_index,
                                "answer": context[start_index:end_index]})
            if trace is not None:
                trace.append({"window": i, "start_token": int(s), "end_token": int(e),
                              "score": score.item(), "answer": target})
    if handle_impossible_answer:
        answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
    if len(answers) == 1:
        return answers[0]
    return answers


QA_SHORT = [
    ("When was the tower completed?",
     "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It was designed by the "
     "engineering company of Gustave Eiffel and is about 330 metres tall, and each year nearly "
     "seven million people climb it."),
    ("Who discovered penicillin?",
     "Penicillin was discovered in 1928 by Alexander Fleming, a Scottish physician working at St "
     "Mary's Hospital in London, who noticed that a mould had killed the bacteria around it."),
    ("What do bees make?",
     "Honey bees live in colonies of up to sixty thousand workers. They collect nectar from "
     "flowers and turn it into honey, which they store in wax combs to feed the hive in winter."),
]
QA_LONG_QUESTION = "Who founded the observatory on the hill above the harbour?"
_PEOPLE = ["Ines Halvorsen", "Tomasz Brzezinski", "Amara Okafor", "Lucien Marchetti", "Yuki Tanabe",
           "Farid Haddad", "Greta Lindqvist", "Mateo Alvarez", "Priya Raman", "Oskar Velde"]
_PLACES = ["the old harbour", "the river delta", "the northern quarter", "the salt marshes",
           "the eastern ridge", "the cathedral square", "the fishing village", "the railway yard"]
_THINGS = ["a lighthouse", "a botanical garden", "a printing press", "a stone bridge", "a weather station",
           "a public library", "a shipyard", "a music school", "a glass factory", "a tram line"]
_TEMPLATES = [
    "In {year}, {person} built {thing} near {place}, which quickly became popular with travellers.",
    "Records from {year} show that {person} argued for {thing} to be moved closer to {place}.",
    "The town council paid {person} to repair {thing} by {place} after the floods of {year}.",
    "Visitors in {year} described {thing} at {place} as the finest in the whole province.",
    "{person} kept a diary in {year} about the winter storms that damaged {thing} beside {place}.",
    "By {year} the merchants of {place} had raised enough money to replace {thing}.",
]


def long_context(seed, n_tokens=1000):
    rnd = random.Random(seed)
    sents = []
    while True:
        sents.append(rnd.choice(_TEMPLATES).format(
            year=rnd.randint(1700, 1950), person=rnd.choice(_PEOPLE), thing=rnd.choice(_THINGS),
            place=rnd.choice(_PLACES)))
        if len(sents) == 20:
            sents.append("The observatory on the hill above the harbour was founded by "
                         f"{rnd.choice(_PEOPLE)} in {rnd.randint(1800, 1900)}.")
        text = " ".join(sents)
        if len(TOK(text, add_special_tokens=False)["input_ids"]) >= n_tokens:
            return text


def window_token_ranges(question, context, max_seq_len=384, doc_stride=128):
    """For each overflowing window: (first, last) char of its context part."""
    enc = TOK(text=question, text_pair=context, truncation="only_second", max_length=max_seq_len,
              stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    ranges = []
    for i in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(i)
        offs = [o for o, s in zip(enc["offset_mapping"][i], seq) if s == 1]
        ranges.append((offs[0][0], offs[-1][1]))
    return ranges


def make_question_answering():
    name = "minilm-question-answering"
    cfg = BertConfig.from_pretrained(MINILM, architectures=["BertForQuestionAnswering"])
    model = load_task_model(BertForQuestionAnswering, cfg)
    kw1 = {"top_k": 1, "max_seq_len": 384, "doc_stride": 128}
    kw3 = {"top_k": 3, "max_seq_len": 384, "doc_stride": 128}
    # search head seeds and contexts until the long case's best answer lies in two windows
    chosen = None
    for seed in range(4004, 4004 + 40):
        init_head(model, seed, {
            "qa_outputs.weight": lambda s, g: torch.randn(s, generator=g) * 0.4,
        })
        for ctx_seed in range(3):
            ctx = long_context(ctx_seed)
            trace = []
            best = qa_pipeline_4_57(model, TOK, QA_LONG_QUESTION, ctx, trace=trace, **kw1)
            ranges = window_token_ranges(QA_LONG_QUESTION, ctx)
            inside = [i for i, (a, b) in enumerate(ranges) if a <= best["start"] and best["end"] <= b]
            found_in = sorted({t["window"] for t in trace if t["answer"].lower() == best["answer"].lower()})
            if len(inside) >= 2 and len(found_in) >= 2 and len(ranges) >= 3:
                chosen = (seed, ctx_seed, ctx, ranges, inside, found_in)
                break
        if chosen:
            break
    assert chosen, "no seed put the best long-context answer in the overlap of two windows"
    seed, ctx_seed, ctx, ranges, inside, found_in = chosen
    print(f"  question-answering: head seed {seed}, context seed {ctx_seed}, {len(ranges)} windows, "
          f"best answer in windows {inside}, found in windows {found_in}")
    fixture = write_minilm_fixture(name, model)
    d = assemble(fixture, name)
    loaded = BertForQuestionAnswering.from_pretrained(d).eval()
    check_same_weights(loaded, model)
    tok = AutoTokenizer.from_pretrained(d)
    # contexts of ~50 tokens (one window) and the ~1,000-token one (several windows)
    cases = []
    for q, c in QA_SHORT:
        cases += [({"question": q, "context": c}, kw1), ({"question": q, "context": c}, kw3)]
    cases += [({"question": QA_LONG_QUESTION, "context": ctx}, kw1),
              ({"question": QA_LONG_QUESTION, "context": ctx}, kw3)]
    outputs, metas, gaps, window_gaps = [], [], [], []
    for inputs, kwargs in cases:
        out = plain(qa_pipeline_4_57(loaded, tok, inputs["question"], inputs["context"], **kwargs))
        assert out == plain(qa_pipeline_4_57(model, TOK, inputs["question"], inputs["context"], **kwargs))
        outputs.append(out)
        ranges_i = window_token_ranges(inputs["question"], inputs["context"])
        meta = {"context_tokens": len(TOK(inputs["context"], add_special_tokens=False)["input_ids"]),
                "windows_context_chars": [list(r) for r in ranges_i]}
        if len(ranges_i) > 1:
            trace = []
            qa_pipeline_4_57(loaded, tok, inputs["question"], inputs["context"], trace=trace, **kwargs)
            best = out if isinstance(out, dict) else out[0]
            meta["best_answer_windows"] = [i for i, (a, b) in enumerate(ranges_i)
                                           if a <= best["start"] and best["end"] <= b]
            meta["best_answer_found_in_windows"] = sorted(
                {t["window"] for t in trace if t["answer"].lower() == best["answer"].lower()})
        metas.append(meta)
        more = qa_pipeline_4_57(loaded, tok, inputs["question"], inputs["context"],
                                **{**kwargs, "top_k": kwargs["top_k"] + 1})
        gaps.append(rel_gaps([a["score"] for a in more]))
        # the spans each window keeps (2*top_k+10) decide which scores add up across windows
        bnd = []
        qa_pipeline_4_57(loaded, tok, inputs["question"], inputs["context"], boundary=bnd, **kwargs)
        window_gaps.append(min(bnd))
    n_tok = metas[-1]["context_tokens"]
    print(f"  question-answering: long context {n_tok} tokens, min relative gap between ranked answers "
          f"(incl. the first left out) {min(gaps):.3e}, at the spans kept per window {min(window_gaps):.3e}")
    assert 900 <= n_tok <= 1200 and min(gaps) > 1e-3 and min(window_gaps) > 1e-4
    finish(name, "question-answering", cases, outputs, [
        "transformers 5 removed the question-answering pipeline: outputs are those of "
        "QuestionAnsweringPipeline of transformers 4.57.6 (fast tokenizer, PyTorch), reproduced by "
        "qa_pipeline_4_57 in tools/make_pipeline_refs.py",
        "each window: question + context part, truncation only_second, max_length max_seq_len, "
        "stride doc_stride (tokens shared by consecutive windows), no padding",
        "per window: logits of non-context tokens (and padding) set to -10000, float32 softmax of start "
        "and end over the window, [CLS] zeroed, score = p_start * p_end for end - start < max_answer_len "
        "(15), top (2*top_k+10) spans, mapped to whole words (token_to_word, word_to_chars)",
        "across windows, a span whose text (case-insensitive) was already found adds its score to the "
        "earlier answer (Python float sum); answers sorted by score, first top_k; one answer -> a dict",
        "meta.windows_context_chars: [first, end) char of each window's context part",
    ], metas)
    return ctx


# ----------------------------------------------------------------------------------------------
# image-classification

VIT_LABELS = ["tabby cat", "golden retriever", "red fox", "sports car", "sailboat",
              "mountain bike", "teapot", "sunflower", "lighthouse", "pizza"]


def make_images(dest):
    """Small synthetic pictures: gradients, shapes, noise. Returns [(file name, note)]."""
    os.makedirs(dest, exist_ok=True)
    rng = np.random.default_rng(77)

    def scene(w, h, seed):
        r = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([
            255 * xx / max(w - 1, 1),
            255 * yy / max(h - 1, 1),
            127 + 127 * np.sin((xx + yy) / max(w, h) * 6.28 * 1.5),
        ], -1)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        d = ImageDraw.Draw(img)
        for _ in range(6):
            x0, y0 = int(r.integers(0, w)), int(r.integers(0, h))
            x1, y1 = x0 + int(r.integers(2, max(3, w // 2))), y0 + int(r.integers(2, max(3, h // 2)))
            col = tuple(int(c) for c in r.integers(0, 256, 3))
            (d.ellipse if r.random() < 0.5 else d.rectangle)([x0, y0, x1, y1], fill=col)
        d.line([0, h - 1, w - 1, 0], fill=(255, 255, 255), width=max(1, min(w, h) // 12))
        a = np.asarray(img).astype(np.int16) + r.integers(-12, 13, (h, w, 3))
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")

    files = []
    scene(97, 61, 1).save(f"{dest}/rgb_97x61.png")
    files.append(("rgb_97x61.png", "RGB PNG, downscale"))
    im = scene(40, 40, 2).convert("RGBA")
    alpha = np.fromfunction(lambda y, x: 255 - 6 * x, (40, 40)).clip(0, 255).astype(np.uint8)
    im.putalpha(Image.fromarray(alpha, "L"))
    im.save(f"{dest}/rgba_40x40.png")
    files.append(("rgba_40x40.png", "RGBA PNG with varying alpha: load_image drops alpha"))
    scene(17, 33, 3).convert("L").save(f"{dest}/gray_17x33.png")
    files.append(("gray_17x33.png", "L PNG, upscale width, downscale height"))
    p = scene(64, 48, 4).quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    p.info["transparency"] = 3
    p.save(f"{dest}/palette_64x48.png", transparency=3)
    files.append(("palette_64x48.png", "P PNG, 16 colours, tRNS on index 3 (ignored by convert('RGB'))"))
    scene(300, 200, 5).filter(ImageFilter.GaussianBlur(1.5)).save(
        f"{dest}/photo_300x200.jpg", quality=85)
    files.append(("photo_300x200.jpg", "JPEG baseline 4:2:0, quality 85"))
    scene(45, 80, 6).save(f"{dest}/photo_45x80_444.jpg", quality=92, subsampling=0)
    files.append(("photo_45x80_444.jpg", "JPEG 4:4:4, quality 92"))
    scene(50, 1, 7).save(f"{dest}/strip_50x1.png")
    files.append(("strip_50x1.png", "RGB PNG one pixel high"))
    scene(9, 7, 8).save(f"{dest}/tiny_9x7.png")
    files.append(("tiny_9x7.png", "RGB PNG, upscale both ways"))
    exif = Image.Exif()
    exif[0x0112] = 6   # Orientation: rotate 90 degrees clockwise to display
    scene(60, 36, 9).save(f"{dest}/exif_rotated_60x36.jpg", quality=90, exif=exif.tobytes())
    files.append(("exif_rotated_60x36.jpg", "JPEG 4:2:0 stored 60x36 with EXIF Orientation 6: "
                  "exif_transpose makes it 36x60 before anything else"))
    for f, _ in files:
        assert os.path.getsize(f"{dest}/{f}") < 40_000, f
        assert Image.open(f"{dest}/{f}").size != (32, 32)
    return files


def make_image_classification():
    name = "vit-image-classification"
    dest = os.path.join(OUT, name)
    os.makedirs(dest, exist_ok=True)
    files = make_images(os.path.join(dest, "images"))
    torch.manual_seed(5005)
    cfg = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=64, hidden_act="gelu",
                    id2label=dict(enumerate(VIT_LABELS)),
                    label2id={l: i for i, l in enumerate(VIT_LABELS)},
                    architectures=["ViTForImageClassification"])
    model = ViTForImageClassification(cfg).eval()
    gen = torch.Generator().manual_seed(5005)
    with torch.no_grad():
        for n, p in model.named_parameters():   # init values, independent of transformers' init code
            if n.endswith("layernorm_before.weight") or n.endswith("layernorm_after.weight") \
                    or n == "vit.layernorm.weight":
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    ViTImageProcessorPil(do_resize=True, size={"height": 32, "width": 32}, resample=2,
                         do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                         image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]).save_pretrained(dest)
    # the PIL backend is what transformers uses without torchvision; name it so a run with
    # torchvision installed still makes the same reference
    proc = AutoImageProcessor.from_pretrained(dest, backend="pil")
    images = [load_image(os.path.join(dest, "images", f)) for f, _ in files]
    with torch.no_grad():
        pv = torch.from_numpy(np.stack([proc(images=im, return_tensors="np")["pixel_values"][0]
                                        for im in images]))
        feats = model.vit(pixel_values=pv).last_hidden_state[:, 0]
    # random features of different images share a large common part: centre the logits on their
    # mean, then find a seed with several different winners and clear margins
    for seed in range(5005, 5205):
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(len(VIT_LABELS), cfg.hidden_size, generator=g) * 0.8
        b = -w @ feats.mean(0) + torch.randn(len(VIT_LABELS), generator=g) * 0.2
        probs = (feats @ w.T + b).softmax(-1).sort(descending=True)
        winners = set(probs.indices[:, 0].tolist())
        margin = (probs.values[:, 0] - probs.values[:, 1]).min().item()
        gap = min(rel_gaps(r[:6]) for r in probs.values.tolist())
        if len(winners) >= 4 and margin > 0.02 and gap > 2e-3:
            break
    assert len(winners) >= 4 and margin > 0.02 and gap > 2e-3, "no decisive classifier seed"
    with torch.no_grad():
        model.classifier.weight.copy_(w)
        model.classifier.bias.copy_(b)
    model.save_pretrained(dest)
    pipe = pipeline("image-classification", model=dest, image_processor=proc)
    assert type(pipe.image_processor).__name__ == "ViTImageProcessorPil"
    check_same_weights(pipe.model, model)
    cases = [(f"images/{f}", {"top_k": 5}) for f, _ in files]
    outputs, pixel_values, stages, margins, gaps = [], {}, {}, [], []
    cwd = os.getcwd()
    os.chdir(dest)
    try:
        for (inputs, kwargs) in cases:
            outputs.append(plain(pipe(inputs, **kwargs)))
            img = load_image(inputs)
            fname = os.path.basename(inputs)
            pixel_values[fname] = proc(images=img, return_tensors="np")["pixel_values"][0].astype(np.float32)
            stages[f"decoded/{fname}"] = np.asarray(img)
            stages[f"resized/{fname}"] = np.asarray(img.resize((32, 32), Image.Resampling.BILINEAR))
            with torch.no_grad():
                pv = torch.from_numpy(pixel_values[fname])[None]
                probs = model(pixel_values=pv).logits[0].softmax(-1).sort(descending=True).values.tolist()
            margins.append(probs[0] - probs[1])
            gaps.append(rel_gaps(probs[:6]))
        again = [plain(pipeline("image-classification", model=model, image_processor=proc)(i, **k))
                 for i, k in cases]
    finally:
        os.chdir(cwd)
    assert outputs == again
    # pixel_values computed by hand from the resized bytes: rescale in float64 then float32, normalize
    for fname, pv in pixel_values.items():
        r = stages[f"resized/{fname}"].astype(np.float64) * (1 / 255)
        manual = ((r.astype(np.float32) - np.float32(0.5)) / np.float32(0.5)).transpose(2, 0, 1)
        assert np.array_equal(manual, pv), fname
    write_npz(os.path.join(dest, "pixel_values.npz"), pixel_values)
    write_npz(os.path.join(dest, "stages.npz"), stages)
    print(f"  image-classification: classifier seed {seed}, top-1 labels {[o[0]['label'] for o in outputs]}")
    print(f"  image-classification: top-1/top-2 margins {[round(m, 4) for m in margins]}, "
          f"min relative gap among top-6 {min(gaps):.3e}")
    assert min(margins) > 0.02 and min(gaps) > 2e-3
    finish(name, "image-classification", cases, outputs, [
        "inputs are paths relative to this folder; the pipeline opens them with load_image: "
        "PIL.Image.open, ImageOps.exif_transpose, convert('RGB') (alpha dropped, not composited; "
        "palette expanded; L replicated)",
        "image processor: ViTImageProcessorPil (transformers' PIL backend, used when torchvision is "
        "absent; with torchvision, AutoImageProcessor picks the torchvision backend whose resize "
        "differs): PIL resize to 32x32 BILINEAR (reducing_gap None), x * (1/255) in float64 then "
        "float32, (x - 0.5) / 0.5 in float32, CHW",
        "score = numpy float32 softmax; top_k capped at num_labels",
    ] + [f"{f}: {n}" for f, n in files])


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    only = set(os.environ.get("ONLY", "").split(",")) - {""}
    steps = {"fill-mask": make_fill_mask, "text-classification": make_text_classification,
             "token-classification": make_token_classification,
             "question-answering": make_question_answering,
             "image-classification": make_image_classification}
    try:
        for task, fn in steps.items():
            if not only or task in only:
                fn()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
