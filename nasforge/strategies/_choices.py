"""The flat view of a :class:`~nasforge.search_spaces.base.ChoiceSpace` used by the strategies
that model choices one by one (gradient logits, Optuna distributions) or enumerate small spaces.

A space made of :class:`~nasforge.search_spaces.base.Choice` s is a list of independent
categorical decisions (``resolution``, ``widths[3]``, ``edges[5]``, ...); cross-field rules
(ElasticViT's non-decreasing widths) are enforced by ``space.arch_from_dict``, so a combination
that breaks one is reported as None and the caller rejects it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces.base import ChoiceSpace

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["FlatChoice", "arch_from_flat", "enumerate_space", "flat_choices", "flat_index"]


@dataclass(frozen=True)
class FlatChoice:
    """One categorical decision.

    Attributes:
        label: ``field`` or ``field[i]``.
        field: the arch field.
        position: element index in a tuple field, None for a scalar field.
        options: the allowed values.
    """

    label: str
    field: str
    position: int | None
    options: tuple[Any, ...]


def flat_choices(space: SearchSpace, who: str = "this strategy") -> list[FlatChoice]:
    """The decisions of ``space`` in field order.

    Raises:
        IncompatibleComponentsError: the space is not a ChoiceSpace.
    """
    if not isinstance(space, ChoiceSpace):
        raise IncompatibleComponentsError(
            f"{who} needs a space declared as discrete choices (a ChoiceSpace); "
            f"{type(space).__name__} is not one"
        )
    out: list[FlatChoice] = []
    for c in space.choices():
        for i, opts in enumerate(c.options):
            if c.scalar:
                out.append(FlatChoice(c.field, c.field, None, tuple(opts)))
            else:
                out.append(FlatChoice(f"{c.field}[{i}]", c.field, i, tuple(opts)))
    return out


def arch_from_flat(space: SearchSpace, flat: Sequence[FlatChoice],
                   values: Sequence[Any]) -> Arch | None:
    """Build the arch taking ``values[i]`` for decision ``flat[i]``; None when the combination
    breaks a cross-field rule of the space."""
    data: dict[str, Any] = {}
    for fc, v in zip(flat, values, strict=True):
        if fc.position is None:
            data[fc.field] = v
        else:
            data.setdefault(fc.field, []).append(v)
    try:
        return space.arch_from_dict(data)
    except InvalidArchitectureError:
        return None


def flat_index(flat: Sequence[FlatChoice], arch: Arch) -> list[int]:
    """Option index of each decision in ``arch``."""
    out = []
    for fc in flat:
        v = getattr(arch, fc.field)
        out.append(fc.options.index(v if fc.position is None else v[fc.position]))
    return out


def enumerate_space(space: SearchSpace, limit: int) -> list[Arch] | None:
    """Every valid arch of ``space`` when it has at most ``limit`` of them, else None.

    Uses ``space.enumerate()`` when the space offers one, else the product of its choices.
    """
    if space.size() > limit:
        return None
    own = getattr(space, "enumerate", None)
    if callable(own):
        return list(own())
    if not isinstance(space, ChoiceSpace):
        return None
    flat = flat_choices(space)
    it: Iterator[tuple[Any, ...]] = itertools.product(*(fc.options for fc in flat))
    out = []
    for values in it:
        a = arch_from_flat(space, flat, values)
        if a is not None:
            out.append(a)
    return out
