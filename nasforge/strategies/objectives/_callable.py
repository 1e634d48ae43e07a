"""An objective from a plain vectorised function (tests, user metrics).

Example:
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201")
    >>> convs = CallableObjective(
    ...     "convs", lambda archs: [sum("conv" in e for e in a.edges) for a in archs])
    >>> convs.evaluate_many([space.min_arch(), space.max_arch()]).tolist()
    [0.0, 6.0]
    >>> convs.direction, convs.cheap
    ('maximize', False)
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.strategies.objectives.base import Direction
from nasforge.strategies.objectives.base import Objective

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch

__all__ = ["CallableObjective"]


class CallableObjective(Objective):
    """Wrap a vectorised function ``fn(archs) -> values`` (tests, user metrics).

    Args:
        name: objective name.
        fn: maps a sequence of archs to a sequence of floats of the same length.
        direction: ``minimize`` or ``maximize``.
        lower: lower feasibility bound.
        upper: upper feasibility bound.
        cheap: whether it filters before the expensive objectives.
    """

    def __init__(self, name: str, fn: Callable[[Sequence[Arch]], Iterable[float]],
                 direction: Direction = "maximize", *, lower: float | None = None,
                 upper: float | None = None, cheap: bool = False) -> None:
        super().__init__(name, direction, lower=lower, upper=upper, cheap=cheap)
        self.fn = fn

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        out = np.asarray(list(self.fn(archs)), dtype=np.float64)
        if out.shape != (len(archs),):
            raise InvalidInputError(
                f"objective {self.name!r}: the function returned shape {out.shape} for "
                f"{len(archs)} archs; it must return one float per arch"
            )
        return out
