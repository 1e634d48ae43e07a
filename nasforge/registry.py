"""A generic named registry, one instance per plug-in kind (timm / Optuna style).

Example:
    >>> from nasforge.registry import Registry
    >>> r: Registry[type] = Registry("widget")
    >>> @r.register("round")
    ... class Round: ...
    >>> r.get("round") is Round
    True
    >>> r.get("rund")
    Traceback (most recent call last):
    ...
    nasforge.errors.UnknownNameError: unknown widget 'rund'; did you mean 'round'? Available: round
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any
from typing import Generic
from typing import TypeVar

from nasforge.errors import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to plug-ins of one kind.

    Args:
        kind: what is registered, used in messages ("search space", "device", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a duplicate name raises ``ValueError``."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``.

        Raises:
            ValueError: ``name`` is already registered.
        """
        if name in self._items:
            raise ValueError(
                f"{self.kind} {name!r} is already registered (by {self._items[name]!r}); "
                "names must be unique"
            )
        self._items[name] = obj

    def remove(self, name: str) -> None:
        """Unregister ``name`` (used by tests and by users replacing a cached device)."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        """Return the plug-in registered as ``name``.

        Raises:
            UnknownNameError: no such name; the message lists what exists and the closest match.
        """
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """The one-line message for an unknown ``name``."""
        names = sorted(self._items)
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        if not close:  # a misspelt part of a longer name ("tupel" for "elasticvit-tuple")
            scored = [(difflib.SequenceMatcher(None, name, part).ratio(), n)
                      for n in names for part in n.replace("-", "_").split("_")]
            scored = [s for s in scored if s[0] >= 0.6]
            close = [max(scored)[1]] if scored else []
        hint = f"; did you mean {close[0]!r}?" if close else "."
        return f"unknown {self.kind} {name!r}{hint} Available: {', '.join(names) or '(none)'}"

    def create(self, name: str, **kwargs: Any) -> Any:
        """Call the registered factory ``name`` with ``kwargs``."""
        factory = self.get(name)
        if not callable(factory):
            raise TypeError(f"{self.kind} {name!r} is not callable")
        return factory(**kwargs)

    def list(self, filter: str = "*") -> list[str]:
        """Sorted registered names matching the fnmatch pattern ``filter``."""
        return sorted(n for n in self._items if fnmatch.fnmatch(n, filter))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._items)
