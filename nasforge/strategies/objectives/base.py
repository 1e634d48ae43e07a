"""The objective interface: :class:`Objective`, its :class:`Bound` and its direction.

An objective is a name, a direction (``minimize`` / ``maximize``), an optional :class:`Bound`
(lower and/or upper), a ``cheap`` flag and a vectorised ``evaluate_many(archs) -> np.ndarray``.
Cheap objectives (FLOPs, params, a latency model, a predictor) are computed for every proposed
candidate so that candidates violating their bounds are rejected *before* the expensive ones
(supernet accuracy, a tabular benchmark query) run (Archai's ``SearchObjectives`` with
``compute_intensive``).

Example:
    >>> import numpy as np
    >>> Bound(upper=25.0).satisfied(np.array([20.0, 30.0, np.nan]))
    array([ True, False, False])
    >>> Bound(lower=1.0, upper=2.0).violation(np.array([0.5, 1.5, 3.0]))
    array([0.5, 0. , 1. ])
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import numpy as np

from nasforge.errors import InvalidInputError

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.choice_space import ChoiceSpace

__all__ = ["Bound", "Direction", "Objective"]

Direction = Literal["minimize", "maximize"]
_DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Bound:
    """A feasibility bound on an objective's value: ``lower <= value <= upper``.

    Attributes:
        lower: smallest feasible value, or None.
        upper: largest feasible value, or None (e.g. a latency budget in ms).
    """

    lower: float | None = None
    upper: float | None = None

    def __post_init__(self) -> None:
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise InvalidInputError(
                f"a bound needs `lower <= upper`, but got lower={self.lower}, upper={self.upper}; "
                "swap them or drop one"
            )

    def satisfied(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the values inside the bound (NaN is never inside)."""
        v = np.asarray(values, dtype=np.float64)
        ok = ~np.isnan(v)
        if self.lower is not None:
            ok &= v >= self.lower
        if self.upper is not None:
            ok &= v <= self.upper
        return ok

    def violation(self, values: np.ndarray) -> np.ndarray:
        """Non-negative amount by which each value is outside the bound (0 when inside)."""
        v = np.asarray(values, dtype=np.float64)
        out = np.zeros_like(v)
        if self.lower is not None:
            out += np.maximum(self.lower - v, 0.0)
        if self.upper is not None:
            out += np.maximum(v - self.upper, 0.0)
        return np.where(np.isnan(v), np.inf, out)


def _make_bound(lower: float | None, upper: float | None) -> Bound | None:
    return None if lower is None and upper is None else Bound(lower, upper)


class Objective(abc.ABC):
    """Base of every objective.

    Subclasses implement :meth:`evaluate_many`; everything else is data set in ``__init__``.

    Attributes:
        name: column name in results (``flops_m``, ``pixel6_ms``, ``cifar10_val``, ...).
        direction: ``minimize`` or ``maximize``.
        bound: feasibility bound, or None.
        cheap: computed before expensive objectives, to reject candidates early.
    """

    name: str
    direction: Direction
    bound: Bound | None
    cheap: bool

    def __init__(self, name: str, direction: Direction, *, lower: float | None = None,
                 upper: float | None = None, cheap: bool = True) -> None:
        if direction not in _DIRECTIONS:
            raise InvalidInputError(
                f"objective {name!r}: direction must be 'minimize' or 'maximize', got {direction!r}"
            )
        self.name = name
        self.direction = direction
        self.bound = _make_bound(lower, upper)
        self.cheap = cheap

    @abc.abstractmethod
    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """Values of the objective: float64 array of shape ``(len(archs),)``."""

    def evaluate_indices(self, space: ChoiceSpace, matrix: np.ndarray) -> np.ndarray | None:
        """Values for the rows of an index matrix of ``space`` without building
        architectures, shape ``(n,)``; None (the default) when the objective has no such path
        (callers then build the rows' architectures and call :meth:`evaluate_many`)."""
        return None

    def evaluate(self, arch: Arch) -> float:
        """The value for one architecture."""
        return float(self.evaluate_many([arch])[0])

    @property
    def sign(self) -> float:
        """+1 for ``maximize``, -1 for ``minimize`` (``sign * value``: larger is better)."""
        return 1.0 if self.direction == "maximize" else -1.0

    def provenance(self) -> dict[str, Any]:
        """What produced the numbers (recorded in every result)."""
        return {"kind": type(self).__name__}

    def describe(self) -> dict[str, Any]:
        """Name, direction, bound, cheapness and provenance as a JSON-ready dict."""
        b = self.bound
        return {
            "name": self.name,
            "direction": self.direction,
            "lower": None if b is None else b.lower,
            "upper": None if b is None else b.upper,
            "cheap": self.cheap,
            "provenance": self.provenance(),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, direction={self.direction!r})"
