"""The streaming pipeline on generated JPEG folders and tar shards (real PIL, real DataLoader
workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nasforge.data import CorruptImageTracker
from nasforge.data import LoaderConfig
from nasforge.data import MixSpec
from nasforge.data import StreamingImageFolder
from nasforge.data import TrainTransform
from nasforge.data import ValTransform
from nasforge.data import mix_batch
from nasforge.data import open_data
from nasforge.errors import InvalidInputError
from tests.data._images import make_imagefolder
from tests.data._images import make_shards


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_imagefolder(tmp_path_factory.mktemp("imnet"))


def _labels(src: StreamingImageFolder, n: int, **kw: object) -> list[tuple[list[int], tuple]]:
    it = src.train_batches(6, seed=3, **kw)  # type: ignore[arg-type]
    out = [(b.y.tolist(), b.position, b.x.float().mean().item()) for b in
           (next(it) for _ in range(n))]
    it.close()  # type: ignore[attr-defined]
    return out  # type: ignore[return-value]


def test_folder_index_and_uint8_batches(folder: Path) -> None:
    src = open_data(f"imagefolder:{folder}", 24, loader=LoaderConfig(workers=0))
    assert isinstance(src, StreamingImageFolder)
    assert src.num_classes == 3 and src.num_train == 25 and src.num_val == 9
    b = next(src.train_batches(6, seed=0))
    assert b.x.dtype == torch.uint8 and b.x.shape[1:] == (3, 24, 24)
    vx, vy = next(src.val_batches(4))
    assert vx.shape == (4, 3, 24, 24) and vy.dtype == torch.int64


def test_order_is_a_pure_function_of_seed_and_epoch_whatever_the_workers(folder: Path) -> None:
    zero = open_data(f"imagefolder:{folder}", 16, loader=LoaderConfig(workers=0))
    two = open_data(f"imagefolder:{folder}", 16, loader=LoaderConfig(workers=2))
    a = _labels(zero, 6)  # type: ignore[arg-type]
    assert a == _labels(two, 6)  # type: ignore[arg-type]  # same images, same augmentation
    # resuming at a stored position gives the batches of the uninterrupted run
    assert _labels(zero, 3, start=a[2][1]) == a[3:]  # type: ignore[arg-type]
    # two ranks split every global batch
    r0 = _labels(zero, 2, rank=0, world_size=2)  # type: ignore[arg-type]
    r1 = _labels(zero, 2, rank=1, world_size=2)  # type: ignore[arg-type]
    assert len(r0[0][0]) + len(r1[0][0]) <= 6 and r0[0][0] != r1[0][0]


def test_transforms_keep_the_aspect_and_are_seeded(tmp_path: Path) -> None:
    arr = np.zeros((60, 200, 3), np.uint8)
    arr[:, 80:120] = 255  # a bright vertical band in the middle of a wide image
    Image.fromarray(arr).save(tmp_path / "w.jpg")
    with Image.open(tmp_path / "w.jpg") as im:
        val = ValTransform(32)(im)
    assert val.shape == (32, 32, 3) and val.dtype == np.uint8
    # centre crop of a shorter-side resize: the band spans ~40/60 of the crop's width
    assert 0.5 < (val[16, :, 0] > 128).mean() < 0.85
    t = TrainTransform(32, rand_augment=(2, 9.0))
    with Image.open(tmp_path / "w.jpg") as im:
        a = t(im, np.random.default_rng(5))
    with Image.open(tmp_path / "w.jpg") as im:
        b = t(im, np.random.default_rng(5))
    assert a.shape == (32, 32, 3) and np.array_equal(a, b)


def test_mixup_and_cutmix_mix_with_the_reversed_batch() -> None:
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 8, 8).contiguous()
    y = torch.arange(4)
    xm, _, yb, lam = mix_batch(x, y, MixSpec(mixup_alpha=0.8), np.random.default_rng(0))
    assert torch.allclose(xm, lam * x + (1 - lam) * x.flip(0)) and torch.equal(yb, y.flip(0))
    xc, _, _, lam_c = mix_batch(x, y, MixSpec(cutmix_alpha=1.0), np.random.default_rng(1))
    changed = (xc != x).float().mean().item()
    assert 0 < lam_c <= 1 and abs((1 - lam_c) - changed) < 0.3


def test_corrupt_share_limit() -> None:
    t = CorruptImageTracker(0.05, dataset_size=40)
    t.add(("a.jpg",), 10)  # 1 of a floor of 40: tolerated
    with pytest.raises(InvalidInputError, match=r"unreadable.*a\.jpg"):
        t.add(("b.jpg", "c.jpg"), 10)


def test_webdataset_shards_split_by_rank_and_resume_exactly(tmp_path: Path) -> None:
    pattern = make_shards(tmp_path / "wds", shards=5, per_shard=6)
    src = open_data(f"webdataset:{pattern}", 16, loader=LoaderConfig(workers=2))
    assert src.num_classes == 3 and src.num_val == 6  # the last shard validates

    def run(start: tuple[int, int], n: int, rank: int = 0, world: int = 1) -> list:
        it = src.train_batches(4, seed=1, start=start, rank=rank, world_size=world)
        out = [(b.y.tolist(), b.position, float(b.x.float().sum())) for b in
               (next(it) for _ in range(n))]
        it.close()  # type: ignore[attr-defined]
        return out

    full = run((0, 0), 5)
    assert run(full[1][1], 3) == full[2:]
    with pytest.raises(InvalidInputError, match="matches no shard"):
        open_data(f"webdataset:{tmp_path}/none-{{000..003}}.tar", 16)
