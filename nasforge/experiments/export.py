"""Model export: write a subnet as ONNX, TorchScript or safetensors, then check the file.

:func:`export_model` writes the model file and its architecture config (YAML), runs the written
file on its deployment runtime on one fixed random input, compares the output with PyTorch's
(max abs diff), and times it on this machine (median of N runs after warm-up, pinned threads).
Files are named as the field names deployable subnets (``pixel7_lat@24.6ms_top1@71.3``) when the
device latency and the accuracy are known, else ``{space}_{arch_id}``.

Example:
    >>> import tempfile
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elasticvit")
    >>> arch = space.min_arch()
    >>> from nasforge.supernet.static import build_static
    >>> model = build_static(space, arch, num_classes=10)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     r = export_model(model, arch, space, "torchscript", d, input_size=64, runs=1)
    >>> r.ok, r.model_path.suffix
    (True, '.pt')
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import torch
import yaml

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.errors import NasforgeError
from nasforge.experiments import _tflite  # registers the tflite format (issue 12)
from nasforge.experiments._formats import EXPORT_FORMATS
from nasforge.experiments._verify import fixed_input
from nasforge.experiments._verify import max_abs_diff
from nasforge.experiments._verify import median_latency_ms
from nasforge.experiments._verify import torch_threads
from nasforge.search_spaces.io import ArchFile
from nasforge.search_spaces.io import arch_file_from_data
from nasforge.search_spaces.io import read_arch_file
from nasforge.search_spaces.registry import get_space
from nasforge.supernet.static import build_static

if TYPE_CHECKING:
    from torch import nn

    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "ArchConfig",
    "ExportResult",
    "ExportVerificationError",
    "arch_config_from_data",
    "export_model",
    "export_name",
    "extract_subnet",
    "load_arch_config",
    "predict_device_ms",
    "write_arch_config",
]

DEFAULT_TOLERANCE = 1e-4
#: float32 rounding grows with the logits' size (PyTorch fp32 itself is ~1e-6 relative off fp64)
DEFAULT_RTOL = 1e-5


class ExportVerificationError(NasforgeError, RuntimeError):
    """The exported file's outputs differ from PyTorch's by more than the tolerance."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and measured.

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


# ---- naming ----------------------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@+-]+")


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
    return _UNSAFE.sub("-", stem)


# ---- the architecture config beside the model file ----------------------------------------------
@dataclass(frozen=True)
class ArchConfig:
    """An architecture with what is needed to rebuild its static model.

    Attributes:
        arch: the (validated) architecture.
        space: its search space.
        num_classes: classifier width, ``None`` when the file does not say.
        input_size: input side the model was exported at, ``None`` when the file does not say.
        extra: every other top-level key of the file (format, verification, source, ...).
    """

    arch: Arch
    space: SearchSpace
    num_classes: int | None = None
    input_size: int | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def build_model(self) -> nn.Module:
        """A randomly initialised static model (the global torch RNG is left untouched)."""
        with torch.random.fork_rng(devices=[]):
            return build_static(self.space, self.arch, num_classes=self.num_classes)


