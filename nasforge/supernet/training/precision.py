"""Mixed precision for supernet training: autocast, TF32 and a loss scaler that sees the
slice-gradient store.

* ``fp32``: no autocast. TF32 matmuls/convolutions are allowed on CUDA devices that have them
  (:func:`enable_tf32`; Ampere and later), as timm does by default.
* ``bf16``: ``torch.autocast(device_type, torch.bfloat16)`` around the forward passes, on CPU
  and CUDA; weights, gradients and optimizer moments stay float32; no loss scaling is needed.
* ``fp16``: ``torch.autocast(..., torch.float16)`` on CUDA only, with :class:`LossScaler`. A stock
  ``torch.amp.GradScaler`` unscales ``param.grad`` only, but the supernet's slice gradients live
  in :class:`~nasforge.supernet.training.sliced_optim.SliceGrads`, so this scaler unscales the
  list of gradients it is given (both kinds, from
  :func:`~nasforge.supernet.training.sliced_optim.gradients`),
  reports non-finite values (the step is then skipped) and updates the scale as ``GradScaler``
  does (halve on overflow, double after ``growth_interval`` clean steps).

``channels_last`` (``train.channels_last``, ``nas train --channels-last``) keeps 4-d weights and
the batch in NHWC layout. Measured on this project's 2-core CPU (elasticvit max subnet at 128 px,
batch 8, one thread, forward + backward, median of 3): supernet 6.25 s -> 4.48 s, extracted
subnet 6.46 s -> 4.13 s. The quick recipe (``recipes/quick.yaml``, a CPU default) turns it on
(30 quick-recipe steps, 2 threads: 42-43 s against 49-57 s). On one H100 it trained the
elasticvit supernet 1.17x faster in fp32 (extracted max subnet 1.47x; batch 128 at 224 px,
``benchmarks/results/gpu_throughput_h100.json``), so the ImageNet recipes turn it on too;
``TrainConfig`` leaves it off.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import torch

from nasforge.errors import InvalidInputError

__all__ = ["PRECISIONS", "LossScaler", "autocast", "check_precision", "enable_tf32"]

#: Training precisions ``--precision`` accepts.
PRECISIONS = ("fp32", "bf16", "fp16")

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device | str) -> None:
    """Raise unless ``precision`` can train on ``device``.

    Raises:
        InvalidInputError: an unknown name, or ``fp16`` on a CPU.
    """
    if precision not in PRECISIONS:
        raise InvalidInputError(f"precision {precision!r} is unknown; choose one of "
                                f"{', '.join(PRECISIONS)}")
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise InvalidInputError("precision fp16 needs a CUDA device (CPU autocast has no fp16 "
                                "kernels worth using); use --precision bf16 or fp32 on CPU")


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager[Any]:
    """The autocast context of ``precision`` on ``device`` (a no-op context for ``fp32``)."""
    dtype = _DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def enable_tf32(device: torch.device | str) -> bool:
    """Allow TF32 matmuls and cuDNN convolutions on a CUDA device that has them (compute
    capability 8.0+); returns whether it did. Process-wide torch flags, set once by the entry
    point (``nas train``), not by library code."""
    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        return False
    if torch.cuda.get_device_capability(dev)[0] < 8:
        return False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True


class LossScaler:
    """Dynamic loss scaling over explicit gradient lists (module docstring).

    Use per step: ``scaler.scale(loss).backward()`` for each subnet; then, with the step's
    gradients ``grads``, ``ok = scaler.unscale_(grads)`` (after the all-reduce, so every rank
    agrees); step the optimizer only if ``ok``; then ``scaler.update(ok)``.

    Args:
        init_scale: the first scale.
        growth_factor: factor after ``growth_interval`` consecutive finite steps.
        backoff_factor: factor after a non-finite step.
        growth_interval: finite steps before growing.
        enabled: ``False`` makes every method a pass-through.
    """

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True) -> None:
        if not (math.isfinite(init_scale) and init_scale > 0):
            raise InvalidInputError(f"loss scale must be a finite number > 0, got {init_scale}")
        self.scale_value = float(init_scale)
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.enabled = enabled
        self.good_steps = 0
        self.skipped = 0

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """``loss * scale`` (``loss`` when disabled)."""
        return loss * self.scale_value if self.enabled else loss

    def unscale_(self, grads: Sequence[torch.Tensor]) -> bool:
        """Divide ``grads`` by the scale in place; ``True`` when all of them are finite.

        One device-to-host sync for the whole list.
        """
        if not self.enabled or not grads:
            return True
        inv = 1.0 / self.scale_value
        flags = []
        for g in grads:
            g.mul_(inv)
            flags.append(torch.isfinite(g).all())
        return bool(torch.stack(flags).all().item())

    def update(self, finite: bool) -> None:
        """Back off after a non-finite step, grow after ``growth_interval`` finite ones."""
        if not self.enabled:
            return
        if finite:
            self.good_steps += 1
            if self.good_steps >= self.growth_interval:
                self.scale_value *= self.growth_factor
                self.good_steps = 0
        else:
            self.scale_value *= self.backoff_factor
            self.good_steps = 0
            self.skipped += 1

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (stored in checkpoints)."""
        return {"scale": self.scale_value, "good_steps": self.good_steps,
                "skipped": self.skipped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale_value = float(state["scale"])
        self.good_steps = int(state["good_steps"])
        self.skipped = int(state.get("skipped", 0))

