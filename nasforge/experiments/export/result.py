"""What an export wrote and measured (:class:`ExportResult`), its file name, and the error a
mismatching file raises."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch

__all__ = ["ExportResult", "ExportVerificationError", "export_name", "safe_stem"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.@+-]+")


class ExportVerificationError(NasforgeError, RuntimeError):
    """The exported file's outputs differ from PyTorch's by more than the tolerance."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`~nasforge.experiments.export.export_model` wrote and measured.

    Attributes:
        model_path: the model file.
        config_path: the YAML architecture config written beside it.
        fmt: export format name.
        space: search-space name.
        arch_id: the architecture's id.
        num_classes: classifier width.
        input_size: side of the (1, 3, S, S) input the model was traced and checked at.
        max_abs_diff: largest |exported - PyTorch| over the logits on the fixed input.
        atol: absolute part of the allowed difference.
        rtol: relative part, times ``output_scale``.
        output_scale: largest |PyTorch logit| on the fixed input.
        latency_ms: measured median latency of the exported file on this machine.
        runs: timed runs behind ``latency_ms``.
        threads: intra-op threads used for timing.
        runtime: what ran the file (``onnxruntime 1.x CPUExecutionProvider``, ``torch 2.x``).
        device: latency-target device name, when one was given.
        predicted_ms: the device latency model's prediction, when a device was given.
        accuracy: top-1 (%) used in the name, when given.
        inputs: the traced inputs' shapes when they are not one (1, 3, S, S) image (language
            models: ``tokens (1, 64)``); empty for images.
        int8: for an int8 format, its calibration and the top-1 of the int8 file against the
            fp32 model on the validation split (``None`` otherwise).
    """

    model_path: Path
    config_path: Path
    fmt: str
    space: str
    arch_id: str
    num_classes: int
    input_size: int
    max_abs_diff: float
    atol: float
    rtol: float
    output_scale: float
    latency_ms: float
    runs: int
    threads: int
    runtime: str
    device: str | None = None
    predicted_ms: float | None = None
    accuracy: float | None = None
    inputs: str = ""
    int8: dict[str, Any] | None = None

    @property
    def tolerance(self) -> float:
        """The bound ``max_abs_diff`` is checked against: ``atol + rtol * output_scale``."""
        return self.atol + self.rtol * self.output_scale

    @property
    def ok(self) -> bool:
        """Whether the exported outputs match PyTorch's within ``tolerance``."""
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-ready dict (paths as strings)."""
        out = dataclasses.asdict(self)
        out["model_path"], out["config_path"] = str(self.model_path), str(self.config_path)
        out["ok"], out["tolerance"] = self.ok, self.tolerance
        return out

    def summary(self) -> str:
        """One line: file, format, max abs diff, measured and predicted latency."""
        pred = f", predicted {self.predicted_ms:.2f} ms on {self.device}" if (
            self.predicted_ms is not None) else ""
        return (f"{self.model_path} ({self.fmt}): max abs diff {self.max_abs_diff:.2e} "
                f"({'ok' if self.ok else 'MISMATCH'} at {self.tolerance:.2e}), measured "
                f"{self.latency_ms:.2f} ms here ({self.runtime}, {self.threads} thread(s))"
                f"{pred}")


def safe_stem(name: str) -> str:
    """``name`` with every run of characters unsafe in a file name replaced by ``-``.

    Example:
        >>> safe_stem("pixel 7/fast")
        'pixel-7-fast'
    """
    return _UNSAFE.sub("-", name)


def export_name(arch: Arch, device: str | None = None, device_ms: float | None = None,
                accuracy: float | None = None) -> str:
    """The file stem of an exported subnet, as the field names them.

    ``{device}_lat@{ms:.1f}ms_top1@{acc:.1f}`` (``pixel7_lat@24.6ms_top1@71.3``) when the device,
    its latency and the top-1 accuracy (%) are known, else ``{space}_{arch_id}``.
    """
    if device is not None and device_ms is not None and accuracy is not None:
        stem = f"{device}_lat@{device_ms:.1f}ms_top1@{accuracy:.1f}"
    else:
        stem = f"{arch.space}_{arch.arch_id}"
    return safe_stem(stem)
