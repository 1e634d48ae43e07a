"""``webdataset:PATTERN``: tar shards of ``KEY.jpg`` + ``KEY.cls`` streamed through DataLoader
workers (order and resume: see :mod:`~nasforge.data._stream`)."""

from __future__ import annotations

import glob
import itertools
import logging
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from nasforge.data.base import BaseImageSource
from nasforge.data.base import Batch
from nasforge.data.loader import LoaderConfig
from nasforge.data.loader import collate
from nasforge.data.loader import decode
from nasforge.data.loader import make_loader
from nasforge.data.transforms import IMAGENET_MEAN
from nasforge.data.transforms import IMAGENET_STD
from nasforge.data.transforms import ValTransform
from nasforge.errors import InvalidInputError

__all__ = ["StreamingWebDataset", "expand_pattern"]

logger = logging.getLogger(__name__)

_WDS_IMAGE_KEYS = ("jpg", "jpeg", "png", "webp", "ppm", "bmp")
_WDS_LABEL_KEYS = ("cls", "label", "class", "target")
#: the largest file of one sample (an image, a label) read from a shard: a larger member is a
#: decompression bomb (a gzip shard whose member expands to GiBs) or not an image shard
MAX_MEMBER_BYTES = 64 << 20


class _Failure:
    """A shard error met in a DataLoader worker, carried to the training process as an item
    (raised there as one line; raised in the worker, torch would wrap it with a traceback)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _raise_failure(item: Any) -> None:
    if isinstance(item, _Failure):
        raise InvalidInputError(item.message)


# ---- webdataset --------------------------------------------------------------------------------
def expand_pattern(pattern: str) -> list[str]:
    """Shard paths of ``pattern``: brace ranges (``shard-{000..099}.tar``) and glob wildcards.

    Raises:
        InvalidInputError: no existing shard matches.
    """
    if not pattern:
        raise InvalidInputError("dataset 'webdataset' needs a shard pattern: "
                                "webdataset:/data/shards/train-{000000..000146}.tar")
    try:
        from braceexpand import braceexpand

        names = list(braceexpand(pattern))
    except ImportError:
        names = [pattern]
    shards = sorted({s for n in names for s in glob.glob(str(Path(n).expanduser()))})
    if not shards:
        raise InvalidInputError(f"webdataset pattern {pattern!r} matches no shard file; check the "
                                "path and the {NNN..MMM} range")
    for shard in shards:
        if not Path(shard).is_file():
            raise InvalidInputError(f"webdataset shard {shard} is a folder or a special file, not "
                                    "a tar file; the pattern must match shard files only")
    return shards


def _tar_samples(shard: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, {extension: bytes})`` of the samples of one tar shard (webdataset layout).

    Raises:
        InvalidInputError: the shard is truncated or not a tar file, or holds a member over
            :data:`MAX_MEMBER_BYTES`.
    """
    key: str | None = None
    parts: dict[str, bytes] = {}
    try:
        with tarfile.open(shard, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                _check_member(shard, member)
                base = member.name.rsplit("/", 1)[-1]
                stem, _, ext = base.partition(".")
                prefix = member.name[: len(member.name) - len(base)] + stem
                if key is not None and prefix != key:
                    yield key, parts
                    parts = {}
                key = prefix
                f = tar.extractfile(member)
                parts[ext.lower()] = f.read() if f is not None else b""
            _check_end(tar)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise InvalidInputError(
            f"webdataset shard {shard} is truncated or not a tar file ({e}); copy it again "
            "or remove it from the pattern") from None
    if key is not None:
        yield key, parts


def _check_end(tar: tarfile.TarFile) -> None:
    """A tar ends with zero blocks; tarfile stops quietly at a header cut short, so a shard cut
    between two members would pass for a whole one: the stream must have read a full block
    past the last member."""
    pos = getattr(tar.fileobj, "pos", None)
    if isinstance(pos, int) and pos < tar.offset + tarfile.BLOCKSIZE:
        raise tarfile.ReadError("it ends inside a member header, with no end-of-archive block")


def _check_member(shard: str, member: tarfile.TarInfo) -> None:
    if member.size > MAX_MEMBER_BYTES:
        raise InvalidInputError(
            f"webdataset shard {shard}: member {member.name} is {member.size} bytes, over the "
            f"{MAX_MEMBER_BYTES} cap of one sample file (a decompression bomb, or not an "
            "image shard)")


def _label(parts: dict[str, bytes]) -> int | None:
    for k in _WDS_LABEL_KEYS:
        if k in parts:
            try:
                return int(parts[k].decode().strip())
            except ValueError:
                return None
    return None


def _no_label(shard: str, samples: list[dict[str, bytes]]) -> InvalidInputError:
    """Why a shard has no usable label: label files that hold no integer, or none at all."""
    texts = [p[k] for p in samples for k in _WDS_LABEL_KEYS if k in p]
    if texts:
        shown = texts[0][:40].decode(errors="replace").strip()
        return InvalidInputError(
            f"webdataset shard {shard}: the label files hold no integer (e.g. {shown!r}); a "
            "label (KEY.cls) is a class index 0..N-1")
    return InvalidInputError(f"webdataset shard {shard} has no labelled sample (KEY.cls / "
                             "KEY.label beside KEY.jpg)")


class _ShardStream(IterableDataset[tuple[torch.Tensor, torch.Tensor, tuple[str, ...], int]]):
    def __init__(self, shards: list[str], batch_size: int, transform: Any, seed: int,
                 epoch: int, skip: int, rank: int, world_size: int, buffer: int,
                 augment: bool, workers: int, shuffle: bool = True) -> None:
        self.shards, self.batch_size, self.transform = shards, batch_size, transform
        self.seed, self.epoch, self.skip = seed, epoch, skip
        self.rank, self.world_size, self.buffer = rank, world_size, buffer
        self.augment, self.workers, self.shuffle = augment, max(1, workers), shuffle

    def _samples(self, worker: int) -> Iterator[tuple[str, dict[str, bytes], int]]:
        order = (np.random.default_rng((self.seed, self.epoch)).permutation(len(self.shards))
                 if self.shuffle else np.arange(len(self.shards)))
        mine = [int(s) for s in order[self.rank::self.world_size]][worker::self.workers]
        for s in mine:
            rng = np.random.default_rng((self.seed, self.epoch, s, 1))
            buf: list[tuple[str, dict[str, bytes], int]] = []
            for n, (key, parts) in enumerate(_tar_samples(self.shards[s])):
                buf.append((f"{self.shards[s]}:{key}", parts, s * 10_000_000 + n))
                if self.shuffle and len(buf) >= self.buffer:
                    yield buf.pop(int(rng.integers(0, len(buf))))
                elif not self.shuffle:
                    yield buf.pop()
            while buf:
                yield buf.pop(int(rng.integers(0, len(buf))) if self.shuffle else 0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, tuple[str, ...], int]]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        # batches b < skip with b % workers == worker were this worker's: skip their samples
        n_skip = len(range(worker, self.skip, self.workers)) * self.batch_size
        try:
            yield from self._batches(worker, n_skip)
        except InvalidInputError as e:
            yield _Failure(str(e))  # type: ignore[misc]

    def _batches(self, worker: int, n_skip: int
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, tuple[str, ...], int]]:
        samples = itertools.islice(self._samples(worker), n_skip, None)
        batch: list[tuple[np.ndarray | None, int, str]] = []
        for key, parts, uid in samples:
            img = next((parts[k] for k in _WDS_IMAGE_KEYS if k in parts), None)
            label = _label(parts)
            rng = np.random.default_rng((self.seed, self.epoch, uid)) if self.augment else None
            arr = (decode(img, self.transform, rng) if img is not None and label is not None
                   else None)
            batch.append((arr, label if label is not None else -1, key))
            if len(batch) == self.batch_size:
                yield collate(batch)
                batch = []
        if batch and not self.shuffle:
            yield collate(batch)


