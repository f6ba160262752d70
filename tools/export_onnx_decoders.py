"""Export the tiny decoder fixtures as ONNX decoders with `past_key_values`, the way optimum's
`text-generation-with-past` task writes them, and greedy reference ids from ONNX Runtime.

  tests/models/onnx-decoders/NAME.onnx   inputs  input_ids [batch_size, sequence_length],
                                                 attention_mask [batch_size, past_sequence_length + sequence_length],
                                                 position_ids [batch_size, sequence_length],
                                                 past_key_values.N.key|value [batch_size, kv_heads, past_sequence_length, head_dim]
                                         outputs logits [batch_size, sequence_length, vocab],
                                                 present.N.key|value [batch_size, kv_heads, past_sequence_length + sequence_length, head_dim]
  tests/models/onnx-decoders/llama-h48-llama3-merged.onnx
                                         optimum's merged decoder: the same inputs plus
                                         use_cache_branch: bool[1], one `If` whose then-branch is
                                         the with-past graph and else-branch the graph without past
                                         (each branch keeping its own initializers)
  tests/models/onnx-decoders/refs.json   per model and prompt: ONNX Runtime's greedy ids (a loop
                                         feeding `present` back as `past`, zero-length past first;
                                         the merged model with use_cache_branch false first, as
                                         optimum runs it)

optimum-onnx pins transformers < 4.58, and the venv has transformers 5, so this exports the same
interface itself: `torch.onnx.export` (TorchScript exporter, opset 14) of a wrapper that builds a
`DynamicCache` from the flat past tensors, with optimum's input/output names and dynamic axes.

Usage: HF_HUB_OFFLINE=1 /work/venv/bin/python tools/export_onnx_decoders.py
"""
import json, os
import numpy as np, onnx, onnxruntime as ort, torch
from onnx import helper
from transformers import AutoModelForCausalLM, DynamicCache

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "tests", "models", "hf")
DST = os.path.join(ROOT, "tests", "models", "onnx-decoders")
MODELS = ["llama-h48-llama3", "gpt2-h48"]
PROMPTS = [[5], [17, 42, 7, 99, 3]]
STEPS = 16


class WithPast(torch.nn.Module):
    def __init__(self, m, layers):
        super().__init__()
        self.m, self.layers = m, layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        cache = DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.m(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                     past_key_values=cache, use_cache=True)
        present = []
        for i in range(self.layers):
            layer = out.past_key_values.layers[i]
            present += [layer.keys, layer.values]
        return (out.logits, *present)


class NoPast(torch.nn.Module):
    def __init__(self, m, layers):
        super().__init__()
        self.m, self.layers = m, layers

    def forward(self, input_ids, attention_mask, position_ids):
        out = self.m(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                     past_key_values=DynamicCache(), use_cache=True)
        present = []
        for i in range(self.layers):
            layer = out.past_key_values.layers[i]
            present += [layer.keys, layer.values]
        return (out.logits, *present)


def branch(path, prefix, outer):
    """The graph at `path` as an `If` branch: no inputs (the outer graph's are read by name),
    every other name prefixed so the two branches and the outer graph never clash."""
    g = onnx.load(path).graph
    ren = lambda n: n if (n in outer or n == "") else prefix + n
    for node in g.node:
        node.input[:] = [ren(n) for n in node.input]
        node.output[:] = [ren(n) for n in node.output]
        node.name = prefix + node.name
    for t in g.initializer:
        t.name = ren(t.name)
    for o in g.output:
        o.name = ren(o.name)
    del g.input[:]
    del g.value_info[:]
    return g


