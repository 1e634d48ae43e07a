"""Image data: where bytes come from and how they become batches (timm's split).

- :mod:`~nasforge.data.registry`: one scheme registry, :data:`SCHEMES` (``digits``,
  ``mnist5k``, ``cifar10:``, ``synthetic``, ``imagefolder:``, ``webdataset:``), and the two
  entry points :func:`open_data` (streaming where the scheme streams) and :func:`load_data`
  (in memory).
- Readers: :mod:`~nasforge.data._memory` (the small sets, held in memory),
  :mod:`~nasforge.data._stream` (``imagefolder:PATH`` decoded lazily, sample order a pure
  function of ``(seed, epoch)``, per-rank shards, unreadable images skipped),
  :mod:`~nasforge.data._webdataset` (tar shards), :mod:`~nasforge.data._text` (token windows
  of a corpus, ``text:`` / ``pystdlib``) and :mod:`~nasforge.data._textpairs` (source/target
  pairs, ``textpairs:`` / ``pystdlib-pairs``); corpora and tokenizers in
  :mod:`~nasforge.data._corpus` and :mod:`~nasforge.data.tokenizer`.
- :mod:`~nasforge.data.transforms`: crops, flips, RandAugment on uint8; normalisation, resizing
  and mixup/cutmix on the compute device.
- :mod:`~nasforge.data.loader`: :class:`LoaderConfig`, decode, collate, the DataLoader.
- :mod:`~nasforge.data.base`: the :class:`BaseImageSource` protocol every source implements.

Example:
    >>> data = open_data("digits", input_size=16, seed=0)
    >>> data.num_classes, data.input_size
    (10, 16)
"""

from __future__ import annotations

from nasforge._paths import check_outside_data
from nasforge.data._memory import BatchStream
from nasforge.data._memory import ImageData
from nasforge.data._memory import RestrictedUnpickler
from nasforge.data._memory import read_cifar_batch
from nasforge.data._stream import StreamingImageFolder
from nasforge.data._text import TextSource
from nasforge.data._textpairs import IGNORE
from nasforge.data._textpairs import TextPairs
from nasforge.data._textpairs import split_pair_batch
from nasforge.data._webdataset import StreamingWebDataset
from nasforge.data.base import BaseImageSource
from nasforge.data.base import Batch
from nasforge.data.base import CorruptImageTracker
from nasforge.data.loader import LoaderConfig
from nasforge.data.registry import SCHEMES
from nasforge.data.registry import DataScheme
from nasforge.data.registry import load_data
from nasforge.data.registry import open_data
from nasforge.data.tokenizer import BPETokenizer
from nasforge.data.tokenizer import ByteTokenizer
from nasforge.data.tokenizer import Tokenizer
from nasforge.data.transforms import IMAGENET_MEAN
from nasforge.data.transforms import IMAGENET_STD
from nasforge.data.transforms import MixSpec
from nasforge.data.transforms import RandAugment
from nasforge.data.transforms import TrainTransform
from nasforge.data.transforms import ValTransform
from nasforge.data.transforms import mix_batch
from nasforge.data.transforms import normalize
from nasforge.data.transforms import resize_batch

__all__ = [
    "IGNORE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SCHEMES",
    "BPETokenizer",
    "BaseImageSource",
    "Batch",
    "BatchStream",
    "ByteTokenizer",
    "CorruptImageTracker",
    "DataScheme",
    "ImageData",
    "LoaderConfig",
    "MixSpec",
    "RandAugment",
    "RestrictedUnpickler",
    "StreamingImageFolder",
    "StreamingWebDataset",
    "TextPairs",
    "TextSource",
    "Tokenizer",
    "TrainTransform",
    "ValTransform",
    "check_outside_data",
    "load_data",
    "mix_batch",
    "normalize",
    "open_data",
    "read_cifar_batch",
    "resize_batch",
    "split_pair_batch",
]
