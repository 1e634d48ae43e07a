"""Make a model's graph XNNPACK-friendly before lowering: fewer partitions, same numbers.

The XNNPACK partitioner of executorch 1.5.1 leaves out ``native_layer_norm`` (it has no
LayerNorm config), ``mean.dim`` except a 4-D mean over H and W, ``index.Tensor`` and
``expand_copy``. Each such op between delegated ops cuts the graph into one more delegate
partition, and lowering time grows with the number of partitions (XNNPACK preprocesses each
one on its own). Before lowering, nasforge therefore

* swaps every ``nn.LayerNorm`` over the last dim for :class:`XnnpackLayerNorm`, the same
  function from ops XNNPACK takes (the mean over C as a ``linear`` with a constant ``1/C``
  row, ``sub``, ``mul``, ``rsqrt``, ``add``); the model itself is not changed (a copy is);
* folds what depends only on weights and constants into constants (executorch's
  ``constant_prop_pass``, ``full`` included; quantize / dequantize ops are kept), e.g. the
  relative-position bias gather ``table[index]`` of ElasticViT's attention and the padding
  mask of its window attention;
* drops ``expand_copy`` nodes that expand a tensor to its own shape (``aten.matmul`` of 4-D
  tensors decomposes into such a no-op expand and a ``bmm``).

An int8 (PT2E) program is exported before it reaches the lowering, so its LayerNorms are
rewritten in its graph instead (:func:`decompose_layer_norms`, on a copy, by the
``executorch-int8`` format); the edge passes run on it as on fp32 programs.

Example:
    >>> import torch
    >>> ln = torch.nn.LayerNorm(8)
    >>> x = torch.randn(2, 5, 8)
    >>> bool(torch.allclose(XnnpackLayerNorm(ln)(x), ln(x), atol=1e-5))
    True
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["XnnpackLayerNorm", "decompose_layer_norms", "edge_passes", "forget_provenance",
           "xnnpack_ready"]


class XnnpackLayerNorm(nn.Module):
    """``nn.LayerNorm`` over the last dim from ops the XNNPACK delegate takes.

    Shares ``weight`` and ``bias`` with the LayerNorm it replaces.

    Args:
        norm: the LayerNorm (one normalized dim).
    """

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__()
        (dim,) = norm.normalized_shape
        self.weight, self.bias, self.eps = norm.weight, norm.bias, float(norm.eps)
        self.register_buffer("avg", torch.full((1, dim), 1.0 / dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., C) -> (..., C), normalized over C (biased variance, as LayerNorm)."""
        avg: torch.Tensor = self.avg  # type: ignore[assignment]
        d = x - torch.nn.functional.linear(x, avg)
        y = d * torch.rsqrt(torch.nn.functional.linear(d * d, avg) + self.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y


def xnnpack_ready(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each last-dim ``nn.LayerNorm`` as :class:`XnnpackLayerNorm`.

    Returns ``model`` itself when it has no such LayerNorm (nothing is copied).
    """
    if not any(_swappable(m) for m in model.modules()):
        return model
    ready = copy.deepcopy(model)
    for parent in list(ready.modules()):
        for name, child in parent.named_children():
            if _swappable(child):
                setattr(parent, name, XnnpackLayerNorm(child))  # type: ignore[arg-type]
    return ready


def decompose_layer_norms(graph: torch.fx.GraphModule) -> int:
    """Rewrite each last-dim ``aten.layer_norm`` of a graph module as :class:`XnnpackLayerNorm`
    (a ``call_module`` the next ``torch.export`` inlines), in place.

    The int8 path's counterpart of :func:`xnnpack_ready`: a PT2E-quantized graph is exported
    and lowered as it is, so its LayerNorms (which the quantizers leave in float32 between a
    dequantize and a quantize) would stay outside the delegate, each cutting it in two. The
    float ops that replace them compute the same function (float rounding aside), with the
    same weight and bias tensors; quantize / dequantize ops are not touched.

    Args:
        graph: a graph module of aten ops (``torch.export.export(...).module()``, converted by
            ``convert_pt2e`` or not) whose LayerNorm weights and biases are ``get_attr`` nodes.

    Returns:
        How many LayerNorms were rewritten.
    """
    done = 0
    for node in list(graph.graph.nodes):
        if node.op != "call_function" or node.target != torch.ops.aten.layer_norm.default:
            continue
        args = dict(zip(("input", "normalized_shape", "weight", "bias", "eps"), node.args,
                        strict=False))
        affine = [args.get(k, node.kwargs.get(k)) for k in ("weight", "bias")]
        if len(args["normalized_shape"]) != 1 or not all(
                a is None or (isinstance(a, torch.fx.Node) and a.op == "get_attr")
                for a in affine):
            continue
        norm = nn.LayerNorm(int(args["normalized_shape"][0]),
                            eps=float(args.get("eps", node.kwargs.get("eps", 1e-5))))
        for key, attr in zip(("weight", "bias"), affine, strict=True):
            setattr(norm, key, None if attr is None else nn.Parameter(
                _attr(graph, str(attr.target)), requires_grad=False))
        name = f"_xnnpack_layer_norm_{done}"
        graph.add_submodule(name, XnnpackLayerNorm(norm))
        with graph.graph.inserting_before(node):
            new = graph.graph.call_module(name, (args["input"],))
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        graph.graph.erase_node(node)
        done += 1
    if done:
        graph.graph.eliminate_dead_code()
        graph.recompile()
    return done


def _attr(graph: torch.fx.GraphModule, target: str) -> torch.Tensor:
    """The tensor a ``get_attr`` node names (a dotted path in ``graph``)."""
    out: object = graph
    for part in target.split("."):
        out = getattr(out, part)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"get_attr {target} is a {type(out).__name__}, not a tensor")
    return out


def _swappable(m: nn.Module) -> bool:
    return type(m) is nn.LayerNorm and len(m.normalized_shape) == 1


def edge_passes() -> list[object]:
    """The edge-program passes run before partitioning (``transform_passes`` of
    ``to_edge_transform_and_lower``): constant folding, then dropping no-op expands."""
    from executorch.exir.dialects._ops import ops as exir_ops
    from executorch.exir.pass_base import ExportedProgramPassBase
    from executorch.exir.pass_base import ExportedProgramPassResult
    from executorch.exir.passes import constant_prop_pass as cp

    # executorch skips ``full`` by default (large constants); ours are small masks and ones
    skip = set(cp._DEFAULT_SKIP_TARGETS) - {exir_ops.edge.aten.full.default}

    class _Fold(ExportedProgramPassBase):
        def call(self, ep: torch.export.ExportedProgram) -> ExportedProgramPassResult:
            ep = cp.constant_prop_pass(ep, custom_skip_targets=skip)
            _drop_noop_expands(ep.graph_module)
            forget_provenance(ep)
            return ExportedProgramPassResult(ep, True)

    return [_Fold()]


def _drop_noop_expands(gm: torch.fx.GraphModule) -> int:
    """Replace ``expand_copy(x, shape)`` by ``x`` where ``x`` already has ``shape``."""
    dropped = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or "expand_copy" not in str(node.target):
            continue
        src = node.args[0]
        if not isinstance(src, torch.fx.Node) or "val" not in src.meta or "val" not in node.meta:
            continue
        if tuple(src.meta["val"].shape) == tuple(node.meta["val"].shape):
            node.replace_all_uses_with(src)
            gm.graph.erase_node(node)
            dropped += 1
    if dropped:
        gm.graph.lint()
        gm.recompile()
    return dropped


def forget_provenance(ep: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """Drop each node's ``from_node`` history (debug provenance; lowering does not read it).

    Every FX pass deep-copies that history into the nodes it creates, so it grows with each
    pass and the copying grows with it: on ElasticViT's largest net it was about a fifth of
    the lowering time. Returns ``ep`` (changed in place).
    """
    for gm in ep.graph_module.modules():
        if isinstance(gm, torch.fx.GraphModule):
            for node in gm.graph.nodes:
                node.meta.pop("from_node", None)
    return ep
