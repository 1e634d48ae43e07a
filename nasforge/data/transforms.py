"""Image transforms of the streaming pipeline: uint8 in, uint8 out (per sample, in workers), and
the batch-level steps that run on the compute device (normalisation, mixup / cutmix, resize).

Per-sample transforms follow timm's ``transforms_factory`` and torchvision's definitions
(RandomResizedCrop scale 0.08-1, ratio 3/4-4/3, bicubic; validation resize of the shorter side
to ``size / crop_pct`` with ``crop_pct`` 0.875, then a centre crop) but are written on PIL, so no
torchvision is needed. JPEGs are decoded with PIL's ``draft`` mode (DCT-domain downscaling to the
smallest power-of-two reduction that still covers the crop), which is what makes decoding cheap.

RandAugment: Cubuk et al., "RandAugment: Practical automated data augmentation with a reduced
search space", https://arxiv.org/abs/1909.13719 (the op list and magnitude ranges of timm's
``auto_augment.py``). Mixup: https://arxiv.org/abs/1710.09412; CutMix:
https://arxiv.org/abs/1905.04899.

Randomness: a per-sample transform takes a :class:`numpy.random.Generator` built from
``(seed, epoch, sample index)``, never a global RNG, so a sample's augmentation does not depend
on which worker decodes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from PIL import ImageEnhance
from PIL import ImageOps

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MixSpec",
    "RandAugment",
    "TrainTransform",
    "ValTransform",
    "mix_batch",
    "normalize",
    "resize_batch",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _to_uint8(im: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 array of an RGB image."""
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _draft(im: Image.Image, need: tuple[int, int]) -> Image.Image:
    """Let a JPEG decode at a reduced scale that still covers ``need`` (w, h) pixels."""
    if im.format == "JPEG":
        im.draft("RGB", (max(1, need[0]), max(1, need[1])))
    return im


class RandAugment:
    """RandAugment on PIL images: ``num_ops`` ops drawn uniformly, each at magnitude ``m`` / 10
    of its range, each applied with probability 0.5 (timm's ``rand-m9-n2`` by default).

    Args:
        num_ops: N, ops per image.
        magnitude: M in [0, 10].
    """

    def __init__(self, num_ops: int = 2, magnitude: float = 9.0) -> None:
        self.num_ops = int(num_ops)
        self.magnitude = float(magnitude)
        self._ops: list[Callable[[Image.Image, float], Image.Image]] = [
            lambda im, _m: ImageOps.autocontrast(im),
            lambda im, _m: ImageOps.equalize(im),
            lambda im, m: im.rotate(30.0 * m),
            lambda im, m: ImageOps.solarize(im, int(256 - 256 * abs(m))),
            lambda im, m: ImageEnhance.Color(im).enhance(1.0 + 0.9 * m),
            lambda im, m: ImageOps.posterize(im, max(1, int(8 - 4 * abs(m)))),
            lambda im, m: ImageEnhance.Contrast(im).enhance(1.0 + 0.9 * m),
            lambda im, m: ImageEnhance.Brightness(im).enhance(1.0 + 0.9 * m),
            lambda im, m: ImageEnhance.Sharpness(im).enhance(1.0 + 0.9 * m),
            lambda im, m: im.transform(im.size, Image.Transform.AFFINE,
                                       (1, 0.3 * m, 0, 0, 1, 0)),
            lambda im, m: im.transform(im.size, Image.Transform.AFFINE,
                                       (1, 0, 0, 0.3 * m, 1, 0)),
            lambda im, m: im.transform(im.size, Image.Transform.AFFINE,
                                       (1, 0, 0.45 * m * im.size[0], 0, 1, 0)),
            lambda im, m: im.transform(im.size, Image.Transform.AFFINE,
                                       (1, 0, 0, 0, 1, 0.45 * m * im.size[1])),
        ]

    def __call__(self, im: Image.Image, rng: np.random.Generator) -> Image.Image:
        for k in rng.integers(0, len(self._ops), self.num_ops):
            sign = 1.0 if rng.random() < 0.5 else -1.0
            apply = rng.random() < 0.5
            if apply:
                im = self._ops[int(k)](im, sign * self.magnitude / 10.0)
        return im


