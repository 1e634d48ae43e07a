"""An export described by files and names (``nas export``): the arch file, where the weights
come from (a trained supernet, or a fresh initialisation), the latency target, the format.

:func:`export_arch_file` checks the request before any heavy work, loads the arch, builds the
model (:func:`~nasforge.experiments.export.extract_subnet` or the space's static model) and
calls :func:`~nasforge.experiments.export.export_model` without ``strict``: a mismatch is in the
result (``ok``), for the caller to report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nasforge._lock import check_run_folder_free
from nasforge._lock import lock_run_folder
from nasforge._paths import check_outside_data
from nasforge.errors import InvalidInputError
from nasforge.experiments.export._lm import is_language_arch
from nasforge.experiments.export.config import load_arch_config
from nasforge.experiments.export.formats import EXPORT_FORMATS
from nasforge.experiments.export.run import DEFAULT_RTOL
from nasforge.experiments.export.run import DEFAULT_TOLERANCE
from nasforge.experiments.export.run import export_model
from nasforge.experiments.export.weights import extract_subnet
from nasforge.experiments.export.weights import predict_device_ms
from nasforge.supernet.static import build_static

if TYPE_CHECKING:
    from torch import nn

    from nasforge.experiments.export.config import ArchConfig
    from nasforge.experiments.export.result import ExportResult

__all__ = ["ExportRequest", "Status", "export_arch_file"]

#: ``status(message)`` -> a context shown while a slow step runs (the CLI's spinner)
Status = Callable[[str], AbstractContextManager[Any]]


@dataclass(frozen=True)
class ExportRequest:
    """One ``nas export`` (each field is the flag of the same name).

    Attributes:
        arch_file: our architecture YAML/JSON, or an export config written before.
        fmt: export format name.
        out: output folder.
        supernet: trained supernet checkpoint (file or run folder); ``None``: a randomly
            initialised static model.
        device: latency target (its predicted latency, and the file name with ``top1``).
        data: dataset for BN recalibration (default: the checkpoint's).
        calib_batches: training batches for BN recalibration.
        input_size: input side (default: the arch's resolution).
        num_classes: classes of a randomly initialised model (default: the file's, else the
            space's).
        top1: top-1 accuracy (%) for the file name.
        name: file stem.
        runs, threads, opset, tolerance, rtol: as :func:`~nasforge.experiments.export.
            export_model` takes them.
    """

    arch_file: Path
    fmt: str = "onnx"
    out: Path = Path("exports")
    supernet: Path | None = None
    device: str | None = None
    data: str | None = None
    calib_batches: int = 20
    input_size: int | None = None
    num_classes: int | None = None
    top1: float | None = None
    name: str | None = None
    runs: int = 30
    threads: int = 1
    opset: int = 17
    tolerance: float = DEFAULT_TOLERANCE
    rtol: float = DEFAULT_RTOL

    def check(self) -> None:
        """Refuse a bad format, number, name or output folder before any heavy work.

        Raises:
            UnknownNameError: unknown format.
            InvalidInputError: a number out of range, a ``name`` with folders, an output
                folder that cannot be written.
        """
        from nasforge.validation import check_number
        from nasforge.validation import check_output_dir

        EXPORT_FORMATS.get(self.fmt)
        if self.top1 is not None:
            check_number(self.top1, "--top1", low=0, high=100)
        check_number(self.tolerance, "--tolerance", low=0)
        check_number(self.rtol, "--rtol", low=0)
        name = self.name
        if name is not None and (not name or name in (".", "..") or any(
                c in name for c in "/\\\0")):
            raise InvalidInputError(f"--name is a file stem inside --out (no folders), got "
                                    f"{name!r}")
        check_output_dir(self.out, "--out")
        check_outside_data(self.out, self.data)
        check_run_folder_free(self.out, "export")


def export_arch_file(request: ExportRequest, status: Status | None = None) -> ExportResult:
    """Export the arch of ``request.arch_file`` as ``request`` says, checked and timed.

    Args:
        request: the export.
        status: shows a message while a slow step runs (default: nothing shown).

    Returns:
        The :class:`~nasforge.experiments.export.ExportResult` (``ok`` False on a mismatch).

    Raises:
        NasforgeError: a bad request, arch file, checkpoint, data or device.
    """
    show = status or (lambda _message: contextlib.nullcontext())
    request.check()
    cfg = load_arch_config(request.arch_file)
    arch, space = cfg.arch, cfg.space
    if is_language_arch(arch):
        return export_language_file(request, cfg, show)
    predicted = (predict_device_ms(request.device, arch) if request.device is not None
                 else None)
    model, extra = _model(request, cfg, show)
    with lock_run_folder(request.out, "export"), \
            show(f"exporting {arch.arch_id} as {request.fmt} and checking it"):
        return export_model(
            model, arch, space, request.fmt, request.out,
            input_size=request.input_size or cfg.input_size, name=request.name,
            device=request.device, device_ms=predicted, accuracy=request.top1,
            tolerance=request.tolerance, rtol=request.rtol, runs=request.runs,
            threads=request.threads, opset=request.opset, strict=False, extra=extra,
        )


def export_language_file(request: ExportRequest, cfg: ArchConfig, show: Status
                         ) -> ExportResult:
    """``nas export`` of an ``elastic_lm`` / ``hat_*`` arch (:mod:`._lm`): the twin extracted
    from ``--supernet`` (no BN to recalibrate) or randomly initialised; ``--input-size`` is
    the exported sequence length."""
    from nasforge.experiments.export._lm import export_language_model
    from nasforge.experiments.export._lm import language_twin
    from nasforge.supernet.checkpoint import load_supernet

    arch = cfg.arch
    if request.supernet is None:
        model = language_twin(cfg.space, arch, request.num_classes or cfg.num_classes)
        extra: dict[str, Any] = {"source": "random initialisation (for training from scratch)"}
    else:
        with show(f"extracting {arch.arch_id} from {request.supernet}"):
            supernet, ckpt = load_supernet(request.supernet, expect_space=arch.space)
            model = supernet.extract(arch).eval()  # type: ignore[operator]
        extra = {"source": {"checkpoint": str(ckpt.path), "step": ckpt.step}}
    with lock_run_folder(request.out, "export"), \
            show(f"exporting {arch.arch_id} as {request.fmt} and checking it"):
        return export_language_model(
            model, arch, cfg.space, request.fmt, request.out, seq_len=request.input_size,
            name=request.name, tolerance=request.tolerance, rtol=request.rtol,
            runs=request.runs, threads=request.threads, opset=request.opset, strict=False,
            extra=extra)


def _model(request: ExportRequest, cfg: ArchConfig, show: Status
           ) -> tuple[nn.Module, dict[str, Any]]:
    """The subnet of a trained supernet (BN recalibrated), or a fresh static model; with the
    ``source`` the export config records."""
    arch = cfg.arch
    if request.supernet is None:
        static = build_static(cfg.space, arch, num_classes=request.num_classes or cfg.num_classes)
        return static, {"source": "random initialisation (for training from scratch)"}
    with show(f"extracting {arch.arch_id} from {request.supernet} and recalibrating BN"):
        model, source = extract_subnet(request.supernet, arch, data=request.data,
                                       calib_batches=request.calib_batches)
    return model, {"source": source}
