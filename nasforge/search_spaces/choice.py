"""The vocabulary a space of discrete choices is declared in: :class:`Choice`.

Example:
    >>> Choice.repeat("kernels", (3, 5), 2).options
    ((3, 5), (3, 5))
    >>> fmt_allowed(range(128, 225, 4))
    '128..224 step 4'
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Choice", "fmt_allowed", "is_ordered"]


@dataclass(frozen=True)
class Choice:
    """One field of an architecture made of discrete choices.

    Attributes:
        field: the dataclass field name.
        options: allowed values, one tuple per element (``length`` tuples) or a single tuple
            for a scalar field.
        scalar: the field holds one value rather than a tuple.
    """

    field: str
    options: tuple[tuple[Any, ...], ...]
    scalar: bool = False

    @property
    def length(self) -> int:
        return len(self.options)

    @staticmethod
    def one(field: str, values: Sequence[Any]) -> Choice:
        return Choice(field, (tuple(values),), scalar=True)

    @staticmethod
    def each(field: str, options: Sequence[Sequence[Any]]) -> Choice:
        return Choice(field, tuple(tuple(o) for o in options))

    @staticmethod
    def repeat(field: str, values: Sequence[Any], n: int) -> Choice:
        return Choice(field, tuple(tuple(values) for _ in range(n)))


def fmt_allowed(values: Sequence[Any]) -> str:
    """The allowed set as error messages print it (``128..224 step 4`` for long int ranges)."""
    vs = list(values)
    if len(vs) > 3 and all(isinstance(v, int) for v in vs):
        steps = {b - a for a, b in itertools.pairwise(vs)}
        if len(steps) == 1:
            return f"{vs[0]}..{vs[-1]} step {steps.pop()}"
    return "{" + ", ".join(str(v) for v in vs) + "}"


def is_ordered(values: Sequence[Any]) -> bool:
    """Whether a choice's options are numbers (encoded as the value, ordered for min/max)."""
    return all(isinstance(v, int | float) for v in values)
