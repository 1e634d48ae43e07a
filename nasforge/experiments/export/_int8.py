"""The int8 export formats: ``tflite-int8`` (LiteRT) and ``executorch-int8`` (ExecuTorch,
XNNPACK delegate).

An :class:`Int8Format` is written from a model that is already quantized
(:func:`~nasforge.experiments.export._quantize.quantize_pt2e` with the format's own
:meth:`~Int8Format.quantizer`): the request calibrates, the format converts and runs back.
The written file is checked against the quantized model run in PyTorch (the int8 reference),
not against the fp32 model, to :data:`INT8_STEPS` steps of the output's quantization scale
(:func:`int8_tolerance`); the accuracy change against fp32 is measured on the validation split
by the request (:mod:`.request`). What a quantizer leaves in float32 (softmax, the attention
matmuls, LayerNorm, ...) runs in float between explicit dequantize / quantize ops and is listed
in the calibration report (``ops_left_fp32``), never a reason to fail the export.

* ``tflite-int8``: LiteRT's ``PT2EQuantizer`` (symmetric, int8 weights per output channel,
  int8 activations) composed with
  :class:`~nasforge.experiments.export._pool_quantizer.SharedPoolQuantizer` (average pools
  keep their input's scale, as LiteRT's int8 pool kernel assumes), converted by
  ``litert-torch`` in its static int8 mode; the file takes and gives int8 tensors, which the
  runner quantizes and dequantizes with the file's own scales. Extra ``nasforge[tflite]``.
* ``executorch-int8``: ExecuTorch's ``XNNPACKQuantizer`` (the same scheme, tensor adds left
  in float32 as LiteRT's quantizer leaves them: :data:`EXECUTORCH_FLOAT_OPS`) composed with
  :class:`~nasforge.experiments.export._pool_quantizer.SharedPoolQuantizer` for zero pads
  (a pad keeps its input's scale; XNNPACK refuses a pad with fp32 input and int8 output),
  its float LayerNorms rewritten from ops XNNPACK delegates (as the fp32 lowering prepares
  them), lowered with the XNNPACK partitioner to a ``.pte`` run by ``executorch.runtime``. Extra
  ``nasforge[executorch]``.

Example:
    >>> from nasforge.experiments import EXPORT_FORMATS
    >>> EXPORT_FORMATS.get("tflite-int8").suffix
    '.tflite'
"""

from __future__ import annotations

import abc
import copy
from pathlib import Path
from typing import Any
from typing import cast

import numpy as np
import torch
from torch import nn

from nasforge._extras import import_optional
from nasforge.errors import InvalidInputError
from nasforge.experiments.export._executorch import ExecutorchFormat
from nasforge.experiments.export.checks import Runner
from nasforge.experiments.export.formats import EXPORT_FORMATS
from nasforge.experiments.export.formats import ExportFormat
from nasforge.experiments.export.formats import Rebuild

__all__ = ["ExecutorchInt8Format", "Int8Format", "TfliteInt8Format", "int8_tolerance"]

#: An int8 file is checked against the PT2E program run in PyTorch (the same int8 grid), not
#: against fp32. The two agree on every scale and zero point but not bit for bit: PyTorch
#: computes each ``dq -> op -> q`` in float32 and rounds once, the runtime's integer kernels
#: requantize with fixed-point multipliers and approximate hardswish / sigmoid with their own
#: rounding, so an op's int8 output may differ by 1 step, and such 1-step differences add up
#: along the network's depth. Measured (benchmarks/int8_checks.py, layer by layer for LiteRT
#: on elasticvit min): 1 step after the stem, up to 8 in the last blocks; at the logits 2 to 4
#: steps with trained weights and up to 9 with random weights, whose tiny logits sit at the
#: observers' smallest scale (2**-12). The allowed difference is therefore this many steps of
#: the output's quantization scale: a wrong scale, a missing requantization or an op
#: quantized by one side only moves them by more than a dozen steps (the shortcut average pool
#: before :class:`~nasforge.experiments.export._pool_quantizer.SharedPoolQuantizer`:
#: elasticvit min, 32 steps at the pool, 18 at the logits with random weights, 17 (0.68)
#: with the quick supernet's).
INT8_STEPS = 12
#: when the output is not quantized (no step to count in), this share of max|logit|
INT8_RTOL = 0.1


