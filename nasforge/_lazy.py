"""Lazy package exports: a package ``__init__`` that names what it exports without importing
the (heavy) modules that define them until first use (PEP 562 ``__getattr__``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, table: Mapping[str, str], names: Iterable[str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package that exports lazily.

    Args:
        package: the package's ``__name__``.
        table: exported name -> the submodule (relative to ``package``) that defines it.
        names: the package's ``__all__``.

    Returns:
        ``(__getattr__, __dir__)``: the first imports the defining submodule on first access
        and caches the value in the package's namespace; the second lists ``names`` and what
        the package already holds.

    Example:
        >>> getattr_, dir_ = lazy_exports("nasforge", {"lazy_exports": "_lazy"}, ["lazy_exports"])
        >>> getattr_("lazy_exports") is lazy_exports, "lazy_exports" in dir_()
        (True, True)
    """
    exported = set(names)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(exported | set(vars(importlib.import_module(package))))

    return __getattr__, __dir__
