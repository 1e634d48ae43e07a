"""Fine-tuning recipes: a training recipe for one subnet, plus the spaces it is written for.

A fine-tuning recipe is a YAML file with the sections of a training recipe
(:class:`~nasforge.supernet.training.recipe.Recipe`: ``data``, ``loader``, ``train``) and two
more: ``spaces`` (the search spaces whose subnets it fine-tunes; ``null``: any) and
``finetune`` (``distill``: learn from the supernet's largest subnet instead of the labels,
``recal_batches``: BN recalibration batches before training and before scoring). The sampler is
always ``subnet`` (:class:`~nasforge.supernet.training.samplers.SubnetSampler`). ``data:
null`` fine-tunes on the supernet's own data and split; the input size and resolution scale
always come from the supernet's checkpoint (the subnet keeps the size it was trained at).

Shipped: ``finetune_quick`` (the quick supernet on ``digits``) and ``finetune_ofa`` (OFA's /
AttentiveNAS's published values, cited in the file), in
``nasforge/supernet/training/recipes/``.

Example:
    >>> r = load_finetune_recipe("finetune_quick")
    >>> r.recipe.sampler, r.distill, "elasticvit" in (r.spaces or ())
    ('subnet', True, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.supernet.training.recipe import Recipe
from nasforge.supernet.training.recipe import apply_overrides
from nasforge.supernet.training.recipe import recipe_from_dict
from nasforge.supernet.training.recipe import recipe_path

__all__ = ["FinetuneRecipe", "finetune_recipe_from_dict", "load_finetune_recipe"]

_SECTIONS = ("spaces", "finetune", "data", "loader", "train")


@dataclass(frozen=True)
class FinetuneRecipe:
    """What decides a fine-tuning run besides the subnet and the supernet.

    Attributes:
        recipe: the training recipe (sampler ``subnet``; its ``sampler_options`` are filled
            with the subnet when the run starts).
        spaces: the spaces this recipe is written for; ``None``: any.
        distill: in-place distillation from the supernet's largest subnet (soft targets, the
            ``train.distill`` loss) instead of label-smoothed CE.
        recal_batches: BN recalibration batches (before training and before scoring).
        data: the dataset spec; ``None``: the supernet's.
        name: where the recipe came from (file stem or path), for messages.
    """

    recipe: Recipe
    spaces: tuple[str, ...] | None = None
    distill: bool = True
    recal_batches: int = 8
    data: str | None = None
    name: str = ""

    def check_space(self, space: str) -> None:
        """Refuse a subnet of a space the recipe is not written for.

        Raises:
            IncompatibleComponentsError: ``space`` is not in :attr:`spaces`.
        """
        if self.spaces is not None and space not in self.spaces:
            raise IncompatibleComponentsError(
                f"recipe {self.name or '?'} is written for spaces {', '.join(self.spaces)}, "
                f"not {space}; choose a recipe for {space} (e.g. finetune_quick) or add it to "
                "the recipe's `spaces`")

    def with_overrides(self, *, distill: bool | None = None, data: str | None = None
                       ) -> FinetuneRecipe:
        """This recipe with the flags that were given (``None`` keeps the recipe's value)."""
        return dataclasses.replace(
            self, distill=self.distill if distill is None else distill,
            data=self.data if data is None else data)

    def with_sets(self, overrides: Mapping[str, Any]) -> FinetuneRecipe:
        """This recipe with dotted ``train.*`` / ``loader.*`` keys replaced (``--set``).

        Raises:
            InvalidInputError: an unknown key or a value of the wrong type.
        """
        return dataclasses.replace(self, recipe=apply_overrides(self.recipe, overrides))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the recipe's sections plus ``spaces``, ``finetune`` and ``name``)."""
        return {"name": self.name, "spaces": list(self.spaces) if self.spaces is not None else None,
                "finetune": {"distill": self.distill, "recal_batches": self.recal_batches},
                **{**self.recipe.to_dict(), "data": self.data}}


def finetune_recipe_from_dict(data: Mapping[str, Any], name: str = "") -> FinetuneRecipe:
    """A :class:`FinetuneRecipe` from plain data.

    Raises:
        InvalidInputError: an unknown section or key, or a value of the wrong type.
    """
    name = str(data.get("name") or name)
    unknown = sorted(set(data) - set(_SECTIONS) - {"name", "sampler", "sampler_options"})
    if unknown:
        raise InvalidInputError(f"fine-tuning recipe {name}: unknown section(s) "
                                f"{', '.join(unknown)}; allowed: {', '.join(_SECTIONS)}")
    spaces = data.get("spaces")
    if spaces is not None and (not isinstance(spaces, list) or not spaces
                               or not all(isinstance(s, str) for s in spaces)):
        raise InvalidInputError(f"fine-tuning recipe {name}: `spaces` must be a non-empty list "
                                f"of space names or null, got {spaces!r}")
    ft = data.get("finetune") or {}
    if not isinstance(ft, dict) or set(ft) - {"distill", "recal_batches"}:
        raise InvalidInputError(f"fine-tuning recipe {name}: `finetune` takes distill and "
                                f"recal_batches, got {ft!r}")
    distill, recal = ft.get("distill", True), ft.get("recal_batches", 8)
    if not isinstance(distill, bool) or isinstance(recal, bool) or not isinstance(recal, int) \
            or recal < 1:
        raise InvalidInputError(f"fine-tuning recipe {name}: finetune.distill must be true or "
                                f"false and finetune.recal_batches an integer >= 1, got "
                                f"{distill!r} and {recal!r}")
    spec = data.get("data")
    if spec is not None and not isinstance(spec, str):
        raise InvalidInputError(f"fine-tuning recipe {name}: `data` must be a dataset spec or "
                                f"null (the supernet's data), got {spec!r}")
    sections = {k: data[k] for k in ("loader", "train") if k in data}
    recipe = recipe_from_dict({**sections, "sampler": "subnet", "sampler_options": {}})
    return FinetuneRecipe(recipe, tuple(spaces) if spaces is not None else None, distill,
                          recal, spec, name)


def load_finetune_recipe(name_or_path: str | Path) -> FinetuneRecipe:
    """A shipped fine-tuning recipe by name (``finetune_quick``, ``finetune_ofa``) or a file.

    Raises:
        InvalidInputError: no such recipe, unreadable YAML, unknown keys, wrong types.
    """
    from nasforge.validation import parse_structured
    from nasforge.validation import read_text

    path = recipe_path(name_or_path)
    data = parse_structured(read_text(path, "recipe"), str(path), kind="yaml") or {}
    if not isinstance(data, dict):
        raise InvalidInputError(f"fine-tuning recipe {path} must be a mapping of sections "
                                f"({', '.join(_SECTIONS)})")
    return finetune_recipe_from_dict(data, str(name_or_path))