def export_merged(name):
    """optimum's merged decoder: `If(use_cache_branch)` over the with-past export and one
    without past, written next to the others as NAME-merged.onnx."""
    m = AutoModelForCausalLM.from_pretrained(os.path.join(SRC, name), attn_implementation="eager")
    m.eval()
    layers = m.config.num_hidden_layers
    nopast = os.path.join(DST, f"{name}-nopast.tmp.onnx")
    outs = ["logits"] + [f"present.{i}.{w}" for i in range(layers) for w in ("key", "value")]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    axes.update({n: {0: "batch_size", 2: "sequence_length"} for n in outs[1:]})
    ids = torch.randint(0, m.config.vocab_size, (2, 3))
    with torch.no_grad():
        torch.onnx.export(NoPast(m, layers), (ids, torch.ones(2, 3, dtype=torch.int64),
                          torch.arange(3).unsqueeze(0).repeat(2, 1)), nopast, dynamo=False,
                          opset_version=14, input_names=["input_ids", "attention_mask", "position_ids"],
                          output_names=outs, dynamic_axes=axes)
    with_past = onnx.load(os.path.join(DST, f"{name}.onnx"))
    outer = {i.name for i in with_past.graph.input}
    then_g = branch(os.path.join(DST, f"{name}.onnx"), "with_past.", outer)
    else_g = branch(nopast, "no_past.", outer)
    os.remove(nopast)
    node = helper.make_node("If", ["use_cache_branch"], outs, name="optimum::if",
                            then_branch=then_g, else_branch=else_g)
    flag = helper.make_tensor_value_info("use_cache_branch", onnx.TensorProto.BOOL, [1])
    g = helper.make_graph([node], "merged", list(with_past.graph.input) + [flag],
                          list(with_past.graph.output))
    model = helper.make_model(g, opset_imports=with_past.opset_import)
    model.ir_version = with_past.ir_version
    onnx.checker.check_model(model)
    path = os.path.join(DST, f"{name}-merged.onnx")
    onnx.save(model, path)
    return path


def export(name):
    m = AutoModelForCausalLM.from_pretrained(os.path.join(SRC, name), attn_implementation="eager")
    m.eval()
    c = m.config
    layers = c.num_hidden_layers
    heads = c.num_attention_heads
    kv_heads = getattr(c, "num_key_value_heads", None) or heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    batch, past_len, seq = 2, 3, 2
    ids = torch.randint(0, c.vocab_size, (batch, seq))
    mask = torch.ones(batch, past_len + seq, dtype=torch.int64)
    pos = torch.arange(past_len, past_len + seq).unsqueeze(0).repeat(batch, 1)
    past = [torch.randn(batch, kv_heads, past_len, head_dim) for _ in range(2 * layers)]
    names = [f"past_key_values.{i}.{w}" for i in range(layers) for w in ("key", "value")]
    outs = ["logits"] + [f"present.{i}.{w}" for i in range(layers) for w in ("key", "value")]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    axes.update({n: {0: "batch_size", 2: "past_sequence_length"} for n in names})
    axes.update({n: {0: "batch_size", 2: "past_sequence_length + sequence_length"} for n in outs[1:]})
    path = os.path.join(DST, f"{name}.onnx")
    with torch.no_grad():
        torch.onnx.export(WithPast(m, layers), (ids, mask, pos, *past), path, dynamo=False,
                          opset_version=14, input_names=["input_ids", "attention_mask", "position_ids", *names],
                          output_names=outs, dynamic_axes=axes)
    return path, layers, kv_heads, head_dim


def greedy(path, layers, kv_heads, head_dim, prompt, merged=False):
    """ONNX Runtime's greedy ids for one prompt: prefill with an empty past, then one token per
    step, `present` fed back as `past` (the merged model: `use_cache_branch` false first)."""
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    past = {f"past_key_values.{i}.{w}": np.zeros((1, kv_heads, 0, head_dim), np.float32)
            for i in range(layers) for w in ("key", "value")}
    ids, start, out = list(prompt), 0, []
    tokens = list(prompt)
    for _ in range(STEPS):
        n = len(tokens)
        feeds = {"input_ids": np.array([tokens], np.int64),
                 "attention_mask": np.ones((1, start + n), np.int64),
                 "position_ids": np.arange(start, start + n, dtype=np.int64)[None], **past}
        if merged:
            feeds["use_cache_branch"] = np.array([start > 0])
        res = s.run(None, feeds)
        nxt = int(np.argmax(res[0][0, -1]))
        out.append(nxt)
        past = {k: v for k, v in zip(past.keys(), res[1:])}
        start += n
        tokens = [nxt]
    return out


def main():
    os.makedirs(DST, exist_ok=True)
    torch.manual_seed(0)
    refs = {}
    for name in MODELS:
        path, layers, kv_heads, head_dim = export(name)
        refs[name] = [{"prompt": p, "ids": greedy(path, layers, kv_heads, head_dim, p)} for p in PROMPTS]
        print(name, refs[name])
        if name.startswith("llama"):
            merged = export_merged(name)
            refs[f"{name}-merged"] = [{"prompt": p, "ids": greedy(merged, layers, kv_heads, head_dim, p, True)}
                                      for p in PROMPTS]
            assert refs[f"{name}-merged"] == refs[name], refs
    with open(os.path.join(DST, "refs.json"), "w") as f:
        json.dump(refs, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
