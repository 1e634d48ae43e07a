"""The training entry point: :func:`train_supernet` (what ``nas train`` runs) builds the data
source, the supernet, the sampler and a :class:`~nasforge.supernet.training.trainer.SupernetTrainer`
from a :class:`~nasforge.supernet.training.recipe.Recipe`, resumes when asked, and trains.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from nasforge.data import open_data
from nasforge.errors import InvalidInputError
from nasforge.supernet.training.recipe import Recipe
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.trainer import CHECKPOINT_NAME
from nasforge.supernet.training.trainer import SupernetTrainer
from nasforge.supernet.training.trainer import TrainResult

if TYPE_CHECKING:
    from nasforge.data import BaseImageSource
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.supernet.training.recipe import TrainConfig

__all__ = ["resolve_device", "steps_from_epochs", "train_supernet"]

logger = logging.getLogger(__name__)


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


def steps_from_epochs(cfg: TrainConfig, data: BaseImageSource) -> TrainConfig:
    """``cfg`` with ``train.epochs`` / ``train.warmup_epochs`` (when set) turned into steps:
    epochs x batches per epoch of ``data``'s training split.

    Raises:
        InvalidInputError: epochs asked of a dataset of unknown size (streamed shards).
    """
    if cfg.epochs is None and cfg.warmup_epochs is None:
        return cfg
    n = data.num_train
    if n is None:
        raise InvalidInputError(f"train.epochs / train.warmup_epochs need a dataset of known "
                                f"size; {data.name} streams shards of unknown length: give "
                                "train.steps and train.warmup_steps")
    per_epoch = max(1, n // cfg.batch_size)
    steps = cfg.steps if cfg.epochs is None else max(1, cfg.epochs * per_epoch)
    warm = (cfg.warmup_steps if cfg.warmup_epochs is None
            else min(steps - 1, cfg.warmup_epochs * per_epoch))
    return dataclasses.replace(cfg, steps=steps, warmup_steps=max(0, warm))


def train_supernet(space: SearchSpace, recipe: Recipe, out_dir: Path | None, *,
                   resume: bool = False, progress: bool = False,
                   device: torch.device | str = "cpu", reset_optimizer: bool = False,
                   ) -> tuple[SupernetTrainer, TrainResult]:
    """Train (or resume training) a supernet of ``space`` with ``recipe``.

    Args:
        space: the search space.
        recipe: data, loader, sampler and hyper-parameters (``train.epochs``, when set,
            becomes ``train.steps`` = epochs x batches per epoch).
        out_dir: where ``last.ckpt``, ``train_log.csv`` and ``tb/`` go.
        resume: continue from ``out_dir/last.ckpt`` when it exists.
        progress: show a progress bar.
        device: compute device.
        reset_optimizer: with ``resume``, accept a checkpoint without optimizer state.

    Returns:
        ``(trainer, result)``; ``trainer.model`` is the trained supernet, ``trainer.data`` the
        data source.

    Raises:
        InvalidInputError, IncompatibleComponentsError, UnknownNameError: bad data spec,
        checkpoint or sampler.
    """
    from nasforge.supernet.registry import build_supernet

    cfg = recipe.train
    data = open_data(recipe.data, cfg.input_size, cfg.seed, loader=recipe.loader,
                     resolution_scale=cfg.resolution_scale)
    cfg = steps_from_epochs(cfg, data)
    torch.manual_seed(cfg.seed)  # supernet initialisation
    supernet = build_supernet(space, data.num_classes)
    try:
        sampler = create_sampler(recipe.sampler, space, np.random.default_rng(cfg.seed),
                                 **dict(recipe.sampler_options))
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"bad options for sampler {recipe.sampler!r}: {e}") from None
    loader = recipe.to_dict()["loader"]
    prov = getattr(data, "provenance", None)
    trainer = SupernetTrainer(
        supernet, sampler, data, cfg, out_dir, device=device, progress=progress,
        run_info={"sampler_options": dict(recipe.sampler_options), "loader": loader,
                  # text sources: corpus, Python version, files, bytes, tokenizer
                  **({"data_provenance": prov} if prov is not None else {})},
    )
    if resume and out_dir is not None and (Path(out_dir) / CHECKPOINT_NAME).exists():
        trainer.resume(reset_optimizer=reset_optimizer)
    return trainer, trainer.fit()
