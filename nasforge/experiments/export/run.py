"""Model export as small steps: check the request, trace the reference, write the file and its
config, run the file back on its runtime, report.

:func:`export_model` only validates and wires; each step has one job:

1. :func:`_plan`: the format, the input size, the file paths (a frozen :class:`_Plan`).
2. :func:`_reference`: the model's logits on the fixed input (the truth the file must match).
3. :func:`_write`: the model file and its YAML config (:mod:`.config`).
4. :func:`_check_file`: the written file on its runtime: max abs diff and median latency
   (:mod:`.checks`).
5. :func:`_verdict`: the verification block appended to the config; a mismatch raises when
   ``strict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import torch

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.experiments.export import _executorch
from nasforge.experiments.export import _lm
from nasforge.experiments.export import _tflite
from nasforge.experiments.export.checks import fixed_input
from nasforge.experiments.export.checks import max_abs_diff
from nasforge.experiments.export.checks import median_latency_ms
from nasforge.experiments.export.checks import positive
from nasforge.experiments.export.checks import torch_threads
from nasforge.experiments.export.config import append_verification
from nasforge.experiments.export.config import load_arch_config
from nasforge.experiments.export.config import write_arch_config
from nasforge.experiments.export.formats import EXPORT_FORMATS
from nasforge.experiments.export.formats import ExportFormat
from nasforge.experiments.export.result import ExportResult
from nasforge.experiments.export.result import ExportVerificationError
from nasforge.experiments.export.result import export_name
from nasforge.experiments.export.result import safe_stem

if TYPE_CHECKING:
    from torch import nn

    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["DEFAULT_RTOL", "DEFAULT_TOLERANCE", "export_model"]

DEFAULT_TOLERANCE = 1e-4
#: float32 rounding grows with the logits' size (PyTorch fp32 itself is ~1e-6 relative off fp64)
DEFAULT_RTOL = 1e-5


@dataclass(frozen=True)
class _Plan:
    """What one export writes and how it checks it."""

    exporter: ExportFormat
    fmt: str
    size: int
    model_path: Path
    config_path: Path
    opset: int
    threads: int
    runs: int
    warmup: int


def export_model(
    model: nn.Module, arch: Arch, space: SearchSpace, fmt: str, out_dir: str | Path,
    input_size: int | None = None, name: str | None = None, *, device: str | None = None,
    device_ms: float | None = None, accuracy: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE, rtol: float = DEFAULT_RTOL, runs: int = 30,
    warmup: int = 5, threads: int = 1, opset: int = 17, seed: int = 0, strict: bool = True,
    extra: dict[str, Any] | None = None,
) -> ExportResult:
    """Write ``model`` in ``fmt`` plus its YAML config, check the file's outputs, time it.

    The model is traced in eval mode at a (1, 3, S, S) input, S = ``input_size`` (default: the
    arch's resolution); the written file runs on its runtime (onnxruntime CPUExecutionProvider
    for ONNX, ``torch.jit.load`` for TorchScript, a freshly built static model of ``arch`` for
    safetensors) on a fixed random input (seeded by ``seed``) and its logits are compared with
    ``model``'s. The model's train/eval mode is restored afterwards.

    Args:
        model: a static model of ``arch`` (``build_static(space, arch)`` or ``Supernet.extract``);
            x: (B, 3, S, S) -> logits (B, classes).
        arch: its architecture.
        space: the space ``arch`` belongs to.
        fmt: ``onnx``, ``torchscript``, ``safetensors``, ``tflite`` or ``executorch``.
        out_dir: folder for the files (created).
        input_size: input side; transformer models also run below the arch's resolution.
        name: file stem; default :func:`~nasforge.experiments.export.export_name`.
        device: latency-target device name (for the name and the result).
        device_ms: that device's predicted latency of ``arch`` (ms).
        accuracy: top-1 accuracy (%), for the name.
        tolerance: absolute part of the allowed max abs diff of the logits (atol).
        rtol: relative part: the bound is ``tolerance + rtol * max|PyTorch logits|``; pass 0
            for a purely absolute check.
        runs: timed runs (median reported); warmup: untimed runs first.
        threads: intra-op threads for timing and checking (torch and onnxruntime).
        opset: ONNX opset (>= 17).
        seed: seed of the fixed verification input.
        strict: raise :class:`ExportVerificationError` on a mismatch (else only report it).
        extra: more keys for the YAML config (e.g. where the weights came from).

    Returns:
        The :class:`~nasforge.experiments.export.ExportResult`.

    Raises:
        UnknownNameError: unknown format (with the closest name).
        InvalidArchitectureError: ``arch`` is outside ``space``.
        IncompatibleComponentsError: a tabular space (no model), or the model does not run at
            ``input_size``.
        InvalidInputError: bad ``input_size``, ``runs``, ``threads`` or ``opset``.
        ExportVerificationError: ``strict`` and the outputs differ by more than ``tolerance``.
    """
    plan = _plan(arch, space, fmt, Path(out_dir), input_size, name or export_name(
        arch, device, device_ms, accuracy), tolerance=tolerance, rtol=rtol, runs=runs,
        warmup=warmup, threads=threads, opset=opset)
    was_training = model.training
    model.eval()
    try:
        with torch_threads(threads):
            x = fixed_input(plan.size, seed)
            ref = _reference(model, x, arch, space, plan.size)
            _write(plan, model, x, arch, space, int(ref.shape[-1]), extra)
            diff, latency = _check_file(plan, x, ref)
    finally:
        model.train(was_training)
    result = ExportResult(
        model_path=plan.model_path, config_path=plan.config_path, fmt=fmt, space=space.name,
        arch_id=arch.arch_id, num_classes=int(ref.shape[-1]), input_size=plan.size,
        max_abs_diff=diff, atol=tolerance, rtol=rtol, output_scale=float(abs(ref).max()),
        latency_ms=latency, runs=runs, threads=threads, runtime=plan.exporter.runtime(),
        device=device, predicted_ms=device_ms, accuracy=accuracy,
    )
    _verdict(result, strict)
    return result


def _plan(arch: Arch, space: SearchSpace, fmt: str, out: Path, input_size: int | None,
          stem: str, *, tolerance: float, rtol: float, runs: int, warmup: int, threads: int,
          opset: int) -> _Plan:
    """Check the request before any work; the format, input size and file paths."""
    exporter = EXPORT_FORMATS.get(fmt)
    if not space.has_model:
        raise IncompatibleComponentsError(
            f"space {space.name!r} is tabular and has no model to export; export an arch of a "
            f"vision space (elasticvit, elasticvit_efficient, ofa_mbv3, ofa_mbv3_w12)"
        )
    space.validate(arch)
    if _lm.is_language_arch(arch):
        raise IncompatibleComponentsError(
            f"{space.name} is a language space: its models take token ids, not images; export "
            "it with export_language_model (nas export routes there)")
    size = positive("input_size", input_size if input_size is not None
                    else getattr(arch, "resolution", None))
    positive("runs", runs)
    positive("threads", threads)
    if not (tolerance >= 0 and rtol >= 0):
        raise InvalidInputError(f"`tolerance >= 0` and `rtol >= 0` must hold, but got "
                                f"{tolerance=}, {rtol=}")
    out.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(stem)
    return _Plan(exporter, fmt, size, out / f"{stem}{exporter.suffix}", out / f"{stem}.yaml",
                 opset, threads, runs, warmup)


def _reference(model: nn.Module, x: torch.Tensor, arch: Arch, space: SearchSpace, size: int
               ) -> np.ndarray:
    """The model's logits on the fixed input.

    Raises:
        IncompatibleComponentsError: the model does not run at ``size``.
    """
    try:
        with torch.inference_mode():
            out: np.ndarray = model(x).numpy()
    except RuntimeError as e:
        raise IncompatibleComponentsError(
            f"the model of {space.name} arch {arch.arch_id} does not run at input size "
            f"{size}: {str(e).splitlines()[0]}; pass a larger input size (default: the "
            f"arch's resolution)"
        ) from None
    return out


def _write(plan: _Plan, model: nn.Module, x: torch.Tensor, arch: Arch, space: SearchSpace,
           num_classes: int, extra: dict[str, Any] | None) -> None:
    """The model file, then its config (format, file, opset or the converter's MAC count)."""
    plan.exporter.write(model, x, plan.model_path, plan.opset)
    config = {"format": plan.fmt, "model_file": plan.model_path.name, **(extra or {})}
    if plan.fmt == "onnx":
        config["opset"] = plan.opset
    if plan.fmt == _tflite.TfliteFormat.name:  # the converter's MAC count beside ours
        config["macs"] = _tflite.mac_report(plan.model_path, arch, space, plan.size,
                                            num_classes)
    if isinstance(plan.exporter, _executorch.ExecutorchFormat):  # ops outside the delegate
        config["delegation"] = _executorch.delegation_report(plan.model_path)
    write_arch_config(plan.config_path, arch, num_classes, plan.size, config)


def _check_file(plan: _Plan, x: torch.Tensor, ref: np.ndarray) -> tuple[float, float]:
    """The written file on its runtime: ``(max abs diff to ref, median latency ms)``."""
    config_path = plan.config_path

    def rebuild() -> nn.Module:
        return load_arch_config(config_path).build_model()

    run = plan.exporter.load(plan.model_path, rebuild, plan.threads)
    xn = x.numpy()
    diff = max_abs_diff(run(xn), ref)
    return diff, median_latency_ms(run, xn, runs=plan.runs, warmup=plan.warmup)


def _verdict(result: ExportResult, strict: bool) -> None:
    """Append the verification block; a mismatch raises when ``strict`` (the file is kept)."""
    append_verification(result.config_path, result)
    if strict and not result.ok:
        size = result.input_size
        raise ExportVerificationError(
            f"{result.model_path}: exported outputs differ from PyTorch's by "
            f"{result.max_abs_diff:.3e} > tolerance {result.tolerance:.3e} (atol "
            f"{result.atol:g} + rtol {result.rtol:g} x max|logit| {result.output_scale:.3g}) on "
            f"a (1, 3, {size}, {size}) input; the file is kept for inspection"
        )
