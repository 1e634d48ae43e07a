"""The ``onnxruntime`` backend: the module exported to ONNX, run by an ``InferenceSession``."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nasforge._extras import import_optional
from nasforge.hardware_models.profiling.base import RUNNERS
from nasforge.hardware_models.profiling.base import Runner

__all__ = ["OPSET", "OnnxRuntimeRunner", "export_onnx"]

OPSET = 17


def export_onnx(module: nn.Module, shape: tuple[int, ...], path: Path | io.BytesIO) -> None:
    """Export ``module`` (eval mode, fixed input ``shape``) to ONNX opset 17.

    Args:
        module: maps (1, C, H, W) to its output.
        shape: the input shape.
        path: file or buffer to write.
    """
    module = module.eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # the TorchScript exporter writes to a buffer too; its stub only names paths
        torch.onnx.export(module, (x,), path,  # type: ignore[arg-type]
                          opset_version=OPSET, input_names=["x"], output_names=["y"],
                          dynamo=False)


@RUNNERS.register("onnxruntime")
class OnnxRuntimeRunner(Runner):
    """ONNX Runtime, CPU provider, ``intra_op_num_threads = threads``."""

    name = "onnxruntime"

    def runtime(self) -> str:
        ort = import_optional("onnxruntime", extra="onnx", feature="the onnxruntime backend")

        return (f"onnxruntime {ort.__version__} CPU (ONNX opset {OPSET}, all graph "
                f"optimisations), fp32, batch 1, {self.threads} thread"
                f"{'s' if self.threads > 1 else ''}, {self.clock} clock")

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        ort = import_optional("onnxruntime", extra="onnx", feature="the onnxruntime backend")

        buf = io.BytesIO()
        export_onnx(module, shape, buf)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
        feed = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        return lambda: sess.run(None, feed)
