"""Tokenizers of the text sources: bytes (the default) or a byte-level BPE.

Both put the specials first, in fairseq's order (HAT's dictionaries, whose padding index the
HAT supernet masks): ``BOS = 0``, ``PAD = 1``, ``EOS = 2``.

- :class:`ByteTokenizer`: byte ``b`` is token ``b + 3`` (vocabulary 259 = 256 bytes + the
  three specials). Nothing to train, every text encodes.
- :class:`BPETokenizer`: a byte-level BPE trained with the ``tokenizers`` library on the corpus
  files (vocabulary ``vocab``; specials ``<s>``, ``<pad>``, ``</s>``). Saved as the library's
  JSON (no pickle) next to the encoded corpus.

Both map ``str -> list[int]`` and back; :func:`make_tokenizer` builds one from the spec's
``tokenizer=`` / ``vocab=`` options.

Example:
    >>> tok = ByteTokenizer()
    >>> tok.encode("hé"), tok.vocab_size
    ([107, 198, 172], 259)
    >>> tok.decode([107, 198, 172, tok.eos])
    'hé'
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from nasforge.errors import InvalidInputError
from nasforge.errors import MissingDependencyError

__all__ = ["BPETokenizer", "ByteTokenizer", "Tokenizer", "make_tokenizer"]

#: the token kinds the ``tokenizer=`` option accepts
TOKENIZER_KINDS = ("byte", "bpe")


class Tokenizer(Protocol):
    """What the text sources need of a tokenizer (satisfied by :class:`ByteTokenizer` and
    :class:`BPETokenizer`)."""

    vocab_size: int
    pad: int
    bos: int
    eos: int

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no specials added)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; specials are dropped."""
        ...

    def describe(self) -> dict[str, object]:
        """JSON for provenance: kind and vocabulary size."""
        ...


class ByteTokenizer:
    """UTF-8 bytes as tokens after ``BOS``/``PAD``/``EOS`` (see the module docstring)."""

    vocab_size = 259
    bos = 0
    pad = 1
    eos = 2
    #: token id of byte 0
    offset = 3

    def encode(self, text: str) -> list[int]:
        return [b + self.offset for b in text.encode("utf-8")]

    def decode(self, ids: Sequence[int]) -> str:
        raw = bytes(int(i) - self.offset for i in ids if self.offset <= int(i) < self.vocab_size)
        return raw.decode("utf-8", errors="replace")

    def describe(self) -> dict[str, object]:
        return {"kind": "byte", "vocab_size": self.vocab_size}


class BPETokenizer:
    """A byte-level BPE of the ``tokenizers`` library (see the module docstring).

    Args:
        path: the tokenizer JSON written by :meth:`train`.

    Raises:
        MissingDependencyError: ``tokenizers`` is not installed.
    """

    def __init__(self, path: Path) -> None:
        tokenizers = _tokenizers()
        self.path = Path(path)
        self._tok = tokenizers.Tokenizer.from_file(str(self.path))
        self.vocab_size = int(self._tok.get_vocab_size())
        self.bos, self.pad, self.eos = (int(self._tok.token_to_id(t))
                                        for t in ("<s>", "<pad>", "</s>"))

    @classmethod
    def train(cls, files: Iterable[Path], vocab: int, out: Path) -> BPETokenizer:
        """Train a byte-level BPE of ``vocab`` tokens on ``files`` and save it at ``out``.

        Raises:
            InvalidInputError: ``vocab`` outside [260, 65535].
        """
        if not 260 <= vocab <= 65535:
            raise InvalidInputError(f"BPE vocab must be in [260, 65535], got vocab={vocab}")
        tokenizers = _tokenizers()
        tok = tokenizers.Tokenizer(tokenizers.models.BPE())
        tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tokenizers.decoders.ByteLevel()
        trainer = tokenizers.trainers.BpeTrainer(
            vocab_size=vocab, special_tokens=["<s>", "<pad>", "</s>"], show_progress=False,
            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
        tok.train([str(f) for f in files], trainer)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tok.save(str(tmp))
        tmp.replace(out)
        return cls(out)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text).ids)

    def decode(self, ids: Sequence[int]) -> str:
        special = {self.pad, self.bos, self.eos}
        return str(self._tok.decode([int(i) for i in ids if int(i) not in special]))

    def describe(self) -> dict[str, object]:
        return {"kind": "bpe", "vocab_size": self.vocab_size, "file": str(self.path)}


def _tokenizers():  # type: ignore[no-untyped-def]
    try:
        import tokenizers
    except ImportError:
        raise MissingDependencyError("tokenizer=bpe needs the 'tokenizers' package: "
                                     "pip install 'nasforge[text]'") from None
    return tokenizers


def make_tokenizer(kind: str, vocab: int, files: Sequence[Path], cache: Path) -> Tokenizer:
    """The tokenizer of a spec's options: bytes, or a BPE trained on ``files`` (cached).

    Args:
        kind: ``byte`` or ``bpe``.
        vocab: BPE vocabulary size (ignored for bytes).
        files: the corpus files a BPE is trained on.
        cache: the corpus' cache folder; the BPE is stored as ``cache/bpe-<vocab>.json``.

    Raises:
        InvalidInputError: an unknown kind or a bad vocabulary size.
    """
    if kind == "byte":
        return ByteTokenizer()
    if kind != "bpe":
        raise InvalidInputError(f"tokenizer must be one of {', '.join(TOKENIZER_KINDS)}, "
                                f"got tokenizer={kind!r}")
    path = cache / f"bpe-{vocab}.json"
    if path.exists():
        return BPETokenizer(path)
    return BPETokenizer.train(files, vocab, path)
