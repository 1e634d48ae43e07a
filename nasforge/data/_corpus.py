"""Text corpora: which files, in which order, and their tokens encoded once into a cached file.

A corpus is an ordered list of files and a provenance record:

- :func:`stdlib_corpus`: the embedded default, the Python standard library's own ``*.py``
  source (``sysconfig.get_paths()["stdlib"]``, ``site-packages`` excluded), files sorted by
  their path relative to that folder and taken whole while the total stays under a size cap.
  The provenance records the Python version, the file count and the bytes, so a run manifest
  says which corpus it trained on.
- :func:`corpus_files`: ``text:PATH``: one file, or every regular non-hidden file under a
  folder (sorted).

:func:`encode_corpus` writes the tokens of the files (each file's tokens, then ``EOS``) into
``<cache>/tokens.u16`` (``uint16``, little-endian) one file at a time, so no process holds the
corpus; readers memory-map it. The cache folder is keyed by the files (path, size, mtime) and
the tokenizer, so an edited corpus is re-encoded.

Example:
    >>> corpus = stdlib_corpus(cap_bytes=100_000)
    >>> corpus.provenance["files"] > 0, corpus.provenance["bytes"] <= 100_000
    (True, True)
"""

from __future__ import annotations

import hashlib
import json
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasforge._paths import cache_dir
from nasforge.atomic import write_text_atomic
from nasforge.data.tokenizer import ByteTokenizer
from nasforge.data.tokenizer import Tokenizer
from nasforge.data.tokenizer import make_tokenizer
from nasforge.errors import InvalidInputError

__all__ = [
    "STDLIB_CAP_BYTES",
    "Corpus",
    "corpus_files",
    "encode_corpus",
    "stdlib_corpus",
    "tokenized_corpus",
]

#: size cap of the embedded standard-library corpus (4 MiB: ~4M byte tokens)
STDLIB_CAP_BYTES = 4 * 1024 * 1024

#: ``tokens.u16`` holds ids below this
_MAX_VOCAB = 65536


@dataclass(frozen=True)
class Corpus:
    """An ordered list of text files and where they came from.

    Attributes:
        files: the files, in corpus order.
        provenance: JSON for manifests (``source``, ``files``, ``bytes``, and for the embedded
            corpus ``python``, ``stdlib``, ``cap_bytes``).
    """

    files: tuple[Path, ...]
    provenance: dict[str, object]

    def key(self, tokenizer: str, vocab: int) -> str:
        """Cache key: sha1 of the files' paths, sizes and mtimes and the tokenizer options."""
        h = hashlib.sha1(f"v2:{tokenizer}:{vocab}".encode())
        for f in self.files:
            st = f.stat()
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]


def stdlib_corpus(cap_bytes: int = STDLIB_CAP_BYTES) -> Corpus:
    """The embedded corpus: the standard library's ``*.py`` files (see the module docstring).

    Args:
        cap_bytes: files are taken whole, in sorted order, while the total stays under this.

    Raises:
        InvalidInputError: no standard-library source found (a stripped Python install).
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted((f for f in root.rglob("*.py")
                    if "site-packages" not in f.relative_to(root).parts and f.is_file()),
                   key=lambda f: f.relative_to(root).as_posix())
    files: list[Path] = []
    total = 0
    for f in paths:
        size = f.stat().st_size
        if total + size > cap_bytes:
            continue
        files.append(f)
        total += size
    if total == 0:
        raise InvalidInputError(f"no Python source under the standard library folder {root}; "
                                "give a corpus with text:PATH")
    return Corpus(tuple(files), {
        "source": "python-stdlib", "python": platform.python_version(), "stdlib": str(root),
        "files": len(files), "bytes": total, "cap_bytes": cap_bytes,
    })


def corpus_files(path: Path) -> Corpus:
    """The corpus of ``text:PATH``: the file, or the regular non-hidden files of the folder.

    Raises:
        InvalidInputError: a missing path, or a corpus of 0 bytes.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InvalidInputError(f"text corpus path does not exist: {path}")
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file()
                       and not any(p.startswith(".") for p in f.relative_to(path).parts))
    else:
        files = [path]
    total = sum(f.stat().st_size for f in files)
    if total == 0:
        raise InvalidInputError(f"text corpus {path} holds 0 bytes ({len(files)} file(s)); a "
                                "corpus needs some text")
    return Corpus(tuple(files), {"source": str(path), "files": len(files), "bytes": total})


def encode_corpus(corpus: Corpus, tokenizer: Tokenizer, out: Path) -> Path:
    """Write the tokens of ``corpus`` to ``out`` (``uint16``), one file at a time.

    Each file's tokens are followed by ``tokenizer.eos``. Bytes are read raw for the byte
    tokenizer (any file encodes); other tokenizers read UTF-8 text (undecodable bytes
    replaced).

    Returns:
        ``out``.
    """
    if tokenizer.vocab_size > _MAX_VOCAB:
        raise InvalidInputError(f"vocabulary of {tokenizer.vocab_size} tokens does not fit "
                                f"uint16; use vocab <= {_MAX_VOCAB}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    is_bytes = tokenizer.describe().get("kind") == "byte"
    with tmp.open("wb") as fh:
        for f in corpus.files:
            raw = f.read_bytes()
            ids = (np.frombuffer(raw, dtype=np.uint8).astype("<u2") + ByteTokenizer.offset
                   if is_bytes else
                   np.asarray(tokenizer.encode(raw.decode("utf-8", errors="replace")),
                              dtype="<u2"))
            fh.write(ids.tobytes())
            fh.write(np.asarray([tokenizer.eos], dtype="<u2").tobytes())
    tmp.replace(out)
    return out


def tokenized_corpus(corpus: Corpus, tokenizer: str = "byte", vocab: int = 4096
                     ) -> tuple[np.ndarray, Tokenizer, dict[str, object]]:
    """The corpus' tokens as a read-only memory map, its tokenizer and the provenance.

    Encodes once into ``<cache>/text/<key>/`` (see the module docstring) and reuses it.

    Args:
        corpus: the files.
        tokenizer: ``byte`` or ``bpe``.
        vocab: BPE vocabulary size.

    Returns:
        ``(tokens (N,) uint16 memmap, tokenizer, provenance)``; the provenance adds the
        tokenizer and the token count.
    """
    folder = cache_dir() / "text" / corpus.key(tokenizer, vocab)
    tok = make_tokenizer(tokenizer, vocab, corpus.files, folder)
    path = folder / "tokens.u16"
    if not path.exists():
        encode_corpus(corpus, tok, path)
    tokens = np.memmap(path, dtype="<u2", mode="r")
    prov = {**corpus.provenance, "tokenizer": tok.describe(), "tokens": int(tokens.shape[0])}
    write_text_atomic(folder / "provenance.json", json.dumps(prov, indent=1, sort_keys=True))
    return tokens, tok, prov