def int8_tolerance(calibration: dict[str, Any]) -> tuple[float, float]:
    """``(atol, rtol)`` of the check of an int8 file against its PT2E program (see
    :data:`INT8_STEPS`).

    Args:
        calibration: :attr:`~nasforge.experiments.export._quantize.QuantizedModule.calibration`
            (its ``output_step``: the output's quantization scale, ``None`` when float).

    Example:
        >>> int8_tolerance({"output_step": 0.05})
        (0.6000000000000001, 0.0)
        >>> int8_tolerance({"output_step": None})
        (0.0, 0.1)
    """
    step = calibration.get("output_step")
    if step is None:
        return 0.0, INT8_RTOL
    return INT8_STEPS * float(step), 0.0


class Int8Format(ExportFormat):
    """An export format that writes a post-training int8 model (see the module docstring)."""

    #: the fp32 format of the same runtime (for the size and latency ratios)
    fp32_format: str = ""
    #: whether ``convert_pt2e`` folds the weights' quantize ops (LiteRT's converter: no)
    fold_quantize: bool = True

    @abc.abstractmethod
    def quantizer(self) -> Any:
        """A fresh PT2E quantizer of this runtime, configured (symmetric per-channel int8)."""


class TfliteInt8Format(Int8Format):
    """``.tflite`` int8 through ``litert-torch``'s PT2E quantizer; run back by LiteRT."""

    name = "tflite-int8"
    suffix = ".tflite"
    fp32_format = "tflite"
    fold_quantize = False

    def quantizer(self) -> Any:
        import_optional("litert_torch", extra="tflite", feature="int8 TFLite export",
                        package="litert-torch")
        from torchao.quantization.pt2e.quantizer import ComposableQuantizer

        from nasforge.experiments.export._pool_quantizer import SharedPoolQuantizer

        base = self._litert_quantizer()
        return ComposableQuantizer([base, SharedPoolQuantizer(
            base.global_config.input_activation)])

    @staticmethod
    def _litert_quantizer() -> Any:
        """LiteRT's own ``PT2EQuantizer`` (symmetric, per channel); the converter's config."""
        from litert_torch.quantize import pt2e_quantizer as pq

        return pq.PT2EQuantizer().set_global(
            pq.get_symmetric_quantization_config(is_per_channel=True))

    def write(self, model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
        import litert_torch
        from litert_torch.quantize.quant_config import QuantConfig

        graph = getattr(model, "quantized", model)
        try:
            with torch.no_grad():
                edge = litert_torch.convert(graph, (example,), quant_config=QuantConfig(
                    pt2e_quantizer=self._litert_quantizer()))
        except Exception as e:  # the converter raises many kinds; one line, named
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise InvalidInputError(f"litert-torch could not convert the int8 model: "
                                    f"{type(e).__name__}: {first}") from None
        path.write_bytes(bytes(edge.model_content()))

    def load(self, path: Path, rebuild: Rebuild, threads: int) -> Runner:
        return int8_interpreter(path, threads)

    def runtime(self) -> str:
        from nasforge.hardware_models.profiling._litert import litert_versions

        return (f"LiteRT {litert_versions()['ai-edge-litert']} (ai-edge-litert) interpreter, "
                "XNNPACK delegate, int8")


def int8_interpreter(path: Path, threads: int) -> Runner:
    """A LiteRT runner of an int8 ``.tflite`` file: float32 in, float32 logits out (the
    file's int8 input quantized and its int8 output dequantized with the file's scales).

    Raises:
        MissingDependencyError: ``ai-edge-litert`` is not installed.
    """
    import_optional("ai_edge_litert", extra="tflite", feature="int8 TFLite export",
                    package="ai-edge-litert")
    from ai_edge_litert.interpreter import Interpreter

    ip = Interpreter(model_content=path.read_bytes(), num_threads=threads)
    ip.allocate_tensors()
    inp, out = ip.get_input_details()[0], ip.get_output_details()[0]

    def run(x: np.ndarray) -> np.ndarray:
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            x = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
        ip.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=inp["dtype"]))
        ip.invoke()
        y = np.array(ip.get_tensor(out["index"]))
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    return run


