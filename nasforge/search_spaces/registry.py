"""The search-space registry: ``@register_space("name")`` and :func:`get_space`.

A registered name maps to a factory of the space; options such as ``num_classes`` are passed
through :func:`get_space`, so a variant of a space is a call, never a new class, and every
instance answers ``space.name`` with the name it was registered under.

Example:
    >>> get_space("elasticvit", num_classes=10).name
    'elasticvit'
    >>> get_space("elasticvit", num_classes=10).num_classes
    10
    >>> get_space("elasticvit") is get_space("elasticvit")
    True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from collections.abc import Hashable
from functools import cache
from typing import Any

from nasforge.errors import InvalidInputError
from nasforge.registry import Registry
from nasforge.search_spaces.base import SearchSpace

__all__ = ["SPACES", "get_space", "register_space", "register_space_factory"]

#: name -> factory returning a :class:`SearchSpace` (options as keyword arguments).
SPACES: Registry[Callable[..., SearchSpace]] = Registry("search space")


def register_space(name: str) -> Callable[[type[SearchSpace]], type[SearchSpace]]:
    """Class decorator: register a space class as ``name`` (its instances' ``.name``)."""

    def deco(cls: type[SearchSpace]) -> type[SearchSpace]:
        cls.name = name
        SPACES.add(name, cls)
        return cls

    return deco


def register_space_factory(name: str, factory: Callable[..., SearchSpace]) -> None:
    """Register a variant built by ``factory`` (a table row, not a new class).

    The factory takes the space's options as keyword arguments and builds a space whose
    ``.name`` is ``name``.
    """
    SPACES.add(name, factory)


def _options_of(factory: Callable[..., SearchSpace]) -> list[str]:
    """The keyword options a space factory accepts (for the error message)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.default is not p.empty]


@cache
def _cached_space(name: str, options: tuple[tuple[str, Hashable], ...]) -> SearchSpace:
    return _build_space(name, dict(options))


def _build_space(name: str, options: dict[str, Any]) -> SearchSpace:
    factory = SPACES.get(name)
    accepted = _options_of(factory)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidInputError(
            f"search space {name!r} has no option {unknown[0]!r}; its options are "
            f"{', '.join(accepted) or '(none)'}")
    space = factory(**options)
    if space.name != name:  # a factory building a space under another name: a registry bug
        raise TypeError(f"the factory of search space {name!r} built a space named "
                        f"{space.name!r}; register the class or pass the name to the factory")
    return space


def get_space(name: str, **options: Any) -> SearchSpace:
    """The space registered as ``name``, built with ``options`` (e.g. ``num_classes=10``).

    Spaces are immutable: the same name and options give the same shared instance.

    Args:
        name: a registered space name (``nas spaces``).
        **options: keyword options of the space, e.g. ``num_classes``.

    Raises:
        UnknownNameError: no such space; the message gives the closest name.
        InvalidInputError: an option the space does not take.
    """
    key = tuple(sorted(options.items()))
    try:
        hash(key)
    except TypeError:  # an unhashable option value: build a fresh instance
        return _build_space(name, options)
    return _cached_space(name, key)
