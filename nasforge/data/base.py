"""What the trainer and the evaluator see of a dataset: :class:`BaseImageSource`.

Call protocol (one interface for the in-memory sets and the streaming pipeline):

1. ``source.train_batches(batch_size, seed=..., start=(epoch, index), rank=..., world_size=...)``
   yields :class:`Batch` es forever (epoch after epoch). The images of batch ``index`` of
   ``epoch`` are a pure function of ``(seed, epoch, index)``, so a run resumed at a
   :attr:`Batch.position` sees the batches an uninterrupted run would; each rank gets its own
   part of every global batch.
2. :func:`~nasforge.data.transforms.normalize` moves ``Batch.x`` to the compute device
   with ``source.mean`` / ``source.std`` (uint8 travels; an in-memory float batch is already
   normalised and only moves).
3. ``source.val_batches(batch_size)`` and ``source.recal_batches(batch_size, seed)`` feed
   evaluation: validation images and deterministic training images for BN recalibration.

Corrupt images: a streaming source drops a sample it cannot decode and names it in
:attr:`Batch.bad`; :class:`CorruptImageTracker` counts them and stops the run with one line when
their share passes the limit.
"""

from __future__ import annotations

import logging
import os
from abc import ABC
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from nasforge._paths import unreadable_reason
from nasforge.errors import InvalidInputError

__all__ = ["BaseImageSource", "Batch", "CorruptImageTracker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """One training batch of one rank.

    Attributes:
        x: (b, 3, S, S) uint8 images (streaming) or normalised float32 (in-memory sets).
        y: (b,) int64 labels.
        position: ``(epoch, index)`` of the *next* batch (what a checkpoint stores).
        bad: paths (or shard keys) of images dropped from this batch as unreadable.
        seen: images this batch tried to read (kept + dropped).
    """

    x: torch.Tensor
    y: torch.Tensor
    position: tuple[int, int]
    bad: tuple[str, ...] = ()
    seen: int = 0


class BaseImageSource(ABC):
    """A dataset the trainer and evaluator read (see the module docstring for the protocol).

    Attributes:
        name: the spec it was opened from.
        num_classes: number of classes.
        input_size: side S of the images it yields.
        mean: per-channel mean used by ``normalize`` (``None``: batches are already float).
        std: per-channel std (``None`` likewise).
        resolution_scale: proxy scale: an arch of resolution r is trained and scored at
            ``round(r * scale)`` px; ``None`` trains every subnet at ``input_size``.
        max_bad_share: the largest tolerated share of unreadable images.
        task: what a batch is for (a name in
            :data:`~nasforge.supernet.training.task.TASKS`: ``image``, ``lm``, ``seq2seq``).
    """

    name: str
    num_classes: int
    input_size: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resolution_scale: float | None = None
    max_bad_share: float = 0.01
    task: str = "image"

    @property
    def num_train(self) -> int | None:
        """Images in the training split (``None`` when unknown before reading, webdataset)."""
        return None

    @abstractmethod
    def train_batches(self, batch_size: int, *, seed: int, start: tuple[int, int] = (0, 0),
                      rank: int = 0, world_size: int = 1, augment: bool = True
                      ) -> Iterator[Batch]:
        """Training batches from ``start`` on, endlessly (see the protocol)."""

    @abstractmethod
    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The validation split once: ``(x, y)`` with x as in :class:`Batch`."""

    def recal_batches(self, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        """Deterministic, un-augmented training images for BN recalibration (endless).

        By default the un-augmented training stream of a seed of its own; an in-memory source
        may serve them more cheaply.
        """
        for b in self.train_batches(batch_size, seed=seed + 9_973, augment=False):
            if len(b.y):
                yield b.x

    def first_recal_batches(self, batch_size: int, seed: int, n: int) -> list[torch.Tensor]:
        """The first ``n`` batches of :meth:`recal_batches` as read, the stream then closed
        (fewer when the source has fewer; none for ``n < 1``)."""
        out: list[torch.Tensor] = []
        if n < 1:
            return out
        source = self.recal_batches(batch_size, seed)
        try:
            for x in source:
                out.append(x)
                if len(out) >= n:
                    break
        finally:
            close = getattr(source, "close", None)
            if callable(close):
                close()
        return out

    @property
    @abstractmethod
    def num_val(self) -> int:
        """Images in the validation split."""

    def eval_size(self, resolution: int | None) -> int:
        """The pixel size a subnet of ``resolution`` is trained and scored at."""
        if self.resolution_scale is None or resolution is None:
            return self.input_size
        return max(8, round(resolution * self.resolution_scale))


class CorruptImageTracker:
    """Counts unreadable images and raises once their share passes ``max_share``.

    The share is taken over at least ``min(100, dataset size)`` images, so one early bad file
    does not stop a run; a dataset whose images are all unreadable stops at once.

    Args:
        max_share: the largest tolerated share of unreadable images, in [0, 1].
        dataset_size: images in the split (``None`` when unknown, e.g. webdataset).
        show: how many paths are reported.
    """

    def __init__(self, max_share: float, dataset_size: int | None = None, show: int = 5) -> None:
        if not 0.0 <= max_share <= 1.0:
            raise InvalidInputError(f"max_bad_share must be in [0, 1], got {max_share}")
        self.max_share = max_share
        self.floor = min(100, dataset_size) if dataset_size else 100
        self.show = show
        self.seen = 0
        self.bad: list[str] = []
        self.count = 0
        self._reported: set[str] = set()

    def add(self, bad: tuple[str, ...], seen: int) -> None:
        """Record one batch.

        Raises:
            InvalidInputError: the share of unreadable images passed the limit.
        """
        self.seen += seen
        if not bad:
            return
        self.count += len(bad)
        for p in bad:
            if p not in self._reported:
                self._reported.add(p)
                logger.warning("skipped an unreadable image: %s (%s)", p, _why(p))
                if len(self.bad) < self.show:
                    self.bad.append(p)
        if self.count > self.max_share * max(self.seen, self.floor):
            raise InvalidInputError(
                f"{self.count} of {self.seen} images read so far are unreadable (more than "
                f"max_bad_share={self.max_share:g}), e.g. {', '.join(self.bad[:3])} "
                f"({_why(self.bad[0])}); fix the data or raise loader.max_bad_share"
            )

    def summary(self) -> dict[str, object]:
        """``{"skipped": n, "seen": m, "first": [paths]}`` for logs and manifests."""
        return {"skipped": self.count, "seen": self.seen, "first": list(self.bad)}


def _why(name: str) -> str:
    """Why the image ``name`` (a path, or a webdataset key) was dropped."""
    reason = unreadable_reason(name) if os.path.lexists(name) else None
    return reason or "not a decodable image: corrupted, truncated or another format"
