"""The ``tflite`` export format: a subnet as a ``.tflite`` file, checked and timed with LiteRT.

Android apps ship models as ``.tflite`` files run by LiteRT (the TFLite runtime); the phone
tables behind ``pixel1/4/6/xiaomi11`` were measured so. :class:`TfliteFormat` converts the
static model with ``litert-torch`` (input kept NCHW, fp32), loads the written file into the
LiteRT interpreter with the XNNPACK delegate for the output check and the timing, and
:func:`mac_report` puts the converter's own MAC count beside nasforge's analytic ``flops``
(MACs) in the export config. Needs the extra ``nasforge[tflite]``.

Example:
    >>> from nasforge.experiments import EXPORT_FORMATS
    >>> EXPORT_FORMATS.get("tflite").suffix
    '.tflite'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import torch
from torch import nn

from nasforge.experiments.export.checks import Runner
from nasforge.experiments.export.formats import EXPORT_FORMATS
from nasforge.experiments.export.formats import ExportFormat
from nasforge.experiments.export.formats import Rebuild
from nasforge.structured import load_structured

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["MACS_TOLERANCE", "TfliteFormat", "mac_line", "mac_report"]

#: the converter's MAC count and ours should agree within this relative difference.
MACS_TOLERANCE = 0.03


class TfliteFormat(ExportFormat):
    """``.tflite`` through ``litert-torch``; run back by LiteRT (XNNPACK, fp32).

    ``write`` also writes ``<file>.json`` beside the model with the converter's MAC count
    (the flatbuffer exporter's "Estimated count of arithmetic ops") and the versions.
    """

    name = "tflite"
    suffix = ".tflite"

    def write(self, model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
        from nasforge.hardware_models.profiling._litert import convert_module
        from nasforge.hardware_models.profiling._litert import graph_macs
        from nasforge.hardware_models.profiling._litert import litert_versions

        conv = convert_module(model, tuple(example.shape), name=path.stem)
        path.write_bytes(conv.content)
        _sidecar(path).write_text(json.dumps(
            {"converter_macs": conv.macs, "graph_macs": graph_macs(conv.content),
             "convert_s": round(conv.seconds, 2),
             "input_shape": list(example.shape), **litert_versions()}, sort_keys=True) + "\n")

    def load(self, path: Path, rebuild: Rebuild, threads: int) -> Runner:
        from nasforge.hardware_models.profiling._litert import interpreter_call

        _, run = interpreter_call(path, threads)
        return run

    def runtime(self) -> str:
        from nasforge.hardware_models.profiling._litert import litert_versions

        return (f"LiteRT {litert_versions()['ai-edge-litert']} (ai-edge-litert) interpreter, "
                "XNNPACK delegate, fp32")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def mac_report(path: Path, arch: Arch, space: SearchSpace, input_size: int,
               num_classes: int) -> dict[str, Any]:
    """Three MAC counts of the exported subnet: the converter's, the file's ops', and ours.

    * ``converter``: the flatbuffer exporter's logged estimate ("equivalently N MACs"); in
      litert-torch 0.10 it under-counts ``BATCH_MATMUL`` (attention), so it is shown with its
      gap (``rel_diff``) but does not decide the check when the file's own count exists;
    * ``graph``: counted from the file's ``CONV_2D`` / ``DEPTHWISE_CONV_2D`` /
      ``FULLY_CONNECTED`` / ``BATCH_MATMUL`` ops and tensor shapes
      (:func:`nasforge.hardware_models.profiling._litert.graph_macs`);
    * ``ours``: ``space.flops(arch)`` (MACs), comparable only at the arch's own resolution and
      the space's number of classes; otherwise ``ours`` is None and ``note`` says why.

    ``within_tolerance`` compares ``graph`` with ours (``compared: "graph"``), or the
    converter's count when the sidecar has no graph count (``compared: "converter"``);
    ``converter_within_tolerance`` always says how the converter's own figure fares.

    Args:
        path: the written ``.tflite`` file (its ``.json`` sidecar holds the counts).
        arch: the exported architecture.
        space: its space.
        input_size: the side the file was converted at.
        num_classes: the classifier width of the exported model.

    Returns:
        ``{"converter", "graph", "ours": int | None, "rel_diff", "graph_rel_diff": float |
        None, "compared": "graph" | "converter" | None, "within_tolerance",
        "converter_within_tolerance": bool | None, "tolerance": 0.03, "note": str}``.
    """
    side = (load_structured(_sidecar(path), "converter metadata", kind="json")
            if _sidecar(path).is_file() else {})
    conv, graph = side.get("converter_macs"), side.get("graph_macs")
    out: dict[str, Any] = {"converter": conv, "graph": graph, "ours": None, "rel_diff": None,
                           "graph_rel_diff": None, "compared": None, "within_tolerance": None,
                           "converter_within_tolerance": None, "tolerance": MACS_TOLERANCE,
                           "note": "ours = space.flops(arch); graph = counted from the file's "
                           "conv / depthwise / fully-connected / batch-matmul ops (decides the "
                           "check); converter = the flatbuffer exporter's estimate, which "
                           "under-counts batch-matmul (shown with its gap)"}
    res = getattr(arch, "resolution", None)
    if res != input_size or getattr(space, "num_classes", num_classes) != num_classes:
        out["note"] = (f"not compared: exported at {input_size}px / {num_classes} classes, our "
                       f"count is for {res}px / {getattr(space, 'num_classes', '?')} classes")
        return out
    ours = int(space.flops(arch))
    out["ours"] = ours
    if conv:
        rel = float(conv) / ours - 1.0
        out["rel_diff"] = round(rel, 5)
        out["converter_within_tolerance"] = abs(rel) <= MACS_TOLERANCE
        out["compared"] = "converter"
        out["within_tolerance"] = out["converter_within_tolerance"]
    if graph:
        grel = float(graph) / ours - 1.0
        out["graph_rel_diff"] = round(grel, 5)
        out["compared"] = "graph"
        out["within_tolerance"] = abs(grel) <= MACS_TOLERANCE
    return out


def mac_line(config_path: Path) -> str:
    """One line for the CLI: the converter's MACs and the file's op count beside ours."""
    macs = (load_structured(config_path, "export config", kind="yaml") or {}).get("macs") or {}
    conv, graph, ours = macs.get("converter"), macs.get("graph"), macs.get("ours")
    if conv is None and graph is None:
        return "converter MACs: not reported by this litert-torch"
    conv_txt = f"{conv / 1e6:.2f} M" if conv is not None else "not reported"
    if ours is None:
        return f"converter MACs {conv_txt}; {macs.get('note', '')}"
    verdict = "within" if macs.get("within_tolerance") else "OUTSIDE"
    tol = f"{100 * macs['tolerance']:.0f}%"
    conv_gap = f" ({100 * macs['rel_diff']:+.2f}%)" if macs.get("rel_diff") is not None else ""
    if graph is None:
        return (f"converter MACs {conv_txt} vs ours (flops) {ours / 1e6:.2f} M:{conv_gap} "
                f"({verdict} {tol})")
    return (f"converter MACs {conv_txt}{conv_gap} vs ours (flops) {ours / 1e6:.2f} M (its "
            f"estimate under-counts batch-matmul); counted from the file's ops "
            f"{graph / 1e6:.2f} M: {100 * macs['graph_rel_diff']:+.2f}% ({verdict} {tol})")


EXPORT_FORMATS.add(TfliteFormat.name, TfliteFormat())
