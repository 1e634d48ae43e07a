"""Training entry points: :func:`train_supernet` (what ``nas train`` runs) and the cached quick
supernet :func:`train_quick_supernet` (what ``nas search`` trains when given no accuracy source).

The default recipe (:data:`DEFAULT_RECIPE`) trains an ``elasticvit`` supernet on ``digits`` at
32 px: 160 AdamW steps of batch 32 (lr 1e-3, cosine, 10 warm-up steps) with ElasticViT's
performance-aware sampling (complexity-aware FLOPs-level walk + banks), each step training the
largest subnet (label CE, in-place teacher), one subnet of the current FLOPs level and the
smallest subnet (both distilled with AlphaNet's alpha-divergence). Measured: about 100 s of CPU
time on one thread; the largest subnet reaches about 94% validation top-1 (32 px).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import torch

from nasforge.errors import InvalidInputError
from nasforge.supernet.data import load_data
from nasforge.supernet.samplers import create_sampler
from nasforge.supernet.trainer import CHECKPOINT_NAME
from nasforge.supernet.trainer import SupernetTrainer
from nasforge.supernet.trainer import TrainConfig
from nasforge.supernet.trainer import TrainResult

if TYPE_CHECKING:
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "DEFAULT_RECIPE",
    "Recipe",
    "recipe_key",
    "resolve_device",
    "train_quick_supernet",
    "train_supernet",
]


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a supernet training run besides the space.

    Attributes:
        data: dataset spec (``digits``, ``imagefolder:PATH``, ...).
        sampler: registered sampler name.
        sampler_options: constructor options of the sampler.
        train: hyper-parameters (steps, batch, lr, input size, seed, ...).
    """

    data: str = "digits"
    sampler: str = "performance_aware"
    sampler_options: Mapping[str, Any] = field(default_factory=lambda: {
        "num_subnets": 1, "include_max": True, "include_min": "global"})
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "sampler": self.sampler,
                "sampler_options": dict(self.sampler_options), "train": self.train.to_dict()}


#: The default of ``nas train`` and of the quick supernet (measured in the report / benchmarks).
DEFAULT_RECIPE = Recipe()


def resolve_device(accelerator: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when present) -> a torch device.

    Raises:
        InvalidInputError: unknown name, or ``cuda`` without a CUDA device.
    """
    if accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if accelerator == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError("--accelerator cuda: no CUDA device is available; use cpu "
                                    "or auto")
        return torch.device("cuda")
    if accelerator == "cpu":
        return torch.device("cpu")
    raise InvalidInputError(f"unknown accelerator {accelerator!r}; choose cpu, cuda or auto")


def train_supernet(space: SearchSpace, recipe: Recipe, out_dir: Path | None, *,
                   resume: bool = False, progress: bool = False,
                   device: torch.device | str = "cpu") -> tuple[SupernetTrainer, TrainResult]:
    """Train (or resume training) a supernet of ``space`` with ``recipe``.

    Args:
        space: the search space.
        recipe: data, sampler and hyper-parameters.
        out_dir: where ``last.ckpt`` and ``train_log.csv`` go.
        resume: continue from ``out_dir/last.ckpt`` when it exists.
        progress: show a progress bar.
        device: compute device.

    Returns:
        ``(trainer, result)``; ``trainer.model`` is the trained supernet, ``trainer.data`` the data.

    Raises:
        InvalidInputError, IncompatibleComponentsError, UnknownNameError: bad data spec,
        checkpoint or sampler.
    """
    from nasforge.supernet.registry import build_supernet

    cfg = recipe.train
    data = load_data(recipe.data, cfg.input_size, cfg.seed)
    torch.manual_seed(cfg.seed)  # supernet initialisation
    supernet = build_supernet(space, data.num_classes)
    try:
        sampler = create_sampler(recipe.sampler, space, np.random.default_rng(cfg.seed),
                                 **dict(recipe.sampler_options))
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"bad options for sampler {recipe.sampler!r}: {e}") from None
    trainer = SupernetTrainer(
        supernet, sampler, data, cfg, out_dir, device=device, progress=progress,
        run_info={"sampler_options": dict(recipe.sampler_options)},
    )
    if resume and out_dir is not None and (Path(out_dir) / CHECKPOINT_NAME).exists():
        trainer.resume()
    return trainer, trainer.fit()


def recipe_key(space: SearchSpace, recipe: Recipe) -> str:
    """Cache key of a quick supernet: sha1 of space, recipe (data, budget, seed), version and
    checkpoint format."""
    from nasforge import __version__
    from nasforge.supernet.checkpoint import CHECKPOINT_FORMAT

    text = json.dumps({"space": space.name, "recipe": recipe.to_dict(), "version": __version__,
                       "format": CHECKPOINT_FORMAT}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def train_quick_supernet(space: SearchSpace, cache_dir: Path, progress: bool = True,
                         recipe: Recipe = DEFAULT_RECIPE,
                         device: torch.device | str = "cpu") -> Path:
    """The checkpoint of a small supernet of ``space``, trained once and cached.

    Cached under ``cache_dir/supernets/<space>-<key>/last.ckpt`` with the key of
    :func:`recipe_key`; a run interrupted earlier is resumed, a finished one returned at once.

    Args:
        space: the search space.
        cache_dir: cache root (e.g. :func:`nasforge._paths.cache_dir`).
        progress: show a progress bar while training.
        recipe: data, sampler and budget.
        device: compute device.

    Returns:
        Path of the finished checkpoint.
    """
    from nasforge.supernet.checkpoint import read_checkpoint

    out = Path(cache_dir) / "supernets" / f"{space.name}-{recipe_key(space, recipe)}"
    ck = out / CHECKPOINT_NAME
    if ck.exists():
        try:
            if read_checkpoint(ck, expect_space=space.name).step >= recipe.train.steps:
                return ck
        except InvalidInputError:
            ck.unlink()  # a corrupted cache entry is retrained
    train_supernet(space, recipe, out, resume=True, progress=progress, device=device)
    return ck
