"""The cached quick supernet :func:`train_quick_supernet`: what ``nas search`` trains when given
no accuracy source.

It follows :data:`~nasforge.supernet.training.recipe.DEFAULT_RECIPE` (``recipes/quick.yaml``): an
``elasticvit`` supernet on ``digits`` (images at 32 px), 160 AdamW steps of batch 32 (lr 1e-3,
cosine, 10 warm-up steps) with ElasticViT's performance-aware sampling, each step training the
largest subnet (label CE, in-place teacher), one subnet of the current FLOPs level and the
smallest subnet (both distilled with AlphaNet's alpha-divergence), in NHWC layout
(``channels_last``: ~1.2x faster on CPU). 10% of ``digits`` (180 images) is held out to score
subnets, so one evaluation forwards 128 recalibration + 180 validation images.

Elastic resolution at a documented proxy scale: ``train.resolution_scale`` is 1/8, so a subnet of
deployment resolution r trains and is scored at r/8 px (elasticvit 128..256 -> 16..32 px on the
8x8 ``digits`` upsampled to 32 px). A larger resolution therefore costs latency *and* buys
accuracy in the search, and every accuracy records the size it was measured at.

:func:`train_supernet` and :func:`resolve_device` now live in
:mod:`nasforge.supernet.training.train`
and :class:`Recipe` in :mod:`nasforge.supernet.training.recipe`; they are re-exported here.

Language spaces have quick recipes of their own (:func:`quick_recipe`): ``elastic_lm`` trains
on the embedded byte corpus ``pystdlib`` (``recipes/elastic_lm_quick.yaml``), ``hat_*`` on the
embedded pairs ``pystdlib-pairs`` (``recipes/hat_quick.yaml``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from nasforge.errors import InvalidInputError
from nasforge.supernet.training.recipe import DEFAULT_RECIPE
from nasforge.supernet.training.recipe import Recipe
from nasforge.supernet.training.recipe import load_recipe
from nasforge.supernet.training.train import resolve_device
from nasforge.supernet.training.train import train_supernet
from nasforge.supernet.training.trainer import CHECKPOINT_NAME

if TYPE_CHECKING:
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "DEFAULT_RECIPE",
    "QUICK_RECIPES",
    "Recipe",
    "quick_recipe",
    "quick_recipe_name",
    "recipe_key",
    "resolve_device",
    "train_quick_supernet",
    "train_supernet",
]


#: space-name pattern -> the shipped recipe of its quick supernet (others: ``quick``)
QUICK_RECIPES = {"elastic_lm": "elastic_lm_quick", "hat_*": "hat_quick"}


def quick_recipe_name(space_name: str) -> str | None:
    """The shipped quick recipe of a space (``None``: the default, :data:`DEFAULT_RECIPE`).

    Example:
        >>> quick_recipe_name("hat_wmt14ende"), quick_recipe_name("elasticvit")
        ('hat_quick', None)
    """
    for pattern, name in QUICK_RECIPES.items():
        if fnmatch.fnmatchcase(space_name, pattern):
            return name
    return None


def quick_recipe(space: SearchSpace) -> Recipe:
    """The recipe of ``space``'s quick supernet (see :data:`QUICK_RECIPES`)."""
    name = quick_recipe_name(space.name)
    return DEFAULT_RECIPE if name is None else load_recipe(name)


def recipe_key(space: SearchSpace, recipe: Recipe) -> str:
    """Cache key of a quick supernet: sha1 of space, recipe (data, budget, seed), version and
    checkpoint format."""
    from nasforge import __version__
    from nasforge.supernet.checkpoint import CHECKPOINT_FORMAT

    text = json.dumps({"space": space.name, "recipe": recipe.to_dict(), "version": __version__,
                       "format": CHECKPOINT_FORMAT}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def train_quick_supernet(space: SearchSpace, cache_dir: Path, progress: bool = True,
                         recipe: Recipe | None = None,
                         device: torch.device | str = "cpu") -> Path:
    """The checkpoint of a small supernet of ``space``, trained once and cached.

    Cached under ``cache_dir/supernets/<space>-<key>/last.ckpt`` with the key of
    :func:`recipe_key`; a run interrupted earlier is resumed, a finished one returned at once.

    Args:
        space: the search space.
        cache_dir: cache root (e.g. :func:`nasforge._paths.cache_dir`).
        progress: show a progress bar while training.
        recipe: data, sampler and budget (default: :func:`quick_recipe`).
        device: compute device.

    Returns:
        Path of the finished checkpoint.
    """
    from nasforge.supernet.checkpoint import read_checkpoint

    recipe = quick_recipe(space) if recipe is None else recipe
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
