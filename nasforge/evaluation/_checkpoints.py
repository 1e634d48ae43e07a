"""Where a supernet source's checkpoint and data come from: the embedded quick supernet
(trained once, cached) and the data a checkpoint was trained on."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nasforge.evaluation.base import EvalSettings
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["data_of", "quick_checkpoint"]

logger = logging.getLogger(__name__)


def quick_checkpoint(space: SearchSpace, settings: EvalSettings, progress: bool) -> Path:
    """The embedded quick supernet of ``space`` on ``digits`` (language spaces: on the embedded
    text, :func:`~nasforge.supernet.training.quick.quick_recipe`), trained here once, cached."""
    from nasforge._paths import cache_dir
    from nasforge.supernet import train_quick_supernet
    from nasforge.supernet.training.quick import quick_recipe
    from nasforge.supernet.training.quick import resolve_device

    logger.info("no --supernet/--predictor/--benchmark: using the embedded quick supernet of "
                "%s on `%s` (trained once, cached under %s)", space.name,
                quick_recipe(space).data, cache_dir())
    return train_quick_supernet(space, cache_dir(), progress=progress,
                                device=resolve_device(settings.accelerator))


def data_of(supernet: str | None, space: SearchSpace | None = None
            ) -> tuple[str | None, int, float | None]:
    """(dataset spec, input size, resolution scale) the supernet was trained with; (None, 32,
    None) without one. Stand-alone training uses the same size and scale, so that both sources
    see each subnet at the same pixels (or tokens). ``quick`` is the quick recipe of ``space``
    (the default recipe without one)."""
    if supernet is None:
        return None, 32, None
    if supernet == "quick":
        from nasforge.supernet.training.quick import DEFAULT_RECIPE
        from nasforge.supernet.training.quick import quick_recipe

        recipe = quick_recipe(space) if space is not None else DEFAULT_RECIPE
        t = recipe.train
        return str(recipe.data), t.input_size, t.resolution_scale
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import read_checkpoint

    run = RunConfig.from_checkpoint(read_checkpoint(Path(supernet)))
    return str(run.data), run.input_size, run.resolution_scale
