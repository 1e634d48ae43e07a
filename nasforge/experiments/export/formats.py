"""Export formats: how a static model is written and how the written file is run back.

One :class:`ExportFormat` per format, registered by name in :data:`EXPORT_FORMATS`
(``onnx``, ``torchscript``, ``safetensors``). A format writes a model traced at a fixed input
shape and loads the file it wrote into a :data:`~nasforge.experiments.export.checks.Runner`
that runs on its deployment runtime: onnxruntime's CPUExecutionProvider, ``torch.jit.load``,
or a freshly built static model with the saved weights loaded strictly.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nasforge._extras import import_optional
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.experiments.export.checks import Runner
from nasforge.registry import Registry

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
    "OnnxFormat",
    "SafetensorsFormat",
    "TorchScriptFormat",
]

#: Builds a fresh static model of the exported arch (randomly initialised), for safetensors.
Rebuild = Callable[[], nn.Module]

ONNX_MIN_OPSET = 17


class ExportFormat(abc.ABC):
    """One export format.

    Call protocol: ``write(model, example, path)`` with ``model`` in eval mode, then
    ``load(path, rebuild, threads)`` returns a runner of the written file.
    """

    #: Registered name.
    name: ClassVar[str] = ""
    #: File suffix, with the dot.
    suffix: ClassVar[str] = ""

    @abc.abstractmethod
    def write(self, model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
        """Write ``model`` traced at ``example`` ((B, 3, H, W)) to ``path``."""

    @abc.abstractmethod
    def load(self, path: Path, rebuild: Rebuild, threads: int) -> Runner:
        """Load ``path`` on this format's runtime, with ``threads`` intra-op threads."""

    @abc.abstractmethod
    def runtime(self) -> str:
        """The runtime that runs and times the file, with its version."""


EXPORT_FORMATS: Registry[ExportFormat] = Registry("export format")


@contextmanager
def _quiet_tracing() -> Iterator[None]:
    # shapes are baked into the traced graph on purpose (fixed deployment input); the tracer's
    # warnings about Python ints from tensor shapes say exactly that
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx.*")
        yield


def _torch_runner(module: Callable[[torch.Tensor], torch.Tensor]) -> Runner:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run


class OnnxFormat(ExportFormat):
    """ONNX through the TorchScript-based exporter (``dynamo=False``), opset >= 17."""

    name = "onnx"
    suffix = ".onnx"

    def write(self, model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
        if opset < ONNX_MIN_OPSET:
            raise InvalidInputError(
                f"ONNX opset must be >= {ONNX_MIN_OPSET} (LayerNormalization, HardSwish), but "
                f"got {opset=}; pass --opset {ONNX_MIN_OPSET} or higher"
            )
        onnx = import_optional("onnx", extra="onnx", feature="ONNX export")
        with _quiet_tracing(), torch.no_grad():
            torch.onnx.export(
                model, (example,), str(path), dynamo=False, opset_version=opset,
                input_names=["input"], output_names=["logits"], do_constant_folding=True,
            )
        onnx.checker.check_model(str(path))

    def load(self, path: Path, rebuild: Rebuild, threads: int) -> Runner:
        ort = _import_onnxruntime()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        input_name = sess.get_inputs()[0].name

        def run(x: np.ndarray) -> np.ndarray:
            return sess.run(None, {input_name: x})[0]

        return run

    def runtime(self) -> str:
        ort = _import_onnxruntime()
        return f"onnxruntime {ort.__version__} CPUExecutionProvider"


def _import_onnxruntime() -> ModuleType:
    return import_optional("onnxruntime", extra="onnx", feature="checking an ONNX export")


class TorchScriptFormat(ExportFormat):
    """TorchScript through ``torch.jit.trace`` (fixed input shape) and ``torch.jit.save``."""

    name = "torchscript"
    suffix = ".pt"

    def write(self, model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
        with _quiet_tracing(), torch.no_grad():
            traced = torch.jit.trace(model, (example,), check_trace=False)
            torch.jit.save(traced, str(path))

    def load(self, path: Path, rebuild: Rebuild, threads: int) -> Runner:
        with _quiet_tracing():
            loaded = torch.jit.load(str(path), map_location="cpu").eval()
        return _torch_runner(loaded)

    def runtime(self) -> str:
        return f"torch {torch.__version__} (TorchScript)"


class SafetensorsFormat(ExportFormat):
    """The static model's ``state_dict`` as safetensors; run by a freshly built static model."""

    name = "safetensors"
    suffix = ".safetensors"

    def write(self, model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(path), metadata={"format": "pt", "producer": "nasforge"})

    def load(self, path: Path, rebuild: Rebuild, threads: int) -> Runner:
        from safetensors.torch import load_file

        model = rebuild().eval()
        try:
            model.load_state_dict(load_file(str(path)), strict=True)
        except RuntimeError as e:
            raise IncompatibleComponentsError(
                f"{path}: weights do not fit the static model of the exported arch: "
                f"{str(e).splitlines()[0]}; re-export from the same arch"
            ) from None
        return _torch_runner(model)

    def runtime(self) -> str:
        return f"torch {torch.__version__} (static model + safetensors)"


for _fmt in (OnnxFormat(), TorchScriptFormat(), SafetensorsFormat()):
    EXPORT_FORMATS.add(_fmt.name, _fmt)
