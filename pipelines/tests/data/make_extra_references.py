"""Extra transformers references for kiln-pipelines' tests (pipelines/tests/extra_references.rs):
paths the shared fixtures' reference.json files do not take. Uses the fixtures of
tests/models/pipelines (assembled with MiniLM's files as their README says) and transformers'
own pipeline():

  fill-mask: two [MASK] tokens in one text (a list per mask, sequences decoded with special
      tokens), and top_k=3;
  token-classification: aggregation_strategy "first", "average" and "max";
  text-classification: top_k=2 on one text, and on a list of texts.

    HF_HUB_OFFLINE=1 python pipelines/tests/data/make_extra_references.py
"""
import json
import os
import shutil
import tempfile

from transformers import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SHARED = os.environ.get("KILN_SHARED", os.path.join(ROOT, "..", "shared"))
MINILM = os.path.join(SHARED, "models", "all-MiniLM-L6-v2")
FIXTURES = os.path.join(ROOT, "tests", "models", "pipelines")
MINILM_FILES = ["model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "vocab.txt"]


def assemble(tmp, name):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    for f in MINILM_FILES:
        os.symlink(os.path.join(MINILM, f), os.path.join(d, f))
    fixture = os.path.join(FIXTURES, name)
    for f in os.listdir(fixture):
        if f != "reference.json":
            os.symlink(os.path.join(fixture, f), os.path.join(d, f))
    return d


def plain(x):
    """JSON-able: numpy and torch scalars become Python numbers."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if hasattr(x, "item"):
        return x.item()
    return x


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-extra-refs-")
    cases = []
    try:
        fm = pipeline("fill-mask", model=assemble(tmp, "minilm-fill-mask"))
        for text, kw in [("The [MASK] sat on the [MASK].", {"top_k": 3}),
                         ("Paris is the [MASK] of France.", {"top_k": 3})]:
            cases.append({"task": "fill-mask", "inputs": text, "kwargs": kw,
                          "output": plain(fm(text, **kw))})
        tc = pipeline("token-classification", model=assemble(tmp, "minilm-token-classification"))
        texts = ["Angela Merkel met Emmanuel Macron in Paris on Tuesday.",
                 "Yesterday Ngozi Okonjo-Iweala addressed the World Trade Organization in Geneva.",
                 "Zuckerberg and Schwarzenegger were seen in Reykjavik.",
                 "São Paulo is larger than Montréal, says Anaïs Nin."]
        for how in ["first", "average", "max"]:
            for text in texts:
                kw = {"aggregation_strategy": how}
                cases.append({"task": "token-classification", "inputs": text, "kwargs": kw,
                              "output": plain(tc(text, **kw))})
        cl = pipeline("text-classification", model=assemble(tmp, "minilm-text-classification"))
        one = "I absolutely loved this film, the acting was wonderful."
        many = [one, "The service was slow and the food was cold.", "It was fine, I suppose."]
        cases.append({"task": "text-classification", "inputs": one, "kwargs": {"top_k": 2},
                      "output": plain(cl(one, top_k=2))})
        cases.append({"task": "text-classification", "inputs": many, "kwargs": {},
                      "output": plain(cl(many))})
    finally:
        shutil.rmtree(tmp)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "extra_references.json")
    with open(out, "w") as f:
        json.dump({"made_by": "pipelines/tests/data/make_extra_references.py", "cases": cases},
                  f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