class StreamingWebDataset(BaseImageSource):
    """``webdataset:PATTERN``: tar shards of ``KEY.jpg`` + ``KEY.cls`` (see the module docstring).

    The validation split is ``PATTERN`` with ``train`` replaced by ``val`` when such shards
    exist, else the last shard (held out of training).

    Args:
        pattern: shard pattern (brace ranges, globs).
        input_size: side S of the decoded crops.
        num_classes: number of classes (``None``: 1 + the largest label of the first shard).
        loader: workers and augmentation.
        resolution_scale: see :class:`~nasforge.data.base.BaseImageSource`.
    """

    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def __init__(self, pattern: str, input_size: int, num_classes: int | None = None,
                 loader: LoaderConfig | None = None,
                 resolution_scale: float | None = None) -> None:
        self.loader = loader or LoaderConfig()
        shards = expand_pattern(pattern)
        val: list[str] = []
        if "train" in pattern:
            try:
                val = expand_pattern(pattern.replace("train", "val"))
            except InvalidInputError:
                val = []
        if not val:
            if len(shards) < 2:
                raise InvalidInputError(f"webdataset {pattern!r} has one shard; give at least two "
                                        "(the last one validates) or a matching val shard set")
            shards, val = shards[:-1], shards[-1:]
        self.train_shards, self.val_shards = shards, val
        self.name = f"webdataset:{pattern}"
        self.input_size = int(input_size)
        self.resolution_scale = resolution_scale
        self.max_bad_share = self.loader.max_bad_share
        if num_classes is None:
            labels = [_label(p) for _, p in itertools.islice(_tar_samples(shards[0]), 10_000)]
            known = [v for v in labels if v is not None]
            if not known:
                raise _no_label(shards[0], [p for _, p in itertools.islice(
                    _tar_samples(shards[0]), 10_000)])
            num_classes = max(known) + 1
        self.num_classes = int(num_classes)
        self._num_val: int | None = None

    @property
    def num_val(self) -> int:
        if self._num_val is None:
            self._num_val = sum(1 for s in self.val_shards for _ in _tar_samples(s))
        return self._num_val

    def train_batches(self, batch_size: int, *, seed: int, start: tuple[int, int] = (0, 0),
                      rank: int = 0, world_size: int = 1, augment: bool = True
                      ) -> Iterator[Batch]:
        workers = self.loader.workers
        transform = (self.loader.train_transform(self.input_size) if augment
                     else ValTransform(self.input_size, self.loader.crop_pct))
        per_rank = max(1, batch_size // world_size)
        epoch, index = start
        while True:
            ds = _ShardStream(self.train_shards, per_rank, transform, seed, epoch, index, rank,
                              world_size, self.loader.shuffle_buffer, augment, workers)
            dl = make_loader(ds, batch_size=None, workers=min(workers, len(self.train_shards)),
                             prefetch=self.loader.prefetch, collate_fn=None)
            got = False
            for item in dl:
                _raise_failure(item)
                x, y, bad, seen = item
                got = True
                index += 1
                yield Batch(x, y, (epoch, index), bad, seen)
            if not got and index == 0:
                raise InvalidInputError(f"{self.name}: epoch {epoch} produced no full batch of "
                                        f"{per_rank} on rank {rank}; lower the batch size")
            epoch, index = epoch + 1, 0

    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ds = _ShardStream(self.val_shards, batch_size, ValTransform(self.input_size,
                          self.loader.crop_pct), 0, 0, 0, 0, 1, 1, False, 1, shuffle=False)
        for item in make_loader(ds, batch_size=None, workers=0, prefetch=1, collate_fn=None):
            _raise_failure(item)
            x, y, bad, _ = item
            for p in bad:
                logger.warning("validation: skipped an unreadable sample: %s", p)
            if len(y):
                yield x, y

