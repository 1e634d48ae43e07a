"""Text sources: ``text:`` / ``pystdlib`` token windows and ``textpairs:`` / ``pystdlib-pairs``;
their split, resumable order, tokenizers and refusals."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.data import IGNORE
from nasforge.data import ByteTokenizer
from nasforge.data import open_data
from nasforge.data import split_pair_batch
from nasforge.data._corpus import stdlib_corpus
from nasforge.data._text import open_text
from nasforge.errors import InvalidInputError
from tests._refusals import assert_one_line
from tests._refusals import invoke


def _corpus(tmp_path: Path, n: int = 6000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    words = ["alpha", "beta", "gamma", "delta", "def", "return", "x", "(", ")", ":"]
    text = " ".join(words[i] for i in rng.integers(0, len(words), n // 4))
    path = tmp_path / "corpus.txt"
    path.write_text(text[:n], encoding="utf-8")
    return path


def test_windows_are_next_token_pairs_from_the_file(tmp_path: Path) -> None:
    path = _corpus(tmp_path)
    src = open_data(f"text:{path}", 32, 0)
    text = path.read_text(encoding="utf-8")
    b = next(src.train_batches(4, seed=1))
    assert b.x.dtype == torch.int64 and tuple(b.x.shape) == (4, 32)
    assert torch.equal(b.x[:, 1:], b.y[:, :-1])
    for row in b.x:  # every window is a stretch of the file's text
        assert src.tokenizer.decode(row.tolist()) in text
    assert src.num_classes == ByteTokenizer.vocab_size and src.task == "lm"


def test_split_is_seeded_disjoint_and_covers_every_window(tmp_path: Path) -> None:
    path = _corpus(tmp_path)
    a, b, c = (open_data(f"text:{path}", 16, s) for s in (0, 0, 1))
    assert np.array_equal(a.val_idx, b.val_idx) and not np.array_equal(a.val_idx, c.val_idx)
    assert not set(a.train_idx) & set(a.val_idx)
    assert len(a.train_idx) + len(a.val_idx) == (len(a.tokens) - 1) // 16


def test_resumed_order_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    src = open_data(f"text:{_corpus(tmp_path)}", 16, 0)
    full = src.train_batches(8, seed=3)
    batches = [next(full) for _ in range(src.per_epoch(8) + 3)]  # crosses an epoch
    cut = 5
    resumed = src.train_batches(8, seed=3, start=batches[cut - 1].position)
    for want in batches[cut:]:
        got = next(resumed)
        assert torch.equal(got.x, want.x) and got.position == want.position


def test_ranks_take_disjoint_parts_of_each_global_batch(tmp_path: Path) -> None:
    src = open_data(f"text:{_corpus(tmp_path)}", 16, 0)
    whole = next(src.train_batches(8, seed=0)).x
    parts = [next(src.train_batches(8, seed=0, rank=r, world_size=2)).x for r in (0, 1)]
    assert torch.equal(torch.cat(parts)[torch.tensor([0, 4, 1, 5, 2, 6, 3, 7])], whole)


def test_bpe_option_trains_a_tokenizer_of_the_asked_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghij"), rng.integers(2, 7))) for _ in range(400)]
    path = tmp_path / "words.txt"
    path.write_text(" ".join(rng.choice(words, 5000)), encoding="utf-8")
    src = open_data(f"text:{path}?tokenizer=bpe&vocab=300", 16, 0)
    assert src.num_classes == 300 and int(src.tokens.max()) < 300
    assert len(src.tokens) < path.stat().st_size  # merges make fewer tokens than bytes
    text = " ".join(words[:5])
    assert src.tokenizer.decode(src.tokenizer.encode(text)) == text


@pytest.mark.slow
def test_embedded_corpus_records_python_version_and_size() -> None:
    src = open_text("", 64, 0, embedded=True, cap_bytes=300_000)
    prov = src.provenance
    assert prov["python"] == platform.python_version() and prov["source"] == "python-stdlib"
    assert 0 < int(str(prov["bytes"])) <= 300_000 and int(str(prov["files"])) > 1
    again = stdlib_corpus(300_000)
    assert again.files == stdlib_corpus(300_000).files  # deterministic file list


def test_pairs_pack_source_and_teacher_forced_target(tmp_path: Path) -> None:
    tsv = tmp_path / "p.tsv"
    tsv.write_text("hello world\tbonjour monde\nab\tcd\n" * 5, encoding="utf-8")
    src = open_data(f"textpairs:{tsv}", 16, 0)
    tok = src.tokenizer
    x, y = src.encode([0])
    s, t_in = split_pair_batch(x)
    assert tok.decode(s[0].tolist()) == "hello world" and int(s[0, 11]) == tok.eos
    assert int(t_in[0, 0]) == tok.bos and tok.decode(t_in[0].tolist()) == "bonjour monde"
    assert torch.equal(t_in[0, 1:14], y[0, :13]) and int(y[0, 13]) == tok.eos
    assert (y[0, 14:] == IGNORE).all() and src.task == "seq2seq"


def test_embedded_pairs_reverse_the_words() -> None:
    src = open_data("pystdlib-pairs", 32, 0)
    a, b = src.pair(int(src.train_idx[0]))
    assert a.split() == list(reversed(b.split())) and len(a.split()) >= 3


def test_text_refusals(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="0 bytes"):
        open_data(f"text:{empty}", 16, 0)
    with pytest.raises(InvalidInputError, match="unknown text option"):
        open_data(f"text:{_corpus(tmp_path)}?tokeniser=bpe", 16, 0)
    with pytest.raises(InvalidInputError, match="needs a path"):
        open_data("text", 16, 0)


def test_cli_refuses_an_empty_corpus_and_a_one_column_tsv(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    code, err = invoke(["train", "--space", "elastic_lm", "--data", f"text:{empty}",
                        "--out", str(tmp_path / "a"), "--steps", "1", "--no-progress"])
    assert_one_line(code, err, "0 bytes")
    tsv = tmp_path / "one.tsv"
    tsv.write_text("source\ttarget\nonly one column\n", encoding="utf-8")
    code, err = invoke(["train", "--space", "hat_iwslt14deen", "--data", f"textpairs:{tsv}",
                        "--out", str(tmp_path / "b"), "--steps", "1", "--no-progress"])
    assert_one_line(code, err, "line 2", "one column")