#: the ops ``executorch-int8`` leaves in float32 although ``XNNPACKQuantizer`` would quantize
#: them: the tensor ``add`` (residual connections, the attention bias). XNNPACK's int8 add
#: requantizes with fixed-point multipliers and rounds some outputs 1 step away from the PT2E
#: program's ``dq -> add -> q``; a ViT's residual stream is requantized at every block, and
#: each following LayerNorm of that coarse stream (its steps are large against its spread)
#: multiplies such a step several times over. Measured (benchmarks/int8_checks.py, random
#: weights, layer by layer on elasticvit_efficient max): at most 2 steps before the first
#: transformer block, 9 after its first LayerNorm and linear, 30 at its residual add, 46 at
#: the logits (elasticvit_efficient random1: 56, elasticvit random0 with the quick
#: supernet's weights: 14), against 12 for LiteRT, whose quantizer leaves adds in float.
#: With the adds in float32 (dequantize, add, quantize at the next int8 op) the same .pte
#: differs from its PT2E program by 6 steps; its difference to fp32 goes from 0.023 to 0.026
#: (LiteRT: 0.031). Multiplications stay int8 (they are not the cause: 7 steps with both in
#: float).
EXECUTORCH_FLOAT_OPS: tuple[Any, ...] = (torch.ops.aten.add.Tensor,)


def _not_an_add(node: torch.fx.Node) -> bool:
    """``XNNPACKQuantizer``'s filter: annotate every op but those of EXECUTORCH_FLOAT_OPS."""
    return node.target not in EXECUTORCH_FLOAT_OPS


class ExecutorchInt8Format(ExecutorchFormat, Int8Format):
    """``.pte`` int8: XNNPACKQuantizer, lowered with the XNNPACK partitioner as the
    ``executorch`` format lowers (its ``write`` and ``load``, and the ops left outside the
    delegate); run back by ``executorch.runtime``."""

    name = "executorch-int8"
    suffix = ".pte"
    fp32_format = "executorch"

    def quantizer(self) -> Any:
        import_optional("executorch", extra="executorch", feature="int8 ExecuTorch export")
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantizer import ComposableQuantizer

        from nasforge.experiments.export._pool_quantizer import ZERO_PADS
        from nasforge.experiments.export._pool_quantizer import SharedPoolQuantizer

        base = XNNPACKQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=True))
        base.set_filter_function(_not_an_add)  # see EXECUTORCH_FLOAT_OPS
        # zero pads keep their input's int8 grid, else XNNPACK refuses the lowered pad
        # (see SharedPoolQuantizer)
        return ComposableQuantizer([base, SharedPoolQuantizer(
            base.global_config.input_activation, targets=ZERO_PADS)])

    def write(self, model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
        from nasforge.hardware_models.profiling._executorch_prep import decompose_layer_norms

        # the prepared lowering's LayerNorm, on a copy (the PT2E program stays the reference):
        # the float LayerNorms between dequantize and quantize become ops XNNPACK delegates
        graph = copy.deepcopy(getattr(model, "quantized", model))
        if isinstance(graph, torch.fx.GraphModule):
            decompose_layer_norms(graph)
        # exported graphs refuse eval(): hand the lowering an exported program instead
        program = torch.export.export(graph, (example,))
        super().write(cast(Any, program), example, path, opset)

    def runtime(self) -> str:
        return super().runtime().replace("fp32", "int8")


EXPORT_FORMATS.add(TfliteInt8Format.name, TfliteInt8Format())
EXPORT_FORMATS.add(ExecutorchInt8Format.name, ExecutorchInt8Format())
