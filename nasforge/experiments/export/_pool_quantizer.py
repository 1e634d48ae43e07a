"""An annotation pass for PT2E quantization: ops that only move or average int8 values keep
their input's quantization (average pools for LiteRT, zero pads for ExecuTorch).

Imported lazily, by the int8 export only: it subclasses ``torchao``'s PT2E ``Quantizer``, and
torchao comes with the ``tflite`` and ``executorch`` extras, not with a plain install (without
it, importing this module is one line naming the extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import torch

from nasforge._extras import import_optional

if TYPE_CHECKING:
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation
    from torchao.quantization.pt2e.quantizer import Quantizer
    from torchao.quantization.pt2e.quantizer import SharedQuantizationSpec
else:
    _pt2e = import_optional("torchao.quantization.pt2e.quantizer", extra="tflite",
                            package="torchao", feature="int8 export (LiteRT or ExecuTorch)")
    QuantizationAnnotation = _pt2e.QuantizationAnnotation
    Quantizer = _pt2e.Quantizer
    SharedQuantizationSpec = _pt2e.SharedQuantizationSpec

__all__ = ["AVG_POOLS", "ZERO_PADS", "SharedPoolQuantizer"]

#: the average pools LiteRT's quantizer leaves alone (see :class:`SharedPoolQuantizer`)
AVG_POOLS: tuple[Any, ...] = (torch.ops.aten.avg_pool2d.default,)
#: constant pads (``F.pad``; ElasticViT's window attention pads its tokens to whole windows)
ZERO_PADS: tuple[Any, ...] = (torch.ops.aten.pad.default, torch.ops.aten.constant_pad_nd.default)


class SharedPoolQuantizer(Quantizer):
    """Annotates the ``targets`` another quantizer left alone so that their int8 output keeps
    their input's scale and zero point.

    * Average pools (:data:`AVG_POOLS`, for LiteRT): LiteRT's ``PT2EQuantizer`` does not
      annotate ``avg_pool2d`` (the MBConv shortcut's downsampling); the next conv's input
      quantize then gives the pool a scale of its own, and LiteRT's converter fuses
      ``dq -> avg_pool -> q`` into an int8 ``AVERAGE_POOL_2D``, whose kernel assumes equal
      input and output scales: the file then differs from the PT2E program by tens of
      quantization steps from that pool on. An average of int8 values is in their range, so
      sharing the input's quantization loses nothing (XNNPACK's quantizer shares them for its
      pools too).
    * Zero pads (:data:`ZERO_PADS`, for ExecuTorch): ``XNNPACKQuantizer`` does not annotate
      ``F.pad``, so a pad fed by an int8 linear stays ``dq -> pad -> (float consumer)``. The
      XNNPACK partitioner of executorch 1.5.1 takes ``constant_pad_nd`` in fp32 only (its
      input ``dq`` becomes an explicit int8 -> fp32 convert), and then XNNPACK's own lowering
      pass ``InsertPadQDQPass``, seeing a pad fed by a dequantize, gives the pad an implicit
      int8 output: an fp32 input and an int8 output, which XNNPACK's
      ``xnn_define_static_constant_pad`` refuses ("mismatching datatypes across input and
      output", ``xnn_status_invalid_parameter``), so the ``.pte`` fails to load. With the
      pad's output quantized as its input (``dq -> pad -> q``, the pass skips pads whose
      output is already quantized) the pad runs in fp32 inside the delegate between explicit
      converts, and it is exact: a zero pad adds the zero point, on the same grid. Only pads
      of value 0 are annotated (another value need not be on the input's grid).

    Compose it after the runtime's quantizer (``ComposableQuantizer([runtime, this])``).

    Args:
        act_qspec: the runtime quantizer's activation spec (for the op's input edge).
        targets: the aten ops to annotate (:data:`AVG_POOLS` by default).
    """

    def __init__(self, act_qspec: Any, targets: tuple[Any, ...] = AVG_POOLS) -> None:
        super().__init__()
        self.act_qspec = act_qspec
        self.targets = targets

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        for node in model.graph.nodes:
            if (node.op != "call_function" or node.target not in self.targets
                    or "quantization_annotation" in node.meta or not _shareable(node)):
                continue
            inp = node.args[0]
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map={inp: self.act_qspec},
                output_qspec=SharedQuantizationSpec((inp, node)), _annotated=True)
        return model

    def validate(self, model: torch.fx.GraphModule) -> None:
        """Nothing to check (the annotation only adds shared specs)."""


def _shareable(node: torch.fx.Node) -> bool:
    """A pool, or a constant pad of value 0 with no negative (cropping) amount."""
    if node.target not in ZERO_PADS:
        return True
    names = ("input", "pad", "mode", "value")
    args: dict[str, Any] = {**dict(zip(names, node.args, strict=False)), **node.kwargs}
    if node.target == torch.ops.aten.constant_pad_nd.default:
        args["mode"], args["value"] = "constant", node.args[2] if len(node.args) > 2 else 0.0
    amounts = args.get("pad") or ()
    return (args.get("mode", "constant") == "constant" and not args.get("value")
            and all(int(a) >= 0 for a in amounts))