@dataclass(frozen=True)
class TrainTransform:
    """RandomResizedCrop + horizontal flip (+ RandAugment) of one encoded image to uint8.

    Attributes:
        size: output side S.
        scale: range of the crop's share of the image area.
        ratio: range of the crop's aspect ratio (log-uniform).
        hflip: probability of a horizontal flip.
        rand_augment: ``(num_ops, magnitude)`` or ``None``.
    """

    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    rand_augment: tuple[int, float] | None = None

    def crop_box(self, width: int, height: int,
                 rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of a random crop (torchvision's 10 tries, then centre)."""
        area = width * height
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_r))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                left = int(rng.integers(0, width - w + 1))
                top = int(rng.integers(0, height - h + 1))
                return left, top, left + w, top + h
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            w, h = round(height * self.ratio[1]), height
        else:
            w, h = width, height
        left, top = (width - w) // 2, (height - h) // 2
        return left, top, left + w, top + h

    def __call__(self, im: Image.Image, rng: np.random.Generator) -> np.ndarray:
        """(S, S, 3) uint8 of an opened (not yet decoded) image."""
        w0, h0 = im.size
        box = self.crop_box(w0, h0, rng)
        cw, ch = box[2] - box[0], box[3] - box[1]
        # decode at the smallest scale that keeps the crop >= S on both sides
        need = (math.ceil(w0 * self.size / cw), math.ceil(h0 * self.size / ch))
        im = _draft(im, need).convert("RGB")
        if im.size != (w0, h0):
            sx, sy = im.size[0] / w0, im.size[1] / h0
            box = (int(box[0] * sx), int(box[1] * sy), max(int(box[0] * sx) + 1, int(box[2] * sx)),
                   max(int(box[1] * sy) + 1, int(box[3] * sy)))
        im = im.resize((self.size, self.size), Image.Resampling.BICUBIC, box=box)
        if rng.random() < self.hflip:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.rand_augment is not None:
            im = RandAugment(*self.rand_augment)(im, rng)
        return _to_uint8(im)


@dataclass(frozen=True)
class ValTransform:
    """Resize the shorter side to ``size / crop_pct`` (bicubic), then a centre crop of ``size``.

    Attributes:
        size: output side S.
        crop_pct: share of the resized image kept (0.875: 224 from 256).
    """

    size: int
    crop_pct: float = 0.875

    def __call__(self, im: Image.Image, rng: np.random.Generator | None = None) -> np.ndarray:
        """(S, S, 3) uint8 of an opened image (``rng`` unused: validation is deterministic)."""
        short = max(self.size, math.floor(self.size / self.crop_pct))
        w0, h0 = im.size
        scale = short / min(w0, h0)
        im = _draft(im, (math.ceil(w0 * scale), math.ceil(h0 * scale))).convert("RGB")
        w, h = im.size
        scale = short / min(w, h)
        nw, nh = max(short, round(w * scale)), max(short, round(h * scale))
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        # crop box in source pixels, resized in one call
        box = (left / scale, top / scale, (left + self.size) / scale, (top + self.size) / scale)
        im = im.resize((self.size, self.size), Image.Resampling.BICUBIC, box=box)
        return _to_uint8(im)


# ---- batch steps on the compute device ------------------------------------------------------
def normalize(x: torch.Tensor, device: torch.device, mean: tuple[float, ...],
              std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (B, 3, S, S) -> normalised float32 on ``device``; a float batch only moves.

    Args:
        x: (B, 3, S, S) uint8 images (or float images, already normalised).
        device: compute device (the uint8 batch travels, the float one is made there).
        mean: per-channel mean in [0, 1].
        std: per-channel std in [0, 1].
    """
    if x.dtype != torch.uint8:
        return x.to(device, non_blocking=True)
    x = x.to(device, non_blocking=True).float().div_(255.0)
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a float batch (B, C, H, W) to (B, C, size, size) (bilinear, antialiased when
    shrinking); unchanged when it already has that size."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < x.shape[-1])


@dataclass(frozen=True)
class MixSpec:
    """Batch mixing (timm's ``Mixup``): with probability ``prob`` a batch is mixed, by cutmix with
    probability ``switch_prob`` when both are on, else by mixup.

    Attributes:
        mixup_alpha: Beta(alpha, alpha) of mixup; 0 disables it.
        cutmix_alpha: Beta(alpha, alpha) of cutmix; 0 disables it.
        prob: probability of mixing a batch.
        switch_prob: probability of cutmix when both are enabled.
    """

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 1.0
    switch_prob: float = 0.5

    @property
    def enabled(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0


def mix_batch(x: torch.Tensor, y: torch.Tensor, spec: MixSpec, rng: np.random.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mix a batch with its reverse (timm's ``mode='batch'``).

    Args:
        x: (B, 3, S, S) normalised images.
        y: (B,) labels.
        spec: the mixing options.
        rng: the step's generator.

    Returns:
        ``(x_mixed, y, y_reversed, lam)``: the loss is ``lam * L(y) + (1 - lam) * L(y_rev)``.
    """
    if not spec.enabled or rng.random() >= spec.prob:
        return x, y, y, 1.0
    use_cut = spec.cutmix_alpha > 0 and (spec.mixup_alpha <= 0 or rng.random() < spec.switch_prob)
    y_rev = y.flip(0)
    if not use_cut:
        lam = float(rng.beta(spec.mixup_alpha, spec.mixup_alpha))
        return x * lam + x.flip(0) * (1.0 - lam), y, y_rev, lam
    lam = float(rng.beta(spec.cutmix_alpha, spec.cutmix_alpha))
    h, w = x.shape[-2:]
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x.flip(0)[:, :, y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
    return out, y, y_rev, lam
