"""Passes over a PT2E graph: what the int8 quantization does not do by itself, and what it did.

* :func:`fold_linear_batchnorm` folds an eval-mode BatchNorm that follows a linear layer into
  it before the quantizer annotates the graph (the quantizers fuse conv + BN only).
* :func:`fp32_ops` lists the compute ops a quantizer left in float32 (the export report's
  "ops left fp32"): ops the runtime then runs in float between explicit dequantize / quantize.
* :func:`output_step` is the quantization step of the model's output (the unit of the int8
  check's tolerance).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from typing import cast

import torch

__all__ = ["fold_linear_batchnorm", "fp32_ops", "output_step"]

_QUANTIZE = ("quantize_per_tensor", "quantize_per_channel", "choose_qparams")
_DEQUANTIZE = ("dequantize_per_tensor", "dequantize_per_channel")
#: ops that move or relabel values without computing (never "left fp32")
_PLUMBING = ("getitem", "view", "reshape", "transpose", "permute", "flatten", "contiguous",
             "clone", "expand", "unsqueeze", "squeeze", "slice", "select", "dropout",
             "_assert", "sym_size", "alias", "detach", "cat", "index")
#: activations the backends fuse into the int8 conv / linear / add before them
_FUSED = ("relu", "relu_", "hardtanh", "hardtanh_", "clamp")


def _name(node: torch.fx.Node) -> str:
    target = node.target
    return str(getattr(target, "__name__", target))


def _is(node: Any, names: tuple[str, ...]) -> bool:
    return (isinstance(node, torch.fx.Node) and node.op == "call_function"
            and _name(node).split(".")[0] in names)


def fold_linear_batchnorm(graph: torch.fx.GraphModule) -> int:
    """Fold every eval-mode ``BatchNorm1d`` that follows a ``Linear`` into it, in place.

    The quantizers fuse conv + BN but not linear + BN (the ElasticViT head's ``fc0 -> bn``):
    left alone, the BN stays fp32 between an int8 linear and the next op, and ExecuTorch's
    XNNPACK partitioner rewrites it into a 1x1 depthwise conv with fp32 weights fed by the
    int8 linear's output, which its lowering refuses ("Weight and Input should both be
    quantized"). The BN may follow the linear directly, (B, F), or through the transpose that
    puts its features on dim 1, (B, N, F) -> (B, F, N). Folding is exact in eval mode:
    ``W' = W * s[:, None]``, ``b' = (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``.

    Args:
        graph: an exported graph module (``torch.export.export(...).module()``) whose
            parameters are ``get_attr`` nodes; the original model's tensors are not changed.

    Returns:
        How many BatchNorms were folded.
    """
    folded = 0
    for bn in list(graph.graph.nodes):
        if bn.op != "call_function" or bn.target != torch.ops.aten.batch_norm.default:
            continue
        lin = _linear_before(bn)
        if lin is None or bn.args[5] is not False:
            continue
        w, b = _attr(graph, lin.args[1]), _attr(graph, lin.args[2] if len(lin.args) > 2 else None)
        gamma, beta, mean, var = (_attr(graph, a) for a in bn.args[1:5])
        if w is None or mean is None or var is None:
            continue
        s = (gamma if gamma is not None else torch.ones_like(var)) / torch.sqrt(
            var + float(bn.args[7]))
        new_w = w * s[:, None]
        new_b = ((b if b is not None else torch.zeros_like(mean)) - mean) * s + (
            beta if beta is not None else torch.zeros_like(mean))
        with graph.graph.inserting_before(lin):
            args = [lin.args[0]]
            for kind, t in (("weight", new_w), ("bias", new_b)):
                name = f"_folded_bn_{folded}_{kind}"
                graph.register_buffer(name, t.detach().clone())
                args.append(graph.graph.get_attr(name))
        lin.args = tuple(args)
        bn.replace_all_uses_with(bn.args[0])
        graph.graph.erase_node(bn)
        folded += 1
    if folded:
        graph.graph.eliminate_dead_code()
        graph.recompile()
    return folded


def _linear_before(bn: torch.fx.Node) -> torch.fx.Node | None:
    """The ``aten.linear`` whose features ``bn`` normalises (directly or through the transpose
    of a (B, N, F) output to (B, F, N)), used by ``bn`` alone; else ``None``."""
    node = bn.args[0]
    if not isinstance(node, torch.fx.Node) or len(node.users) != 1:
        return None
    if node.target == torch.ops.aten.transpose.int:
        rank = len(node.meta["val"].shape) if "val" in node.meta else 0
        if rank != 3 or {int(cast(int, d)) % 3 for d in node.args[1:3]} != {1, 2}:
            return None
        node = node.args[0]
        if not isinstance(node, torch.fx.Node) or len(node.users) != 1:
            return None
    return node if node.target == torch.ops.aten.linear.default else None


def _attr(graph: torch.fx.GraphModule, node: Any) -> torch.Tensor | None:
    """The tensor behind a ``get_attr`` node, else ``None``."""
    if not (isinstance(node, torch.fx.Node) and node.op == "get_attr"):
        return None
    out: Any = graph
    for part in str(node.target).split("."):
        out = getattr(out, part)
    return out if isinstance(out, torch.Tensor) else None


def fp32_ops(graph: torch.fx.GraphModule) -> dict[str, int]:
    """The compute ops of a converted PT2E graph that stay float32 (count per aten op name).

    An op runs in int8 when its activations come from dequantize ops (weights and biases
    may be constants) and its output goes into a quantize op, the ``dq -> op -> q`` pattern
    the backends fuse into one integer kernel, or it is part of a fused ``dq -> conv / linear
    -> relu -> q`` chain; any other op computes in float32.

    Data movement (view, reshape, transpose, ...) is not counted: it runs in whatever dtype
    it is given. On device these ops run in float between an explicit dequantize and quantize.

    Example:
        >>> from torch import nn
        >>> m = nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=-1))
        >>> g = torch.export.export(m, (torch.randn(1, 4),)).module()
        >>> fp32_ops(g)
        {'linear.default': 1, 'softmax.int': 1}
    """
    out: Counter[str] = Counter()
    for node in graph.graph.nodes:
        if node.op != "call_function" or _is(node, _QUANTIZE + _DEQUANTIZE):
            continue
        name = _name(node)
        if name.split(".")[0] in _PLUMBING:
            continue
        if not (_fed_int8(node) and _gives_int8(node)):
            out[name] += 1
    return dict(sorted(out.items()))


def _fed_int8(node: torch.fx.Node) -> bool:
    """All activations dequantized int8 (constants aside), or the fused activation of such an
    op (its only input, used by it alone)."""
    if all(_is(a, _DEQUANTIZE) or a.op == "get_attr" for a in node.all_input_nodes):
        return True
    ins = node.all_input_nodes
    return (_is(node, _FUSED) and len(ins) == 1 and len(ins[0].users) == 1
            and _fed_int8(ins[0]))


def _gives_int8(node: torch.fx.Node) -> bool:
    """Its output is quantized, directly or through a fused activation used by it alone."""
    users = list(node.users)
    if any(_is(u, _QUANTIZE) for u in users):
        return True
    return len(users) == 1 and _is(users[0], _FUSED) and _gives_int8(users[0])


def output_step(graph: torch.fx.GraphModule) -> float | None:
    """The quantization step (scale) of the model's output, ``None`` if it is float32.

    The output of a converted graph is ``dequantize(quantize(logits, scale, zero), ...)``;
    an int8 runtime returns the same int8 logits, so differences between two int8 executions
    of the model are measured in units of this scale.
    """
    out = next(n for n in graph.graph.nodes if n.op == "output")
    first = out.args[0]
    node = first[0] if isinstance(first, (list, tuple)) else first
    if _is(node, _DEQUANTIZE) and isinstance(node.args[1], float):
        return float(node.args[1])
    return None

