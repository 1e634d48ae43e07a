"""The search space of a run, with its ``space_options`` resolved at the edge.

``space_options`` (YAML ``space_options: {resolutions: [160, 176, 192, 208, 224]}``,
``nas search --space-opt resolutions=160,176,192,208,224``) restrict a choice of the
registered space to some of its values, e.g. ``ofa_mbv3_w12`` to OFA's five table
resolutions. Each key is a field of the space's config dataclass (its ``cfg``, such as
:class:`~nasforge.search_spaces._ofa_mbv3.OFAMobileNetV3Cfg`'s ``resolutions``) that holds the
option list of one of the space's choices; the values
must be among the registered space's (what its supernet and tables serve), and the space is
built once as ``get_space(name, cfg=dataclasses.replace(cfg, key=values))`` (the registry's
option mechanism, one shared instance per options). The space keeps its name: its archs are
archs of the registered space.

Example:
    >>> space = space_of("ofa_mbv3_w12", {"resolutions": "160,176,192,208,224"})
    >>> space.cfg.resolutions, space.name
    ((160, 176, 192, 208, 224), 'ofa_mbv3_w12')
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.search_spaces.base import SearchSpace

__all__ = ["space_of", "space_option_names"]


def space_option_names(space: SearchSpace) -> list[str]:
    """The options a space takes: the fields of its config dataclass that hold the option
    list of one of its choices (none for a space without a config or choices)."""
    cfg = getattr(space, "cfg", None)
    choices = getattr(space, "choices", None)
    if cfg is None or not dataclasses.is_dataclass(cfg) or choices is None:
        return []
    lists = {tuple(c.options[0]) for c in choices() if c.options}
    return [f.name for f in dataclasses.fields(cfg)
            if isinstance(getattr(cfg, f.name), tuple) and getattr(cfg, f.name) in lists]


def space_of(name: str, options: Mapping[str, Any] | None = None) -> SearchSpace:
    """The space ``name`` restricted by ``options`` (see the module docstring).

    Raises:
        UnknownNameError: no such space.
        InvalidInputError: an option the space does not take, or a value it does not serve.
    """
    space = get_space(name)
    if not options:
        return space
    allowed = space_option_names(space)
    changes = {}
    for key, value in options.items():
        if key not in allowed:
            raise InvalidInputError(
                f"search space {name!r} has no space option {key!r}; its options are "
                f"{', '.join(allowed) or '(none)'}")
        changes[key] = _restricted(name, key, getattr(space.cfg, key), value)  # type: ignore[attr-defined]
    cfg = dataclasses.replace(space.cfg, **changes)  # type: ignore[attr-defined]
    return get_space(name, cfg=cfg)


def _restricted(name: str, key: str, served: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    """The values of ``served`` that ``value`` names (a list, or text ``a,b,c``), in the
    space's order.

    Raises:
        InvalidInputError: an empty list, or a value the space does not serve.
    """
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise InvalidInputError(
            f"space option {key!r} of {name!r} takes a non-empty list, got {value!r}")
    kind = type(served[0])
    wanted = []
    for item in items:
        try:
            v = kind(item.strip()) if isinstance(item, str) else item
        except ValueError:
            v = item
        if isinstance(v, bool) or v not in served:
            raise InvalidInputError(
                f"space option {key}={item!r} is not served by {name!r} (its supernet and "
                f"tables know {_span(served)})")
        wanted.append(v)
    return tuple(v for v in served if v in wanted)


def _span(values: tuple[Any, ...]) -> str:
    """``128..224 step 4`` for an arithmetic run of ints, else the values."""
    ints = all(isinstance(v, int) for v in values) and len(values) > 2
    steps = {b - a for a, b in itertools.pairwise(values)} if ints else set()
    if len(steps) == 1:
        return f"{values[0]}..{values[-1]} step {steps.pop()}"
    return ", ".join(map(str, values))
