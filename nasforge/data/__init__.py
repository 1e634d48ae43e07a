"""Image data for supernet training: one protocol, two kinds of source.

- Streaming (:mod:`~nasforge.data._stream`): ``imagefolder:PATH`` and
  ``webdataset:PATTERN``, decoded lazily in DataLoader workers, uint8 augmentation, sample
  order a pure function of ``(seed, epoch)``, per-rank shards, unreadable images skipped.
- In memory (:mod:`~nasforge.data._memory`): ``digits``, ``mnist5k``,
  ``cifar10:PATH`` and ``synthetic``.

:func:`open_data` returns the right one; both implement
:class:`~nasforge.data.base.BaseImageSource`.

Example:
    >>> data = open_data("digits", input_size=16, seed=0)
    >>> data.num_classes, data.input_size
    (10, 16)
"""

from __future__ import annotations

from pathlib import Path

from nasforge.data._memory import DATASETS
from nasforge.data._memory import BatchStream
from nasforge.data._memory import ImageData
from nasforge.data._memory import RestrictedUnpickler
from nasforge.data._memory import load_data
from nasforge.data._memory import read_cifar_batch
from nasforge.data._stream import LoaderConfig
from nasforge.data._stream import StreamingImageFolder
from nasforge.data._webdataset import StreamingWebDataset
from nasforge.data.base import BaseImageSource
from nasforge.data.base import Batch
from nasforge.data.base import CorruptImageTracker
from nasforge.errors import InvalidInputError

__all__ = [
    "DATASETS",
    "BaseImageSource",
    "Batch",
    "BatchStream",
    "CorruptImageTracker",
    "ImageData",
    "LoaderConfig",
    "RestrictedUnpickler",
    "StreamingImageFolder",
    "StreamingWebDataset",
    "load_data",
    "open_data",
    "read_cifar_batch",
]


def open_data(spec: str, input_size: int = 32, seed: int = 0, *,
              loader: LoaderConfig | None = None,
              resolution_scale: float | None = None) -> BaseImageSource:
    """The data source of ``spec``: streaming for ``imagefolder:``/``webdataset:``, else in memory.

    Args:
        spec: ``digits``, ``mnist5k``, ``synthetic[:N]``, ``cifar10:PATH``, ``imagefolder:PATH``
            or ``webdataset:PATTERN``.
        input_size: side S of the images the source yields (the largest training size).
        seed: seed of a deterministic train/val split where the data has none.
        loader: workers and augmentation of the streaming pipeline.
        resolution_scale: proxy scale of elastic resolution (``None``: one size for all).

    Raises:
        UnknownNameError: unknown kind.
        InvalidInputError: a missing folder, a folder without classes or images, a pattern that
            matches no shard.
    """
    cfg = loader or LoaderConfig()
    kind, _, arg = spec.partition(":")
    if kind == "imagefolder":
        if not arg:
            raise InvalidInputError("dataset 'imagefolder' needs a path: imagefolder:PATH")
        return StreamingImageFolder(Path(arg), input_size, seed, cfg, resolution_scale)
    if kind == "webdataset":
        return StreamingWebDataset(arg, input_size, None, cfg, resolution_scale)
    return load_data(spec, input_size, seed, cfg.val_fraction, resolution_scale=resolution_scale)
