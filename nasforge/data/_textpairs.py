"""Sequence-to-sequence data: ``textpairs:PATH`` (a TSV of ``source<TAB>target`` lines) and the
embedded ``pystdlib-pairs`` set.

The file is indexed once (the byte offset of every line, a numpy array); a sample is read by
seeking to its line, so no process holds the pairs. A line without a tab stops the run with one
line naming it. Tokens: bytes by default, or a BPE trained on the file (``?tokenizer=bpe&vocab=N``).

A batch packs both sides into ``x`` (B, 2L) int64, L = ``input_size``: ``x[:, :L]`` the source
(tokens + ``EOS``, padded with ``PAD``, cut at L) and ``x[:, L:]`` the decoder input (``BOS`` +
target, padded); ``y`` (B, L) is the target + ``EOS`` with padding :data:`IGNORE` (-100, what
``cross_entropy`` skips). :func:`split_pair_batch` unpacks ``x``.

The embedded set (no download): lines of the standard-library corpus
(:func:`~nasforge.data._corpus.stdlib_corpus`) of 12-48 ASCII bytes and at least three words,
each paired with the same words in reverse order (a deterministic "translation" that needs the
encoder-decoder attention and scores with BLEU), at most :data:`EMBEDDED_PAIRS` pairs; written
once into the cache as a TSV.

Train/val split: a seeded permutation of the lines, ``val_fraction`` held out; sample order as
:mod:`~nasforge.data._text`.

Example:
    >>> src = open_textpairs("", 32, 0, embedded=True)
    >>> b = next(src.train_batches(4, seed=0))
    >>> tuple(b.x.shape), tuple(b.y.shape)
    ((4, 64), (4, 32))
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from nasforge._paths import cache_dir
from nasforge.data._corpus import stdlib_corpus
from nasforge.data._text import NumberedTextSource
from nasforge.data._text import parse_options
from nasforge.data.tokenizer import Tokenizer
from nasforge.data.tokenizer import make_tokenizer
from nasforge.errors import InvalidInputError

__all__ = ["EMBEDDED_PAIRS", "IGNORE", "TextPairs", "open_textpairs", "split_pair_batch"]

#: target id that the losses skip (padding)
IGNORE = -100
#: most pairs of the embedded set
EMBEDDED_PAIRS = 20_000


def split_pair_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(src (B, L), tgt_in (B, L))`` of a packed pair batch ``x`` (B, 2L)."""
    half = x.shape[1] // 2
    return x[:, :half], x[:, half:]


def _index_lines(path: Path) -> np.ndarray:
    """Byte offsets of the TSV's non-empty lines.

    Raises:
        InvalidInputError: a line without a tab, or no line at all.
    """
    offsets: list[int] = []
    pos = 0
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                if b"\t" not in line:
                    raise InvalidInputError(
                        f"textpairs {path} line {n} has one column; every line must be "
                        "source<TAB>target")
                offsets.append(pos)
            pos += len(line)
    if not offsets:
        raise InvalidInputError(f"textpairs {path} holds no pairs; every line must be "
                                "source<TAB>target")
    return np.asarray(offsets, dtype=np.int64)


