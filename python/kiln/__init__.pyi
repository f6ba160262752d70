"""Type stubs of the kiln package (its API is the Rust extension module kiln._kiln)."""

import os
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Union, final

import numpy as np
import numpy.typing as npt

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

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_Size = Union[int, str]

class KilnError(Exception):
    """An error reported by Kiln; the message is the one line the `kiln` command prints after
    `error: `."""

class InputError(KilnError):
    """Inputs that do not fit the model: an unknown or missing name, a wrong dtype or shape, a
    dtype Kiln has no type for, or values outside what the model accepts."""

class TensorInfo(NamedTuple):
    """A model input or output: its name, numpy dtype name (``"float32"``, ``"int64"``, ...,
    ``"bfloat16"``) and shape (ints for known dims, strings for symbolic ones such as
    ``"batch"``)."""

    name: str
    dtype: str
    shape: List[Union[int, str]]

@final
class Model:
    """A compiled model, ready to run. Share one ``Model`` between threads: each call runs in
    its own session, with the GIL released."""

    @property
    def inputs(self) -> List[TensorInfo]:
        """The model's inputs, in declaration order."""
    @property
    def outputs(self) -> List[TensorInfo]:
        """The model's outputs, in declaration order."""
    @property
    def path(self) -> str:
        """The file the model came from: the compiled model, or the artifact loaded."""
    def run(self, inputs: Mapping[str, npt.ArrayLike]) -> Dict[str, np.ndarray]:
        """Runs the model on input name → numpy array (of the input's dtype; other array-likes
        go through ``numpy.asarray``) and returns output name → numpy array, in declaration
        order. bf16 values travel as ``uint16`` bits (or ml_dtypes ``bfloat16`` inputs).
        Raises ``InputError`` for inputs that do not fit, ``KilnError`` for other failures."""
    def __call__(self, **inputs: npt.ArrayLike) -> Dict[str, np.ndarray]:
        """``model(input_ids=...)`` is ``model.run({"input_ids": ...})``."""

def compile(
    model_path: _Path,
    out: Optional[_Path] = None,
    target: str = "cpu",
    optimize: bool = True,
    *,
    threads: Optional[int] = None,
    max_memory: Optional[_Size] = None,
) -> Model:
    """Compiles a model (a ``.kir`` file, an ``.onnx`` file or a Hugging Face folder) for this
    machine's CPU and returns it loaded. With ``out``, the ``.kiln`` artifact is also written
    there (atomically, as ``kiln compile -o`` does). ``optimize=False`` is ``-O0``."""

def load(
    artifact_path: _Path,
    threads: Optional[int] = None,
    max_memory: Optional[_Size] = None,
) -> Model:
    """Loads a ``.kiln`` artifact (any other model kind is compiled in memory first, as
    ``kiln run`` does). ``threads``: worker threads (default ``KILN_THREADS``, else every core).
    ``max_memory``: the most a run may allocate, in bytes or as a size such as ``"512MB"``."""

def inspect(path: _Path, stage: Optional[str] = None) -> Dict[str, Any]:
    """What ``kiln inspect PATH [--stage STAGE] --format json`` prints, as a dict. ``stage``:
    ``"imported"`` (the default for models), ``"optimized"`` or ``"kernels"``; an artifact
    without a stage shows its header, sections and plan."""
