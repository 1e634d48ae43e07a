"""BN-recalibrated top-1 of subnets of a weight-shared supernet, as an objective.

The supernet is reached through :func:`nasforge.supernet.evaluate.evaluate_subnets` (activate,
recalibrate BatchNorm on a few training batches, score the validation images), imported when the
first architecture is scored, so that building the objectives does not import torch. The images
are held in one :class:`~nasforge.supernet.evaluate.EvalSet` for the objective's life (read and
normalised once, resized once per eval size), and a batch of new architectures is sharded over
the ranks of a ``torch.distributed`` process group when one is up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.evaluation.base import AccuracyObjective
from nasforge.strategies.objectives import ArchMemo
from nasforge.strategies.objectives.protocols import WeightSharedSupernet

if TYPE_CHECKING:
    import torch

    from nasforge.data import ImageData
    from nasforge.search_spaces.arch import Arch
    from nasforge.supernet.base import Supernet
    from nasforge.supernet.evaluate import EvalSet

__all__ = ["SupernetAccuracyObjective"]


class SupernetAccuracyObjective(AccuracyObjective):
    """BN-recalibrated top-1 (%) of subnets of a weight-shared supernet, cached by ``arch_id``.

    Each distinct arch is activated, its BatchNorm statistics recalibrated on ``recal_batches``
    training batches of ``batch_size`` images, and scored on the validation split (or
    ``val_images`` of it), all at the arch's own eval size
    (:func:`nasforge.supernet.evaluate.evaluate_subnets`); :meth:`provenance` records the counts.

    Args:
        supernet: a trained :class:`~nasforge.supernet.Supernet` (what
            :func:`~nasforge.supernet.checkpoint.load_supernet` returns; checked against
            :class:`~.protocols.WeightSharedSupernet`).
        data: the dataset (:class:`~nasforge.data.ImageData`): training batches
            recalibrate BN, the validation split scores.
        recal_batches: K, the recalibration batches.
        batch_size: batch size of recalibration and evaluation (and of a recalibration batch).
        val_images: score only this many validation images, evenly spaced over the split
            (``None``: all).
        seed: which training batches recalibrate (fixed, so scores are reproducible).
        device: compute device (``cpu``, ``cuda``).
        checkpoint: where the supernet came from (recorded in provenance).
        lower: lower feasibility bound (%).
        name: column name.

    Raises:
        IncompatibleComponentsError: ``supernet`` has no ``set_active(arch)``.
        InvalidInputError: a weight or BN statistic of ``supernet`` is NaN or infinite (and,
            in :meth:`evaluate_many`, a NaN or infinite score).
    """

    metric_label = "top1"
    batched = True

    def __init__(self, supernet: torch.nn.Module, data: ImageData, *, recal_batches: int = 1,
                 batch_size: int = 128, val_images: int | None = None, seed: int = 0,
                 device: str = "cpu",
                 checkpoint: str | Path | None = None, lower: float | None = None,
                 name: str = "accuracy") -> None:
        super().__init__(name, "maximize", lower=lower, cheap=False)
        if not isinstance(supernet, WeightSharedSupernet):
            raise IncompatibleComponentsError(
                f"SupernetAccuracyObjective needs a supernet with set_active(arch); "
                f"{type(supernet).__name__} has none: load one with "
                "nasforge.supernet.load_supernet(checkpoint)"
            )
        _check_finite(supernet, checkpoint)
        self.supernet = supernet
        self.data = data
        self.recal_batches = recal_batches
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.val_images = val_images
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self._memo: ArchMemo[str] = ArchMemo()
        self._eval_set: EvalSet | None = None

    def eval_set(self) -> EvalSet:
        """The held recalibration and validation images (built on first use)."""
        if self._eval_set is None:
            from nasforge.supernet.evaluate import EvalSet

            self._eval_set = EvalSet(self.data, recal_batches=self.recal_batches,
                                     batch_size=self.batch_size, seed=self.seed,
                                     device=self.device, val_images=self.val_images)
        return self._eval_set

    def _top1(self, archs: Sequence[Arch], todo: list[int]) -> list[float]:
        from nasforge.supernet.evaluate import evaluate_subnets

        # __init__ checked the WeightSharedSupernet protocol evaluate_subnets relies on
        supernet = cast("Supernet", self.supernet)
        accs = evaluate_subnets(supernet, [archs[i] for i in todo], self.data,
                                eval_set=self.eval_set())
        out = [100.0 * a.top1 for a in accs]
        bad = [archs[i].arch_id for i, v in zip(todo, out, strict=True) if not math.isfinite(v)]
        if bad:
            raise InvalidInputError(f"supernet {self.checkpoint or '(in memory)'} scored NaN or "
                                    f"inf top-1 for {len(bad)} architectures (first {bad[0]})")
        return out

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        return self._memo.lookup([a.arch_id for a in archs],
                                 lambda todo: self._top1(archs, todo))

    def provenance(self) -> dict[str, Any]:
        n_val = self.data.num_val if self.val_images is None else min(self.data.num_val,
                                                                      self.val_images)
        # subnet r recalibrated and scored at round(r * resolution_scale) px
        return {"kind": "supernet top-1 %", "checkpoint": self.checkpoint,
                "data": self.data.name, "input_size": self.data.input_size,
                "resolution_scale": self.data.resolution_scale,
                "val_images": n_val, "val_split_images": self.data.num_val,
                "bn_recalibration_batches": self.recal_batches,
                "bn_recalibration_images": self.recal_batches * self.batch_size,
                "batch_size": self.batch_size, "recalibration_seed": self.seed}


def _check_finite(supernet: torch.nn.Module, checkpoint: str | Path | None) -> None:
    """Refuse a supernet with a NaN or infinite weight or BN statistic: it would be scored."""
    import torch

    state = supernet.state_dict() if isinstance(supernet, torch.nn.Module) else {}
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InvalidInputError(
                f"supernet {checkpoint or '(in memory)'} has NaN or infinite values in "
                f"{name!r}; it cannot be scored: use another checkpoint or retrain")