def _positive_int(value: Any, key: str, source: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{source}: `{key}` must be a positive integer, got {value!r}")
    return value


def arch_config_from_data(data: Any, source: str = "<input>") -> ArchConfig:
    """An :class:`ArchConfig` from parsed YAML/JSON.

    Accepts our architecture file (a mapping with ``space`` and the arch's fields, as
    ``arch.to_yaml()`` writes it) or the config :func:`write_arch_config` writes (``arch:``
    holding that mapping, beside ``num_classes``, ``input_size`` and more).

    Raises:
        InvalidInputError: not a mapping, several archs, or bad ``num_classes`` /
            ``input_size``.
        InvalidArchitectureError: the arch is outside its space.
        UnknownNameError: unknown space.
    """
    return _arch_config(arch_file_from_data(data, source))


def load_arch_config(path: str | Path) -> ArchConfig:
    """Read an architecture file or an export config (see :func:`arch_config_from_data`)."""
    return _arch_config(read_arch_file(path))


def _arch_config(file: ArchFile) -> ArchConfig:
    rest = dict(file.extra)
    arch = file.one()
    num_classes = _positive_int(rest.pop("num_classes", None), "num_classes", file.source)
    input_size = _positive_int(rest.pop("input_size", None), "input_size", file.source)
    return ArchConfig(arch, get_space(arch.space), num_classes, input_size, rest)


def write_arch_config(path: str | Path, arch: Arch, num_classes: int, input_size: int,
                      extra: dict[str, Any] | None = None) -> Path:
    """Write the YAML config of an exported model: ``arch:`` (as ``arch.to_yaml()``), ``space``,
    ``num_classes``, ``input_size`` and ``extra`` keys. :func:`load_arch_config` reads it back.
    """
    path = Path(path)
    arch_text = "".join(f"  {line}\n" for line in arch.to_yaml().splitlines())
    rest = {"space": arch.space, "arch_id": arch.arch_id, "num_classes": num_classes,
            "input_size": input_size, **(extra or {})}
    path.write_text(
        f"# nasforge export config; rebuild with nasforge.experiments.load_arch_config\n"
        f"arch:\n{arch_text}"
        + yaml.safe_dump(rest, sort_keys=False, default_flow_style=False)
    )
    return path


# ---- export ------------------------------------------------------------------------------------
def export_model(
    model: nn.Module,
    arch: Arch,
    space: SearchSpace,
    fmt: str,
    out_dir: str | Path,
    input_size: int | None = None,
    name: str | None = None,
    *,
    device: str | None = None,
    device_ms: float | None = None,
    accuracy: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    rtol: float = DEFAULT_RTOL,
    runs: int = 30,
    warmup: int = 5,
    threads: int = 1,
    opset: int = 17,
    seed: int = 0,
    strict: bool = True,
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
        fmt: ``onnx``, ``torchscript`` or ``safetensors``.
        out_dir: folder for the files (created).
        input_size: input side; transformer models also run below the arch's resolution.
        name: file stem; default :func:`export_name`.
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
        The :class:`ExportResult`.

    Raises:
        UnknownNameError: unknown format (with the closest name).
        InvalidArchitectureError: ``arch`` is outside ``space``.
        IncompatibleComponentsError: a tabular space (no model), or the model does not run at
            ``input_size``.
        InvalidInputError: bad ``input_size``, ``runs``, ``threads`` or ``opset``.
        ExportVerificationError: ``strict`` and the outputs differ by more than ``tolerance``.
    """
    exporter = EXPORT_FORMATS.get(fmt)
    if not space.has_model:
        raise IncompatibleComponentsError(
            f"space {space.name!r} is tabular and has no model to export; export an arch of a "
            f"vision space (elasticvit, elasticvit_efficient, ofa_mbv3, ofa_mbv3_w12)"
        )
    space.validate(arch)
    size = input_size if input_size is not None else getattr(arch, "resolution", None)
    size = _positive("input_size", size)
    _positive("runs", runs)
    _positive("threads", threads)
    if not (tolerance >= 0 and rtol >= 0):
        raise InvalidInputError(f"`tolerance >= 0` and `rtol >= 0` must hold, but got "
                                f"{tolerance=}, {rtol=}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = _UNSAFE.sub("-", name) if name else export_name(arch, device, device_ms, accuracy)
    model_path = out / f"{stem}{exporter.suffix}"
    config_path = out / f"{stem}.yaml"

    was_training = model.training
    model.eval()
    try:
        with torch_threads(threads):
            x = fixed_input(size, seed)
            try:
                with torch.inference_mode():
                    ref = model(x).numpy()
            except RuntimeError as e:
                raise IncompatibleComponentsError(
                    f"the model of {space.name} arch {arch.arch_id} does not run at input size "
                    f"{size}: {str(e).splitlines()[0]}; pass a larger input size (default: the "
                    f"arch's resolution)"
                ) from None
            num_classes = int(ref.shape[-1])
            exporter.write(model, x, model_path, opset)
            config = {"format": fmt, "model_file": model_path.name, **(extra or {})}
            if fmt == "onnx":
                config["opset"] = opset
            if fmt == _tflite.TfliteFormat.name:  # the converter's MAC count beside ours
                config["macs"] = _tflite.mac_report(model_path, arch, space, size, num_classes)
            write_arch_config(config_path, arch, num_classes, size, config)

            def rebuild() -> nn.Module:
                return load_arch_config(config_path).build_model()

            run = exporter.load(model_path, rebuild, threads)
            xn = x.numpy()
            diff = max_abs_diff(run(xn), ref)
            latency = median_latency_ms(run, xn, runs=runs, warmup=warmup)
    finally:
        model.train(was_training)

    result = ExportResult(
        model_path=model_path, config_path=config_path, fmt=fmt, space=space.name,
        arch_id=arch.arch_id, num_classes=num_classes, input_size=size, max_abs_diff=diff,
        atol=tolerance, rtol=rtol, output_scale=float(abs(ref).max()), latency_ms=latency,
        runs=runs, threads=threads,
        runtime=exporter.runtime(), device=device, predicted_ms=device_ms, accuracy=accuracy,
    )
    _append_verification(config_path, result)
    if strict and not result.ok:
        raise ExportVerificationError(
            f"{model_path}: exported outputs differ from PyTorch's by {diff:.3e} > tolerance "
            f"{result.tolerance:.3e} (atol {tolerance:g} + rtol {rtol:g} x max|logit| "
            f"{result.output_scale:.3g}) on a (1, 3, {size}, {size}) input; the file is kept "
            f"for inspection"
        )
    return result


# ---- where the weights come from ---------------------------------------------------------------
def extract_subnet(
    checkpoint: str | Path,
    arch: Arch,
    *,
    data: str | None = None,
    calib_batches: int = 20,
    batch_size: int = 64,
    seed: int = 0,
    use_ema: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """The static subnet of ``arch`` from a trained supernet checkpoint, BN recalibrated.

    Loads the supernet (:func:`nasforge.supernet.checkpoint.load_supernet`), extracts ``arch``'s
    static twin and re-estimates its BatchNorm statistics on ``calib_batches`` training batches
    of ``data`` (default: the dataset the supernet was trained on, from the checkpoint config)
    at the size the subnet was trained and scored at (its resolution times the checkpoint's
    resolution scale; :func:`nasforge.supernet.evaluate.recalibrate_at_resolution`).

    Args:
        checkpoint: checkpoint file or run folder (``last.ckpt``).
        arch: the subnet (must belong to the checkpoint's space).
        data: dataset spec (``digits``, ``imagefolder:PATH``, ...); default from the checkpoint.
        calib_batches: K, the batches used for BN recalibration.
        batch_size: images per calibration batch.
        seed: seed of the data split and batch order.
        use_ema: take the EMA weights when the checkpoint has them.

    Returns:
        ``(model, source)``: the subnet in eval mode and a dict describing where it came from
        (checkpoint, step, data, calibration batches and input size), for the export config.

    Raises:
        InvalidInputError: unreadable or corrupted checkpoint, no dataset known, bad data.
        IncompatibleComponentsError: the checkpoint is a supernet of another space.
        InvalidArchitectureError: ``arch`` is outside the space.
    """
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.evaluate import recalibrate_at_resolution

    _positive("calib_batches", calib_batches)
    _positive("batch_size", batch_size)
    supernet, ckpt = load_supernet(Path(checkpoint), expect_space=arch.space, use_ema=use_ema)
    model = supernet.extract(arch)  # type: ignore[operator]
    run = RunConfig.from_checkpoint(ckpt)
    spec = data if data is not None else run.data
    if not spec:
        raise InvalidInputError(
            f"checkpoint {ckpt.path} does not record its training data; pass --data (e.g. "
            f"digits, imagefolder:PATH) for BN recalibration"
        )
    images = run.open_data(spec)
    # the statistics of the size the subnet was trained and scored at (elastic resolution)
    size = recalibrate_at_resolution(model, images, getattr(arch, "resolution", None),
                                     batches=calib_batches, batch_size=batch_size, seed=seed)
    source = {"checkpoint": str(ckpt.path), "step": ckpt.step, "ema": bool(use_ema),
              "bn_recalibration": {"data": spec, "batches": calib_batches,
                                   "batch_size": batch_size, "input_size": size}}
    return model.eval(), source


def predict_device_ms(device: str, arch: Arch) -> float:
    """The latency (ms) of ``arch`` predicted by device ``device``'s latency model.

    Raises:
        UnknownNameError: no such device (with the closest name).
        MissingLatencyError: the device cannot cost a block of ``arch``.
    """
    from nasforge.hardware_models import get_device

    return float(get_device(device).predict(arch))


def _positive(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"`{key}` must be a positive integer, but got {key}={value!r}")
    return value


def _append_verification(config_path: Path, r: ExportResult) -> None:
    block = {"verification": {
        "max_abs_diff": float(f"{r.max_abs_diff:.3e}"),
        "tolerance": float(f"{r.tolerance:.3e}"), "atol": r.atol, "rtol": r.rtol,
        "output_scale": float(f"{r.output_scale:.4g}"), "ok": r.ok,
        "runtime": r.runtime, "latency_ms": round(r.latency_ms, 3), "runs": r.runs,
        "threads": r.threads,
    }}
    if r.device is not None:
        block["device"] = {"name": r.device, "predicted_ms": r.predicted_ms}
    with config_path.open("a") as f:
        f.write(yaml.safe_dump(block, sort_keys=False, default_flow_style=False))
