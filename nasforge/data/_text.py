"""Language-model data: ``text:PATH`` and the embedded ``pystdlib`` corpus as fixed-length token
windows.

The corpus is tokenized once into a memory-mapped ``uint16`` file (:mod:`~nasforge.data._corpus`);
no process holds it. Sample ``i`` is the window ``tokens[i*T : i*T + T + 1]`` (T = the source's
``input_size``, the largest context a subnet trains at); a batch is ``x = window[:, :-1]`` and
``y = window[:, 1:]`` (next-token targets), both (B, T) int64. A subnet of context length
``c < T`` trains on the first ``c`` positions (:mod:`~nasforge.supernet.training.task`).

Train/val split: windows are grouped in blocks of :data:`SPLIT_BLOCK` consecutive windows and a
seeded permutation of the blocks puts ``val_fraction`` of them in validation, so validation text
is held out in contiguous stretches. Sample order is that of the image folders
(:class:`~nasforge.data._stream._EpochBatches`): epoch ``e`` is a permutation seeded by
``(seed, e)`` cut into global batches, rank ``r`` of ``W`` takes ``r::W`` of each, and a resumed
run starts at the stored ``(epoch, index)``.

Spec options follow the path after ``?``: ``text:corpus.txt?tokenizer=bpe&vocab=4096``
(``tokenizer`` in {byte, bpe}, default byte; ``vocab`` the BPE size, default 4096).

Example:
    >>> src = open_text("", 64, 0, embedded=True, cap_bytes=200_000)
    >>> b = next(src.train_batches(4, seed=0))
    >>> tuple(b.x.shape), tuple(b.y.shape), src.num_classes
    ((4, 64), (4, 64), 259)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from nasforge.data._corpus import STDLIB_CAP_BYTES
from nasforge.data._corpus import corpus_files
from nasforge.data._corpus import stdlib_corpus
from nasforge.data._corpus import tokenized_corpus
from nasforge.data._stream import _EpochBatches
from nasforge.data.base import BaseImageSource
from nasforge.data.base import Batch
from nasforge.data.tokenizer import Tokenizer
from nasforge.errors import InvalidInputError

__all__ = ["SPLIT_BLOCK", "TextSource", "open_text", "parse_options"]

logger = logging.getLogger(__name__)

#: consecutive windows that go to the same split
SPLIT_BLOCK = 8

_OPTIONS = {"tokenizer": str, "vocab": int}


def parse_options(arg: str, allowed: dict[str, type] | None = None
                  ) -> tuple[str, dict[str, object]]:
    """Split ``PATH?key=value&...`` into the path and typed options.

    Raises:
        InvalidInputError: an unknown option or a value of the wrong type.

    Example:
        >>> parse_options("c.txt?tokenizer=bpe&vocab=512")
        ('c.txt', {'tokenizer': 'bpe', 'vocab': 512})
    """
    allowed = _OPTIONS if allowed is None else allowed
    path, sep, query = arg.partition("?")
    opts: dict[str, object] = {}
    if not sep:
        return path, opts
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key not in allowed:
            raise InvalidInputError(f"unknown text option {key!r} in {arg!r}; options: "
                                    f"{', '.join(sorted(allowed))}")
        try:
            opts[key] = allowed[key](value)
        except ValueError:
            raise InvalidInputError(f"text option {key}={value!r} is not a valid "
                                    f"{allowed[key].__name__}") from None
    return path, opts


def split_windows(n_windows: int, seed: int, val_fraction: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Train and val window indices (sorted): ``val_fraction`` of the blocks, seeded."""
    n_blocks = -(-n_windows // SPLIT_BLOCK)
    n_val = max(1, round(n_blocks * val_fraction)) if n_blocks > 1 else 0
    val_blocks = np.random.default_rng((seed, 1)).permutation(n_blocks)[:n_val]
    is_val = np.zeros(n_windows, dtype=bool)
    for b in val_blocks:
        is_val[b * SPLIT_BLOCK:(b + 1) * SPLIT_BLOCK] = True
    idx = np.arange(n_windows)
    return idx[~is_val], idx[is_val]


class NumberedTextSource(BaseImageSource):
    """A text source whose samples are numbered (``train_idx`` / ``val_idx``): batches of
    :meth:`rows` in the seeded, resumable order of the image sources. Subclasses set the two
    index arrays and define :meth:`rows`."""

    train_idx: np.ndarray
    val_idx: np.ndarray

    def rows(self, idx: np.ndarray | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of samples ``idx``, each (B, T) token ids."""
        raise NotImplementedError

    @property
    def num_train(self) -> int:
        return len(self.train_idx)

    @property
    def num_val(self) -> int:
        return len(self.val_idx)

    def per_epoch(self, batch_size: int) -> int:
        return max(1, self.num_train // batch_size)

    def train_batches(self, batch_size: int, *, seed: int, start: tuple[int, int] = (0, 0),
                      rank: int = 0, world_size: int = 1, augment: bool = True
                      ) -> Iterator[Batch]:
        batch_size = min(batch_size, self.num_train)
        sampler = _EpochBatches(self.num_train, batch_size, seed, start, rank, world_size)
        epoch, index = start
        if index >= sampler.per_epoch:
            epoch, index = epoch + index // sampler.per_epoch, index % sampler.per_epoch
            sampler.start = (epoch, index)
        for items in sampler:
            x, y = self.rows([int(self.train_idx[i]) for i, _ in items])
            index += 1
            if index == sampler.per_epoch:
                epoch, index = epoch + 1, 0
            yield Batch(x, y, (epoch, index), (), len(items))

    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for j in range(0, self.num_val, batch_size):
            yield self.rows(self.val_idx[j:j + batch_size])


class TextSource(NumberedTextSource):
    """Next-token windows of a tokenized corpus (see the module docstring).

    Args:
        tokens: (N,) token ids (a memory map).
        tokenizer: the tokenizer that made them.
        window: T, tokens per sample.
        seed: seed of the train/val split.
        val_fraction: share of the windows held out.
        name: the spec it was opened from.
        provenance: JSON for manifests (corpus, tokenizer, windows).

    Raises:
        InvalidInputError: fewer than two windows of ``window + 1`` tokens.
    """

    task = "lm"

    def __init__(self, tokens: np.ndarray, tokenizer: Tokenizer, window: int, seed: int = 0,
                 val_fraction: float = 0.1, name: str = "text",
                 provenance: dict[str, object] | None = None) -> None:
        if window < 2:
            raise InvalidInputError(f"text window must be at least 2 tokens, got {window}")
        n_windows = (len(tokens) - 1) // window
        if n_windows < 2:
            raise InvalidInputError(f"corpus {name!r} has {len(tokens)} tokens: too few for two "
                                    f"windows of {window + 1}; give more text or a shorter "
                                    "window")
        self.tokens = tokens
        self.tokenizer = tokenizer
        self.name = name
        self.num_classes = int(tokenizer.vocab_size)
        self.input_size = int(window)
        self.train_idx, self.val_idx = split_windows(n_windows, seed, val_fraction)
        self.provenance = {**(provenance or {}), "window": window,
                           "train_windows": len(self.train_idx),
                           "val_windows": len(self.val_idx)}


    def windows(self, idx: np.ndarray | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``, each (len(idx), T) int64, for window indices ``idx``."""
        t = self.input_size
        rows = np.stack([np.asarray(self.tokens[i * t:i * t + t + 1], dtype=np.int64)
                         for i in idx]) if len(idx) else np.zeros((0, t + 1), dtype=np.int64)
        w = torch.from_numpy(rows)
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()

    rows = windows



def open_text(arg: str, input_size: int, seed: int, *, val_fraction: float = 0.1,
              embedded: bool = False, cap_bytes: int = STDLIB_CAP_BYTES) -> TextSource:
    """A :class:`TextSource` of ``text:PATH[?options]`` or of the embedded corpus.

    Args:
        arg: the spec after ``text:`` (``PATH?tokenizer=bpe&vocab=4096``); for the embedded
            corpus only the options.
        input_size: T, tokens per window.
        seed: seed of the train/val split.
        val_fraction: share of the windows held out.
        embedded: read the standard-library corpus (``pystdlib``) instead of a path.
        cap_bytes: size cap of the embedded corpus.

    Raises:
        InvalidInputError: a missing path, an empty corpus, a bad option.
    """
    path, opts = parse_options(arg)
    if embedded:
        if path:
            raise InvalidInputError(f"dataset 'pystdlib' takes no path, got {path!r}; use "
                                    "text:PATH for a corpus of your own")
        corpus, name = stdlib_corpus(cap_bytes), "pystdlib" + (f":{arg}" if arg else "")
    else:
        if not path:
            raise InvalidInputError("dataset 'text' needs a path: text:PATH (a file or folder); "
                                    "the embedded corpus is 'pystdlib'")
        corpus, name = corpus_files(Path(path)), f"text:{arg}"  # with options: reopens as is
    tokens, tok, prov = tokenized_corpus(corpus, str(opts.get("tokenizer", "byte")),
                                         int(str(opts.get("vocab", 4096))))
    return TextSource(tokens, tok, input_size, seed, val_fraction, name, prov)