class TextPairs(NumberedTextSource):
    """Source/target pairs of a TSV, read line by line (see the module docstring).

    Args:
        path: the TSV.
        tokenizer: the tokenizer of both sides.
        max_len: L, tokens per side (with the added ``BOS``/``EOS``).
        seed: seed of the train/val split.
        val_fraction: share of the pairs held out.
        name: the spec it was opened from.
        provenance: JSON for manifests.
    """

    task = "seq2seq"

    def __init__(self, path: Path, tokenizer: Tokenizer, max_len: int, seed: int = 0,
                 val_fraction: float = 0.1, name: str = "textpairs",
                 provenance: dict[str, object] | None = None) -> None:
        if max_len < 2:
            raise InvalidInputError(f"textpairs length must be at least 2 tokens, got {max_len}")
        self.path = Path(path)
        self.offsets = _index_lines(self.path)
        if len(self.offsets) < 2:
            raise InvalidInputError(f"textpairs {path} has {len(self.offsets)} pair; at least "
                                    "two are needed (one to train, one to validate)")
        self.tokenizer = tokenizer
        self.name = name
        self.num_classes = int(tokenizer.vocab_size)
        self.input_size = int(max_len)
        perm = np.random.default_rng((seed, 2)).permutation(len(self.offsets))
        n_val = max(1, round(len(perm) * val_fraction))
        self.train_idx, self.val_idx = np.sort(perm[n_val:]), np.sort(perm[:n_val])
        self.provenance = {**(provenance or {}), "pairs": len(self.offsets),
                           "max_len": max_len, "tokenizer": tokenizer.describe()}


    def pair(self, i: int) -> tuple[str, str]:
        """The source and target text of line ``i``."""
        with self.path.open("rb") as fh:
            fh.seek(int(self.offsets[i]))
            line = fh.readline().decode("utf-8", errors="replace").rstrip("\r\n")
        src, _, tgt = line.partition("\t")
        return src, tgt

    def encode(self, idx: np.ndarray | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x (b, 2L), y (b, L))`` of lines ``idx`` (the packed layout)."""
        tok, n = self.tokenizer, self.input_size
        x = np.full((len(idx), 2 * n), tok.pad, dtype=np.int64)
        y = np.full((len(idx), n), IGNORE, dtype=np.int64)
        for r, i in enumerate(idx):
            src, tgt = self.pair(int(i))
            s = [*tok.encode(src)[:n - 1], tok.eos]
            t = tok.encode(tgt)[:n - 1]
            x[r, :len(s)] = s
            x[r, n:n + len(t) + 1] = [tok.bos, *t]
            y[r, :len(t) + 1] = [*t, tok.eos]
        return torch.from_numpy(x), torch.from_numpy(y)

    rows = encode


def _embedded_tsv() -> tuple[Path, dict[str, object]]:
    """The embedded pairs' TSV (written once into the cache) and its provenance."""
    corpus = stdlib_corpus()
    key = hashlib.sha1(f"pairs-v1:{corpus.key('byte', 0)}".encode()).hexdigest()[:16]
    path = cache_dir() / "text" / f"pairs-{key}" / "pairs.tsv"
    prov: dict[str, object] = {**corpus.provenance, "source": "python-stdlib-pairs",
                               "rule": "target = the source line's words reversed"}
    if path.exists():
        return path, prov
    rows: list[str] = []
    for f in corpus.files:
        for line in f.read_bytes().splitlines():
            text = line.strip()
            if not 12 <= len(text) <= 48 or not text.isascii() or b"\t" in text:
                continue
            words = text.decode("ascii").split()
            if len(words) >= 3:
                rows.append(f"{' '.join(words)}\t{' '.join(reversed(words))}\n")
        if len(rows) >= EMBEDDED_PAIRS:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(rows[:EMBEDDED_PAIRS]), encoding="utf-8")
    tmp.replace(path)
    return path, prov


def open_textpairs(arg: str, input_size: int, seed: int, *, val_fraction: float = 0.1,
                   embedded: bool = False) -> TextPairs:
    """A :class:`TextPairs` of ``textpairs:PATH[?options]`` or of the embedded set.

    Raises:
        InvalidInputError: a missing file, a line with one column, a bad option.
    """
    spec_path, opts = parse_options(arg)
    if embedded:
        if spec_path:
            raise InvalidInputError(f"dataset 'pystdlib-pairs' takes no path, got "
                                    f"{spec_path!r}; use textpairs:PATH for your own pairs")
        path, prov = _embedded_tsv()
        name = "pystdlib-pairs" + (f":{arg}" if arg else "")
    else:
        if not spec_path:
            raise InvalidInputError("dataset 'textpairs' needs a path: textpairs:PATH (a TSV of "
                                    "source<TAB>target lines)")
        path = Path(spec_path).expanduser()
        if not path.is_file():
            raise InvalidInputError(f"textpairs file does not exist or is not a file: {path}")
        prov, name = {"source": str(path)}, f"textpairs:{arg}"  # with options: reopens as is
    kind, vocab = str(opts.get("tokenizer", "byte")), int(str(opts.get("vocab", 4096)))
    st = path.stat()
    key = hashlib.sha1(f"{path}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]
    tok = make_tokenizer(kind, vocab, [path], cache_dir() / "text" / f"tsv-{key}")
    return TextPairs(path, tok, input_size, seed, val_fraction, name, prov)
