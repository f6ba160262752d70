"""Writes pipelines/tests/data/sampling_refs.json: rows of logits before and after transformers'
own logits processors, for the Rust test `generation::logits::tests::matches_transformers_processors`.

    python tools/make_sampling_refs.py   # needs torch, transformers, numpy

Each case: `processor`, `arg`, `ids` (seen ids or suppressed ids), `first` (begin-suppress:
whether the row is the first generated position), `input`, `output` (-inf written as "-inf").
"pipeline" cases run the processors a GenerationConfig asks for, in `_get_logits_processor`'s
order, and carry that `config` (as Kiln's GenerationConfig reads it).
"""

import json
import math
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers.generation.logits_process import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    SuppressTokensAtBeginLogitsProcessor,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

OUT = Path(__file__).resolve().parent.parent / "pipelines/tests/data/sampling_refs.json"
VOCAB = 40


def floats(t):
    return ["-inf" if math.isinf(x) and x < 0 else float(np.float32(x)) for x in t.tolist()]


def run(processor, row, ids):
    input_ids = torch.tensor([ids if ids else [0]], dtype=torch.long)
    return processor(input_ids, row[None, :].clone())[0]


def main():
    rng = np.random.default_rng(20261207)
    rows = [torch.tensor(rng.normal(0, 3, VOCAB).astype(np.float32)) for _ in range(4)]
    # Ties (top-k keeps every score equal to the k-th) and a row that already has -inf.
    rows.append(torch.tensor(rng.integers(-3, 4, VOCAB).astype(np.float32)))
    with_inf = rows[0].clone()
    with_inf[::5] = -math.inf
    rows.append(with_inf)
    cases = []

    def add(name, processor, arg, row, output, ids=None, first=None, config=None):
        case = {"name": name, "processor": processor, "arg": arg, "ids": ids or [], "input": floats(row),
                "output": floats(output)}
        if first is not None:
            case["first"] = first
        if config is not None:
            case["config"] = config
        cases.append(case)

    for r, row in enumerate(rows):
        seen = [int(i) for i in rng.integers(0, VOCAB, 12)] + [VOCAB - 1, VOCAB - 1]
        for penalty in (1.3, 0.7):
            out = run(RepetitionPenaltyLogitsProcessor(penalty), row, seen)
            add(f"row{r} repetition_penalty {penalty}", "repetition_penalty", penalty, row, out, ids=seen)
        for t in (0.7, 1.9):
            add(f"row{r} temperature {t}", "temperature", t, row, run(TemperatureLogitsWarper(t), row, seen))
        for k in (1, 5, 17, VOCAB + 3):
            add(f"row{r} top_k {k}", "top_k", k, row, run(TopKLogitsWarper(k), row, seen))
        # torch.sort is not stable: which of equal scores at the cut top-p removes is torch's
        # implementation detail, so the row with ties (row 4) gets no top-p cases.
        for p in (0.1, 0.5, 0.9, 0.99) if r != 4 else ():
            add(f"row{r} top_p {p}", "top_p", p, row, run(TopPLogitsWarper(p), row, seen))
        suppressed = [1, 3, 8, VOCAB - 1]
        add(f"row{r} suppress", "suppress", None, row,
            run(SuppressTokensLogitsProcessor(suppressed), row, seen), ids=suppressed)
        # begin_index 3: the row is the first generated position when input_ids has 3 ids.
        for first, prompt in ((True, [5, 6, 7]), (False, [5, 6, 7, 8])):
            out = run(SuppressTokensAtBeginLogitsProcessor(suppressed, 3), row, prompt)
            add(f"row{r} begin_suppress first={first}", "begin_suppress", None, row, out, ids=suppressed,
                first=first)

    # Whole chains, in `_get_logits_processor`'s order.
    configs = [
        {"do_sample": True, "temperature": 0.8, "top_k": 10, "top_p": 0.9, "repetition_penalty": 1.2,
         "suppress_tokens": [2], "begin_suppress_tokens": [4, 5]},
        {"do_sample": True, "temperature": 1.5, "top_k": 0, "top_p": 0.6, "repetition_penalty": 1.0},
        {"do_sample": False, "temperature": 0.5, "top_k": 3, "repetition_penalty": 1.5, "suppress_tokens": [0]},
    ]
    for c, config in enumerate(configs):
        for r, row in enumerate(rows[:3]):
            for first in (True, False):
                seen = [int(i) for i in rng.integers(0, VOCAB, 6)]
                prompt_len = len(seen) if first else len(seen) - 1
                procs = LogitsProcessorList()
                if config.get("repetition_penalty", 1.0) != 1.0:
                    procs.append(RepetitionPenaltyLogitsProcessor(config["repetition_penalty"]))
                if config.get("suppress_tokens"):
                    procs.append(SuppressTokensLogitsProcessor(config["suppress_tokens"]))
                if config.get("begin_suppress_tokens"):
                    procs.append(SuppressTokensAtBeginLogitsProcessor(config["begin_suppress_tokens"], prompt_len))
                if config["do_sample"]:
                    if config.get("temperature", 1.0) != 1.0:
                        procs.append(TemperatureLogitsWarper(config["temperature"]))
                    if config.get("top_k", 50) != 0:
                        procs.append(TopKLogitsWarper(config.get("top_k", 50)))
                    if config.get("top_p", 1.0) < 1.0:
                        procs.append(TopPLogitsWarper(config["top_p"]))
                input_ids = torch.tensor([seen], dtype=torch.long)
                out = procs(input_ids, row[None, :].clone())[0]
                add(f"config{c} row{r} first={first}", "pipeline", None, row, out, ids=seen, first=first,
                    config=config)

    OUT.write_text(json.dumps({
        "made_by": "tools/make_sampling_refs.py",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cases": cases,
    }, indent=None, separators=(",", ":")) + "\n")
    print(f"{OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
