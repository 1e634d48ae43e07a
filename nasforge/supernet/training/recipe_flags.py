"""The ``nas train`` flags that set recipe keys: one table (:data:`RECIPE_FLAGS`) and
:func:`recipe_from_flags`, which turns the flags given, ``--ckpt-every``, ``--sampler`` and
``--set KEY=VALUE`` into a checked :class:`~nasforge.supernet.training.recipe.Recipe`.

Flags and ``--set`` are range-checked by the recipe itself (one rule for flags, ``--set`` and
files); an error then names the flag beside the key.

Example:
    >>> r = recipe_from_flags(None, {"--lr": 0.01, "--steps": 5}, sets=["loader.workers=0"])
    >>> r.train.lr, r.train.steps, r.train.epochs, r.loader.workers
    (0.01, 5, None, 0)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasforge.errors import InvalidInputError
from nasforge.supernet.training.recipe import DEFAULT_RECIPE
from nasforge.supernet.training.recipe import Recipe
from nasforge.supernet.training.recipe import apply_overrides
from nasforge.supernet.training.recipe import load_recipe

__all__ = ["RECIPE_FLAGS", "RecipeFlag", "name_flags", "parse_ckpt_every", "parse_sets",
           "recipe_from_flags"]


@dataclass(frozen=True)
class RecipeFlag:
    """A flag that sets one recipe key.

    Attributes:
        flag: the flag (``--lr``).
        key: the dotted recipe key (``train.lr``).
        named: a recipe error about ``key`` names the flag beside it.
    """

    flag: str
    key: str
    named: bool = True


#: every ``nas train`` flag that is a recipe key, in the order the changes apply
RECIPE_FLAGS: tuple[RecipeFlag, ...] = (
    RecipeFlag("--steps", "train.steps"),
    RecipeFlag("--epochs", "train.epochs"),
    RecipeFlag("--seed", "train.seed"),
    RecipeFlag("--input-size", "train.input_size"),
    RecipeFlag("--resolution-scale", "train.resolution_scale"),
    RecipeFlag("--batch-size", "train.batch_size"),
    RecipeFlag("--lr", "train.lr"),
    RecipeFlag("--distill", "train.distill", named=False),
    RecipeFlag("--ema", "train.ema_decay"),
    RecipeFlag("--precision", "train.precision", named=False),
    RecipeFlag("--channels-last", "train.channels_last", named=False),
    RecipeFlag("--data", "data", named=False),
    RecipeFlag("--workers", "loader.workers"),
)


def recipe_from_flags(config: str | None, flags: Mapping[str, Any], *, sets: Sequence[str] = (),
                      ckpt_every: str | None = None, sampler: str | None = None) -> Recipe:
    """The recipe ``config`` (a file or shipped name; default ``quick``'s values) with the flags.

    Args:
        config: recipe file or shipped recipe name; ``None``: the default recipe.
        flags: flag -> value for flags of :data:`RECIPE_FLAGS` (``None``: not given); ``--steps``
            without ``--epochs`` clears the recipe's ``train.epochs``.
        sets: ``KEY=VALUE`` overrides (YAML values), applied last.
        ckpt_every: ``--ckpt-every`` (see :func:`parse_ckpt_every`).
        sampler: a sampler name; another than the recipe's brings that sampler's
            ``recipe_options`` (:attr:`~nasforge.supernet.training.samplers.BaseSampler.
            recipe_options`).

    Raises:
        InvalidInputError: a value out of range (naming the flag and the key), a bad ``--set``
            or ``--ckpt-every``.
        UnknownNameError: an unknown sampler or flag.
    """
    from nasforge.supernet.training.samplers import SAMPLERS

    known = {f.flag: f for f in RECIPE_FLAGS}
    unknown = sorted(set(flags) - set(known))
    if unknown:
        raise InvalidInputError(f"flags {unknown} set no recipe key; known: {sorted(known)}")
    recipe = load_recipe(config) if config is not None else DEFAULT_RECIPE
    given = {f.flag: f for f in RECIPE_FLAGS if flags.get(f.flag) is not None}
    changes: dict[str, Any] = {f.key: flags[f.flag] for f in given.values()}
    if "--steps" in given and "--epochs" not in given:
        changes["train.epochs"] = None
    if ckpt_every is not None:
        changes.update(parse_ckpt_every(ckpt_every))
    if sampler is not None and sampler != recipe.sampler:
        changes["sampler"] = sampler  # an unknown name: one line before any work
        changes["sampler_options"] = dict(SAMPLERS.get(sampler).recipe_options)
    changes.update(parse_sets(sets))
    try:
        return apply_overrides(recipe, changes)
    except InvalidInputError as e:
        named = {f.flag: f.key for f in given.values() if f.named}
        raise InvalidInputError(name_flags(str(e), named)) from None


def name_flags(message: str, given: Mapping[str, str]) -> str:
    """``message`` with each recipe key that a given flag set written as ``--flag (key)``.

    Example:
        >>> name_flags("train.lr = nan is out of range", {"--lr": "train.lr"})
        '--lr (train.lr) = nan is out of range'
    """
    for flag, key in given.items():
        message = re.sub(rf"(?<![\w.]){re.escape(key)}\b", f"{flag} ({key})", message, count=1)
    return message


def parse_sets(pairs: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs -> ``{key: YAML value}`` (the raw text when it is no YAML).

    Example:
        >>> parse_sets(["train.lr=0.1", "data=imagefolder:/d"])
        {'train.lr': 0.1, 'data': 'imagefolder:/d'}
    """
    from nasforge.structured import parse_structured

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--set needs KEY=VALUE (e.g. train.lr=0.1), got {pair!r}")
        try:
            out[key.strip()] = parse_structured(raw, f"--set {key.strip()}", kind="yaml")
        except InvalidInputError as e:
            if "malformed YAML" not in str(e):  # a bomb or a duplicate key: refuse it
                raise
            out[key.strip()] = raw
    return out


def parse_ckpt_every(raw: str) -> dict[str, Any]:
    """``--ckpt-every 20`` (steps) or ``30s`` / ``5m`` / ``2h`` (time) -> recipe changes.

    Example:
        >>> parse_ckpt_every("90s")
        {'train.checkpoint_minutes': 1.5, 'train.checkpoint_every': None}
    """
    text = raw.strip().lower()
    units = {"s": 1 / 60, "m": 1.0, "h": 60.0}
    try:
        if text and text[-1] in units:
            minutes = float(text[:-1]) * units[text[-1]]
            if not (minutes > 0 and math.isfinite(minutes)):
                raise ValueError
            return {"train.checkpoint_minutes": minutes, "train.checkpoint_every": None}
        steps = int(text)
        if steps < 1:
            raise ValueError
        return {"train.checkpoint_every": steps, "train.checkpoint_minutes": None}
    except ValueError:
        raise InvalidInputError(f"--ckpt-every {raw!r}: give a number of steps >= 1 (e.g. 20) or "
                                "a time > 0 with a unit s, m or h (e.g. 5m)") from None
