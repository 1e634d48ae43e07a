"""How decoded samples become batches (timm's ``loader``): :class:`LoaderConfig` (the recipe's
``loader`` section), :func:`decode` (one image through a transform; unreadable -> ``None``),
:func:`collate` (uint8 batches that carry the unreadable paths) and :func:`make_loader` (a
DataLoader that leaves the global torch RNG alone). The streaming sources
(:mod:`~nasforge.data._stream`, :mod:`~nasforge.data._webdataset`) read with them.

Example:
    >>> LoaderConfig(workers=0).train_transform(32).size
    32
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from nasforge.data.transforms import TrainTransform
from nasforge.errors import InvalidInputError

__all__ = ["LoaderConfig", "collate", "decode", "make_loader"]


@dataclass(frozen=True)
class LoaderConfig:
    """How the streaming pipeline reads and augments (the recipe's ``loader`` section).

    Attributes:
        workers: DataLoader worker processes (0 decodes in the training process).
        prefetch: batches each worker keeps ready.
        rand_augment: ``[num_ops, magnitude]`` of RandAugment, or ``None`` (mixup / cutmix
            act on the batch on the compute device: ``train.mixup`` / ``train.cutmix``).
        scale: RandomResizedCrop area range.
        hflip: horizontal flip probability.
        crop_pct: validation centre-crop share (resize the shorter side to size / crop_pct).
        val_fraction: validation share of a folder without ``train``/``val`` sub-folders.
        max_bad_share: the run stops when more than this share of images is unreadable.
        shuffle_buffer: webdataset shuffle buffer (samples).
    """

    workers: int = 2
    prefetch: int = 2
    rand_augment: tuple[int, float] | None = None
    scale: tuple[float, float] = (0.08, 1.0)
    hflip: float = 0.5
    crop_pct: float = 0.875
    val_fraction: float = 0.2
    max_bad_share: float = 0.01
    shuffle_buffer: int = 1000

    def __post_init__(self) -> None:
        if self.workers < 0 or self.prefetch < 1:
            raise InvalidInputError(f"loader.workers must be >= 0 and loader.prefetch >= 1, got "
                                    f"workers={self.workers}, prefetch={self.prefetch}")
        if not 0.0 < self.crop_pct <= 1.0 or not 0.0 < self.val_fraction < 1.0:
            raise InvalidInputError(f"loader.crop_pct must be in (0, 1] and loader.val_fraction "
                                    f"in (0, 1), got {self.crop_pct} and {self.val_fraction}")
        if not 0.0 <= self.max_bad_share <= 1.0:
            raise InvalidInputError(f"loader.max_bad_share must be in [0, 1], got "
                                    f"{self.max_bad_share}")

    def train_transform(self, size: int) -> TrainTransform:
        ra = None if self.rand_augment is None else (int(self.rand_augment[0]),
                                                     float(self.rand_augment[1]))
        return TrainTransform(size, scale=(float(self.scale[0]), float(self.scale[1])),
                              hflip=self.hflip, rand_augment=ra)


def decode(raw: bytes | str, transform: Any, rng: np.random.Generator | None) -> np.ndarray | None:
    """Open an image (a path or its bytes) and apply ``transform(image, rng)``; ``None`` when
    the image is unreadable (the caller counts it)."""
    from PIL import Image

    try:
        src = io.BytesIO(raw) if isinstance(raw, bytes) else raw
        with Image.open(src) as im:
            out: np.ndarray = transform(im, rng)
            return out
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def collate(samples: Sequence[tuple[np.ndarray | None, int, str]]
             ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], int]:
    """Stack the decoded samples: x (b, 3, S, S) uint8, y (b,), dropped paths, samples read."""
    ok = [(a, y) for a, y, _ in samples if a is not None]
    bad = tuple(p for a, _, p in samples if a is None)
    if ok:
        x = torch.from_numpy(np.stack([a for a, _ in ok])).permute(0, 3, 1, 2).contiguous()
        y = torch.tensor([y for _, y in ok], dtype=torch.int64)
    else:
        x, y = torch.empty(0, 3, 1, 1, dtype=torch.uint8), torch.empty(0, dtype=torch.int64)
    return x, y, bad, len(samples)


def make_loader(dataset: Any, *, workers: int, prefetch: int, **kwargs: Any) -> DataLoader[Any]:
    """A DataLoader that leaves the global torch RNG alone (its own generator seeds the workers;
    the transforms draw from per-sample generators), so resuming never shifts dropout's RNG."""
    extra: dict[str, Any] = {"prefetch_factor": prefetch} if workers > 0 else {}
    return DataLoader(dataset, num_workers=workers, collate_fn=kwargs.pop("collate_fn", collate),
                      pin_memory=torch.cuda.is_available(), generator=torch.Generator(),
                      **extra, **kwargs)
