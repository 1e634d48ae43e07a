"""Post-training int8 quantization (PT2E) of a static model, and what it costs in accuracy.

Paper: Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", https://arxiv.org/abs/1712.05877 (int8 weights per output
channel, int8 activations per tensor, scales from observed ranges on calibration images).

The steps (PyTorch 2 export quantization, ``torchao.quantization.pt2e``): the model is exported
at its fixed deployment input ``(1, 3, S, S)`` (:func:`torch.export.export`), BatchNorms that
follow a linear layer are folded into it (:func:`~nasforge.experiments.export._qgraph.
fold_linear_batchnorm`; the quantizers fuse conv + BN only), a runtime's
quantizer annotates it (LiteRT's ``PT2EQuantizer`` or ExecuTorch's ``XNNPACKQuantizer``, both
symmetric per-channel int8), observers are inserted (``prepare_pt2e``), the calibration images
run through it one at a time (:func:`calibration_images`: ``N`` batches of the training split,
un-augmented, at the subnet's own size), and ``convert_pt2e`` turns the observed ranges into
quantize/dequantize pairs. The result (:class:`QuantizedModule`) runs in PyTorch as the int8
model will run on the device (it is the reference the written file is checked against), and
:func:`top1` scores any runner on the validation split, so that the int8 file's accuracy is
compared with the fp32 model's on the same images.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import InvalidInputError
from nasforge.experiments.export._qgraph import fold_linear_batchnorm
from nasforge.experiments.export._qgraph import fp32_ops
from nasforge.experiments.export._qgraph import output_step

if TYPE_CHECKING:
    from nasforge.data import BaseImageSource

__all__ = ["QuantizedModule", "calibration_images", "quantize_pt2e", "top1"]


class QuantizedModule(nn.Module):
    """A ``convert_pt2e`` graph as a module: x (1, 3, S, S) float32 -> logits (1, classes).

    Exported graphs cannot switch train/eval mode (torch refuses ``.eval()`` on them); this
    wrapper keeps the mode flag only, so that the export steps may call ``eval()`` / ``train()``.

    Attributes:
        quantized: the converted graph module (quantize / dequantize pairs around int8 ops).
        calibration: how it was calibrated (``images``, ``input_size``, ``quantizer``) and
            what came out: ``folded_batchnorms``, ``output_step`` (the logits' quantization
            scale, ``None`` if float) and ``ops_left_fp32`` (op name -> count, see
            :func:`~nasforge.experiments.export._qgraph.fp32_ops`).
    """

    def __init__(self, graph: nn.Module, calibration: dict[str, Any]) -> None:
        super().__init__()
        self.quantized = graph
        self.calibration = dict(calibration)

    def train(self, mode: bool = True) -> QuantizedModule:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.quantized(x)
        return out


def quantize_pt2e(model: nn.Module, example: torch.Tensor, images: Iterable[torch.Tensor],
                  quantizer: Any, *, name: str = "", fold_quantize: bool = True
                  ) -> QuantizedModule:
    """Post-training int8 quantization of ``model`` at ``example``'s shape.

    Args:
        model: a static model; x: (1, 3, S, S) -> logits.
        example: the fixed deployment input (1, 3, S, S).
        images: the calibration images, each (1, 3, S, S) and normalised as the model expects.
        quantizer: a PT2E quantizer (LiteRT's ``PT2EQuantizer``, ExecuTorch's
            ``XNNPACKQuantizer``), configured.
        name: the quantizer's name, recorded in :attr:`QuantizedModule.calibration`.
        fold_quantize: fold the weights' quantize ops into int8 constants (ExecuTorch);
            LiteRT's converter wants them unfolded (``False``).

    Returns:
        The converted model.

    Raises:
        InvalidInputError: ``images`` holds no image.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    model = model.eval()
    with torch.no_grad():
        graph = torch.export.export(model, (example,)).module()
        folded = fold_linear_batchnorm(graph)
        prepared = prepare_pt2e(graph, quantizer)
        n = 0
        for x in images:
            prepared(x)
            n += 1
        if n == 0:
            raise InvalidInputError(
                "the int8 calibration set has 0 images; pass --data with training images and "
                "--calib-batches >= 1")
        converted = convert_pt2e(prepared, fold_quantize=fold_quantize)
    step = output_step(converted)
    return QuantizedModule(converted, {
        "images": n, "input_size": int(example.shape[-1]), "quantizer": name,
        "folded_batchnorms": folded, "output_step": step, "ops_left_fp32": fp32_ops(converted)})


def calibration_images(data: BaseImageSource, size: int, batches: int, batch_size: int = 8,
                       seed: int = 0) -> list[torch.Tensor]:
    """``batches`` x ``batch_size`` un-augmented training images, normalised, at ``size`` px,
    one (1, 3, size, size) tensor each (the deployment shape).

    Raises:
        InvalidInputError: ``batches < 1`` or the data yields no training image.
    """
    from nasforge.data import normalize
    from nasforge.data import resize_batch

    if batches < 1:
        raise InvalidInputError(f"int8 calibration needs --calib-batches >= 1, got {batches}: "
                                "a calibration set of 0 images")
    out: list[torch.Tensor] = []
    for x in data.first_recal_batches(batch_size, seed, batches):
        xs = resize_batch(normalize(x, torch.device("cpu"), data.mean or (), data.std or ()),
                          size)
        out.extend(xs[j:j + 1].contiguous() for j in range(len(xs)))
    if not out:
        raise InvalidInputError(f"the int8 calibration set from {data.name} has 0 images; "
                                "give --data with training images")
    return out


def top1(run: Callable[[np.ndarray], np.ndarray], data: BaseImageSource, size: int,
         limit: int | None = None) -> tuple[float, int]:
    """Top-1 of ``run`` (x (1, 3, size, size) float32 -> logits) on the validation split,
    one image at a time (the deployment shape).

    Returns:
        ``(top1, images)``.
    """
    from nasforge.data import normalize
    from nasforge.data import resize_batch

    correct = n = 0
    for x, y in data.val_batches(64):
        xs = resize_batch(normalize(x, torch.device("cpu"), data.mean or (), data.std or ()),
                          size).numpy()
        for j in range(len(y)):
            if limit is not None and n >= limit:
                return correct / max(n, 1), n
            logits = run(np.ascontiguousarray(xs[j:j + 1]))
            correct += int(int(np.argmax(logits[0])) == int(y[j]))
            n += 1
    return correct / max(n, 1), n
