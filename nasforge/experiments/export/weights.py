"""Where an exported subnet's weights and latency target come from: a trained supernet
checkpoint (:func:`extract_subnet`, BN recalibrated) and a device's latency model
(:func:`predict_device_ms`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nasforge.errors import InvalidInputError
from nasforge.experiments.export.checks import positive

if TYPE_CHECKING:
    from torch import nn

    from nasforge.search_spaces.arch import Arch

__all__ = ["extract_subnet", "predict_device_ms"]


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

    positive("calib_batches", calib_batches)
    positive("batch_size", batch_size)
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

