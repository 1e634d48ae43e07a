"""The streaming pipeline: ``imagefolder:PATH`` (here) and ``webdataset:PATTERN``
(:mod:`~nasforge.data._webdataset`) decoded lazily in ``torch.utils.data.DataLoader``
worker processes (batching: :mod:`~nasforge.data.loader`).

No process holds the images: the folder index is two numpy arrays (paths as fixed-width bytes,
the file system's own (:func:`os.fsencode`), so any file name fits and forked workers never
touch python object refcounts and their memory stays shared; :func:`path_at` gives the ``str``
back) and a
webdataset shard is read member by member through a bounded shuffle buffer.

Sample order, a pure function of ``(seed, epoch)``:

- imagefolder: epoch ``e`` is the permutation ``randperm(N, seed=(seed, e))`` cut into global
  batches (drop-last); rank ``r`` of ``W`` takes elements ``r::W`` of each global batch. A
  resumed run starts the batch sampler at the stored ``(epoch, index)``.
- webdataset: shards are permuted by ``(seed, e)``; rank ``r`` reads shards ``r::W``, worker
  ``k`` of ``K`` reads that list's ``k::K``; samples pass a shuffle buffer seeded by
  ``(seed, e, shard)``; each worker batches its own samples and the DataLoader takes the workers
  round robin. A resumed run skips (without decoding) the samples of the batches already seen;
  the order depends on the worker count, which a checkpoint therefore records.

Each sample's augmentation draws from ``default_rng((seed, epoch, sample))``, so it does not
depend on the worker that decodes it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data import Sampler

from nasforge.data.base import BaseImageSource
from nasforge.data.base import Batch
from nasforge.data.loader import LoaderConfig
from nasforge.data.loader import decode
from nasforge.data.loader import make_loader
from nasforge.data.transforms import IMAGENET_MEAN
from nasforge.data.transforms import IMAGENET_STD
from nasforge.data.transforms import ValTransform
from nasforge.errors import InvalidInputError

__all__ = ["IMAGE_SUFFIXES", "StreamingImageFolder", "index_folder", "path_at"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


# ---- imagefolder -------------------------------------------------------------------------------
def _class_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InvalidInputError(f"imagefolder path is not a folder: {root}")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InvalidInputError(f"imagefolder {root} has no class sub-folders; expected "
                                "ROOT/<class>/*.jpg or ROOT/train/<class>/*.jpg")
    return classes


def _index(root: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*")):
            if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
                paths.append(str(f))
                labels.append(label)
    encoded = [os.fsencode(p) for p in paths]  # any file name: bytes as the OS stores them
    return np.array(encoded, dtype=np.bytes_), np.array(labels, dtype=np.int64)


def path_at(paths: np.ndarray, i: int) -> str:
    """The ``i``-th path of an index array as a ``str`` (the inverse of the index's encoding).

    Example:
        >>> path_at(np.array([os.fsencode("café/猫.jpg")], dtype=np.bytes_), 0)
        'café/猫.jpg'
    """
    return os.fsdecode(bytes(paths[i]))


_Split = tuple[np.ndarray, np.ndarray]


def index_folder(root: Path, seed: int, val_fraction: float
                 ) -> tuple[list[str], _Split, _Split]:
    """Class names and (paths, labels) of the train and validation splits of a folder.

    ``root/train`` + ``root/val`` when both exist, else one folder split by ``seed``.

    Raises:
        InvalidInputError: a missing folder, no class sub-folders, no images.
    """
    if not root.exists():
        raise InvalidInputError(f"imagefolder data path does not exist: {root}")
    if (root / "train").is_dir() and (root / "val").is_dir():
        names = [p.name for p in _class_dirs(root / "train")]
        train, val = _index(root / "train", names), _index(root / "val", names)
    else:
        names = [p.name for p in _class_dirs(root)]
        paths, labels = _index(root, names)
        perm = np.random.default_rng(seed).permutation(len(paths))
        n_val = max(1, round(len(paths) * val_fraction)) if len(paths) > 1 else 0
        tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])
        train, val = (paths[tr], labels[tr]), (paths[va], labels[va])
    if len(train[0]) == 0:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise InvalidInputError(f"imagefolder {root} holds no training images ({kinds})")
    return names, train, val


def _check_val(root: Path, val: tuple[np.ndarray, np.ndarray]) -> None:
    if len(val[0]) == 0:
        raise InvalidInputError(f"imagefolder {root} has an empty validation split; add images "
                                "to val/ or use one folder (split by val_fraction)")


class _FolderDataset(Dataset[tuple[np.ndarray | None, int, str]]):
    """Map-style dataset over a path array; an index is ``(sample, epoch)``."""

    def __init__(self, paths: np.ndarray, labels: np.ndarray, transform: Any, seed: int,
                 augment: bool) -> None:
        self.paths, self.labels = paths, labels
        self.transform, self.seed, self.augment = transform, seed, augment

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray | None, int, str]:
        i, epoch = key
        path = path_at(self.paths, i)
        rng = np.random.default_rng((self.seed, epoch, i)) if self.augment else None
        return decode(path, self.transform, rng), int(self.labels[i]), path


class _EpochBatches(Sampler[list[tuple[int, int]]]):
    """This rank's part of the global batches of epochs ``start[0]`` on, from ``start[1]``."""

    def __init__(self, n: int, batch_size: int, seed: int, start: tuple[int, int], rank: int,
                 world_size: int, shuffle: bool = True, epochs: int | None = None) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.rank, self.world_size = start, rank, world_size
        self.shuffle, self.epochs = shuffle, epochs
        self.per_epoch = max(1, n // batch_size)

    def __len__(self) -> int:
        return self.per_epoch - self.start[1] if self.epochs == 1 else 2**62

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, first = self.start
        while self.epochs is None or epoch < self.start[0] + self.epochs:
            if self.shuffle:
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                perm = torch.randperm(self.n, generator=g).tolist()
            else:
                perm = list(range(self.n))
            for b in range(first, self.per_epoch):
                chunk = perm[b * self.batch_size:(b + 1) * self.batch_size]
                yield [(i, epoch) for i in chunk[self.rank::self.world_size]]
            epoch, first = epoch + 1, 0


class StreamingImageFolder(BaseImageSource):
    """``imagefolder:PATH`` read lazily (see the module docstring).

    Args:
        root: the folder (ImageNet layout or one folder of class sub-folders).
        input_size: side S of the decoded crops.
        seed: seed of the train/val split (one folder only).
        loader: workers and augmentation.
        resolution_scale: see :class:`~nasforge.data.base.BaseImageSource`.
    """

    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def __init__(self, root: Path, input_size: int, seed: int = 0,
                 loader: LoaderConfig | None = None,
                 resolution_scale: float | None = None) -> None:
        self.root = Path(root).expanduser()
        self.loader = loader or LoaderConfig()
        self.classes, self.train_split, self.val_split = index_folder(
            self.root, seed, self.loader.val_fraction)
        _check_val(self.root, self.val_split)
        self.name = f"imagefolder:{self.root}"
        self.num_classes = len(self.classes)
        self.input_size = int(input_size)
        self.resolution_scale = resolution_scale
        self.max_bad_share = self.loader.max_bad_share

    @property
    def num_train(self) -> int:
        return len(self.train_split[0])

    @property
    def num_val(self) -> int:
        return len(self.val_split[0])

    def per_epoch(self, batch_size: int) -> int:
        return max(1, self.num_train // batch_size)

    def train_batches(self, batch_size: int, *, seed: int, start: tuple[int, int] = (0, 0),
                      rank: int = 0, world_size: int = 1, augment: bool = True
                      ) -> Iterator[Batch]:
        batch_size = min(batch_size, self.num_train)
        transform = (self.loader.train_transform(self.input_size) if augment
                     else ValTransform(self.input_size, self.loader.crop_pct))
        ds = _FolderDataset(*self.train_split, transform, seed, augment)
        sampler = _EpochBatches(self.num_train, batch_size, seed, start, rank, world_size)
        per_epoch = sampler.per_epoch
        epoch, index = start
        if index >= per_epoch:
            epoch, index = epoch + index // per_epoch, index % per_epoch
            sampler.start = (epoch, index)
        dl = make_loader(ds, batch_sampler=sampler, workers=self.loader.workers,
                     prefetch=self.loader.prefetch, persistent_workers=False)
        for x, y, bad, seen in dl:
            index += 1
            if index == per_epoch:
                epoch, index = epoch + 1, 0
            yield Batch(x, y, (epoch, index), bad, seen)

    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ds = _FolderDataset(*self.val_split, ValTransform(self.input_size, self.loader.crop_pct),
                            0, False)
        n = self.num_val
        order = [[(i, 0) for i in range(j, min(j + batch_size, n))]
                 for j in range(0, n, batch_size)]
        dl = make_loader(ds, batch_sampler=order, workers=min(self.loader.workers, len(order)),
                     prefetch=self.loader.prefetch)
        for x, y, bad, _ in dl:
            for p in bad:
                logger.warning("validation: skipped an unreadable image: %s", p)
            if len(y):
                yield x, y
