"""Accuracy evaluators: a trained supernet's BN-recalibrated subnet top-1, cached by arch_id.

:class:`SubnetEvaluator` runs in-process; :mod:`nasforge.experiments.pool` offers the same
``evaluate_many`` over a pool of Ray actors holding one shared supernet.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.supernet.data import ImageData

__all__ = ["SubnetEvaluator"]


class SubnetEvaluator:
    """Top-1 (%) of subnets of one supernet on a validation split, each BN-recalibrated.

    Args:
        supernet: a trained :class:`~nasforge.supernet.Supernet`.
        data: the dataset (training batches recalibrate BN; the validation split scores).
        recal_batches: K, the number of recalibration batches.
        batch_size: batch size of recalibration and evaluation.
        seed: which training batches recalibrate (fixed, so scores are reproducible).
        device: compute device.
        checkpoint: where the supernet came from (recorded in provenance).
    """

    def __init__(self, supernet: Any, data: ImageData, *, recal_batches: int = 4,
                 batch_size: int = 256, seed: int = 0, device: str = "cpu",
                 checkpoint: str | Path | None = None) -> None:
        self.supernet = supernet
        self.data = data
        self.recal_batches = recal_batches
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.checkpoint = str(checkpoint) if checkpoint is not None else None
        self._cache: dict[str, float] = {}

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """Top-1 in percent, shape (len(archs),); each distinct arch is evaluated once."""
        from nasforge.supernet.evaluate import evaluate_subnet

        out = np.empty(len(archs))
        for i, arch in enumerate(archs):
            hit = self._cache.get(arch.arch_id)
            if hit is None:
                acc = evaluate_subnet(self.supernet, arch, self.data,
                                      recal_batches=self.recal_batches,
                                      batch_size=self.batch_size, seed=self.seed,
                                      device=self.device)
                hit = self._cache[arch.arch_id] = 100.0 * acc.top1
            out[i] = hit
        return out

    def provenance(self) -> dict[str, Any]:
        """How the numbers were obtained (dataset, input size, recalibration)."""
        return {"kind": "supernet top-1 %", "checkpoint": self.checkpoint,
                "data": self.data.name, "input_size": self.data.input_size,
                "val_images": len(self.data.val_x), "bn_recalibration_batches": self.recal_batches,
                "batch_size": self.batch_size}
