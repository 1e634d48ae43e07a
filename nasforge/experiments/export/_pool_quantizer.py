"""An annotation pass for PT2E quantization: average pools keep their input's quantization.

Imported lazily (it needs ``torchao``, which the int8 extras bring).
"""

from __future__ import annotations

from typing import Any

import torch
from torchao.quantization.pt2e.quantizer import QuantizationAnnotation
from torchao.quantization.pt2e.quantizer import Quantizer
from torchao.quantization.pt2e.quantizer import SharedQuantizationSpec

__all__ = ["SharedPoolQuantizer"]


class SharedPoolQuantizer(Quantizer):
    """Annotates the average pools another quantizer left alone so that their int8 output
    keeps their input's scale and zero point.

    LiteRT's ``PT2EQuantizer`` does not annotate ``avg_pool2d`` (the MBConv shortcut's
    downsampling); the next conv's input quantize then gives the pool a scale of its own, and
    LiteRT's converter fuses ``dq -> avg_pool -> q`` into an int8 ``AVERAGE_POOL_2D``, whose
    kernel assumes equal input and output scales: the file then differs from the PT2E program
    by tens of quantization steps from that pool on. An average of int8 values is in their
    range, so sharing the input's quantization loses nothing (XNNPACK's quantizer shares them
    for its pools too).

    Compose it after the runtime's quantizer (``ComposableQuantizer([runtime, this])``).

    Args:
        act_qspec: the runtime quantizer's activation spec (for the pool's input edge).
    """

    def __init__(self, act_qspec: Any) -> None:
        super().__init__()
        self.act_qspec = act_qspec

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        for node in model.graph.nodes:
            if (node.op != "call_function" or node.target != torch.ops.aten.avg_pool2d.default
                    or "quantization_annotation" in node.meta):
                continue
            inp = node.args[0]
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map={inp: self.act_qspec},
                output_qspec=SharedQuantizationSpec((inp, node)), _annotated=True)
        return model

    def validate(self, model: torch.fx.GraphModule) -> None:
        """Nothing to check (the annotation only adds shared specs)."""
