"""The ``executorch`` export format: a subnet as an ExecuTorch ``.pte`` program (XNNPACK).

ExecuTorch is PyTorch's own on-device runtime. :class:`ExecutorchFormat` exports the static
model with ``torch.export`` at the fixed input shape, lowers it with the XNNPACK partitioner
(:func:`~nasforge.hardware_models.profiling._executorch.lower_module`), writes the ``.pte``
atomically, and runs the written file back through ``executorch.runtime`` for the output check
and the timing. Beside the file, ``<file>.json`` lists the ops left outside the delegate (count
per op name), which :func:`delegation_report` puts in the export config and
:func:`delegation_line` prints. Needs the extra ``nasforge[executorch]``.

Example:
    >>> from nasforge.experiments import EXPORT_FORMATS
    >>> EXPORT_FORMATS.get("executorch").suffix
    '.pte'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasforge.experiments.export.checks import Runner
from nasforge.experiments.export.formats import EXPORT_FORMATS
from nasforge.experiments.export.formats import ExportFormat
from nasforge.experiments.export.formats import Rebuild
from nasforge.structured import load_structured

__all__ = ["ExecutorchFormat", "delegation_line", "delegation_report"]


class ExecutorchFormat(ExportFormat):
    """``.pte`` through ``torch.export`` and the XNNPACK partitioner; run by executorch.runtime.

    ``write`` also writes ``<file>.json`` beside the program with the ops left outside the
    delegate, the number of delegate calls, the lowering time and the versions.
    """

    name = "executorch"
    suffix = ".pte"

    def write(self, model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
        from nasforge.hardware_models.profiling._executorch import lower_module

        low = lower_module(model, (example,), name=path.stem)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(low.content)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _sidecar(path).write_text(json.dumps(
            {**low.report(), "input_shape": list(example.shape)}, sort_keys=True) + "\n")

    def load(self, path: Path, rebuild: Rebuild, threads: int) -> Runner:
        from nasforge.hardware_models.profiling._executorch import method_call

        _, run = method_call(path, threads)
        return run

    def runtime(self) -> str:
        from nasforge.hardware_models.profiling._executorch import executorch_versions

        return (f"ExecuTorch {executorch_versions()['executorch']} (executorch.runtime), "
                "XNNPACK delegate, fp32")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def delegation_report(path: Path) -> dict[str, Any]:
    """What stayed outside the XNNPACK delegate in a written ``.pte`` (from its sidecar).

    Args:
        path: the written ``.pte`` file.

    Returns:
        ``{"outside_delegate": {op name: count}, "outside_delegate_total": int,
        "delegate_calls": int, "pte_bytes": int}``; empty when the sidecar is missing.
    """
    if not _sidecar(path).is_file():
        return {}
    side = load_structured(_sidecar(path), "lowering metadata", kind="json")
    keys = ("outside_delegate", "outside_delegate_total", "delegate_calls", "pte_bytes")
    return {k: side[k] for k in keys if k in side}


def delegation_line(config_path: Path) -> str:
    """One line for the CLI: the delegate calls and the ops left outside, by count.

    Example:
        >>> import tempfile, yaml
        >>> p = Path(tempfile.mkdtemp()) / "a.yaml"
        >>> _ = p.write_text(yaml.safe_dump({"delegation": {"delegate_calls": 3,
        ...     "outside_delegate": {"aten.mean.dim": 1, "aten.native_layer_norm.default": 8}}}))
        >>> print(delegation_line(p).replace("; ", ";\\n"))
        XNNPACK delegate calls: 3;
        outside the delegate: 9 op(s): aten.native_layer_norm.default x8, aten.mean.dim x1
    """
    info = (load_structured(config_path, "export config", kind="yaml") or {}).get(
        "delegation") or {}
    if not info:
        return "delegation: not recorded"
    ops = dict(info.get("outside_delegate") or {})
    listed = ", ".join(f"{k} x{v}" for k, v in sorted(ops.items(), key=lambda kv: (-kv[1],
                                                                                   kv[0])))
    head = f"XNNPACK delegate calls: {info.get('delegate_calls', '?')}; outside the delegate: "
    return head + (f"{sum(ops.values())} op(s): {listed}" if ops else "none")


EXPORT_FORMATS.add(ExecutorchFormat.name, ExecutorchFormat())
