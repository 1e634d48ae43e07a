"""An export described by files and names (``nas export``): the arch file, where the weights
come from (a trained supernet, a fine-tuned model of ``nas finetune``, or a fresh
initialisation), the latency target, the format.

:func:`export_arch_file` checks the request before any heavy work, loads the arch, builds the
model (:func:`~nasforge.experiments.export.extract_subnet` or the space's static model) and
calls :func:`~nasforge.experiments.export.export_model` without ``strict``: a mismatch is in the
result (``ok``), for the caller to report. An int8 format (``tflite-int8``,
``executorch-int8``; :mod:`._int8`) first quantizes the model on a calibration set of
``calib_batches`` batches of the training images (:mod:`._quantize`), and then scores the int8
file and the fp32 model on the same validation images (:func:`_int8_report`).
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
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.experiments.export._int8 import Int8Format
from nasforge.experiments.export._int8 import int8_tolerance
from nasforge.experiments.export._lm import is_language_arch
from nasforge.experiments.export._quantize import calibration_images
from nasforge.experiments.export._quantize import quantize_pt2e
from nasforge.experiments.export._quantize import top1
from nasforge.experiments.export.checks import fixed_input
from nasforge.experiments.export.checks import max_abs_diff
from nasforge.experiments.export.config import load_arch_config
from nasforge.experiments.export.formats import EXPORT_FORMATS
from nasforge.experiments.export.formats import ExportFormat
from nasforge.experiments.export.run import DEFAULT_RTOL
from nasforge.experiments.export.run import DEFAULT_TOLERANCE
from nasforge.experiments.export.run import export_model
from nasforge.experiments.export.weights import extract_subnet
from nasforge.experiments.export.weights import predict_device_ms
from nasforge.supernet.static import build_static
from nasforge.supernet.training.finetune.model import read_static_model

if TYPE_CHECKING:
    from torch import nn

    from nasforge.data import BaseImageSource
    from nasforge.experiments.export.config import ArchConfig
    from nasforge.experiments.export.result import ExportResult

__all__ = ["ExportRequest", "Status", "export_arch_file"]

#: validation images an int8 export scores (file and fp32 model alike), at most
INT8_VAL_IMAGES = 1000

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
            initialised static model (or ``model``).
        model: a fine-tuned static model (the ``--out`` folder of ``nas finetune``); its
            input size is the default ``input_size``.
        device: latency target (its predicted latency, and the file name with ``top1``).
        data: dataset for BN recalibration and int8 calibration (default: the checkpoint's or
            the model's).
        calib_batches: training batches for BN recalibration, and for int8 calibration (of
            8 images each).
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
    model: Path | None = None
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
        if self.supernet is not None and self.model is not None:
            raise InvalidInputError("--supernet and --model both give the weights; pass one")
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

    @property
    def has_weights(self) -> bool:
        """Whether the weights are trained (a supernet or a fine-tuned model), so that an
        accuracy means something."""
        return self.supernet is not None or self.model is not None


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
    model, extra, size = _model(request, cfg, show)
    exporter = EXPORT_FORMATS.get(request.fmt)
    tolerance, rtol, fp32 = request.tolerance, request.rtol, model
    int8_data = None
    if isinstance(exporter, Int8Format):
        size = size or getattr(arch, "resolution", None)
        if size is None:
            raise InvalidInputError(f"--format {request.fmt} needs --input-size")
        int8_data = _int8_data(request, size)
        with show(f"calibrating int8 ({request.calib_batches} batches of 8 images)"):
            images = calibration_images(int8_data, size, request.calib_batches)
            model = quantize_pt2e(model.eval(), fixed_input(size), images, exporter.quantizer(),
                                  name=type(exporter.quantizer()).__name__,
                                  fold_quantize=exporter.fold_quantize)
        extra = {**extra, "int8_calibration": model.calibration}
        if (tolerance, rtol) == (DEFAULT_TOLERANCE, DEFAULT_RTOL):
            tolerance, rtol = int8_tolerance(model.calibration)
    with lock_run_folder(request.out, "export"), \
            show(f"exporting {arch.arch_id} as {request.fmt} and checking it"):
        result = export_model(
            model, arch, space, request.fmt, request.out, input_size=size, name=request.name,
            device=request.device, device_ms=predicted, accuracy=request.top1,
            tolerance=tolerance, rtol=rtol, runs=request.runs, threads=request.threads,
            opset=request.opset, strict=False, extra=extra,
        )
    if int8_data is not None and request.has_weights:
        with show("scoring the int8 file and the fp32 model on the validation split"):
            result = _int8_report(result, exporter, fp32, int8_data, request.threads)
    return result


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
           ) -> tuple[nn.Module, dict[str, Any], int | None]:
    """The subnet of a trained supernet (BN recalibrated), a fine-tuned model, or a fresh
    static model; with the ``source`` the export config records and the input size."""
    arch = cfg.arch
    size = request.input_size or cfg.input_size
    if request.model is not None:
        tuned = read_static_model(request.model)
        if tuned.arch != arch:
            raise IncompatibleComponentsError(
                f"--model {request.model} holds subnet {tuned.arch.arch_id} of "
                f"{tuned.space.name}, not {arch.arch_id} of {arch.space} from "
                f"{request.arch_file}; export {request.model}/arch.yaml")
        return tuned.model, {"source": {"model": str(request.model),
                                        **tuned.meta.get("finetune", {})}}, (
            size or int(tuned.meta["input_size"]))
    if request.supernet is None:
        static = build_static(cfg.space, arch, num_classes=request.num_classes or cfg.num_classes)
        return static, {"source": "random initialisation (for training from scratch)"}, size
    with show(f"extracting {arch.arch_id} from {request.supernet} and recalibrating BN"):
        model, source = extract_subnet(request.supernet, arch, data=request.data,
                                       calib_batches=request.calib_batches)
    return model, {"source": source}, size


def _int8_data(request: ExportRequest, size: int | None) -> BaseImageSource:
    """The images that calibrate an int8 export (and score it): the fine-tuned model's or the
    supernet's data and split, or ``--data`` for a randomly initialised model.

    Raises:
        InvalidInputError: no data is known (a random model without ``--data``).
    """
    from nasforge.data import LoaderConfig
    from nasforge.data import open_data
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import read_checkpoint

    if request.model is not None:
        data: BaseImageSource = read_static_model(request.model).open_data(request.data)
        return data
    if request.supernet is not None:
        run = RunConfig.from_checkpoint(read_checkpoint(request.supernet))
        data = run.open_data(request.data)
        return data
    if request.data is None:
        raise InvalidInputError(f"--format {request.fmt} calibrates on training images: pass "
                                "--data (or the weights' source, --supernet / --model)")
    return open_data(request.data, size or 32, 0, loader=LoaderConfig(workers=0))


def _int8_report(result: ExportResult, exporter: ExportFormat, fp32: nn.Module,
                 data: BaseImageSource, threads: int) -> ExportResult:
    """Top-1 of the written int8 file and of the fp32 model on the same validation images
    (at most :data:`INT8_VAL_IMAGES`, one at a time), appended to the config as ``int8``."""
    import dataclasses

    import torch
    import yaml

    def rebuild() -> nn.Module:
        return fp32

    run8 = exporter.load(result.model_path, rebuild, threads)
    fp32.eval()

    def run32(x: Any) -> Any:
        with torch.inference_mode():
            return fp32(torch.from_numpy(x)).numpy()

    size = result.input_size
    x = fixed_input(size).numpy()  # the check's input: the int8 file against fp32
    to_fp32 = max_abs_diff(run8(x), run32(x))
    top8, n = top1(run8, data, size, INT8_VAL_IMAGES)
    top32, _ = top1(run32, data, size, INT8_VAL_IMAGES)
    report = {"top1_fp32": round(top32, 4), "top1_int8": round(top8, 4),
              "top1_change_points": round(100 * (top8 - top32), 2), "val_images": n,
              "max_abs_diff_to_fp32": float(f"{to_fp32:.3e}"), "data": data.name,
              "input_size": size,
              "file_bytes": result.model_path.stat().st_size}
    with result.config_path.open("a", encoding="utf-8") as f:
        f.write(yaml.safe_dump({"int8": report}, sort_keys=False))
    return dataclasses.replace(result, int8=report)
