"""Check tests/models/pipelines/minilm-question-answering/reference.json against the real
QuestionAnsweringPipeline of transformers 4.57.6 (transformers 5 no longer has it; the references are
made by a reproduction of it in tools/make_pipeline_refs.py). Exits non-zero on any difference.

Needs transformers 4.57.6 beside torch, e.g. an overlay on the project's environment:
  python -m venv /tmp/venv-tf4
  /tmp/venv-tf4/bin/pip install transformers==4.57.6 "tokenizers>=0.22,<=0.23.0" "huggingface_hub<1.0"
  echo "$(python -c 'import site; print(site.getsitepackages()[0])')" \
      > /tmp/venv-tf4/lib/python3.11/site-packages/zz_base.pth
  HF_HUB_OFFLINE=1 /tmp/venv-tf4/bin/python tools/check_qa_refs_4_57.py [FIXTURE_DIR]"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertForQuestionAnswering, pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    ROOT, "tests", "models", "pipelines", "minilm-question-answering")
MINILM = os.path.join(os.environ.get("KILN_SHARED", os.path.join(ROOT, "..", "shared")),
                      "models", "all-MiniLM-L6-v2")

assert transformers.__version__.startswith("4."), "run this with transformers 4.57.x"
transformers.logging.set_verbosity_error()
torch.set_num_threads(2)
model = BertForQuestionAnswering.from_pretrained(MINILM).eval()
missing, unexpected = model.load_state_dict(load_file(os.path.join(FIXTURE, "head.safetensors")),
                                            strict=False)
assert not unexpected and all(k.startswith("bert.") for k in missing), (missing, unexpected)
qa = pipeline("question-answering", model=model, tokenizer=AutoTokenizer.from_pretrained(MINILM))
bad = 0
for i, case in enumerate(json.load(open(os.path.join(FIXTURE, "reference.json")))["cases"]):
    out = json.loads(json.dumps(qa(**case["inputs"], **case["kwargs"])))
    if out != case["output"]:
        bad += 1
        print(f"case {i}: transformers {transformers.__version__} gives {out}, reference {case['output']}")
print(f"{len(json.load(open(os.path.join(FIXTURE, 'reference.json')))['cases']) - bad} passed, {bad} failed")
sys.exit(1 if bad else 0)
