"""The search-space registry: ``@register_space("name")`` and :func:`get_space`."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from nasforge.registry import Registry
from nasforge.search_spaces.base import SearchSpace

__all__ = ["SPACES", "get_space", "register_space"]

#: name -> zero-argument factory returning a :class:`SearchSpace`.
SPACES: Registry[Callable[[], SearchSpace]] = Registry("search space")


def register_space(name: str) -> Callable[[type[SearchSpace]], type[SearchSpace]]:
    """Class decorator: register a space class (constructed without arguments) as ``name``."""

    def deco(cls: type[SearchSpace]) -> type[SearchSpace]:
        cls.name = name
        SPACES.add(name, cls)
        return cls

    return deco


def register_space_factory(name: str, factory: Callable[[], SearchSpace]) -> None:
    """Register a variant built by ``factory`` (a table row, not a new class)."""
    SPACES.add(name, factory)


@cache
def get_space(name: str) -> SearchSpace:
    """The (shared, immutable) space registered as ``name``.

    Raises:
        UnknownNameError: no such space; the message gives the closest name.
    """
    space = SPACES.get(name)()
    return space
