"""Kiln from Python: compile neural-network models ahead of time and run them on numpy arrays.

    import kiln
    model = kiln.compile("all-MiniLM-L6-v2")          # a .kir, .onnx or Hugging Face folder
    out = model.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
    out["last_hidden_state"]                          # a numpy array

- ``compile(model_path, out=None, target="cpu", optimize=True)`` compiles a model for this CPU
  (and writes the ``.kiln`` artifact to ``out`` when given); ``load(artifact_path)`` loads one.
- ``Model.run(inputs)`` / ``model(**inputs)`` take numpy arrays of the inputs' dtypes and return
  a dict of numpy arrays; the GIL is released while the model runs, so threads sharing one
  ``Model`` run in parallel. ``Model.inputs`` / ``Model.outputs`` list ``TensorInfo(name, dtype,
  shape)`` with symbolic dims as strings.
- ``inspect(path, stage=None)`` returns the dict ``kiln inspect --format json`` prints.
- Errors raise ``KilnError`` (``InputError`` for inputs that do not fit) with the message the
  ``kiln`` command line prints.

The implementation is the Rust extension module ``kiln._kiln``.
"""

from ._kiln import (
    InputError,
    KilnError,
    Model,
    TensorInfo,
    __version__,
    compile,
    inspect,
    load,
)

__all__ = [
    "InputError",
    "KilnError",
    "Model",
    "TensorInfo",
    "__version__",
    "compile",
    "inspect",
    "load",
]
