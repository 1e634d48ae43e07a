"""Generated image datasets for the pipeline tests: real PIL JPEGs in an ImageNet layout."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("ant", "bee", "cat")


def _jpeg(rng: np.random.Generator, label: int) -> Image.Image:
    """A learnable image: a class-coloured square on noise, of a random size and aspect."""
    w, h = int(rng.integers(40, 120)), int(rng.integers(40, 120))
    arr = (rng.random((h, w, 3)) * 80).astype(np.uint8)
    arr[h // 4: 3 * h // 4, w // 4: 3 * w // 4, label % 3] = 230
    return Image.fromarray(arr)


def make_imagefolder(root: Path, per_class: int = 8, val_per_class: int = 3, seed: int = 0,
                     corrupt: bool = True) -> Path:
    """``root/train/<class>/*.jpg`` + ``root/val/<class>/*.jpg``; with ``corrupt``, one file
    of the training split (``bee/broken.jpg``) is a truncated JPEG."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("val", val_per_class)):
        for label, cls in enumerate(CLASSES):
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _jpeg(rng, label).save(d / f"{i:04d}.jpg", quality=90)
    if corrupt:
        buf = io.BytesIO()
        _jpeg(rng, 1).save(buf, format="JPEG")
        (root / "train" / "bee" / "broken.jpg").write_bytes(buf.getvalue()[:200])
    return root


def make_shards(root: Path, shards: int = 3, per_shard: int = 8, seed: int = 0) -> str:
    """webdataset tar shards ``root/train-{000..N-1}.tar`` of ``KEY.jpg`` + ``KEY.cls``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        with tarfile.open(root / f"train-{s:03d}.tar", "w") as tar:
            for i in range(per_shard):
                label = int(rng.integers(0, len(CLASSES)))
                buf = io.BytesIO()
                _jpeg(rng, label).save(buf, format="JPEG")
                for ext, data in (("jpg", buf.getvalue()), ("cls", str(label).encode())):
                    info = tarfile.TarInfo(f"s{s:03d}_{i:05d}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return str(root / f"train-{{000..{shards - 1:03d}}}.tar")
